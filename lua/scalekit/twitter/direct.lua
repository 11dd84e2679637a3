--- Direct mode: the catalog's tools sent straight to X API v2 with the
-- user's own tokens.
--
-- Routing comes from the catalog (`http`, each parameter's `wire`,
-- `query_const`, `body_const`, `direct`); this file turns one validated tool
-- call into X requests and X's answers into results or errors.
--
-- Tokens: an app-only bearer token, a user-context access token, or both.  A
-- user token is refreshed shortly before it expires and once after a 401.  X
-- rotates refresh tokens (the old one dies on use), so a refresh never risks
-- the new pair: with a token file it holds an exclusive lock on it (waiting
-- at most the call's timeout), re-reads it (another process may have
-- refreshed already), opens the replacement file *before* asking X, then
-- writes the new pair atomically (through a symbolic link to its target) and
-- hands it to `on_token`.  When the write still fails, `on_token` is called
-- all the same, the client keeps the pair, and the call fails with kind
-- `storage` carrying it (`err.token`).
-- @module scalekit.twitter.direct

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local oauth2 = require "scalekit.twitter.oauth2"
local transport = require "scalekit.twitter.transport"
local policy = require "scalekit.twitter.policy"
local media_mod = require "scalekit.twitter.media"

local M = {}

M.REFRESH_SKEW = 60          -- refresh this many seconds before expiry
M.CHUNK_SIZE = 1024 * 1024   -- media append chunk (X allows up to 5 MB)
M.STREAM_MAX_EVENTS = 100    -- a stream tool called as a tool stops after this many
M.STREAM_MAX_SECONDS = 10    -- ... or this long
M.STREAM_MAX_LINE = 1024 * 1024       -- bytes of one event line
M.STREAM_MAX_ERROR_BODY = 64 * 1024   -- bytes of an error answer read from a stream

local object_mt, array_mt = core.object_mt, core.array_mt
local urlencode = core.urlencode
local ACCEPTS = { user = "an OAuth 2.0 user-context token", app = "an app-only bearer token",
                  any = "a user-context or app-only token", none = "no token" }

local Direct = {}
Direct.__index = Direct

-- Token file --------------------------------------------------------------

-- True when a token cannot go in an HTTP header (CR, LF, other controls or
-- spaces): such a token is refused where it enters.
local function unusable(tok) return not transport.header_safe(tok) end

-- The token pair stored in the file at `path`, or nil (no file, or not a
-- token file), or nil, err when it holds a token that cannot be sent.
local function read_token_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local t = text and core.json_decode(text)
  if type(t) ~= "table" or type(t.access_token) ~= "string" then return nil end
  if unusable(t.access_token) or (t.refresh_token ~= nil and unusable(t.refresh_token)) then
    return nil, errors.new("auth", ("the token file %s holds a token with spaces or control characters"):format(path),
                           { file = path })
  end
  return t
end

local function token_json(tok)
  return core.json_encode(setmetatable({
    access_token = tok.access_token, refresh_token = tok.refresh_token,
    expires_at = tok.expires_at, scope = tok.scope, token_type = tok.token_type,
  }, object_mt)) .. "\n"
end

--- Make a direct-mode backend.
-- @tparam table cfg `secret` (table holding bearer_token, access_token,
--   refresh_token, client_secret), `expires_at`, `client_id`, `token_file`,
--   `on_token`, `api_base_url`, `token_url`, plus transport options.
-- A token file holding an unusable token makes every call fail
-- with that error (kind `auth`, naming the file).
function M.new(cfg)
  local self = setmetatable({
    base = cfg.api_base_url:gsub("/+$", ""), client_id = cfg.client_id, secret = cfg.secret,
    expires_at = cfg.expires_at, token_file = cfg.token_file, on_token = cfg.on_token,
    token_url = cfg.token_url, ca_file = cfg.ca_file, proxy = cfg.proxy,
    redact = cfg.redact, rate = {}, policy = cfg.policy or {}, ctx_cache = {},
  }, Direct)
  self.http = transport.new{
    ca_file = cfg.ca_file, proxy = cfg.proxy, max_response = cfg.max_response,
    timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
    stall_timeout = cfg.stall_timeout, debug = cfg.debug, redact = cfg.redact,
    watch_headers = policy.RATE_HEADER_PREFIXES,
  }
  if self.token_file then
    local t, err = read_token_file(self.token_file)
    if err then self.token_error = err end
    if t then self:adopt(t) end
  end
  return self
