--- The Scalekit backend of the call pipeline (scalekit.twitter.call):
-- the client-credentials token, the execute_tool and proxy requests, the
-- connected-account calls, and Scalekit's error envelope.
--
-- The token is fetched on first use, cached until shortly before
-- `expires_in` runs out, and fetched again once (then the call repeated once)
-- when a call answers 401 -- unless the answer is a TOOL_ERROR: then the
-- provider refused the tool, which ran upstream and is never repeated.
-- Calls are blocking, so two token requests can never be in flight for one
-- client at the same time.
-- @module scalekit.twitter.scalekit

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local transport = require "scalekit.twitter.transport"
local call = require "scalekit.twitter.call"
local tools = require "scalekit.twitter.tools"
local policy = require "scalekit.twitter.policy"

local M = {}

M.API_VERSION = "20260727"
M.EXECUTE_PATH = "/api/v1/execute_tool"
M.TOKEN_SKEW = 60          -- refresh this many seconds before expiry

local null, object_mt = core.null, core.object_mt

-- Field `snake` of t, or its camelCase spelling.
local function field(t, snake)
  if type(t) ~= "table" then return nil end
  local v = t[snake]
  if v == nil then
    v = t[snake:gsub("_(%l)", string.upper)]
  end
  if v == null then return nil end
  return v
end
M.field = field

-- The fields that hold a google.protobuf.Struct: the caller's own JSON,
-- whose keys are kept as they are.
local STRUCT_FIELDS = { api_config = true, details = true, definition = true, metadata = true }

-- Recursively rename camelCase keys to snake_case (for account records).
local function snake_keys(t)
  if type(t) ~= "table" then return t end
  local out = setmetatable({}, getmetatable(t))
  for k, v in pairs(t) do
    if type(k) == "string" then k = k:gsub("(%l)(%u)", function(a, b) return a .. "_" .. b:lower() end) end
    out[k] = STRUCT_FIELDS[k] and v or snake_keys(v)
  end
  return out
end

local Scalekit = {}
Scalekit.__index = Scalekit

-- The credentials, token and connection pools of each set of Scalekit
-- credentials in use, shared by every client made with them, so an agent
-- with one client per end user fetches one token for all and keeps one
-- connection open.  Weak: a set goes with its last client.
local shared = setmetatable({}, { __mode = "v" })

--- The table holding the secret and the token for Scalekit credentials:
-- the same table for every client with the same environment, client id and
-- secret.  Its string fields are the secrets (`client_secret`,
-- `access_token`: what the redactor hides); `token` holds the token's
-- expiry and header line; `pools` the connection pools (C sessions) of its
-- clients, one per TLS/proxy/size setting, with `users` counting the open
-- clients of each.
function M.credentials(env_url, client_id, client_secret)
  local key = env_url .. "\0" .. client_id .. "\0" .. core.sha256(client_secret)
  local c = shared[key]
  if not c then
    c = { client_secret = client_secret, token = {}, pools = {} }
    shared[key] = c
  end
  return c
end

-- The connection pool of credentials `c` for a client's transport options
-- (made on first use), and its key.  Requests are synchronous, so clients
-- and coroutines take turns on it; none is ever in the middle of another's.
local function pool_for(c, cfg)
  local key = ("%s\0%s\0%s"):format(cfg.ca_file or "", cfg.proxy or "", tostring(cfg.max_response))
  local p = c.pools[key]
  if not p then
    p = { session = core.http_new{ ca_file = cfg.ca_file, proxy = cfg.proxy, max_response = cfg.max_response },
          users = 0 }
    c.pools[key] = p
  end
  p.users = p.users + 1
  return p, key
end

