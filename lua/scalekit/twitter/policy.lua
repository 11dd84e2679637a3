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
local tasks = require "scalekit.twitter.tasks"
local errors = require "scalekit.twitter.errors"

local M = {}

M.MAX_WAITS = 3
M.DEFAULT_TIMEOUT = 60     -- seconds for a whole call (plus max_wait when waiting on rate limits)
M.IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local RETRY_STATUS = { [502] = true, [503] = true, [504] = true }

local tointeger = math.tointeger

-- The error of a wait cut short by Ctrl-C (final, like an interrupted transfer).
local function interrupted_error(req)
  return errors.new("interrupted", ("%s: interrupted while waiting"):format(req.tool or req.method),
                    { transport = "interrupted", tool = req.tool })
end
-- Header k of h as an integer (math.tointeger reads numeric strings), or nil.
local function int(h, k)
  local v = h[k]
  return v and tointeger(v)
end

--- The rate-limit headers of a response: `{ limit, remaining, reset,
-- day = { app = {...}, user = {...} } }`, or nil when there are none.
local DAY = {}      -- header names per who, built once
--- The prefixes of every header `rate_of` reads (read from the header
-- block alone, so answers never need a table of every header).
M.RATE_HEADER_PREFIXES = { "x-rate-limit-" }
for _, who in ipairs{ "app", "user" } do
  local p = "x-" .. who .. "-limit-24hour-"
  DAY[#DAY + 1] = { who = who, limit = p .. "limit", remaining = p .. "remaining", reset = p .. "reset" }
  M.RATE_HEADER_PREFIXES[#M.RATE_HEADER_PREFIXES + 1] = p
end

function M.rate_of(headers)
  local out
  local limit, remaining = headers["x-rate-limit-limit"], headers["x-rate-limit-remaining"]
  if limit or remaining then        -- math.tointeger reads numeric strings (nil: nil)
    out = { limit = tointeger(limit), remaining = tointeger(remaining),
            reset = tointeger(headers["x-rate-limit-reset"]) }
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

--- The settings a call can override, with the client's defaults.
M.KEYS = { "max_retries", "retry_base", "wait_on_rate_limit", "max_wait", "on_wait", "on_progress", "sleep",
           "timeout", "connect_timeout", "stall_timeout" }

-- The whole call's timeout when none is set: DEFAULT_TIMEOUT, plus the
-- longest rate-limit wait when the call waits on rate limits.
local function default_timeout(s)
  return M.DEFAULT_TIMEOUT + (s.wait_on_rate_limit and s.max_wait or 0)
end

--- The client's settings, resolved once: `opts` (the client's options)
-- over the defaults; the timeout is the client's, else DEFAULT_TIMEOUT plus
-- `max_wait` when the client waits on rate limits.
function M.defaults(opts)
  local s = {
    max_retries = opts.max_retries or 2, retry_base = opts.retry_base or 0.5,
    wait_on_rate_limit = opts.wait_on_rate_limit == true, max_wait = opts.max_wait or 900,
    on_wait = opts.on_wait, sleep = opts.sleep, connect_timeout = opts.connect_timeout,
    stall_timeout = opts.stall_timeout, client_timeout = opts.timeout, attempt_timeout = opts.timeout,
  }
  s.timeout = opts.timeout or default_timeout(s)
  return s
end

--- The settings of one call: the call's own `opts` over the client's
-- `defaults` (those resolved by `defaults`); `defaults` itself when the
-- call sets none.  The timeout is the call's, else the client's, else
-- DEFAULT_TIMEOUT plus `max_wait` when the call waits on rate limits.
function M.settings(opts, defaults)
  if opts == nil then return defaults end
  local s = { client_timeout = defaults.client_timeout, attempt_timeout = opts.timeout or defaults.client_timeout }
  for i = 1, #M.KEYS do
    local k = M.KEYS[i]
    local v = opts[k]
    if v == nil then v = defaults[k] end
    s[k] = v
  end
  s.timeout = opts.timeout or defaults.client_timeout or default_timeout(s)
  return s
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

--- Should this answer be repeated, and after how long?  `resp` or `err` is
-- what one attempt of a `method` request got; `hints` are the backend's:
-- `retry_any_method` (statuses its server guarantees it did not act on, so
-- any method may repeat them) and `final(resp)` (true: never repeat).
-- `retries` and `waits` count what the call already did.
-- @return the delay in seconds and why ("retry" or "rate_limit"), or nil
function M.should_repeat(s, hints, method, resp, err, retries, waits)
  if resp then
    local status = resp.status
    if status ~= 429 and not RETRY_STATUS[status] then return nil end
    if status == 429 then
      if not s.wait_on_rate_limit or waits >= M.MAX_WAITS or M.is_usage_cap(resp) then return nil end
      local ra = M.retry_after(resp.headers)
      if (ra or math.huge) > s.max_wait then return nil end
      return math.max(ra, 0) + 0.5, "rate_limit"
    end
    if retries >= s.max_retries or not (M.IDEMPOTENT[method] or hints.retry_any_method[status])
       or hints.final(resp) then
      return nil
    end
    return M.backoff(retries + 1, s.retry_base), "retry"
  end
  if is_transient(err) and (not err.sent or M.IDEMPOTENT[method]) and retries < s.max_retries then
    return M.backoff(retries + 1, s.retry_base), "retry"
  end
  return nil
end

--- Say on `err` that a write whose request left the machine may have been
-- applied (the caller must not simply repeat it).  Returns err.
function M.mark_applied(err, method)
  if err.sent and not M.IDEMPOTENT[method] and not err.may_have_been_applied then
    err.may_have_been_applied = true
    err.message = err.message .. " (the request was sent: it may have been applied)"
  end
  return err
end

--- Send `req` over `http` with retries and rate-limit waits (see
-- `should_repeat`); a wait that would pass `req.deadline` is not made.
-- @tparam table http the transport
-- @tparam table req the request (its `deadline` bounds every wait)
-- @tparam table s the call's settings
-- @tparam table hints the backend's retry hints
-- @return resp or nil, err (`err.may_have_been_applied` for a write whose
--   request left the machine)
function M.send(http, req, s, hints)
  local resp, err = http:send(req)
  if resp and resp.status < 429 then return resp end    -- the usual answer: nothing to repeat
  local retries, waits = 0, 0
  while true do
    local delay, why = M.should_repeat(s, hints, req.method, resp, err, retries, waits)
    if not delay or delay >= M.time_left(req) then break end
    if s.on_wait then s.on_wait(delay, why) end
    local slept, kind = (s.sleep or tasks.sleep)(delay)
    if slept == nil and kind == "interrupted" then
      return nil, interrupted_error(req)
    end
    if why == "retry" then retries = retries + 1 else waits = waits + 1 end
    resp, err = http:send(req)
  end
  if not resp then return nil, M.mark_applied(err, req.method) end
  return resp
end

return M
