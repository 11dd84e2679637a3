--- Client configuration: options over the environment, the mode, and the
-- backend each mode gets.  `twitter.new` is this module plus the client
-- table.
--
-- A configuration mistake is raised as a ConfigError (`config.error`) and
-- re-raised as a message by the public function that was called (`new`, or
-- a module-level call that makes the default client) at its caller's line,
-- through `config.guarded`.
-- @module scalekit.twitter.config

local errors = require "scalekit.twitter.errors"
local options = require "scalekit.twitter.options"
local policy = require "scalekit.twitter.policy"
local transport = require "scalekit.twitter.transport"
local oauth2 = require "scalekit.twitter.oauth2"
local scalekit = require "scalekit.twitter.scalekit"
local direct = require "scalekit.twitter.direct"

local M = {}

local ConfigError = {}

--- Raise a configuration mistake (caught by `guarded`).
function M.error(msg)
  error(setmetatable({ message = "scalekit.twitter.new: " .. msg }, ConfigError), 0)
end
local config_error = M.error

--- Run make(opts); re-raise a configuration mistake at `level` (as for
-- error, counted from the caller of guarded).
function M.guarded(make, opts, level)
  local ok, r = pcall(make, opts)
  if ok then return r end
  if getmetatable(r) == ConfigError then error(r.message, level + 1) end
  error(r, 0)
end

local function getenv(...)
  for i = 1, select("#", ...) do
    local v = os.getenv((select(i, ...)))
    if v and v ~= "" then return v end
  end
  return nil
end
M.getenv = getenv

local LOOPBACK = { ["127.0.0.1"] = true, ["localhost"] = true, ["[::1]"] = true }

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

local DIRECT_ONLY = { "bearer_token", "access_token", "refresh_token", "token_file", "consumer_key" }
local DIRECT_ENV = { "X_BEARER_TOKEN", "X_ACCESS_TOKEN", "X_REFRESH_TOKEN", "X_TOKEN_FILE", "X_CONSUMER_KEY" }

-- The OAuth 1.0a credentials of direct mode: all four, or none.
local OAUTH1 = { { "consumer_key", "X_CONSUMER_KEY" }, { "consumer_secret", "X_CONSUMER_SECRET" },
                 { "access_token", "X_ACCESS_TOKEN" }, { "access_token_secret", "X_ACCESS_TOKEN_SECRET" } }

