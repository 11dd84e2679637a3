--- When to retry, when to wait, and what the rate-limit headers say.
--
-- One loop (`send`) used by both backends:
--   - transport failures are retried with exponential backoff and jitter
--     when no byte was sent, or when the method is idempotent;
--   - 502/503/504 are retried for idempotent methods (and 503 for any method
--     where the backend says the server guarantees nothing was applied);
--   - a 429 is waited out until its reset when `wait_on_rate_limit` is on and
--     the wait is at most `max_wait`, never for a usage cap;
--   - an interrupted transfer (Ctrl-C) is final, like a TLS failure;
--   - every loop is bounded (`max_retries`, at most MAX_WAITS waits), and so
--     is the whole call: `timeout` is a deadline for every attempt and wait
--     together (`req.deadline`); a wait that would pass it is not made.
-- @module scalekit.twitter.policy

local core = require "scalekit.core"

local M = {}

M.MAX_WAITS = 3
M.DEFAULT_TIMEOUT = 60     -- seconds for a whole call (plus max_wait when waiting on rate limits)
M.IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local RETRY_STATUS = { [502] = true, [503] = true, [504] = true }

local tointeger = math.tointeger
-- Header k of h as an integer (math.tointeger reads numeric strings), or nil.
local function int(h, k)
  local v = h[k]
  return v and tointeger(v)
end

