--- The X API v2 backend of the call pipeline (scalekit.twitter.call), for
-- direct mode: the catalog's tools sent straight to X with the user's own
-- tokens.
--
-- Routing comes from the catalog (`http`, each parameter's `wire`, `split`,
-- `default_from`, `query_const`, `body_const`); this file turns one
-- validated tool call into an X request and reads X's error envelope.  The
-- tools that are several requests are run by scalekit.twitter.sequences.
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
local tools = require "scalekit.twitter.tools"
local errors = require "scalekit.twitter.errors"
local oauth2 = require "scalekit.twitter.oauth2"
local transport = require "scalekit.twitter.transport"
local media = require "scalekit.twitter.media"
local oauth1 = require "scalekit.twitter.oauth1"

local M = {}

M.REFRESH_SKEW = 60          -- refresh this many seconds before expiry

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

-- The token pair stored in the file at `path`, or nil (no file, or an
-- empty one: nothing stored yet), or nil, err when it is not a token file
-- or holds a token that cannot be sent (kind `auth`, naming the file).
local function read_token_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  if text == nil or not text:find("%S") then return nil end
  local t, _, jerr = core.json_decode(text)
  if type(t) ~= "table" or type(t.access_token) ~= "string" then
    return nil, errors.new("auth", ("the token file %s is not a token file (%s); fix or remove it"):format(
      path, jerr or "no access_token string"), { file = path })
  end
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

--- Make the direct-mode backend.
-- @tparam table cfg `secret` (table holding bearer_token, access_token,
--   refresh_token, client_secret), `expires_at`, `client_id`, `token_file`,
--   `on_token`, `api_base_url`, `token_url`, `settings` (the client's
--   resolved policy), plus transport options.
-- A token file holding an unusable token makes every call fail
-- with that error (kind `auth`, naming the file).
function M.new(cfg)
  local self = setmetatable({
    base = cfg.api_base_url:gsub("/+$", ""), client_id = cfg.client_id, secret = cfg.secret,
    expires_at = cfg.expires_at, token_file = cfg.token_file, on_token = cfg.on_token,
    token_url = cfg.token_url, redact = cfg.redact, rate = {}, settings = cfg.settings,
    hints = M.HINTS, sequences = true, oauth1 = cfg.oauth1,
  }, Direct)
  self.http = transport.new{
    ca_file = cfg.ca_file, proxy = cfg.proxy, max_response = cfg.max_response,
    timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
    stall_timeout = cfg.stall_timeout, debug = cfg.debug, redact = cfg.redact,
  }
  if cfg.secret.bearer_token then self.app_auth = "Authorization: Bearer " .. cfg.secret.bearer_token end
  if cfg.secret.access_token and not cfg.oauth1 then
    self.user_auth = "Authorization: Bearer " .. cfg.secret.access_token
  end
  if self.token_file then
    local t, err = read_token_file(self.token_file)
    if err then self.token_error = err end
    if t then self:adopt(t) end
  end
  return self
end

-- X gives no guarantee that a failed write was not applied: only
-- idempotent methods are repeated.
M.HINTS = { retry_any_method = {}, final = function() return false end }

--- Take a token pair (from options, the token file or a refresh); the
-- Authorization header line of user-context calls is made here, once per token.
function Direct:adopt(tok)
  self.secret.access_token = tok.access_token
  if tok.refresh_token then self.secret.refresh_token = tok.refresh_token end
  self.expires_at = math.tointeger(tok.expires_at) or tok.expires_at
  self.scope = type(tok.scope) == "string" and tok.scope or self.scope
  self.user_auth = "Authorization: Bearer " .. tok.access_token
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
    local _, kind, msg
    lock, kind, msg = core.lock_file(path .. ".lock", wait)
    if not lock then return nil, lock_error(path, msg, kind) end
    local t, terr = read_token_file(path)
    if terr then lock:unlock(); return nil, terr end
    if t and t.access_token ~= stale then
      self:adopt(t)
      lock:unlock()
      return true
    end
    writer, _, msg = core.atomic_file(path)
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
  if writer then
    local _
    saved, _, werr = writer:commit(token_json(tok))
  end
  if lock then lock:unlock() end
  if self.on_token then self.on_token(tok) end
  if not saved then
    return nil, storage_error(path, ("the token was refreshed but could not be saved: %s; the new pair is kept "
      .. "by this client%s and in err.token"):format(werr, self.on_token and ", was passed to on_token" or ""),
      { token = tok })
  end
  return true
end

