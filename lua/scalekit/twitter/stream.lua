--- Streaming endpoints (direct mode): newline-delimited JSON read from one
-- long GET, reconnecting with X's documented backoff.
--
-- A connection is opened through the transport like any request (same
-- headers, TLS, proxy, trace and redaction; no total timeout, a stall
-- timeout of HEARTBEAT_TIMEOUT), read line by line with a moving index,
-- and closed; `read` reconnects at most MAX_RECONNECTS times in a row.
-- @module scalekit.twitter.stream

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local call = require "scalekit.twitter.call"

local M = {}

M.MAX_RECONNECTS = 6
M.HEARTBEAT_TIMEOUT = 20              -- seconds without data or keep-alive: reconnect
M.MAX_LINE = 1024 * 1024              -- bytes of one event line
M.MAX_ERROR_BODY = 64 * 1024          -- bytes of an error answer read from a stream

--- X's documented reconnect backoff: network errors +250 ms linearly up to
-- 16 s; HTTP errors doubling from 5 s up to 320 s; 429 doubling from 60 s.
function M.backoff(kind, attempt)
  if kind == "network" then return math.min(0.25 * attempt, 16) end
  if kind == "rate_limited" then return 60 * 2 ^ (attempt - 1) end
  return math.min(5 * 2 ^ (attempt - 1), 320)
end

-- Open one connection of `tool`'s stream through backend b's transport.
-- Returns the stream, or nil, err.
local function open(b, tool, params, opts)
  local req = b:request_for(tool, params)
  req.connect_timeout = opts.connect_timeout
  req.stall_timeout = opts.stall_timeout or M.HEARTBEAT_TIMEOUT
  local used, err = b:authorize(req, tool)
  if not used then return nil, err end
  return b.http:stream(req)
end

-- The error answer of a stream (status not 200): its body, read until the
-- transfer ends, MAX_ERROR_BODY bytes or `deadline`, through the pipeline's
-- HTTP-error funnel.
local function answer_error(b, tool, st, status, headers, first, deadline)
  local parts, size = { first }, #first
  while size < M.MAX_ERROR_BODY and core.monotonic() < deadline do
    local more = st:read(math.min(1, math.max(deadline - core.monotonic(), 0.01)))
    if not more then break end
    parts[#parts + 1], size = more, size + #more
  end
  local body = table.concat(parts):sub(1, M.MAX_ERROR_BODY)
  local resp = { status = status, headers = headers, body = body, json = core.json_decode(body) }
  return call.http_error(b, resp, tool.name)
end

-- Read one connection until it ends, fails, `on_event` returns false or
-- `deadline` passes.  Lines are split with a moving index (no copy per
-- line); a line longer than MAX_LINE is an error.  Returns "stop" or
-- "ended", the events delivered, and the error (a string for a network
-- failure, an error value for an HTTP or protocol one).
local function each_line(b, tool, st, on_event, deadline)
  local buf, pos, delivered, last_data = "", 1, 0, core.monotonic()
  while true do
    local chunk, kind, msg = st:read(1)
    if chunk == nil then return "ended", delivered, kind and msg or nil end
    local status, headers = st:response()
    if status ~= 0 and status ~= 200 then
      return "ended", delivered, answer_error(b, tool, st, status, headers, buf:sub(pos) .. chunk,
                                              math.min(deadline, core.monotonic() + M.HEARTBEAT_TIMEOUT))
    end
    local now = core.monotonic()
    if #chunk > 0 then
      last_data = now
      if pos > 1 then buf, pos = buf:sub(pos), 1 end
      buf = buf .. chunk
      local nl = buf:find("\n", pos, true)
      while nl do
        local line = buf:sub(pos, buf:byte(nl - 1) == 13 and nl - 2 or nl - 1)
        pos = nl + 1
        local ev = line:find("%S") and core.json_decode(line)
        if ev then
          delivered = delivered + 1
          if not on_event(ev) then return "stop", delivered end
        end
        nl = buf:find("\n", pos, true)
      end
      if #buf - pos + 1 > M.MAX_LINE then
        return "ended", delivered, errors.new("protocol", ("%s: a stream line is longer than %d bytes"):format(
          tool.name, M.MAX_LINE), { tool = tool.name })
      end
    end
    if now >= deadline then return "stop", delivered end
    if now - last_data > M.HEARTBEAT_TIMEOUT then return "ended", delivered, "no data or keep-alive" end
  end
end

-- After a connection ended with `ferr` (an error value, a string or nil):
-- the error to end the stream with at once, or nil to reconnect.
local function final_error(ferr)
  local e = type(ferr) == "table" and ferr or nil
  if e and (e.kind == "auth" or e.kind == "protocol") then return e end
  return nil
end

--- Read `tool`'s stream, calling `on_event(event)` for each event while it
-- returns true.  Reconnects with X's backoff (at most MAX_RECONNECTS times
-- in a row) unless `opts.reconnect` is false; stops at `opts.deadline`
-- (core.monotonic() time) when given.  An answer of 401 or 403, or a
-- protocol error, ends it at once.
-- @tparam table opts `reconnect`, `deadline`, `sleep`, `connect_timeout`,
--   `stall_timeout`
-- @return the number of events delivered, or nil, err
function M.read(b, tool, params, on_event, opts)
  opts = opts or {}
  local sleep = opts.sleep or core.sleep
  local deadline = opts.deadline or math.huge
  local delivered, failures = 0, 0
  while true do
    local st, err = open(b, tool, params, opts)
    if not st then return nil, err end
    local how, n, ferr = each_line(b, tool, st, on_event, deadline)
    st:close()
    delivered = delivered + n
    if n > 0 then failures = 0 end
    if how == "stop" then return delivered end
    local e = final_error(ferr)
    if e then return nil, e end
    e = type(ferr) == "table" and ferr or nil
    if opts.reconnect == false then
      if e then return delivered > 0 and delivered or nil, e end
      return delivered
    end
    failures = failures + 1
    if failures > M.MAX_RECONNECTS then
      return nil, e or errors.new("network", ("%s: stream kept failing (%s)"):format(
        tool.name, tostring(ferr or "ended")), { tool = tool.name })
    end
    local wait = M.backoff(e and e.kind or "network", failures)
    if core.monotonic() + wait >= deadline then return delivered end
    local _, why = sleep(wait)
    if why == "interrupted" then
      return nil, errors.new("interrupted", tool.name .. ": interrupted while waiting to reconnect",
                             { tool = tool.name })
    end
  end
end

return M