-- The OAuth 1.0a credentials `{ consumer_key, consumer_secret, token,
-- token_secret }` when a consumer key or an access token secret is given
-- (options over the environment); nil otherwise.  Raises a ConfigError
-- naming what is missing of the four.
local function oauth1_credentials(opts)
  local v = {}
  for _, o in ipairs(OAUTH1) do v[o[1]] = opts[o[1]] or getenv(o[2]) end
  if not (v.consumer_key or v.access_token_secret) then return nil end
  local missing = {}
  for _, o in ipairs(OAUTH1) do
    if not v[o[1]] then missing[#missing + 1] = ("%s (%s)"):format(o[1], o[2]) end
  end
  if #missing > 0 then
    config_error("OAuth 1.0a needs consumer_key, consumer_secret, access_token and access_token_secret; missing "
                 .. table.concat(missing, ", "))
  end
  return { consumer_key = v.consumer_key, consumer_secret = v.consumer_secret,
           token = v.access_token, token_secret = v.access_token_secret }
end

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

-- The Scalekit backend for `opts`; fills the client's public fields.
local function new_scalekit(fields, opts, common)
  local env_url = opts.env_url or getenv("SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_ENV_URL")
  local client_id = opts.client_id or getenv("SCALEKIT_CLIENT_ID")
  local client_secret = opts.client_secret or getenv("SCALEKIT_CLIENT_SECRET")
  local missing = {}
  if not env_url then missing[#missing + 1] = "env_url (SCALEKIT_ENVIRONMENT_URL)" end
  if not client_id then missing[#missing + 1] = "client_id (SCALEKIT_CLIENT_ID)" end
  if not client_secret then missing[#missing + 1] = "client_secret (SCALEKIT_CLIENT_SECRET)" end
  if #missing > 0 then
    config_error("missing " .. table.concat(missing, ", ")
                 .. " (or, for direct mode, X_BEARER_TOKEN / X_ACCESS_TOKEN)")
  end
  check_secret("client_secret", client_secret)
  check_url("env_url", env_url, opts.allow_insecure_http)
  fields.env_url = env_url:gsub("/+$", "")
  -- one token for every client with these credentials
  local secret = scalekit.credentials(fields.env_url, client_id, client_secret)
  fields.client_id = client_id
  fields.identifier = opts.identifier or getenv("SCALEKIT_IDENTIFIER")
  fields.connection_name = opts.connection_name or "twitter"
  fields.connected_account_id = opts.connected_account_id
  fields.organization_id = opts.organization_id
  fields.user_id = opts.user_id
  common.env_url, common.client_id, common.secret = fields.env_url, client_id, secret
  common.redact = errors.redactor(secret)
  return scalekit.new(common)
end

-- The X API v2 backend for `opts`; fills the client's public fields.
local function new_direct(fields, opts, common)
  local secret = {
    bearer_token = opts.bearer_token or getenv("X_BEARER_TOKEN"),
    access_token = opts.access_token or getenv("X_ACCESS_TOKEN"),
    refresh_token = opts.refresh_token or getenv("X_REFRESH_TOKEN"),
    client_secret = opts.client_secret or getenv("X_CLIENT_SECRET"),
  }
  local token_file = opts.token_file or getenv("X_TOKEN_FILE")
  local oauth1 = oauth1_credentials(opts)
  if oauth1 then
    if secret.refresh_token or token_file then
      config_error("OAuth 1.0a tokens do not expire: refresh_token and token_file are for OAuth 2.0")
    end
    secret.consumer_secret, secret.access_token_secret = oauth1.consumer_secret, oauth1.token_secret
    check_secret("consumer_key", oauth1.consumer_key)
  end
  if not (secret.bearer_token or secret.access_token or secret.refresh_token or token_file) then
    config_error("direct mode needs bearer_token, access_token, refresh_token or token_file "
                 .. "(X_BEARER_TOKEN, X_ACCESS_TOKEN, X_REFRESH_TOKEN, X_TOKEN_FILE)")
  end
  for _, k in ipairs{ "bearer_token", "access_token", "refresh_token", "client_secret", "consumer_secret",
                      "access_token_secret" } do
    check_secret(k, secret[k])
  end
  local base = opts.api_base_url or getenv("X_API_BASE_URL") or oauth2.API_BASE_URL
  check_url("api_base_url", base, opts.allow_insecure_http)
  fields.api_base_url = base:gsub("/+$", "")
  fields.client_id = opts.client_id or getenv("X_CLIENT_ID")
  fields.token_file = token_file
  common.secret, common.client_id, common.api_base_url = secret, fields.client_id, fields.api_base_url
  common.expires_at, common.token_file, common.on_token = opts.expires_at, token_file, opts.on_token
  common.token_url, common.oauth1 = opts.token_url, oauth1
  common.redact = errors.redactor(secret)
  return direct.new(common)
end

--- The hooks a client gets: its own options over the module defaults
-- (`defaults`, see twitter.set_defaults).
local HOOKS = { "on_wait", "on_progress", "on_page" }

--- Check `opts` and make what a client is: its public fields (`mode`,
-- `env_url`, `identifier`, ...), its backend and its hooks.  Raises a
-- ConfigError for a mistake (missing credentials, unknown option or bad
-- value, a credential with control characters, plain-http URL to a remote
-- host).
-- @tparam[opt] table opts the options of twitter.new
-- @tparam table defaults the module's default hooks
-- @return fields, backend, hooks
function M.make(opts, defaults)
  if opts ~= nil and type(opts) ~= "table" then
    config_error("expected a table of options, got " .. type(opts))
  end
  opts = opts or {}
  local ok, why = pcall(options.check, opts, "scalekit.twitter.new", 1)
  if not ok then error(setmetatable({ message = why }, ConfigError), 0) end
  local hooks = {}
  for _, k in ipairs(HOOKS) do hooks[k] = opts[k] or defaults[k] end
  hooks.before, hooks.after = opts.before, opts.after
  local settings = policy.defaults(opts)
  settings.on_wait, settings.on_progress = hooks.on_wait, hooks.on_progress
  local fields = { mode = pick_mode(opts) }
  local common = {
    ca_file = opts.ca_file or getenv("SSL_CERT_FILE", "CURL_CA_BUNDLE"),
    proxy = opts.proxy, max_response = opts.max_response, timeout = opts.timeout,
    connect_timeout = opts.connect_timeout, stall_timeout = opts.stall_timeout,
    debug = debug_writer(opts.debug), settings = settings,
  }
  local backend
  if fields.mode == "direct" then
    backend = new_direct(fields, opts, common)
  else
    backend = new_scalekit(fields, opts, common)
  end
  return fields, backend, hooks
end

return M
