--- Error values of scalekit.twitter, and secret redaction.
--
-- Every runtime failure is returned as `nil, err`, where `err` is a table
-- with the fields below and a `__tostring`.  Programmer mistakes (unknown
-- method, non-table input) are raised instead, never returned.
--
-- Fields: `kind` (one of `KINDS`), `message`, `status` (HTTP status),
-- `code` (gRPC code in Scalekit's envelope), `error_code` (Scalekit
-- ErrorInfo code, e.g. "TOOL_ERROR"), `tool`, `param`, `execution_id`,
-- `tool_error_code`, `retry_after` (seconds), `rate_limit`, `usage_cap`,
-- `details` (decoded error body), `response` (the raw answer of a failed
-- proxy request), `transport` and `sent` (transport failures),
-- `may_have_been_applied` (a write whose outcome is unknown), for kind
-- `storage`: `file` and `token` (a refreshed token that could not be saved),
-- and for kind `refused` by an after hook: `output` and `info` (the call ran).
-- @module scalekit.twitter.errors

local M = {}

--- The set of error kinds.
M.KINDS = {
  invalid_input = true, auth = true, not_found = true, rate_limited = true,
  tool_error = true, network = true, timeout = true, server = true,
  protocol = true, reauth_required = true, interrupted = true, storage = true,
  refused = true,     -- the client's before/after hook said no
}

local Error = {}
Error.__index = Error
Error.__name = "scalekit.twitter.error"

local SHOWN = { "tool", "param", "status", "error_code", "tool_error_code",
                "execution_id", "retry_after" }

function Error.__tostring(e)
  local extra = {}
  for _, k in ipairs(SHOWN) do
    if e[k] ~= nil and not (k == "tool" and e.message:find(e.tool, 1, true))
       and not (k == "param" and e.kind == "invalid_input") then
      extra[#extra + 1] = k .. "=" .. tostring(e[k])
    end
  end
  local s = "scalekit.twitter: " .. e.kind .. ": " .. e.message
  if #extra > 0 then s = s .. " (" .. table.concat(extra, ", ") .. ")" end
  return s
end

--- Make an error value.
-- @tparam string kind one of `KINDS`
-- @tparam string message what went wrong, for a human
-- @tparam[opt] table fields extra fields (status, tool, param, ...)
-- @treturn table the error
function M.new(kind, message, fields)
  assert(M.KINDS[kind], "unknown error kind " .. tostring(kind))
  local e = { kind = kind, message = message }
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  return setmetatable(e, Error)
end

--- True if `v` is an error made by this module.
function M.is(v)
  return getmetatable(v) == Error
end

--- The error kind for an HTTP status that is not a success.
function M.kind_for_status(status)
  if status == 401 or status == 403 then return "auth" end
  if status == 404 then return "not_found" end
  if status == 429 then return "rate_limited" end
  if status == 408 or status == 504 then return "timeout" end
  if status >= 500 then return "server" end
  if status >= 400 then return "invalid_input" end
  return "protocol"
end

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- Fields whose values are secrets wherever they appear: JSON bodies
-- (`"access_token": "..."`) and forms or queries (`code=...`).  They are
-- redacted by key, so a token the redactor has not been given yet (in the
-- answer that issues it) is hidden too.
M.SECRET_FIELDS = { "access_token", "refresh_token", "id_token", "client_secret", "code",
                    "code_verifier", "token", "oauth_token", "oauth_token_secret",
                    "access_token_secret", "consumer_secret" }

-- s with the string value of every JSON member named k replaced: finds
-- `"k"`, then `: "`, then scans to the closing quote past any escapes.
local function redact_json_member(s, k)
  local needle, out, pos = '"' .. k .. '"', {}, 1
  while true do
    local a, b = s:find(needle, pos, true)
    if not a then break end
    local q = s:match('^%s*:%s*()"', b + 1)       -- the value's opening quote
    if q then
      local i = q + 1
      while i <= #s do
        local c = s:byte(i)
        if c == 92 then i = i + 2                  -- backslash: skip the escaped byte
        elseif c == 34 then break                  -- the closing quote
        else i = i + 1 end
      end
      out[#out + 1] = s:sub(pos, q) .. "[REDACTED]"
      pos = i
    else
      out[#out + 1] = s:sub(pos, b)
      pos = b + 1
    end
  end
  if pos == 1 then return s end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

-- s with the value of every SECRET_FIELDS key replaced, in JSON members and
-- in forms and queries (`k=value` up to `&`, white space or a quote).
local function redact_fields(s)
  if not (s:find("token", 1, true) or s:find("secret", 1, true) or s:find("code", 1, true)) then
    return s
  end
  for _, k in ipairs(M.SECRET_FIELDS) do
    if s:find(k, 1, true) then
      s = redact_json_member(s, k)
      s = s:gsub("([?&%s]" .. k .. "=)[^&%s\"]+", "%1[REDACTED]")
      s = s:gsub("^(" .. k .. "=)[^&%s\"]+", "%1[REDACTED]")
    end
  end
  return s
end
M.redact_fields = redact_fields

local function hex_escape(c, fmt) return fmt:format(c:byte()) end

-- The spellings a secret can have in what the SDK prints: as is, percent-
-- encoded (upper- and lower-case hex, as forms and URLs carry it) and
-- JSON-escaped.
local function spellings(secret)
  local out, seen = {}, {}
  local function add(v)
    if not seen[v] then seen[v] = true; out[#out + 1] = escape_pattern(v) end
  end
  add(secret)
  add((secret:gsub("[^%w%-%._~]", function(c) return hex_escape(c, "%%%02X") end)))
  add((secret:gsub("[^%w%-%._~]", function(c) return hex_escape(c, "%%%02x") end)))
  add((secret:gsub("[^%w%-%._~]", function(c) return c == " " and "+" or hex_escape(c, "%%%02X") end)))
  add((secret:gsub('[\\"/]', "\\%0")))
  return out
end

--- A function that replaces every secret in a string with "[REDACTED]":
-- the values of `secrets` in every spelling (as is, percent-encoded,
-- JSON-escaped) and the values of the SECRET_FIELDS keys.  `secrets` is a
-- table whose values are the secrets (strings shorter than 4 characters are
-- ignored: they would redact ordinary text).  It is read on each call, so
-- secrets added later (a new access token) are covered too.
function M.redactor(secrets)
  local cache, cached = {}, 0     -- secret -> its spellings; tokens rotate, so capped
  return function(s)
    if type(s) ~= "string" then return s end
    for _, secret in pairs(secrets) do
      if type(secret) == "string" and #secret >= 4 then
        local forms = cache[secret]
        if not forms then
          if cached >= 16 then cache, cached = {}, 0 end
          forms = spellings(secret)
          cache[secret], cached = forms, cached + 1
        end
        for i = 1, #forms do s = s:gsub(forms[i], "[REDACTED]") end
      end
    end
    return redact_fields(s)
  end
end

return M
