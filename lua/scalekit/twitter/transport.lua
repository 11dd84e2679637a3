--- HTTP for the SDK: one kept-alive libcurl session per client, request
-- building (query, headers, JSON and form bodies, the timeouts and whether a
-- request may go out twice), responses that parse their headers and JSON on
-- first use, transport-error mapping, streams, and the redacted debug trace.
-- @module scalekit.twitter.transport

local core = require "scalekit.core"
local tasks = require "scalekit.twitter.tasks"
local errors = require "scalekit.twitter.errors"
local policy = require "scalekit.twitter.policy"

local M = {}

local null = core.null
local encode = core.urlencode

-- Sent on every call (a request's own headers may replace them).
local VERSION = core._VERSION
local OS, ARCH = core.platform()
M.USER_AGENT = ("Scalekit-Lua/%s Lua/5.4 (%s; %s)"):format(VERSION, OS, ARCH)
M.SDK_VERSION = "Scalekit-Lua/" .. VERSION
M.DEBUG_BODY_MAX = 2048

local function scalar_string(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if math.type(v) == "float" then return core.json_encode(v) end
  return tostring(v)
end

--- Encode a query table as `k=v&...` (RFC 3986 escaping, keys sorted).
-- Arrays become comma-separated values (X's list syntax), or with
-- `repeat_keys` one `k=v` per item in order (grpc-gateway's repeated
-- fields, as Scalekit's REST routes take them); nil and `null` values are
-- left out.
-- @tparam[opt] table params
-- @tparam[opt] boolean repeat_keys
-- @treturn string the query, "" when there is nothing to send
function M.encode_query(params, repeat_keys)
  if params == nil or next(params) == nil then return "" end
  local keys = {}
  for k, v in pairs(params) do
    if v ~= null then keys[#keys + 1] = tostring(k) end
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if type(v) == "table" and repeat_keys then
      for _, item in ipairs(v) do parts[#parts + 1] = encode(k) .. "=" .. encode(scalar_string(item)) end
    else
      if type(v) == "table" then
        local items = {}
        for i, item in ipairs(v) do items[i] = scalar_string(item) end
        v = table.concat(items, ",")
      else
        v = scalar_string(v)
      end
      parts[#parts + 1] = encode(k) .. "=" .. encode(v)
    end
  end
  return table.concat(parts, "&")
end

--- Encode an ordered list of `{name, value}` pairs as a form body.
function M.encode_form(pairs_list)
  local parts = {}
  for i, kv in ipairs(pairs_list) do
    parts[i] = encode(kv[1]) .. "=" .. encode(scalar_string(kv[2]))
  end
  return table.concat(parts, "&")
end

-- Merge header maps into "Name: value" lines.  Later maps win, comparing
-- names without case; the first spelling of a name is kept.
local function header_lines(...)
  local order, value, spelling = {}, {}, {}
  for i = 1, select("#", ...) do
    local map = select(i, ...)
    if map then
      local names = {}
      for k in pairs(map) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do
        local lk = k:lower()
        if value[lk] == nil then order[#order + 1] = lk; spelling[lk] = k end
        value[lk] = map[k]
      end
    end
  end
  local lines = {}
  for _, lk in ipairs(order) do
    if value[lk] ~= false then lines[#lines + 1] = spelling[lk] .. ": " .. tostring(value[lk]) end
  end
  return lines
end
M.header_lines = header_lines

-- The headers of every request.  Accept-Encoding is one of the lines
-- (libcurl still decodes the gzip it names, see http.c): libcurl formats
-- its own Accept-Encoding line anew for every request, a line of ours it
-- copies.
local BASE_HEADERS = { ["User-Agent"] = M.USER_AGENT, Accept = "application/json",
                       ["Accept-Encoding"] = core.accept_encoding }

local Transport = {}
Transport.__index = Transport

--- The timeouts every request gets unless the client or the call sets its
-- own (seconds): the whole attempt, connecting, and a stall (no byte for
-- this long).  The C transport has no defaults of its own.
M.DEFAULTS = { timeout = 60, connect_timeout = 10, stall_timeout = 30 }

--- Make a transport.
-- @tparam table opts `session` (a C session to use, shared: its owner
--   closes it) or `ca_file`, `proxy`, `max_response` (a session of its own), `timeout`,
--   `connect_timeout`, `stall_timeout` (seconds, over DEFAULTS), `headers`
--   (name -> value, sent on every request), `debug` (function(line) or
--   nil), `redact` (function(string) -> string).
function M.new(opts)
  local d = M.DEFAULTS
  return setmetatable({
    session = opts.session
      or core.http_new{ ca_file = opts.ca_file, proxy = opts.proxy, max_response = opts.max_response },
    timeout = opts.timeout or d.timeout,
    connect_timeout = opts.connect_timeout or d.connect_timeout,
    stall_timeout = opts.stall_timeout or d.stall_timeout,
    static_lines = header_lines(BASE_HEADERS, opts.headers),
    fixed = {},
    headers = opts.headers or {},
    debug = opts.debug,
    redact = opts.redact or function(s) return s end,
  }, Transport)
end

local SENSITIVE = { authorization = true, ["proxy-authorization"] = true, cookie = true }

function Transport:trace(line)
  if self.debug then self.debug(self.redact(line)) end
end

local function trace_body(self, prefix, body)
  if self.debug and body and #body > 0 then
    if #body > M.DEBUG_BODY_MAX then
      body = body:sub(1, M.DEBUG_BODY_MAX) .. ("... (%d bytes)"):format(#body)
    end
    self:trace(prefix .. body)
  end
end

-- Responses parse their headers on first access of `headers` (when the
-- transport got them as one block, `raw_headers`) and decode their JSON body
-- on first access of `json` (or `json_error`), so a caller that only wants
-- the data never pays for the rest.  A failed decode stores `json_error`,
-- which stops further attempts.
M.response_mt = { __index = function(resp, key)
  if key == "headers" then
    local raw = rawget(resp, "raw_headers")
    if not raw then return nil end
    local h = core.parse_headers(raw)
    rawset(resp, "headers", h)
    return h
  end
  if (key ~= "json" and key ~= "json_error") or rawget(resp, "json_error") ~= nil then return nil end
  local json, _, err
  local body = resp.body
  local first = body:byte(1)
  if first == 123 or first == 91 or body:find("^%s*[%[{]")        -- '{' or '['
     or (resp.headers["content-type"] or ""):find("json", 1, true) then
    json, _, err = core.json_decode(body)
  end
  rawset(resp, "json", json)
  rawset(resp, "json_error", err)
  if key == "json" then return json end
  return err
end }
local response_mt = M.response_mt

local TRANSPORT_KIND = { timeout = "timeout", network = "network", tls = "network",
                         too_large = "protocol", interrupted = "interrupted" }

local METHOD = { GET = "GET", POST = "POST", PUT = "PUT", PATCH = "PATCH", DELETE = "DELETE" }

--- True when `v` can be sent as (part of) a header value: a non-empty
-- string without spaces or control characters (a CR or LF would start a
-- new header).  Tokens are checked with it where they enter.
function M.header_safe(v)
  return type(v) == "string" and v ~= "" and not v:find("[%c ]")
end

local ESCAPE = { ["\r"] = "\\r", ["\n"] = "\\n", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }

-- s quoted for a message on one line: control characters as escapes.
local function shown(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESCAPE[c] or ("\\%03d"):format(c:byte()) end) .. '"'
end

--- The method (upper case), the path (with its leading "/") and the
-- rate-limit key (method and path without the query: "GET /2/users/me")
-- of a raw request `{ method =, path = }`.  Raises (at `level`, default
-- the caller's caller) for a method that is not a word of letters or a path
-- with control characters: either would let a caller write a second request
-- into the first.
function M.raw_target(req, level)
  local path, method = req.path, req.method or "GET"
  if type(method) ~= "string" or not method:find("^%a+$") or #method > 16 then
    error(("scalekit.twitter: request method must be a word of letters (GET, POST, ...), got %s"):format(
      type(method) == "string" and shown(method) or type(method)), (level or 2) + 1)
  end
  if path:find("[%c ]") then
    error("scalekit.twitter: request path must not contain spaces or control characters", (level or 2) + 1)
  end
  if path:byte(1) ~= 47 then path = "/" .. path end      -- '/'
  method = METHOD[method] or method:upper()
  local q = path:find("?", 1, true)
  return method, path, method .. " " .. (q and path:sub(1, q - 1) or path)
end

-- Methods that may go out twice (libcurl resends on a dead kept-alive
-- connection; the retry policy repeats them): the others carry a body,
-- even an empty one, and go out at most once.
local IDEMPOTENT = policy.IDEMPOTENT
local perform = tasks.perform

-- Put `req` in its wire form, once (`req.wired`): the query folded into
-- `url` (and `query` dropped, as signing it does), the method in upper case,
-- `body` encoded from `json` or `form` with its `content_type` (both stay,
-- for whoever reads them), and `once`.  Returns nil, err when the body
-- cannot be encoded.
local function wire(req)
  if req.query then
    local url, q = req.url, M.encode_query(req.query, req.repeat_keys)
    if q ~= "" then req.url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
    req.query = nil
  end
  local method = req.method or "GET"
  method = METHOD[method] or method:upper()
  req.method = method
  if req.json ~= nil then
    local body, _, err = core.json_encode(req.json, req.json_root or "body")
    if not body then return nil, errors.new("invalid_input", err, { tool = req.tool }) end
    req.body, req.content_type = body, "application/json"
  elseif req.form then
    req.body, req.content_type = M.encode_form(req.form), "application/x-www-form-urlencoded"
  end
  req.once = not IDEMPOTENT[method]
  if req.body == nil and req.once then req.body = "" end
  req.wired = true
  return req
end

-- Drops a caller's Authorization header where the request has its own line.
local NO_AUTHORIZATION = { Authorization = false }

--- The header lines `req` goes out with (before its `auth_line`), and
-- their header set when they are the transport's fixed lines.  A request
-- without headers of its own gets the fixed lines: the transport's and the
-- content type, made once per content type (none, JSON or a form) with
-- their header set (core.http_lines: the C session keeps libcurl's list
-- while a request brings the same set).
function Transport:lines_for(req)
  if req.headers == nil and req.override == nil then
    local ctype = req.content_type
    local f = self.fixed[ctype or ""]
    if not f then
      local lines = table.move(self.static_lines, 1, #self.static_lines, 1, {})
      if ctype then lines[#lines + 1] = "Content-Type: " .. ctype end
      f = { lines = lines, set = core.http_lines(lines) }
      self.fixed[ctype or ""] = f
    end
    return f.lines, f.set
  end
  return header_lines(BASE_HEADERS, { ["Content-Type"] = req.content_type }, self.headers, req.headers,
                      req.override, req.auth_line and NO_AUTHORIZATION)
end

--- Make `req` (see `send`) the request the C session reads, and trace it:
-- in its wire form (see `wire`, done once), with this attempt's header
-- `lines` (a header set; the `auth_line` goes after them) and timeouts (the call's
-- deadline bounds the attempt's; the deadline only comes closer, so
-- writing the bound back over `req.timeout` is safe).
-- @tparam table req as for `send`
-- @return req, or nil and an error when the body cannot be encoded or the
--   call's deadline has passed
function Transport:build(req)
  if not req.wired then
    local ok, err = wire(req)
    if not ok then return nil, err end
  end
  local auth_line = req.auth_line
  local lines, set = self:lines_for(req)
  req.lines = set or core.http_lines(lines)
  if self.debug then
    self:trace(("> %s %s"):format(req.method, req.url))
    for i = 1, #lines + 1 do
      local l = lines[i] or auth_line
      if l then
        local name = l:match("^([^:]+)"):lower()
        self:trace("> " .. (SENSITIVE[name] and (l:match("^[^:]+") .. ": [REDACTED]") or l))
      end
    end
    trace_body(self, "> ", req.body)
  end
  local timeout = req.timeout or self.timeout
  if req.deadline then                 -- the call's deadline bounds each attempt
    local left = req.deadline - core.monotonic()
    if left <= 0 then
      return nil, errors.new("timeout", ("%s %s: the call's timeout ran out"):format(req.method,
                             self.redact(req.url)), { transport = "timeout", sent = false, tool = req.tool })
    end
    if left < timeout then timeout = left end
  end
  req.timeout = timeout
  req.connect_timeout = req.connect_timeout or self.connect_timeout
  req.stall_timeout = req.stall_timeout or self.stall_timeout
  return req
end

--- The error for a transport failure of `req` (what the C session gave:
-- kind, message, sent).
function Transport:failure(req, kind, msg, sent)
  self:trace(("< %s: %s"):format(kind, msg))
  return errors.new(TRANSPORT_KIND[kind] or "network",
                    ("%s %s: %s"):format(req.method, self.redact(req.url), self.redact(msg)),
                    { transport = kind, sent = sent, tool = req.tool })
end

--- The response for what the C session answered: `block` is the raw
-- header block (parsed on first use, see response_mt).
function Transport:response(status, block, rbody, seconds)
  local resp = setmetatable({ status = status, raw_headers = block, body = rbody, seconds = seconds }, response_mt)
  if self.debug then
    self:trace(("< %d (%.3f s)"):format(status, seconds))
    trace_body(self, "< ", rbody)
  end
  return resp
end

--- Send one request.
-- @tparam table req `method`, `url`, `query` (table; `repeat_keys`: its
--   arrays as repeated keys), `headers` (map), `override` (map applied over them), `auth_line` (the Authorization
--   header line, "Authorization: Bearer ...", applied last), `json` (Lua value to
--   encode) or `form` (list of pairs) or `body` (string, of type
--   `content_type` when given), `timeout`,
--   `connect_timeout`, `stall_timeout` (seconds, over the transport's),
--   `deadline` (core.monotonic() time the whole call must end by).
-- @return resp `{ status =, headers =, body =, json =, seconds = }` for any
--   HTTP status, or nil and an error for a transport failure or a body that
--   cannot be encoded.
function Transport:send(req)
  local ok, err = self:build(req)
  if not ok then return nil, err end
  local status, headers, rbody, seconds
  if tasks.active == 0 then                          -- no scheduler: no task to yield
    status, headers, rbody, seconds = self.session:request(req)
  else
    status, headers, rbody, seconds = perform(self.session, req)    -- a task yields here
  end
  if not status then return nil, self:failure(req, headers, rbody, seconds) end
  return self:response(status, headers, rbody, seconds)
end

--- The headers of a response whose names start with one of `prefixes`
-- (the rate-limit headers), read from its raw header block without a table
-- of every header; nil when there are none.
function M.headers_with(resp, prefixes)
  return core.parse_headers(resp.raw_headers, prefixes)
end

--- Send many requests at once over the same connection pool.
-- @tparam table reqs array of `send` requests
-- @tparam integer concurrency at most this many in flight
-- @return array of `{ resp = }` or `{ err = }`, in input order
function Transport:send_many(reqs, concurrency)
  local out, built, index = {}, {}, {}
  for i, req in ipairs(reqs) do
    local ok, err = self:build(req)
    if ok then
      built[#built + 1], index[#built + 1] = req, i
    else
      out[i] = { err = err }
    end
  end
  local raw = self.session:request_many(built, concurrency)
  for k, r in ipairs(raw) do
    local i = index[k]
    if r.error then
      out[i] = { err = self:failure(reqs[i], r.error, r.message, r.sent) }
    else
      out[i] = { resp = self:response(r.status, r.headers, r.body, r.seconds) }
    end
  end
  return out
end

--- Open a stream: `req` as for `send` (a GET without a total timeout);
-- returns the C stream (`read`, `response`, `close`) or nil, err.
function Transport:stream(req)
  local ok, err = self:build(req)
  if not ok then return nil, err end
  return self.session:stream(req)
end

function Transport:close()
  self.session:close()
end

return M