end

function Direct:adopt(tok)
  self.secret.access_token = tok.access_token
  if tok.refresh_token then self.secret.refresh_token = tok.refresh_token end
  self.expires_at = math.tointeger(tok.expires_at) or tok.expires_at
end

function Direct:has_user_token()
  return self.secret.access_token ~= nil or self.secret.refresh_token ~= nil
end

-- A storage error for a refresh that could not be (or was not) saved.
local function storage_error(path, what, fields)
  fields = fields or {}
  fields.file = path
  return errors.new("storage", what, fields)
end

-- The lock error of core.lock_file as an error value.
local function lock_error(path, msg, kind)
  if kind == "timeout" or kind == "interrupted" then return errors.new(kind, msg, { file = path }) end
  return storage_error(path .. ".lock", msg)
end

--- Refresh the user token (single-flight across processes sharing the token
-- file).  `stale` is the access token that was found wanting: if the token
-- file already holds a different one, that one is used instead.  `deadline`
-- (core.monotonic() time) bounds the wait for the file's lock.  Nothing is
-- asked of X unless the token file can be replaced first.
-- @return true, or nil, err (kind `storage` with `err.token` when X issued a
--   new pair that could not be saved: the client uses it all the same)
function Direct:refresh(stale, deadline)
  if not (self.secret.refresh_token and self.client_id) then
    return nil, errors.new("reauth_required",
      "the access token expired or was rejected and there is no refresh_token/client_id to renew it")
  end
  local path, lock, writer = self.token_file, nil, nil
  if path then
    local wait = deadline and math.max(deadline - core.monotonic(), 0) or self.http.timeout
    local msg, kind
    lock, msg, kind = core.lock_file(path .. ".lock", wait)
    if not lock then return nil, lock_error(path, msg, kind) end
    local t, terr = read_token_file(path)
    if terr then lock:unlock(); return nil, terr end
    if t and t.access_token ~= stale then
      self:adopt(t)
      lock:unlock()
      return true
    end
    writer, msg = core.atomic_file(path)
    if not writer then
      lock:unlock()
      return nil, storage_error(path, ("not refreshing the token: %s (X rotates refresh tokens, so the new "
        .. "pair must be saved, and %s cannot be written)"):format(msg, path))
    end
  end
  local tok, err = oauth2.refresh{
    client_id = self.client_id, client_secret = self.secret.client_secret,
    refresh_token = self.secret.refresh_token, api_base_url = self.base,
    token_url = self.token_url, transport = self.http,
  }
  if tok and (unusable(tok.access_token) or (tok.refresh_token and unusable(tok.refresh_token))) then
    tok, err = nil, errors.new("auth", "the refresh answer holds a token with spaces or control characters")
  end
  if not tok then
    if writer then writer:discard() end
    if lock then lock:unlock() end
    return nil, err
  end
  tok.refresh_token = tok.refresh_token or self.secret.refresh_token   -- not rotated: keep the old one
  self:adopt(tok)
  local saved, werr = true, nil
  if writer then saved, werr = writer:commit(token_json(tok)) end
  if lock then lock:unlock() end
  if self.on_token then self.on_token(tok) end
  if not saved then
    return nil, storage_error(path, ("the token was refreshed but could not be saved: %s; the new pair is kept "
      .. "by this client%s and in err.token"):format(werr, self.on_token and ", was passed to on_token" or ""),
      { token = tok })
  end
  return true
end

-- The Authorization header value for a tool with auth kind `kind`.
function Direct:authorization(kind, tool_name, deadline)
  if self.token_error then return nil, self.token_error end
  local secret = self.secret
  local app = secret.bearer_token
  if kind ~= "user" and app and secret.access_token == nil and secret.refresh_token == nil then
    return self:bearer(app), "app"           -- the usual app-only client
  end
  local user = self:has_user_token()
  local use
  if kind == "app" then use = app and "app"
  elseif kind == "user" then use = user and "user"
  else use = (user and "user") or (app and "app") or (kind == "none" and "none") end
  if not use then
    local have = user and "a user-context token" or (app and "an app-only bearer token") or "no token"
    return nil, errors.new("auth", ("%s: X serves this only with %s; this client has %s"):format(
      tool_name, ACCEPTS[kind], have), { tool = tool_name })
  end
  if use == "app" then return self:bearer(app), "app" end
  if use == "none" then return nil, "none" end
  if not self.secret.access_token or (self.expires_at and core.now() >= self.expires_at - M.REFRESH_SKEW) then
    local ok, err = self:refresh(self.secret.access_token, deadline)
    if not ok then err.tool = tool_name; return nil, err end
  end
  return self:bearer(self.secret.access_token), "user"