-- The Authorization header line for a tool with auth kind `kind` (nil for "none") and
-- the kind of token used ("app", "user" or "none"), or nil, err.  A user
-- token about to expire is refreshed first.
function Direct:authorization(kind, tool_name, deadline)
  if self.token_error then return nil, self.token_error end
  local secret = self.secret
  local app = secret.bearer_token
  local user = self:has_user_token()
  if kind ~= "user" and app and not user then return self.app_auth, "app" end   -- the usual app-only client
  local use
  if kind == "app" then use = app and "app"
  elseif kind == "user" then use = user and "user"
  else use = (user and "user") or (app and "app") or (kind == "none" and "none") end
  if not use then
    local have = user and "a user-context token" or (app and "an app-only bearer token") or "no token"
    return nil, errors.new("auth", ("%s: X serves this only with %s; this client has %s"):format(
      tool_name, ACCEPTS[kind], have), { tool = tool_name })
  end
  if use == "app" then return self.app_auth, "app" end
  if use == "none" then return nil, "none" end
  if self.oauth1 then return nil, "oauth1" end        -- signed per request (authorize)
  if not secret.access_token or (self.expires_at and core.now() >= self.expires_at - M.REFRESH_SKEW) then
    local ok, err = self:refresh(secret.access_token, deadline)
    if not ok then err.tool = tool_name; return nil, err end
  end
  return self.user_auth, "user"
end

-- The OAuth 1.0a Authorization line of `req`: the query is folded into
-- its URL first, so what is signed is byte for byte what is sent.
local function oauth1_line(creds, req)
  local url = req.url
  if req.query then
    local q = transport.encode_query(req.query)
    if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
    req.url, req.query = url, nil
  end
  local value, err = oauth1.authorization(creds, req.method or "GET", url, req.form)
  if not value then return nil, errors.new("invalid_input", "OAuth 1.0a: " .. err, { tool = req.tool }) end
  return "Authorization: " .. value
end

--- Put the Authorization header of `req` for `tool` (nil: a raw request,
-- any token).  Returns the kind of token used ("app", "user", "oauth1",
-- "none"), or nil, err.
function Direct:authorize(req, tool)
  local auth, used = self:authorization(tool and tool.auth or "any", req.tool, req.deadline)
  if used == "oauth1" then
    auth, used = oauth1_line(self.oauth1, req)
    if not auth then return nil, used end
    used = "oauth1"
  elseif not auth and used ~= "none" then
    return nil, used
  end
  req.auth_line = auth
  return used
end

--- A 401 is worth a refresh when the call used a user token that can be
-- refreshed.
function Direct:renewable(_, used)
  return used == "user" and self.secret.refresh_token ~= nil
end

--- Refresh the user token (see `refresh`).
function Direct:renew(_, req)
  return self:refresh(self.secret.access_token, req.deadline)
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

--- The X request for validated `params`: `{ method, path, url, query, json,
-- tool, rate_key }` (`json` the body as a Lua value).  The route comes from
-- the catalog (`tool.route`, see scalekit.twitter.tools): path parameters,
-- then each given parameter under its wire name, in the query (GET, DELETE)
-- or the JSON body; `split` lists become arrays; a parameter left out with
-- a `default_from` gets its value derived from another (media_category from
-- media_type); the route's constants are added.
function Direct:request_for(tool, params)
  local route = tool.route
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
  for _, p in ipairs(tool.derived) do
    if params[p.name] == nil and params[p.default_from] ~= nil then
      body = body or setmetatable({}, object_mt)
      set_wire(body, p.wire or p.name, M.DERIVE[p.name](params[p.default_from]))
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
  return { method = tool.method, path = path, url = self.base .. path, query = query, json = body,
           tool = tool.name, rate_key = tool.name }
end

--- How a parameter with `default_from` gets its value from the other one.
M.DERIVE = { media_category = media.category_for }

--- The X request of a raw request (see the client's `request`).
function Direct:raw_for(r)
  return { method = r.method, path = r.path, url = self.base .. r.path, query = r.query, json = r.json,
           body = r.body, form = r.form, headers = r.headers, tool = "request", rate_key = r.rate_key }
end

--- Read X's error envelope: problem details, v1.1-style `errors`, OAuth
-- bodies (bare statuses give no message: the pipeline says "HTTP <status>").
-- @return message (or nil), fields
function Direct:error_from(resp, req)
  local j = type(resp.json) == "table" and resp.json or {}
  local first = type(j.errors) == "table" and j.errors[1] or {}
  local msg = j.detail or first.message or first.detail or j.title or j.error_description
  local ptype = type(j.type) == "string" and j.type:match("/2/problems/([%w%-]+)$") or nil
  local f, kind = { details = j, error_code = ptype }, nil
  -- "You are not permitted ...": a permission the token may lack; say which
  local tool = resp.status == 403 and type(msg) == "string" and msg:lower():find("not permitted", 1, true)
               and req and tools.get(req.tool or "")
  if tool and tool.scopes and #tool.scopes > 0 then
    local missing
    msg, missing = tools.scope_message(msg, tool, self.scope)
    kind = "auth"
    f.scopes_needed, f.scopes_missing = tool.scopes, missing
  end
  return msg, f, kind
end

--- data, info for a decoded X answer: the answer itself.
function Direct:result(tool, j, resp)
  return j, { tool = tool.name, status = resp.status, rate_limit = self.rate[tool.name] }
end

function Direct:close()
  self.http:close()
end

return M
