--- scalekit.twitter: call every tool of Scalekit's Twitter / X connector from Lua.
--
--    local twitter = require "scalekit.twitter"
--    local tw = twitter.new{ identifier = "user_123" }   -- credentials from the environment
--    local data, info = tw:post_create{ text = "hello" }
--    if not data then print(info) end                     -- info is the error
--
-- Each of the 80 tools is a method (`tw:post_create`, or by its full name
-- `tw:twitter_post_create`) and a module function using the default client
-- (`twitter.configure{...}`, then `twitter.post_create{...}`).  The functions
-- are made from the catalog (`scalekit.twitter.catalog`) at load time.
-- @module scalekit.twitter

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local tools = require "scalekit.twitter.tools"
local scalekit = require "scalekit.twitter.scalekit"
local transport = require "scalekit.twitter.transport"
local direct = require "scalekit.twitter.direct"
local oauth2 = require "scalekit.twitter.oauth2"
local paging = require "scalekit.twitter.paging"
local batch = require "scalekit.twitter.batch"
local media = require "scalekit.twitter.media"
local policy = require "scalekit.twitter.policy"
local options = require "scalekit.twitter.options"

local M = {}

--- Version of the SDK.
M._VERSION = core._VERSION
--- The JSON null sentinel: decoded JSON null, and a way to send one.
M.null = core.null
--- Metatables that mark a table as a JSON array / object for encoding.
M.array_mt, M.object_mt = core.array_mt, core.object_mt
--- Error helpers (`errors.is(v)`, `errors.KINDS`).
M.errors = errors
--- The JSON codec the SDK uses: exact integers, `null`, `[]` vs `{}`.
-- `encode(value [, root])` returns a string or nil, message;
-- `decode(text)` returns a value or nil, message.
M.json = { encode = core.json_encode, decode = core.json_decode }

--- OAuth 2.0 helpers for direct mode: `authorize_url`, `exchange_code`,
-- `refresh`, `revoke`, `parse_redirect` (see `scalekit.twitter.oauth2`).
M.oauth2 = oauth2

--- Default progress hooks for every client (the scalekit-lua host sets them
-- when stderr is a terminal): `on_wait(seconds, why)` before a wait ("retry",
-- "rate_limit", "processing") and `on_progress(sent, total)` during uploads.
-- `on_page(count)` after each page of `pages`/`items`.
M.on_wait, M.on_progress, M.on_page = nil, nil, nil

-- opts with the module's on_page hook filled in when the caller set none.
local function with_page_hook(opts)
  if M.on_page == nil or (opts and opts.on_page ~= nil) then return opts end
  local o = { on_page = M.on_page }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

--- Mark `t` (default: a new table) as a JSON array, so `{}` encodes as `[]`.
function M.array(t) return setmetatable(t or {}, core.array_mt) end
--- Mark `t` (default: a new table) as a JSON object.
function M.object(t) return setmetatable(t or {}, core.object_mt) end

local object_mt, array_mt = core.object_mt, core.array_mt

-- Client state that must not show up when a client table is printed or
-- traversed (the protocol object holds the secrets), keyed by client.
local state = setmetatable({}, { __mode = "k" })

local Client = {}
local client_mt = { __name = "scalekit.twitter.client" }

local KNOWN_OPTION = options.SPEC

local LOOPBACK = { ["127.0.0.1"] = true, ["localhost"] = true, ["[::1]"] = true }

local function getenv(...)
  for i = 1, select("#", ...) do
    local v = os.getenv((select(i, ...)))
    if v and v ~= "" then return v end
  end
  return nil
end

-- Configuration mistakes are raised as a ConfigError and re-raised as a
-- message by the public function that was called (`new`, or a module-level
-- call that makes the default client), at its caller's line.
local ConfigError = {}

local function config_error(msg)
  error(setmetatable({ message = "scalekit.twitter.new: " .. msg }, ConfigError), 0)
end

