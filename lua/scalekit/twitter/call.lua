--- The call pipeline: every request the SDK makes goes through it once.
--
--   build (the backend's `request_for` / `raw_for`)
--   -> authorize (the backend's `authorize`)
--   -> send with the retry policy (scalekit.twitter.policy)
--   -> rate-limit bookkeeping (`rate[key]`, from the rate headers alone)
--   -> on a 401, new credentials once (the backend's `renewable` / `renew`)
--   -> decode a 2xx JSON answer, or one HTTP-error funnel (`http_error`)
--   -> the result (the backend's `result`)
--
-- A backend (scalekit.twitter.scalekit, scalekit.twitter.x) is an adapter
-- with the same members:
--   `http` (transport), `rate` (key -> last rate limit), `settings`
--   (the client's resolved policy), `hints` (`retry_any_method`, `final`),
--   `sequences` (true: it runs the catalog's sequences itself),
--   `request_for(tool, params, ctx)` -> req | nil, err, `raw_for(raw, ctx)`,
--   `authorize(req, tool)` -> used | nil, err,
--   `renewable(resp, used)`, `renew(used, req)` -> true | nil, err,
--   `error_from(resp, req)` -> message, fields, kind (its error envelope;
--   `req`, when known, is the request that got the answer),
--   `result(tool, j, resp)` -> data, info.
-- `info` has one shape in both modes: `{ tool, status, execution_id?,
-- rate_limit }`.
-- @module scalekit.twitter.call

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local policy = require "scalekit.twitter.policy"

local M = {}

local json_decode, object_mt, parse_headers = core.json_decode, core.object_mt, core.parse_headers
local RATE_PREFIXES = policy.RATE_HEADER_PREFIXES

-- Keep what the rate headers of `resp` say under `key` (the last seen wins;
-- an answer without them keeps the last).
local function note_rate(b, key, resp)
  local h = parse_headers(resp.raw_headers, RATE_PREFIXES)
  if h then b.rate[key] = policy.rate_of(h) or b.rate[key] end
end

--- The one HTTP-error funnel: an error for a non-2xx answer `resp` to
-- `req` (optional) for `tool_name` (nil for raw requests).  The backend
-- reads its envelope (`error_from`: message, fields, kind); the status,
-- rate limit, 429 details, the tool prefix and redaction are added here.
function M.http_error(b, resp, tool_name, req)
  local message, f, kind = b:error_from(resp, req)
  f = f or {}
  f.status, f.tool, f.rate_limit = resp.status, tool_name, policy.rate_of(resp.headers)
  if resp.status == 429 then
    local ra = policy.retry_after(resp.headers)
    f.retry_after = ra and math.ceil(ra)
    f.usage_cap = policy.is_usage_cap(resp) or nil
  end
  if type(message) ~= "string" then
    local snippet = (resp.body or ""):sub(1, 200):gsub("%s+", " ")
    message = ("HTTP %d%s"):format(resp.status, snippet ~= "" and (": " .. snippet) or "")
  end
  if tool_name and not message:find(tool_name, 1, true) then message = tool_name .. ": " .. message end
  return errors.new(kind or errors.kind_for_status(resp.status), b.http.redact(message), f)
end

-- The decoded JSON of a 2xx answer (an empty body is an empty object), or
-- nil, err: the HTTP error, or a protocol error for a body that is not JSON.
local function decode(b, tool_name, req, resp)
  local status = resp.status
  if status < 200 or status > 299 then return nil, M.http_error(b, resp, tool_name, req) end
  local j, _, jerr = json_decode(resp.body)
  if type(j) == "table" then return j end
  if not resp.body:find("%S") then return setmetatable({}, object_mt) end
  return nil, errors.new("protocol", ("%s: %s %s: the answer is not a JSON object or array (%s)"):format(
    tool_name or "request", req.method, req.path or req.url, jerr or "unexpected value"),
    { status = status, tool = tool_name })
end

-- Fill in what the call's settings say about time: the deadline of the
-- whole call, the per-attempt timeout and the connect/stall timeouts.
local function timed(req, s)
  req.deadline = req.deadline or core.monotonic() + s.timeout
  req.timeout = req.timeout or s.attempt_timeout
  req.connect_timeout = req.connect_timeout or s.connect_timeout
  req.stall_timeout = req.stall_timeout or s.stall_timeout
  return req
end

--- Send `req` (for `tool`, nil for raw requests) through backend `b`:
-- authorize, send with the retry policy of settings `s`, note the rate
-- headers, and on a 401 renew the credentials and repeat once.
-- @return resp (any status) or nil, err
function M.send(b, req, s, tool)
  timed(req, s)
  for attempt = 1, 2 do
    local used, err = b:authorize(req, tool)
    if not used then return nil, err end
    local resp
    resp, err = policy.send(b.http, req, s, b.hints)
    if not resp then return nil, err end
    note_rate(b, req.rate_key, resp)
    if resp.status ~= 401 or attempt == 2 or not b:renewable(resp, used) then return resp end
    local ok, rerr = b:renew(used, req)
    if not ok then rerr.tool = rerr.tool or req.tool; return nil, rerr end
  end
end

--- One request of a tool call: the decoded JSON of a 2xx answer and the
-- response, or nil, err.  Sequences use it for each of their requests.
function M.request(b, tool, req, s)
  local resp, err = M.send(b, req, s, tool)
  if not resp then return nil, err end
  local j
  j, err = decode(b, tool.name, req, resp)
  if j == nil then return nil, err end
  return j, resp
end

--- Run one validated tool call: `ctx` is the account context (Scalekit),
-- `opts` the call's own options (nil: the client's).
-- @return data, info or nil, err
function M.execute(b, tool, params, ctx, opts)
  if b.sequences and tool.sequence then
    local sequences = require "scalekit.twitter.sequences"     -- lazy: it runs on this module
    return sequences.run(b, tool, params, opts)
  end
  local req, err = b:request_for(tool, params, ctx)
  if not req then return nil, err end
  local j, resp = M.request(b, tool, req, opts and policy.settings(opts, b.settings) or b.settings)
  if j == nil then return nil, resp end
  return b:result(tool, j, resp)
end

--- A raw request (`Client:request`): the response of a 2xx answer, or nil,
-- err (`err.response` holding the response of an HTTP failure).
function M.raw(b, raw, ctx)
  local req = b:raw_for(raw, ctx)
  local resp, err = M.send(b, req, policy.settings(raw.opts, b.settings), nil)
  if not resp then return nil, err end
  if resp.status < 200 or resp.status > 299 then
    local e = M.http_error(b, resp, nil, req)
    e.response = resp
    return nil, e
  end
  return resp
end

-- A batch result from what a call gave (data, info or nil, err).
local function outcome(data, info)
  if data ~= nil then return { data = data, info = info } end
  return { err = info }
end

--- Many validated tool calls at once over the connection pool.  `jobs` is
-- an array of `{ tool =, params =, ctx = }`; a call the retry policy would
-- repeat (or a 401 new credentials would fix) runs again on its own through
-- `execute`, and so do sequences.
-- @return an array of `{ data =, info = }` or `{ err = }`, in order
function M.batch(b, jobs, opts, concurrency)
  local s = policy.settings(opts, b.settings)
  local results, sent, reqs = {}, {}, {}
  for i, job in ipairs(jobs) do
    if b.sequences and job.tool.sequence then
      results[i] = outcome(M.execute(b, job.tool, job.params, job.ctx, opts))
    else
      local req, err = b:request_for(job.tool, job.params, job.ctx)
      local used
      if req then used, err = b:authorize(timed(req, s), job.tool) end
      if used then
        reqs[#reqs + 1], sent[#reqs + 1] = req, { i = i, used = used }
      else
        results[i] = { err = err }
      end
    end
  end
  for k, a in ipairs(b.http:send_many(reqs, concurrency)) do
    local i, req, job = sent[k].i, reqs[k], jobs[sent[k].i]
    local resp, err = a.resp, a.err
    if resp then note_rate(b, req.rate_key, resp) end
    if policy.should_repeat(s, b.hints, req.method, resp, err, 0, 0)
       or (resp and resp.status == 401 and b:renewable(resp, sent[k].used)) then
      results[i] = outcome(M.execute(b, job.tool, job.params, job.ctx, opts))
    elseif not resp then
      results[i] = { err = policy.mark_applied(err, req.method) }
    else
      local j
      j, err = decode(b, job.tool.name, req, resp)
      if j == nil then
        results[i] = { err = err }
      else
        results[i] = outcome(b:result(job.tool, j, resp))
      end
    end
  end
  return results
end

return M