end

-- "Bearer <token>", kept for the last token seen (no new string per call).
function Direct:bearer(token)
  if self.bearer_of ~= token then self.bearer_of, self.bearer_value = token, "Bearer " .. token end
  return self.bearer_value
end

-- Requests -----------------------------------------------------------------

-- Set `value` at a wire path in `body`: "a.b" nests objects, "a[].b" makes
-- an array of objects (one per value).
local function set_wire(body, path, value)
  local head, rest = path:match("^([^.]+)%.(.+)$")
  if not head then body[path] = value; return end
  local arr = head:match("^(.-)%[%]$")
  if arr then
    local list = setmetatable({}, array_mt)
    for i, v in ipairs(type(value) == "table" and value or { value }) do
      list[i] = setmetatable({}, object_mt)
      set_wire(list[i], rest, v)
    end
    body[arr] = list
    return
  end
  body[head] = body[head] or setmetatable({}, object_mt)
  set_wire(body[head], rest, value)
end

local function split_list(s)
  local out = setmetatable({}, array_mt)
  for item in s:gmatch("[^,%s]+") do out[#out + 1] = item end
  return out
end

-- The path template of a tool split once into literal pieces and parameter
-- names: "/2/users/{id}" -> { "/2/users/", "id" } (odd: text, even: name).
local function route_of(tool)
  local route = tool.route
  if route then return route end
  route = { names = {} }
  local pos = 1
  for s, name, e in tool.path:gmatch("(){([%w_]+)}()") do
    route[#route + 1] = tool.path:sub(pos, s - 1)
    route[#route + 1] = name
    route.names[name] = true
    pos = e
  end
  route[#route + 1] = tool.path:sub(pos)
  tool.route = route
  return route
end

--- The X request for validated `params`: `{ method, path, query, json }`
-- (`json` the body as a Lua value), shaped for the transport: `send` fills
-- in its url, tool and authorization in place.
function M.build(tool, params)
  local route = route_of(tool)
  local path = route[1]
  for i = 2, #route, 2 do
    path = path .. urlencode(params[route[i]]) .. route[i + 1]    -- validated strings
  end
  local used = route.names
  local query, body = nil, nil
  local in_query = tool.method == "GET" or tool.method == "DELETE"
  local param = tool.param
  for name, v in next, params do            -- the given ones only: usually a few of many
    local p = param[name]
    if p and not used[name] and p.wire ~= false then
      if p.split and type(v) == "string" then v = split_list(v) end
      if in_query then
        query = query or {}
        query[p.wire or p.name] = v
      else
        body = body or setmetatable({}, object_mt)
        set_wire(body, p.wire or p.name, v)
      end
    end
  end
  if tool.query_const then
    query = query or {}
    for k, v in pairs(tool.query_const) do query[k] = v end
  end
  if tool.body_const then
    body = body or setmetatable({}, object_mt)
    for k, v in pairs(tool.body_const) do body[k] = v end
  end
  if not in_query and body == nil then body = setmetatable({}, object_mt) end
  -- sized for the fields send() adds (nil slots), so they never rehash it
  return { method = tool.method, path = path, query = query, json = body,
           url = nil, tool = nil, override = nil }
end

--- Turn a non-2xx X answer into an error: problem details, v1.1-style
-- `errors`, OAuth bodies and bare statuses.
function M.error_from(resp, tool_name, redact)
  local j = type(resp.json) == "table" and resp.json or {}
  local first = type(j.errors) == "table" and j.errors[1] or {}
  local msg = j.detail or first.message or first.detail or j.title or j.error_description
  if type(msg) ~= "string" then msg = ("HTTP %d"):format(resp.status) end
  local ptype = type(j.type) == "string" and j.type:match("/2/problems/([%w%-]+)$") or nil
  local kind = errors.kind_for_status(resp.status)
  local f = { status = resp.status, tool = tool_name, details = j, error_code = ptype,
              rate_limit = policy.rate_of(resp.headers) }
  if resp.status == 429 then
    local ra = policy.retry_after(resp.headers)
    f.retry_after = ra and math.ceil(ra)
    f.usage_cap = policy.is_usage_cap(resp) or nil
  end
  if tool_name then msg = tool_name .. ": " .. msg end
  return errors.new(kind, redact(msg), f)
end

-- One authenticated request with retries and rate-limit waits (see
-- scalekit.twitter.policy); on a 401 with a user token, refresh and repeat
-- once.  `req` (`method`, `path`, `query`, `json` or `body`, `headers`,
-- `timeout`, `rate_key`; a table of the caller's own making) becomes the
-- transport request: its url, tool and authorization are set in place.
-- `opts` are per-call settings over the client's.  `answer`, when given, is
-- what a first attempt already got (`{ resp =, err =, used = }`, see
-- `execute`): the loop goes on from it instead of sending.
function Direct:send(kind, tool_name, req, opts, answer)
  local ctx = self:call_policy(req.method, opts)
  req.deadline = req.deadline or core.monotonic() + ctx.timeout
  req.url, req.tool = self.base .. req.path, tool_name
  if opts then
    req.timeout = req.timeout or opts.timeout
    req.connect_timeout, req.stall_timeout = opts.connect_timeout, opts.stall_timeout
  end
  local http = self.http
  for attempt = 1, 2 do
    local resp, err, used
    if answer then
      resp, err, used, answer = answer.resp, answer.err, answer.used, nil
    else
      used, err = self:authorize(req, kind, tool_name)
      if not used then return nil, err end
    end
    resp, err = policy.send(ctx, http.send, http, req, resp, err)
    if not resp then return nil, err end
    local rate_key = req.rate_key or tool_name
    self.rate[rate_key] = policy.rate_of_response(resp) or self.rate[rate_key]
    if resp.status ~= 401 or used ~= "user" or attempt == 2 or not self.secret.refresh_token then
      return resp
    end
    local ok, rerr = self:refresh(self.secret.access_token, req.deadline)
    if not ok then rerr.tool = tool_name; return nil, rerr end
  end
end

-- The retry/wait settings of one call: its own options over the client's
-- (one table per method is kept for the common case of no call options).
function Direct:call_policy(method, opts)
  local ctx = not opts and self.ctx_cache[method]
  if not ctx then
    ctx = policy.context({ method = method }, opts, self.policy)
    if not opts then self.ctx_cache[method] = ctx end
  end
  return ctx
end

-- Set the Authorization header of `req` for a tool with auth kind `kind`.
-- Returns the kind of token used ("app", "user" or "none"), or nil, err.
function Direct:authorize(req, kind, tool_name)
  local auth, used = self:authorization(kind, tool_name, req.deadline)
  if not auth and used ~= "none" then return nil, used end
  req.override = self:auth_header(auth)
  return used
end

-- The header map carrying `auth` (nil: no Authorization header), one table
-- per value so that calls with the same token share it.
function Direct:auth_header(auth)
  local cached = self.auth_map
  if cached and cached.authorization == (auth or false) then return cached end
  cached = { authorization = auth or false }
  self.auth_map = cached
  return cached
end

-- The decoded JSON of a 2xx answer to `tool`, or nil, err.
function Direct:decode(tool, resp)
  local status = resp.status
  if status < 200 or status > 299 then
    return nil, M.error_from(resp, tool.name, self.redact)
  end
  local j = transport.json_of(resp)
  if type(j) == "table" then return j, resp end
  if not resp.body:find("%S") then return setmetatable({}, object_mt), resp end
  return nil, errors.new("protocol", ("%s: X answered with something that is not JSON (%s)"):format(
    tool.name, resp.json_error or "unexpected value"), { status = resp.status, tool = tool.name })
end

-- A tool request: decoded JSON of a 2xx answer, or nil, err.  `opts` are
-- the call's own settings (nil: the client's); `answer` as for `send`.
function Direct:call(tool, req, opts, answer)
  local resp, err = self:send(tool.auth, tool.name, req, opts, answer)
  if not resp then return nil, err end
  return self:decode(tool, resp)
end

--- The transport request for one tool call in a batch, or nil when the tool
-- is a sequence (run on its own), or nil, err.
function Direct:batch_request(tool, params, opts)
  if tool.direct then return nil end
  local req = M.build(tool, params)
  req.url, req.tool = self.base .. req.path, tool.name
  req.deadline = core.monotonic() + self:call_policy(req.method, opts).timeout
  local used, err = self:authorize(req, tool.auth, tool.name)
  if not used then return nil, err end
  return req
end

--- data, info or nil, err for a batch answer.
function Direct:batch_result(tool, resp)
  self.rate[tool.name] = policy.rate_of_response(resp) or self.rate[tool.name]
  local j, err = self:decode(tool, resp)
  if not j then return nil, err end
  return j, { tool = tool.name, status = resp.status, rate_limit = self.rate[tool.name] }
end

-- Sequences -----------------------------------------------------------------

local sequences = {}

-- One POST per item of the fan-out parameter; results in order.  Fails as a
-- whole only if every POST failed.
function sequences.fan_out(self, tool, params, opts)
  local results, failures = setmetatable({}, array_mt), setmetatable({}, array_mt)
  local items = params[tool.fan_out]
  local last_err
  for _, item in ipairs(items) do
    local one = {}
    for k, v in pairs(params) do one[k] = v end
    one[tool.fan_out] = item
    local j, err = self:call(tool, M.build(tool, one), opts)
    if j then results[#results + 1] = j.data or j
    else
      last_err = err
      failures[#failures + 1] = setmetatable({ item = item, error = err.message, status = err.status }, object_mt)
    end
  end
  if #results == 0 and last_err then return nil, last_err end
  local out = setmetatable({ data = results }, object_mt)
  if #failures > 0 then out.errors = failures end
  return out
end

function sequences.media_upload(self, tool, params, opts)
  local req = M.build(tool, params)
  req.json.media_category = req.json.media_category or media_mod.category_for(params.media_type)
  return self:call(tool, req, opts)
end

-- initialize -> append chunks (base64 JSON) -> finalize -> wait for processing.
function sequences.media_upload_large(self, tool, params, opts)
  local bytes, derr = core.unbase64(params.media_data)
  if not bytes then
    return nil, errors.new("invalid_input", tool.name .. ": parameter 'media_data': " .. derr,
                           { tool = tool.name, param = "media_data" })
  end
  if #bytes ~= params.total_bytes then
    return nil, errors.new("invalid_input", ("%s: parameter 'total_bytes': is %d but media_data decodes to %d bytes")
      :format(tool.name, params.total_bytes, #bytes), { tool = tool.name, param = "total_bytes" })
  end
  local init = setmetatable({ media_type = params.media_type, total_bytes = params.total_bytes,
    media_category = params.media_category or media_mod.category_for(params.media_type) }, object_mt)
  if params.additional_owners then init.additional_owners = split_list(params.additional_owners) end
  local j, err = self:call(tool, { method = "POST", path = "/2/media/upload/initialize", json = init }, opts)
  if not j then return nil, err end
  local id = j.data and j.data.id
  if type(id) ~= "string" then
    return nil, errors.new("protocol", tool.name .. ": initialize returned no media id", { tool = tool.name })
  end
  local seg = 0
  for off = 1, #bytes, M.CHUNK_SIZE do
    local chunk = bytes:sub(off, off + M.CHUNK_SIZE - 1)
    j, err = self:call(tool, { method = "POST", path = "/2/media/upload/" .. id .. "/append",
      json = setmetatable({ media = core.base64(chunk), segment_index = seg }, object_mt) }, opts)
    if not j then return nil, err end
    seg = seg + 1
  end
  j, err = self:call(tool, { method = "POST", path = "/2/media/upload/" .. id .. "/finalize" }, opts)
  if not j then return nil, err end
  local media
  media, err = media_mod.await(j.data or j, function(mid)
    local st, serr = self:call(tool, { method = "GET", path = "/2/media/upload",
                                       query = { command = "STATUS", media_id = mid } }, opts)
    if not st then return nil, serr end
    return st.data or st
  end, { label = tool.name, tool = tool.name, on_wait = (opts and opts.on_wait) or self.policy.on_wait })
  if not media then return nil, err end
  return setmetatable({ data = media }, object_mt)
end

function sequences.stream(self, tool, params, opts)
  local events = setmetatable({}, array_mt)
  local deadline = core.monotonic() + M.STREAM_MAX_SECONDS
  local _, err = self:stream(tool, params, function(ev)
    events[#events + 1] = ev
    return #events < M.STREAM_MAX_EVENTS and core.monotonic() < deadline
  end, { reconnect = false, deadline = deadline, connect_timeout = opts and opts.connect_timeout,
         stall_timeout = opts and opts.stall_timeout })
  if err and #events == 0 then return nil, err end
  return setmetatable({ data = events }, object_mt)
end

-- One tool request in one pass, for a call without options, sequence or
-- debug trace: a 2xx JSON answer is finished here; anything else goes on
-- through `send` (retries, waits, the 401 refresh) and `decode` from what was
-- received, so nothing is sent twice.  Returns data, info or nil, err, as
-- `execute`.
local function execute_once(self, tool, params)
  local name, kind = tool.name, tool.auth
  local req = M.build(tool, params)
  req.url, req.tool = self.base .. req.path, name
  req.deadline = core.monotonic() + self:call_policy(req.method).timeout
  local used, err = self:authorize(req, kind, name)
  if not used then return nil, err end
  local rate = self.rate
  local j, status, watched = self.http:send_json(req)
  if j then
    -- the transport watches the rate headers: `watched` is a table or false
    if watched then rate[name] = policy.rate_of(watched) or rate[name] end
  else
    -- anything else: send_json gave nil, resp or nil, nil, err
    local resp
    j, resp = self:call(tool, req, nil, { resp = status, err = watched, used = used })
    if j == nil then return nil, resp end
    status = resp.status
  end
  return j, { tool = name, status = status, rate_limit = rate[name] }
end

--- Run one validated tool call.
-- @return data, info `{ tool =, status =, rate_limit = }` or nil, err
function Direct:execute(tool, params, opts)
  if opts == nil and tool.direct == nil and not self.http.debug then
    return execute_once(self, tool, params)
  end
  local data, resp_or_err
  local sequence = tool.direct and sequences[tool.direct]
  if sequence then
    data, resp_or_err = sequence(self, tool, params, opts)   -- opts reach every request
  else
    data, resp_or_err = self:call(tool, M.build(tool, params), opts)
  end
  if data == nil then return nil, resp_or_err end
  -- after data: the last response, or nil for sequences that make their own
  return data, { tool = tool.name, status = resp_or_err and resp_or_err.status,
                 rate_limit = self.rate[tool.name] }
end

--- A raw call to any X API v2 path, in the proxy's result shape.  `req` is
-- a checked raw request (see the client's `request`).
function Direct:request(req)
  local resp, err = self:send("any", "request", {
    method = req.method, path = req.path, query = req.query, json = req.json, body = req.body,
    form = req.form, headers = req.headers, timeout = req.timeout, rate_key = req.rate_key }, req.opts)
  if not resp then return nil, err end
  local out = resp               -- status, headers, body, json (made on first use), seconds
  if resp.status < 200 or resp.status > 299 then
    local e = M.error_from(resp, nil, self.redact)
    e.response = out
    return nil, e
  end
  return out
end

-- Streaming -------------------------------------------------------------------

-- X's documented reconnect backoff: network errors +250 ms linearly up to
-- 16 s; HTTP errors doubling from 5 s up to 320 s; 429 doubling from 60 s.
function M.backoff(kind, attempt)
  if kind == "network" then return math.min(0.25 * attempt, 16) end
  if kind == "rate_limited" then return 60 * 2 ^ (attempt - 1) end
  return math.min(5 * 2 ^ (attempt - 1), 320)
end
M.MAX_RECONNECTS = 6
M.HEARTBEAT_TIMEOUT = 20     -- seconds without data or keep-alive: reconnect

-- The error answer of a stream (status not 200): its body, read until the
-- transfer ends, STREAM_MAX_ERROR_BODY bytes or `deadline`, as an error.
local function stream_error(self, tool, st, status, headers, first, deadline)
  local parts, size = { first }, #first
  while size < M.STREAM_MAX_ERROR_BODY and core.monotonic() < deadline do
    local more = st:read(math.min(1, math.max(deadline - core.monotonic(), 0.01)))
    if not more then break end
    parts[#parts + 1], size = more, size + #more
  end
  local body = table.concat(parts):sub(1, M.STREAM_MAX_ERROR_BODY)
  local resp = { status = status, headers = headers, body = body, json = core.json_decode(body) }
  return M.error_from(resp, tool.name, self.redact)
end

-- Open one connection of a stream: the request goes through the transport's
-- builder, so it gets the same headers, trace and redaction as any call.
local function stream_open(self, tool, req, opts)
  local used, err = self:authorize(req, tool.auth, tool.name)
  if not used then return nil, err end
  local creq
  creq, err = self.http:build(req)
  if not creq then return nil, err end
  return core.stream_open{ url = creq.url, headers = creq.headers, ca_file = self.ca_file, proxy = self.proxy,
                           connect_timeout = creq.connect_timeout,
                           stall_timeout = opts.stall_timeout or M.HEARTBEAT_TIMEOUT }
end

-- Read one connection of a stream until it ends, fails, `on_event` returns
-- false or `deadline` passes.  Lines are split with a moving index (no copy
-- per line); a line longer than STREAM_MAX_LINE is an error.  Returns
-- "stop" or "ended", the events delivered, and the error (a string for a
-- network failure, an error value for an HTTP or protocol one).
local function stream_read(self, tool, st, on_event, deadline)
  local buf, pos, delivered, last_data = "", 1, 0, core.monotonic()
  while true do
    local chunk, kind, msg = st:read(1)
    if chunk == nil then return "ended", delivered, kind and msg or nil end
    local status, headers = st:response()
    if status ~= 0 and status ~= 200 then
      return "ended", delivered, stream_error(self, tool, st, status, headers, buf:sub(pos) .. chunk,
                                              math.min(deadline, core.monotonic() + M.HEARTBEAT_TIMEOUT))
    end
    local now = core.monotonic()
    if #chunk > 0 then
      last_data = now
      if pos > 1 then buf, pos = buf:sub(pos), 1 end
      buf = buf .. chunk
      while true do
        local nl = buf:find("\n", pos, true)
        if not nl then break end
        local line = buf:sub(pos, buf:byte(nl - 1) == 13 and nl - 2 or nl - 1)
        pos = nl + 1
        local ev = line:find("%S") and core.json_decode(line)
        if ev ~= nil and ev ~= false then
          delivered = delivered + 1
          if not on_event(ev) then return "stop", delivered end
        end
      end
      if #buf - pos + 1 > M.STREAM_MAX_LINE then
        return "ended", delivered, errors.new("protocol", ("%s: a stream line is longer than %d bytes"):format(
          tool.name, M.STREAM_MAX_LINE), { tool = tool.name })
      end
    end
    if now >= deadline then return "stop", delivered end
    if now - last_data > M.HEARTBEAT_TIMEOUT then return "ended", delivered, "no data or keep-alive" end
  end
end

--- Read a newline-delimited JSON stream, calling `on_event(event)` for each
-- event while it returns true.  Reconnects with X's backoff (at most
-- MAX_RECONNECTS times in a row) unless `opts.reconnect` is false; stops at
-- `opts.deadline` (core.monotonic() time) when given.  An answer of 401 or
-- 403, or a protocol error, ends it at once.
-- @return the number of events delivered, or nil, err
function Direct:stream(tool, params, on_event, opts)
  opts = opts or {}
  local sleep = opts.sleep or core.sleep
  local deadline = opts.deadline or math.huge
  local delivered, failures = 0, 0
  while true do
    local req = M.build(tool, params)
    req.url, req.tool, req.connect_timeout = self.base .. req.path, tool.name, opts.connect_timeout
    local st, err = stream_open(self, tool, req, opts)
    if not st then return nil, err end
    local how, n, ferr = stream_read(self, tool, st, on_event, deadline)
    st:close()
    delivered = delivered + n
    if n > 0 then failures = 0 end
    if how == "stop" then return delivered end
    local e = type(ferr) == "table" and ferr or nil
    if e and (e.kind == "auth" or e.kind == "protocol") then return nil, e end
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
    sleep(wait)
  end
end

function Direct:close()
  self.http:close()
end

return M