-- A tool error means the tool ran upstream: never repeat it, whatever its
-- status (Scalekit answers a provider's 401 as HTTP 401 with TOOL_ERROR).
local function is_tool_error(resp)
  for _, d in ipairs(type(resp.json) == "table" and field(resp.json, "details") or {}) do
    if field(d, "error_code") == "TOOL_ERROR" then return true end
  end
  return false
end

-- Scalekit answers 503 (UNAVAILABLE) only for calls it did not act on, so
-- even a POST may be repeated then (as the official SDKs do).
M.HINTS = { retry_any_method = { [503] = true }, final = is_tool_error }

--- Make the backend.
-- @tparam table cfg `env_url`, `client_id`, `secret` (from `credentials`:
--   the secret and the token, shared by clients with the same credentials,
--   and seen by the redactor), `settings` (the client's resolved policy),
--   plus transport options.
function M.new(cfg)
  local self = setmetatable({ env_url = cfg.env_url:gsub("/+$", ""), client_id = cfg.client_id,
                              secret = cfg.secret, settings = cfg.settings, rate = {},
                              hints = M.HINTS, sequences = false }, Scalekit)
  self.pool, self.pool_key = pool_for(cfg.secret, cfg)
  self.http = transport.new{
    session = self.pool.session,
    timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
    stall_timeout = cfg.stall_timeout, debug = cfg.debug, redact = cfg.redact,
    headers = { ["x-sdk-version"] = transport.SDK_VERSION, ["x-api-version"] = M.API_VERSION },
  }
  self.execute_url = self.env_url .. M.EXECUTE_PATH
  return self
end

local TOOL_ERROR_KIND = { ["401"] = "auth", ["403"] = "auth", ["404"] = "not_found",
                          ["429"] = "rate_limited" }

-- The account a tool call or proxy request `req` was for: identifier,
-- connection name, connected account id (each nil when not given).
local function account_of(req)
  local a = req and (req.account or req.ctx)
  if type(a) ~= "table" then return nil end
  return a.identifier or nil, a.connection_name or a.connector, a.connected_account_id
end

-- " (identifier 'bob', connection 'twitter')" for an error message.
local function account_words(identifier, connection, account_id)
  local words = {}
  if identifier then words[#words + 1] = ("identifier '%s'"):format(identifier) end
  if account_id then words[#words + 1] = ("connected account '%s'"):format(account_id) end
  if connection then words[#words + 1] = ("connection '%s'"):format(connection) end
  return #words > 0 and " (" .. table.concat(words, ", ") .. ")" or ""
end

--- Read Scalekit's error envelope: the grpc-gateway `{code, message,
-- details=[ErrorInfo...]}`, OAuth-style `{error, error_description}` bodies
-- (plain HTTP failures give no message: the pipeline says "HTTP <status>").
-- A NOT_FOUND that is not the provider's (no TOOL_ERROR) to a tool call or
-- proxy request `req` is the account: the message names it, and the error
-- has its `identifier` / `connected_account_id`.
-- @return message (or nil), fields, kind (or nil: from the status)
function Scalekit.error_from(_, resp, req)
  local j = type(resp.json) == "table" and resp.json or nil
  local f = { details = j }
  local message, kind
  if j then
    f.code = math.tointeger(field(j, "code"))
    message = field(j, "message") or field(j, "error_description") or field(j, "error")
    for _, d in ipairs(field(j, "details") or {}) do
      local ec = field(d, "error_code")
      if ec then
        f.error_code = f.error_code or ec
        local tei = field(d, "tool_error_info")
        if tei then
          f.execution_id = field(tei, "execution_id")
          f.tool_error_code = field(tei, "tool_error_code")
          message = field(tei, "tool_error_message") or message
        end
      end
    end
  end
  if f.error_code == "TOOL_ERROR" then
    kind = TOOL_ERROR_KIND[tostring(f.tool_error_code)] or "tool_error"
    -- X's "You are not permitted": name the scopes the tool needs
    local tool = kind == "auth" and type(message) == "string" and message:lower():find("not permitted", 1, true)
                 and req and tools.get(req.tool or "")
    if tool and tool.scopes and #tool.scopes > 0 then
      message = tools.scope_message(message, tool, nil)
      f.scopes_needed = tool.scopes
    end
  elseif resp.status == 404 and type(message) == "string" then
    local identifier, connection, account_id = account_of(req)
    if identifier or account_id then
      f.identifier, f.connected_account_id = identifier, account_id
      message = message .. account_words(identifier, connection, account_id)
    end
  end
  return message, f, kind
end

-- The token request.  Returns the access token or nil, err.
function Scalekit:fetch_token(deadline)
  local resp, err = self.http:send{
    method = "POST", url = self.env_url .. "/oauth/token", deadline = deadline,
    form = { { "grant_type", "client_credentials" }, { "client_id", self.client_id },
             { "client_secret", self.secret.client_secret } },
  }
  if not resp then return nil, err end
  local tok = resp.status == 200 and field(resp.json, "access_token")
  if type(tok) ~= "string" or tok == "" then
    local e = call.http_error(self, resp, nil)
    if resp.status == 200 then e.kind = "protocol" end
    if resp.status >= 400 and resp.status < 500 and resp.status ~= 429 then e.kind = "auth" end
    e.message = "could not get a Scalekit access token: " .. e.message
    return nil, e
  end
  if not transport.header_safe(tok) then
    return nil, errors.new("auth", "could not get a Scalekit access token: the token endpoint answered "
      .. "a token with spaces or control characters", { status = resp.status })
  end
  local ttl = math.tointeger(field(resp.json, "expires_in"))
  local secret = self.secret
  secret.access_token = tok
  secret.token.line = "Authorization: Bearer " .. tok    -- the header of every call until the next token
  secret.token.expires = ttl and core.monotonic() + ttl - M.TOKEN_SKEW or math.huge
  return tok
end

--- A valid access token (cached, or fetched now).
function Scalekit:token(deadline)
  local secret = self.secret
  if secret.access_token and core.monotonic() < secret.token.expires then return secret.access_token end
  return self:fetch_token(deadline)
end

--- Drop the cached token (for every client sharing it), so the next call
-- fetches a new one.
function Scalekit:forget_token()
  self.secret.access_token, self.secret.token.expires, self.secret.token.line = nil, nil, nil
end

--- Put the access token (fetched when needed) on `req`, and the proxy's
-- account headers when it has them.
-- @return the token, or nil, err
function Scalekit:authorize(req)
  local secret = self.secret
  local tok = secret.access_token
  if not (tok and core.monotonic() < secret.token.expires) then       -- as `token`, without the call
    local err
    tok, err = self:fetch_token(req.deadline)
    if not tok then err.tool = req.tool; return nil, err end
  end
  req.override, req.auth_line = req.account, secret.token.line
  return tok
end

--- A 401 is worth a new token unless the tool ran upstream (TOOL_ERROR).
function Scalekit.renewable(_, resp) return not is_tool_error(resp) end

--- Forget the token: the next attempt fetches a new one.
function Scalekit:renew()
  self:forget_token()
  return true
end

-- Drop nil/"" fields; `t` is marked as a JSON object.
local function compact(t)
  local out = setmetatable({}, object_mt)
  for k, v in pairs(t) do
    if v ~= "" and v ~= null then out[k] = v end
  end
  return out
end
M.compact = compact

local CONTEXT_FIELDS = { "identifier", "connector", "connected_account_id", "organization_id", "user_id" }

-- The context fields worth sending (non-empty), as a list of names; a
-- context is never changed once made, so it is listed once.
local function context_fields(ctx)
  local names = ctx.fields
  if names then return names end
  names = {}
  for _, k in ipairs(CONTEXT_FIELDS) do
    local v = ctx[k]
    if v ~= nil and v ~= "" and v ~= null then names[#names + 1] = k end
  end
  ctx.fields = names
  return names
end

-- The execute_tool body is the tool, its params and the account context
-- (without empty context fields).  All but the params is the same for
-- every call of a tool on an account, so it is encoded once per context
-- (a context never changes once made) and tool: `frames[ctx][tool_name]`
-- is the text before and after the params.
local frames = setmetatable({}, { __mode = "k" })
local MARK = "\1"                -- stands for the params while the frame is encoded

local function frame_of(ctx, tool_name)
  local per = frames[ctx]
  if not per then per = {}; frames[ctx] = per end
  local f = per[tool_name]
  if f then return f end
  local body = { tool_name = tool_name, params = MARK }
  local names = context_fields(ctx)
  for i = 1, #names do body[names[i]] = ctx[names[i]] end
  local text = assert(core.json_encode(body))
  -- a quote inside a value is escaped, so only the real key can read so
  local at, e = text:find('"params":"\\u0001"', 1, true)
  f = { text:sub(1, at + 8), text:sub(e + 1) }
  per[tool_name] = f
  return f
end

--- The execute_tool request of a tool call (`ctx`: the account it is
-- for), already in its wire form (see the transport's `build`), or nil,
-- err when its params cannot be encoded.
function Scalekit:request_for(tool, params, ctx)
  local json, _, err = core.json_encode(params, "body.params")
  if not json then return nil, errors.new("invalid_input", err, { tool = tool.name }) end
  local f = frame_of(ctx, tool.name)
  return { method = "POST", path = M.EXECUTE_PATH, url = self.execute_url, body = f[1] .. json .. f[2],
           content_type = "application/json", once = true, wired = true,
           ctx = ctx, tool = tool.name, rate_key = tool.name }
end

--- The proxy request of a raw request (see the client's `request`): the
-- account goes in Scalekit's connection_name / identifier headers.
function Scalekit:raw_for(r, ctx)
  return { method = r.method, path = "/proxy" .. r.path, url = self.env_url .. "/proxy" .. r.path,
           query = r.query, headers = r.headers, json = r.json, body = r.body, form = r.form,
           json_root = "body", tool = "request", rate_key = r.rate_key,
           account = { connection_name = ctx.connector, identifier = ctx.identifier or false } }
end

--- data, info from a decoded execute_tool answer.
function Scalekit:result(tool, j, resp)
  local data, id = j.data, j.execution_id
  if data == nil or data == null then data = field(j, "data") or setmetatable({}, object_mt) end
  if id == nil then id = field(j, "execution_id") end
  return data, { tool = tool.name, status = resp.status, execution_id = id, rate_limit = self.rate[tool.name] }
end

--- A connected-account call (REST routes of ConnectedAccountService):
-- the answer with snake_case keys, or nil, err.
-- @tparam string what the method's name (for errors and rate limits)
-- @tparam[opt] table opts `query` (arrays as repeated keys), `json`, `opts`
--   (the per-call options: timeout, max_retries, ...)
function Scalekit:account_call(method, path, what, opts)
  opts = opts or {}
  local j, err = call.request(self, { name = what }, {
    method = method, path = path, url = self.env_url .. path, query = opts.query, json = opts.json,
    repeat_keys = true, tool = what, rate_key = what }, policy.settings(opts.opts, self.settings))
  if not j then return nil, err end
  return snake_keys(j)
end

--- Let go of the shared pool: the last client to close it closes its
-- connections (a client that is only garbage collected leaves them to the
-- pool's own collection).  Closing twice is harmless.
function Scalekit:close()
  local p = self.pool
  if not p then return end
  self.pool = nil
  p.users = p.users - 1
  if p.users <= 0 then
    p.session:close()
    if self.secret.pools[self.pool_key] == p then self.secret.pools[self.pool_key] = nil end
  end
end

return M