-- Run make(opts); re-raise a configuration mistake at `level` (as for
-- error, counted from the caller of guarded).
local function guarded(make, opts, level)
  local ok, r = pcall(make, opts)
  if ok then return r end
  if getmetatable(r) == ConfigError then error(r.message, level + 1) end
  error(r, 0)
end

-- Refuse a credential that cannot go where it is sent: a token goes in an
-- HTTP header (no control characters, no spaces); a client secret goes in a
-- form (no control characters).
local function check_secret(name, value)
  if value == nil then return end
  local ok
  if name == "client_secret" then ok = type(value) == "string" and not value:find("%c")
  else ok = value == "" or transport.header_safe(value) end
  if not ok then
    config_error(("%s must be a string without %scontrol characters"):format(name,
      name == "client_secret" and "" or "spaces or "))
  end
end

local function check_url(name, url, allow_http)
  local scheme, host = url:match("^(%a+)://([^/?#]+)")
  if not scheme then config_error(("%s %q is not an http(s) URL"):format(name, url)) end
  scheme = scheme:lower()
  host = host:gsub("^.*@", ""):gsub(":%d+$", ""):lower()
  if scheme ~= "https" and scheme ~= "http" then
    config_error(("%s must use https, got %s://"):format(name, scheme))
  end
  if scheme == "http" and not LOOPBACK[host] and not allow_http then
    config_error(name .. " uses http:// for a non-loopback host; use https:// "
                 .. "(or set allow_insecure_http = true)")
  end
end

local function debug_writer(opt)
  if type(opt) == "function" then return opt end
  if opt == true or (opt == nil and getenv("SCALEKIT_DEBUG")) then
    return function(line) io.stderr:write("[scalekit] ", line, "\n") end
  end
  return nil
end

local DIRECT_ONLY = { "bearer_token", "access_token", "refresh_token", "token_file" }
local DIRECT_ENV = { "X_BEARER_TOKEN", "X_ACCESS_TOKEN", "X_REFRESH_TOKEN", "X_TOKEN_FILE" }

-- "scalekit" or "direct": as asked, else Scalekit when its credentials are
-- there, else direct when X credentials are.
local function pick_mode(opts)
  if opts.mode ~= nil then
    if opts.mode ~= "scalekit" and opts.mode ~= "direct" then
      config_error(("mode must be \"scalekit\" or \"direct\", got %q"):format(tostring(opts.mode)))
    end
    return opts.mode
  end
  if opts.env_url or getenv("SCALEKIT_CLIENT_SECRET", "SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_ENV_URL") then
    return "scalekit"
  end
  for _, k in ipairs(DIRECT_ONLY) do if opts[k] then return "direct" end end
  if getenv(table.unpack(DIRECT_ENV)) then return "direct" end
  return "scalekit"
end

