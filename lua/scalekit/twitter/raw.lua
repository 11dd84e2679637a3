--- The raw request of `Client:request`: its fields checked (a mistake
-- raises before any traffic) and put in the form both backends take.
-- @module scalekit.twitter.raw

local options = require "scalekit.twitter.options"
local tools = require "scalekit.twitter.tools"
local transport = require "scalekit.twitter.transport"

local M = {}

-- The keys a raw request takes besides the per-call options; each value
-- says what it must be.
local REQUEST_KEYS = {
  path = "string", method = "string", params = "table", query_params = "table", queryParams = "table",
  body = "table or string", form_data = "table", raw_body = "string", headers = "table",
}
local REQUEST_NAMES = {}
for k in pairs(REQUEST_KEYS) do REQUEST_NAMES[#REQUEST_NAMES + 1] = k end
for _, k in ipairs(options.CALL_NAMES) do REQUEST_NAMES[#REQUEST_NAMES + 1] = k end
table.sort(REQUEST_NAMES)

-- Account options a tool call sends but Scalekit's proxy cannot carry (it
-- takes the connection_name and identifier headers only).
local PROXY_DROPS = { "connected_account_id", "organization_id", "user_id" }

-- A form body from `form_data`: a map (sent in key order) or an array of
-- { name, value } pairs (sent in that order).
local function form_pairs(form)
  if form[1] ~= nil then return form end
  local names, out = {}, {}
  for k in pairs(form) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do out[i] = { k, form[k] } end
  return out
end

--- The backends' form of a raw request `req` (see Client:request):
-- `{ path, method, rate_key, query, json, body, form, headers, opts }`.
-- Raises for a programmer mistake, blaming the caller of `request` (the
-- caller of the function that calls check).  `mode` is the client's (the
-- account options are Scalekit's).
function M.check(req, mode)
  if type(req) ~= "table" or type(req.path) ~= "string" then
    error("scalekit.twitter: request expects a table with a string 'path'", 3)
  end
  local call_opts
  for k, v in pairs(req) do
    local want = REQUEST_KEYS[k]
    if want == nil then
      if not (options.SPEC[k] and options.SPEC[k].call) then
        local guess = type(k) == "string" and tools.suggest(k, REQUEST_NAMES)
        error(("scalekit.twitter: request has no field '%s'%s"):format(tostring(k),
          guess and ("; did you mean '%s'?"):format(guess) or "; it takes " .. table.concat(REQUEST_NAMES, ", ")), 3)
      end
      call_opts = call_opts or {}
      call_opts[k] = v
    elseif not want:find(type(v), 1, true) then
      error(("scalekit.twitter: request field '%s' must be a %s, got %s"):format(k, want, type(v)), 3)
    end
  end
  if call_opts then
    options.check(call_opts, "scalekit.twitter: request", 3, nil, true, mode)
    for _, k in ipairs(PROXY_DROPS) do
      if call_opts[k] ~= nil then
        error(("scalekit.twitter: request: Scalekit's proxy picks the account by identifier and "
               .. "connection_name only; it has no way to send '%s'"):format(k), 3)
      end
    end
  end
  local bodies = (req.body ~= nil and 1 or 0) + (req.form_data ~= nil and 1 or 0) + (req.raw_body ~= nil and 1 or 0)
  if bodies > 1 then error("scalekit.twitter: request takes one of body, form_data and raw_body", 3) end
  local query
  for _, k in ipairs{ "query_params", "queryParams", "params" } do
    if req[k] then
      query = query or {}
      for name, v in pairs(req[k]) do query[name] = v end
    end
  end
  local method, path, rate_key = transport.raw_target(req, 3)
  local body = req.body
  return { path = path, method = method, rate_key = rate_key, query = query,
           json = type(body) == "table" and body or nil,
           body = type(body) == "string" and body or req.raw_body,
           form = req.form_data and form_pairs(req.form_data) or nil,
           headers = req.headers, opts = call_opts }
end


return M