--- The rate-limit headers of a response: `{ limit, remaining, reset,
-- day = { app = {...}, user = {...} } }`, or nil when there are none.
local DAY = {}      -- header names per who, built once
--- The prefixes of every header `rate_of` reads (transports are asked to
-- flag them, so answers without any skip the header table).
M.RATE_HEADER_PREFIXES = { "x-rate-limit-" }
for _, who in ipairs{ "app", "user" } do
  local p = "x-" .. who .. "-limit-24hour-"
  DAY[#DAY + 1] = { who = who, limit = p .. "limit", remaining = p .. "remaining", reset = p .. "reset" }
  M.RATE_HEADER_PREFIXES[#M.RATE_HEADER_PREFIXES + 1] = p
end

function M.rate_of(headers)
  local out
  if headers["x-rate-limit-limit"] or headers["x-rate-limit-remaining"] then
    out = { limit = int(headers, "x-rate-limit-limit"), remaining = int(headers, "x-rate-limit-remaining"),
            reset = int(headers, "x-rate-limit-reset") }
  end
  for i = 1, #DAY do
    local d = DAY[i]
    if headers[d.limit] or headers[d.remaining] then
      out = out or {}
      out.day = out.day or {}
      out.day[d.who] = { limit = int(headers, d.limit), remaining = int(headers, d.remaining),
                         reset = int(headers, d.reset) }
    end
  end
  return out
end

--- `rate_of` for a transport response: from the headers the transport kept
-- apart (`rate_headers`, RATE_HEADER_PREFIXES), without the full header
-- table; nil when it saw none.
function M.rate_of_response(resp)
  if resp.has_rate_headers == false then return nil end
  return M.rate_of(resp.rate_headers or resp.headers)
end

--- True when a 429 is a usage cap (daily/monthly), which no short wait fixes.
function M.is_usage_cap(resp)
  local j = type(resp.json) == "table" and resp.json or {}
  if type(j.type) == "string" and j.type:match("usage%-capped$") then return true end
  local rl = M.rate_of(resp.headers)
  if rl and rl.day then
    for _, d in pairs(rl.day) do
      if d.remaining == 0 then return true end
    end
  end
  return false
end

--- Seconds until a 429's limit resets (Retry-After, else x-rate-limit-reset).
function M.retry_after(headers)
  local ra = tonumber(headers["retry-after"] or "")
  if ra then return math.max(0, ra) end
  local reset = tonumber(headers["x-rate-limit-reset"] or "")
  if reset then return math.max(0, reset - core.now()) end
  return nil
end

--- Backoff before retry number `n` (1-based): base * 2^(n-1), capped at 30 s,
-- with jitter between half and all of it.
function M.backoff(n, base)
  local d = math.min((base or 0.5) * 2 ^ (n - 1), 30)
  local r = string.unpack("<I4", core.random_bytes(4)) / 0xFFFFFFFF
  return d * (0.5 + 0.5 * r)
end

local CONTEXT_KEYS = { "max_retries", "retry_base", "wait_on_rate_limit", "max_wait", "on_wait", "sleep",
                       "retry_any_method", "final", "timeout" }

local CALL_KEY = { timeout = true, connect_timeout = true, stall_timeout = true }
for _, k in ipairs(CONTEXT_KEYS) do CALL_KEY[k] = true end

--- `t` when it sets any per-call setting (a timeout or a CONTEXT_KEYS
-- field), else nil: then the client's settings, built once, apply.
function M.call_options(t)
  for k in next, t do                  -- a request has few fields
    if CALL_KEY[k] then return t end
  end
  return nil
end

--- The settings of one call: the fields of `fixed`, then the call's own
-- `opts`, then the client's `defaults` (resolved now, into `fixed`).  The
-- timeout is the call's, else the client's, else DEFAULT_TIMEOUT plus
-- `max_wait` when the call waits on rate limits.
function M.context(fixed, opts, defaults)
  for i = 1, #CONTEXT_KEYS do
    local k = CONTEXT_KEYS[i]
    if fixed[k] == nil then
      local v = opts and opts[k]
      if v == nil then v = defaults[k] end
      fixed[k] = v
    end
  end
  if fixed.timeout == nil then
    fixed.timeout = M.DEFAULT_TIMEOUT + (fixed.wait_on_rate_limit and (fixed.max_wait or 900) or 0)
  end
  return fixed
end

--- Seconds left before `req.deadline` (math.huge without one).
function M.time_left(req)
  local d = req.deadline
  if d == nil then return math.huge end
  return d - core.monotonic()
end

-- Transport failures worth another attempt (when nothing was sent, or the
-- method is idempotent).  TLS failures, oversized answers and interrupts are
-- final.
local function is_transient(err)
  return (err.kind == "network" or err.kind == "timeout")
         and err.transport ~= "tls" and err.transport ~= "too_large" and err.transport ~= "interrupted"
end
M.is_transient = is_transient

--- Send with retries and rate-limit waits.
-- @tparam table ctx `method`, `max_retries`, `retry_base`, `wait_on_rate_limit`,
--   `max_wait`, `retry_any_method` (set of statuses safe to repeat for any
--   method), `final(resp)` (true: never repeat this answer), `sleep`,
--   `on_wait(seconds, why)`
-- @tparam function attempt sends once: `attempt(a, req)` returns resp or nil, err
-- @param a first argument of `attempt`
-- @tparam table req the request, second argument of `attempt`; its
--   `deadline` (core.monotonic() time) bounds every wait
-- @param[opt] resp the answer of a first attempt made by the caller
-- @param[opt] err  ... or its error; with neither, the first attempt is made here
-- @return resp or nil, err (`err.may_have_been_applied` for a write whose
--   request left the machine)
function M.send(ctx, attempt, a, req, resp, err)
  if resp == nil and err == nil then resp, err = attempt(a, req) end
  -- the usual answer needs no bookkeeping
  if resp and resp.status ~= 429 and not RETRY_STATUS[resp.status] then return resp end
  local idempotent = M.IDEMPOTENT[ctx.method] or false
  local retries, waits = 0, 0
  local sleep = ctx.sleep or core.sleep
  local max_retries = ctx.max_retries or 2
  -- wait d seconds before the next attempt, unless that would pass the deadline
  local function pause(d, why)
    if d >= M.time_left(req) then return false end
    if ctx.on_wait then ctx.on_wait(d, why) end
    sleep(d)
    return true
  end
  while true do
    if not resp then
      if is_transient(err) and (not err.sent or idempotent) and retries < max_retries
         and pause(M.backoff(retries + 1, ctx.retry_base), "retry") then
        retries = retries + 1
      else
        if err.sent and not idempotent then
          err.may_have_been_applied = true
          err.message = err.message .. " (the request was sent: it may have been applied)"
        end
        return nil, err
      end
    elseif resp.status == 429 and ctx.wait_on_rate_limit and waits < M.MAX_WAITS
           and not M.is_usage_cap(resp) and (M.retry_after(resp.headers) or math.huge) <= (ctx.max_wait or 900)
           and pause(math.max(M.retry_after(resp.headers), 0) + 0.5, "rate_limit") then
      waits = waits + 1
    elseif RETRY_STATUS[resp.status] and (idempotent or (ctx.retry_any_method or {})[resp.status])
           and retries < max_retries and not (ctx.final and ctx.final(resp))
           and pause(M.backoff(retries + 1, ctx.retry_base), "retry") then
      retries = retries + 1
    else
      return resp
    end
    resp, err = attempt(a, req)
  end
end

return M