local function new_scalekit(self, opts, common)
  local env_url = opts.env_url or getenv("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_ENV_URL")
  local client_id = opts.client_id or getenv("SCALEKIT_CLIENT_ID")
  local secret = { client_secret = opts.client_secret or getenv("SCALEKIT_CLIENT_SECRET") }
  local missing = {}
  if not env_url then missing[#missing + 1] = "env_url (SCALEKIT_ENVIRONMENT_URL)" end
  if not client_id then missing[#missing + 1] = "client_id (SCALEKIT_CLIENT_ID)" end
  if not secret.client_secret then missing[#missing + 1] = "client_secret (SCALEKIT_CLIENT_SECRET)" end
  if #missing > 0 then
    config_error("missing " .. table.concat(missing, ", ")
                 .. " (or, for direct mode, X_BEARER_TOKEN / X_ACCESS_TOKEN)")
  end
  check_secret("client_secret", secret.client_secret)
  check_url("env_url", env_url, opts.allow_insecure_http)
  self.env_url = env_url:gsub("/+$", "")
  self.client_id = client_id
  self.identifier = opts.identifier or getenv("SCALEKIT_IDENTIFIER")
  self.connection_name = opts.connection_name or "twitter"
  self.connected_account_id = opts.connected_account_id
  self.organization_id = opts.organization_id
  self.user_id = opts.user_id
  common.env_url, common.client_id, common.secret = self.env_url, client_id, secret
  common.redact = errors.redactor(secret)
  return scalekit.new(common), common.redact
end

local function new_direct(self, opts, common)
  local secret = {
    bearer_token = opts.bearer_token or getenv("X_BEARER_TOKEN"),
    access_token = opts.access_token or getenv("X_ACCESS_TOKEN"),
    refresh_token = opts.refresh_token or getenv("X_REFRESH_TOKEN"),
    client_secret = opts.client_secret or getenv("X_CLIENT_SECRET"),
  }
  local token_file = opts.token_file or getenv("X_TOKEN_FILE")
  if not (secret.bearer_token or secret.access_token or secret.refresh_token or token_file) then
    config_error("direct mode needs bearer_token, access_token, refresh_token or token_file "
                 .. "(X_BEARER_TOKEN, X_ACCESS_TOKEN, X_REFRESH_TOKEN, X_TOKEN_FILE)")
  end
  for _, k in ipairs{ "bearer_token", "access_token", "refresh_token", "client_secret" } do
    check_secret(k, secret[k])
  end
  local base = opts.api_base_url or getenv("X_API_BASE_URL") or oauth2.API_BASE_URL
  check_url("api_base_url", base, opts.allow_insecure_http)
  self.api_base_url = base:gsub("/+$", "")
  self.client_id = opts.client_id or getenv("X_CLIENT_ID")
  self.token_file = token_file
  common.secret, common.client_id, common.api_base_url = secret, self.client_id, self.api_base_url
  common.expires_at, common.token_file, common.on_token = opts.expires_at, token_file, opts.on_token
  common.token_url = opts.token_url
  common.redact = errors.redactor(secret)
  return direct.new(common), common.redact
end

--- Make a client.
-- Scalekit mode (default): options not given come from the environment:
-- `SCALEKIT_ENVIRONMENT_URL` (or `SCALEKIT_ENV_URL`), `SCALEKIT_CLIENT_ID`,
-- `SCALEKIT_CLIENT_SECRET`, `SCALEKIT_IDENTIFIER`.  Direct mode (`mode =
-- "direct"`, or picked when only X credentials are given): `X_BEARER_TOKEN`,
-- `X_ACCESS_TOKEN`, `X_REFRESH_TOKEN`, `X_TOKEN_FILE`, `X_CLIENT_ID`,
-- `X_CLIENT_SECRET`, `X_API_BASE_URL`.  `ca_file` defaults to
-- `SSL_CERT_FILE` or `CURL_CA_BUNDLE`.  Raises on a configuration mistake
-- (missing credentials, unknown option or bad value, a credential with
-- control characters, plain-http URL to a remote host).
-- @tparam[opt] table opts see README "Configuration"
-- @treturn table the client
local make_client

function M.new(opts)
  local client = guarded(make_client, opts, 2)    -- not a tail call: level 2 is our caller
  return client
end

-- twitter.new without the re-raise (raises ConfigErrors).
function make_client(opts)
  if opts ~= nil and type(opts) ~= "table" then
    config_error("expected a table of options, got " .. type(opts))
  end
  opts = opts or {}
  local ok, why = pcall(options.check, opts, "scalekit.twitter.new", 1)
  if not ok then error(setmetatable({ message = why }, ConfigError), 0) end
  local wait = opts.wait_on_rate_limit == true
  local max_wait = opts.max_wait or 900
  -- the whole call's deadline; each attempt is bounded by the transport's
  local call_timeout = opts.timeout or policy.DEFAULT_TIMEOUT + (wait and max_wait or 0)
  local self = setmetatable({ mode = pick_mode(opts), timeout = call_timeout }, client_mt)
  local common = {
    ca_file = opts.ca_file or getenv("SSL_CERT_FILE", "CURL_CA_BUNDLE"),
    proxy = opts.proxy, max_response = opts.max_response, timeout = opts.timeout or policy.DEFAULT_TIMEOUT,
    connect_timeout = opts.connect_timeout, stall_timeout = opts.stall_timeout,
    debug = debug_writer(opts.debug),
    policy = { max_retries = opts.max_retries or 2, retry_base = opts.retry_base or 0.5,
               wait_on_rate_limit = wait, max_wait = max_wait, timeout = opts.timeout,
               on_wait = opts.on_wait or function(...) if M.on_wait then return M.on_wait(...) end end },
  }
  local backend, redact
  if self.mode == "direct" then
    backend, redact = new_direct(self, opts, common)
  else
    backend, redact = new_scalekit(self, opts, common)
  end
  state[self] = { backend = backend, redact = redact }
  return self
end

-- Methods come from Client (a plain table, so method lookups stay fast); an
-- option left unset reads as nil; any other name is a programmer mistake and
-- raises with a suggestion.
client_mt.__index = Client
setmetatable(Client, { __index = function(_, key)
  if not KNOWN_OPTION[key] then
    local guess = type(key) == "string" and tools.suggest(key, tools.names())
    error(("scalekit.twitter: client has no method or field '%s'%s"):format(
      tostring(key), guess and ("; did you mean '%s'?"):format(guess) or ""), 2)
  end
end })

client_mt.__tostring = function(self)
  if self.mode == "direct" then
    return ("scalekit.twitter client (mode=direct, api_base_url=%s, client_id=%s)"):format(
      self.api_base_url, tostring(self.client_id))
  end
  return ("scalekit.twitter client (mode=%s, env_url=%s, client_id=%s, identifier=%s, connection=%s)"):format(
    self.mode, self.env_url, self.client_id, tostring(self.identifier), self.connection_name)
end

-- Raise unless `self` is a client; `level` as for check_table.
local function check_client(self, method, level)
  if getmetatable(self) ~= client_mt then
    error(("scalekit.twitter: call %s with a colon: tw:%s{...}"):format(method, method),
          (level or 2) + 1)
  end
end

-- Raise unless v is nil or a table; `level` 2 blames the caller of the
-- function that calls check_table.
local function check_table(v, what, level)
  if v ~= nil and type(v) ~= "table" then
    error(("scalekit.twitter: %s expects a table, got %s"):format(what, type(v)), level + 1)
  end
end

-- The account context sent with every Scalekit call, rebuilt only when
-- one of the client's account fields changed.
local function context(self)
  local st, get = state[self], rawget      -- rawget: unset fields skip __index
  local c = st.ctx
  local identifier, connector = get(self, "identifier"), get(self, "connection_name")
  local account, org, user = get(self, "connected_account_id"), get(self, "organization_id"), get(self, "user_id")
  if c and c.identifier == identifier and c.connector == connector and c.connected_account_id == account
     and c.organization_id == org and c.user_id == user then
    return c
  end
  c = { identifier = identifier, connector = connector, connected_account_id = account,
        organization_id = org, user_id = user }
  st.ctx = c
  return c
end

-- The ID of the authenticated X user, looked up once per client.
local function my_id(self)
  local st = state[self]
  if st.me then return st.me end
  local data, err = self:execute("twitter_user_me", {})
  if not data then return nil, err end
  local user = type(data) == "table" and (type(data.data) == "table" and data.data or data) or {}
  local id = user.id
  if math.type(id) == "integer" then id = ("%d"):format(id) end
  if type(id) ~= "string" then
    return nil, errors.new("protocol", "twitter_user_me returned no user id", { tool = "twitter_user_me" })
  end
  st.me = id
  return id
end

-- The params to send and (Scalekit mode) the account context of a call of
-- `tool`, or nil, err: validation, the account check and the "your own id"
-- fill-in.
local function prepare_call(self, tool, input)
  local params, err = tools.validate(tool, input or {})
  if not params then return nil, err end
  local ctx
  if self.mode == "scalekit" then
    ctx = context(self)
    if not ctx.identifier and not ctx.connected_account_id then
      return nil, errors.new("invalid_input", tool.name .. ": no connected account: set identifier "
        .. "(or SCALEKIT_IDENTIFIER) or connected_account_id", { tool = tool.name })
    end
  end
  if tool.self_id and params.id == nil then
    params.id, err = my_id(self)
    if not params.id then return nil, err end
  end
  return params, ctx
end

-- A checked call of `tool`: prepare, then hand it to the backend.
local function run(self, tool, input, opts)
  local params, ctx = prepare_call(self, tool, input)
  if not params then return nil, ctx end
  if ctx == nil then return state[self].backend:execute(tool, params, opts) end
  return state[self].backend:execute(tool.name, params, ctx, opts)
end

--- Run a tool by name (full or short).
-- @tparam string name e.g. "twitter_post_create"
-- @tparam[opt] table input the tool's parameters
-- @tparam[opt] table opts this call's `timeout`, `max_retries`,
--   `wait_on_rate_limit`, `max_wait` (over the client's)
-- @return data (the tool output), info `{ execution_id =, tool =, rate_limit = }`; or nil, err
function Client:execute(name, input, opts)
  check_client(self, "execute")
  check_table(input, "tool input", 2)
  check_table(opts, "call options", 2)
  if opts ~= nil then options.check(opts, "scalekit.twitter: " .. tostring(name) .. " options", 2, nil, true) end
  local tool, err = tools.lookup(name)
  if not tool then return nil, err end
  return run(self, tool, input, opts)
end

--- The last rate-limit headers seen for a tool (full or short name) or a raw
-- request ("GET /2/users/me"): `{ limit =, remaining =, reset =, day = {...} }`,
-- or nil when none were seen.
function Client:rate_limit(name)
  check_client(self, "rate_limit")
  local tool = type(name) == "string" and tools.get(name)
  return state[self].backend.rate[tool and tool.name or name]
end

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

-- The backend's form of a raw request `req` (see Client:request); raises
-- for a programmer mistake, blaming the caller of `request`.
local function raw_request(req)
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
  if call_opts then options.check(call_opts, "scalekit.twitter: request", 3, nil, true) end
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
           headers = req.headers, timeout = req.timeout, opts = call_opts }
end

--- Call the provider API: through Scalekit's proxy, or straight to X in
-- direct mode.
-- @tparam table req `path` (required), `method` ("GET"), `params`,
--   `query_params` or `queryParams` (query table), one of `body` (table:
--   JSON; string: sent as is), `form_data` (table: urlencoded form) and
--   `raw_body` (string, sent as is), `headers`, and any per-call option
--   (`timeout`, `max_retries`, ...).  Unknown fields raise.
-- @return `{ status =, headers =, body =, json = }` or nil, err
function Client:request(req)
  check_client(self, "request")
  local r = raw_request(req)
  if self.mode == "direct" then return state[self].backend:request(r) end
  return state[self].backend:proxy(r, context(self))
end

-- Query/body fields that name the connected account.
local function account_ref(self, extra)
  local t = scalekit.compact{
    connector = self.connection_name, identifier = self.identifier,
    id = self.connected_account_id, organization_id = self.organization_id,
    user_id = self.user_id,
  }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function account_call(self, what, method, path, opts)
  if self.mode ~= "scalekit" then
    error(("scalekit.twitter: %s is a Scalekit call; this client is in %s mode"):format(what, self.mode), 3)
  end
  return state[self].backend:account_call(method, path, { what = what }, opts)
end

--- A magic link the user opens to connect their X account.
-- @tparam[opt] table opts `state`, `user_verify_url`
-- @return `{ link =, expiry = }` or nil, err
function Client:get_authorization_link(opts)
  check_client(self, "get_authorization_link")
  check_table(opts, "get_authorization_link", 2)
  opts = opts or {}
  return account_call(self, "get_authorization_link", "POST", "/api/v1/connected_accounts/magic_link",
    { json = account_ref(self, { state = opts.state, user_verify_url = opts.user_verify_url }) })
end

--- The connected account (with its status and authorization details).
-- @return account table or nil, err (kind "not_found" when there is none)
function Client:get_connected_account()
  check_client(self, "get_connected_account")
  local j, err = account_call(self, "get_connected_account", "GET", "/api/v1/connected_accounts/auth",
                              { query = account_ref(self) })
  if not j then return nil, err end
  return j.connected_account or setmetatable({}, object_mt)
end

--- The connected account, created first when it does not exist.  When
-- `authorization_details` is given and the account exists, it is updated.
-- @tparam[opt] table opts `authorization_details`
-- @return account table or nil, err
function Client:get_or_create_connected_account(opts)
  check_client(self, "get_or_create_connected_account")
  check_table(opts, "get_or_create_connected_account", 2)
  local details = opts and opts.authorization_details
  local acct, err = self:get_connected_account()
  local body
  if acct then
    if not details then return acct end
    body = account_ref(self, { connected_account = { authorization_details = details } })
    local j
    j, err = account_call(self, "update_connected_account", "PUT", "/api/v1/connected_accounts", { json = body })
    return j and j.connected_account, err
  end
  if err.kind ~= "not_found" then return nil, err end
  body = account_ref(self, { connected_account = {
    authorization_details = details or { oauth_token = setmetatable({}, object_mt) } } })
  body.id = nil
  local j
  j, err = account_call(self, "create_connected_account", "POST", "/api/v1/connected_accounts", { json = body })
  return j and j.connected_account, err
end

--- Connected accounts of this connection and identifier, one page.
-- @tparam[opt] table opts `page_size`, `page_token`, `query`, `provider`
-- @return `{ connected_accounts =, next_page_token =, total_size = }` or nil, err
function Client:list_connected_accounts(opts)
  check_client(self, "list_connected_accounts")
  check_table(opts, "list_connected_accounts", 2)
  opts = opts or {}
  local q = account_ref(self, { page_size = opts.page_size, page_token = opts.page_token,
                                query = opts.query, provider = opts.provider })
  q.id = nil
  local j, err = account_call(self, "list_connected_accounts", "GET", "/api/v1/connected_accounts", { query = q })
  if not j then return nil, err end
  j.connected_accounts = setmetatable(j.connected_accounts or {}, array_mt)
  return j
end

--- Delete the connected account.
-- @return true or nil, err
function Client:delete_connected_account()
  check_client(self, "delete_connected_account")
  local j, err = account_call(self, "delete_connected_account", "POST",
                              "/api/v1/connected_accounts:delete", { json = account_ref(self) })
  if not j then return nil, err end
  return true
end

--- Confirm the user who completed the authorization flow.
-- @tparam table opts `auth_request_id` (required), `identifier` (default: the client's)
-- @return `{ post_user_verify_redirect_url = }` or nil, err
function Client:verify_connected_account_user(opts)
  check_client(self, "verify_connected_account_user")
  check_table(opts, "verify_connected_account_user", 2)
  opts = opts or {}
  if type(opts.auth_request_id) ~= "string" or opts.auth_request_id == "" then
    return nil, errors.new("invalid_input",
      "verify_connected_account_user: auth_request_id (a string) is required", { param = "auth_request_id" })
  end
  return account_call(self, "verify_connected_account_user", "POST", "/api/v1/connected_accounts/user/verify",
    { json = scalekit.compact{ auth_request_id = opts.auth_request_id,
                               identifier = opts.identifier or self.identifier } })
end

--- Close the client's connections now (they are also closed when the
-- client is garbage collected).
function Client:close()
  check_client(self, "close")
  state[self].backend.http:close()
end

-- The tool for a paging call; raises for tools that do not paginate.
local function paging_tool(name)
  local tool = tools.get(name)
  if not tool then
    local _, err = tools.lookup(name)
    error("scalekit.twitter: " .. err.message, 3)
  end
  if not tool.paginate then
    error(("scalekit.twitter: %s does not paginate"):format(tool.name), 3)
  end
  return tool
end

--- Iterate over the pages of a paginating tool:
-- `for page, err in tw:pages("twitter_followers_get", { id = "..." }, { limit = 10 }) do ... end`.
-- A failure gives `false, err` once, then the loop ends.  `page.meta.next_token`
-- can be saved and passed back in the input to resume.
-- @tparam string name tool name
-- @tparam table input the tool's parameters
-- @tparam[opt] table opts `limit` (pages) and per-call options
local COUNT = { kind = "count", min = 1, max = math.maxinteger }
local PAGES_OPTIONS = { limit = COUNT, on_page = { kind = "function" } }
local ITEMS_OPTIONS = { limit = COUNT, pages = COUNT, expand = { kind = "boolean" }, on_page = { kind = "function" } }
local BATCH_OPTIONS = { concurrency = { kind = "count", min = 1, max = 64 } }
local STREAM_OPTIONS = { reconnect = { kind = "boolean" }, sleep = { kind = "function" } }
local UPLOAD_OPTIONS = { file = { kind = "string" }, media_type = { kind = "string" },
                         media_category = { kind = "string" }, on_progress = { kind = "function" },
                         chunk_size = { kind = "count", min = 1, max = 5 * 1024 * 1024 },
                         on_wait = { kind = "function" } }

-- Raise (blaming the caller's caller) unless opts is nil or a table of the
-- per-call options plus `extra`.
local function check_call_options(opts, what, extra)
  check_table(opts, what .. " options", 3)
  if opts ~= nil then options.check(opts, "scalekit.twitter: " .. what, 3, extra, true) end
end

function Client:pages(name, input, opts)
  check_client(self, "pages")
  check_table(input, "pages input", 2)
  check_call_options(opts, "pages", PAGES_OPTIONS)
  return paging.pages(self, paging_tool(name), input, with_page_hook(opts))
end

--- Iterate over the items of every page (`data` entries):
-- `for item, err in tw:items("twitter_recent_search", { query = "lua" }, { limit = 500 }) do ... end`.
-- @tparam[opt] table opts `limit` (items), `expand = true` joins `includes`
--   onto each item (`author`, `media`, `referenced`, `pinned_tweet`)
function Client:items(name, input, opts)
  check_client(self, "items")
  check_table(input, "items input", 2)
  check_call_options(opts, "items", ITEMS_OPTIONS)
  return paging.items(self, paging_tool(name), input, with_page_hook(opts))
end

--- Run many tool calls concurrently over the client's connection pool.
-- @tparam table calls array of `{ name, input }`
-- @tparam[opt] table opts `concurrency` (default 8, at most 64) and per-call options
-- @return array of `{ data =, info =, err = }` in input order
function Client:batch(calls, opts)
  check_client(self, "batch")
  if type(calls) ~= "table" then error("scalekit.twitter: batch expects an array of { name, input }", 2) end
  if #calls > batch.MAX_CALLS then
    error(("scalekit.twitter: batch takes at most %d calls"):format(batch.MAX_CALLS), 2)
  end
  check_call_options(opts, "batch", BATCH_OPTIONS)
  opts = opts or {}
  local backend = state[self].backend
  local hooks = {
    prepare = function(name, input)
      if type(input) ~= "table" and input ~= nil then
        return nil, errors.new("invalid_input", tostring(name) .. ": input must be a table")
      end
      local tool, err = tools.lookup(name)
      if not tool then return nil, err end
      local params, ctx = prepare_call(self, tool, input)
      if not params then return nil, ctx end
      return tool, params, ctx
    end,
    request = function(tool, params)
      if self.mode == "direct" then return backend:batch_request(tool, params, opts) end
      return backend:batch_request(tool, params, context(self), opts)
    end,
  }
  return batch.run(self, backend, hooks, calls, opts)
end

--- Upload a media file; picks one-shot or chunked upload from the file.
-- @tparam table opts `file` (required), `media_type`, `media_category`,
--   `on_progress(sent, total)`, `chunk_size`, `on_wait`
-- @return media_id, media or nil, err
function Client:upload_media(opts)
  check_client(self, "upload_media")
  if type(opts) ~= "table" or type(opts.file) ~= "string" then
    error("scalekit.twitter: upload_media expects { file = path, ... }", 2)
  end
  options.check(opts, "scalekit.twitter: upload_media", 2, UPLOAD_OPTIONS, true)
  if opts.on_progress == nil and M.on_progress then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.on_progress = M.on_progress
    opts = o
  end
  return media.upload(self, opts)
end

--- Read a streaming tool (direct mode): `on_event(event)` is called for each
-- event while it returns true; the stream reconnects with X's backoff.
-- @tparam string name e.g. "twitter_tweet_label_stream"
-- @tparam table input the tool's parameters
-- @tparam function on_event
-- @return the number of events delivered, or nil, err
function Client:stream(name, input, on_event, opts)
  check_client(self, "stream")
  check_table(input, "stream input", 2)
  if type(on_event) ~= "function" then error("scalekit.twitter: stream needs an on_event function", 2) end
  check_call_options(opts, "stream", STREAM_OPTIONS)
  if self.mode ~= "direct" then error("scalekit.twitter: stream is available in direct mode", 2) end
  local tool, err = tools.lookup(name)
  if not tool then return nil, err end
  local params
  params, err = tools.validate(tool, input or {})
  if not params then return nil, err end
  return state[self].backend:stream(tool, params, on_event, opts)
end

-- The default client for module-level calls ------------------------------

local default_opts, default_client

--- Set the options of the default client used by module-level calls
-- (`twitter.post_create{...}`).  The client is made on first use.
function M.configure(opts)
  check_table(opts, "configure", 2)
  default_opts, default_client = opts or {}, nil
end

-- The default client, made now if needed; a configuration mistake is
-- raised at `level` (as for error, counted from the caller of default).
local function default(level)
  if not default_client then default_client = guarded(make_client, default_opts, level + 1) end
  return default_client
end

--- Run a tool with the default client.
function M.execute(name, input, opts)
  check_table(input, "tool input", 2)
  check_table(opts, "call options", 2)
  return default(2):execute(name, input, opts)
end
--- A raw request with the default client (see `Client:request`).
function M.request(req) return default(2):request(req) end

--- Every tool: `{ name =, short_name =, description =, params = {...} }`, sorted by name.
function M.tools()
  local out = {}
  for i, t in ipairs(tools.list) do out[i] = tools.describe(t) end
  return out
end

--- JSON Schema (draft 2020-12) of a tool's input, for LLM function calling.
-- @tparam string name full or short tool name
-- @return schema table (encode with `twitter.json.encode`) or nil, err
function M.schema(name)
  local tool, err = tools.lookup(name)
  if not tool then return nil, err end
  return tools.schema(tool)
end

-- A tool call from a bound function: checks the arguments (raising at the
-- user's call: the bound functions make tail calls, so it is level 2 here),
-- then runs it.
local function dispatch(self, tool, input, opts)
  if state[self] == nil then check_client(self, tool.short, 2) end
  if input ~= nil and type(input) ~= "table" then check_table(input, tool.name, 2) end
  if opts ~= nil then
    if type(opts) ~= "table" then check_table(opts, tool.name .. " options", 2) end
    options.check(opts, "scalekit.twitter: " .. tool.name .. " options", 2, nil, true)
  end
  return run(self, tool, input, opts)
end

-- One function per tool, on the client methods and on the module, each a
-- closure over its catalog entry.
for _, tool in ipairs(tools.list) do
  local method = function(self, input, opts) return dispatch(self, tool, input, opts) end
  Client[tool.name], Client[tool.short] = method, method
  local fn = function(input, opts)
    check_table(input, tool.name, 2)
    check_table(opts, tool.name .. " options", 2)
    return dispatch(default(2), tool, input, opts)
  end
  M[tool.name], M[tool.short] = fn, fn
end

M.Client = Client

-- Inside the scalekit-lua host, show waits and uploads when stderr is a terminal.
if package.loaded["scalekit.host"] and core.isatty(2) then require("scalekit.twitter.progress")(M) end

return M
