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
-- are made from the catalog (`scalekit.twitter.catalog`) at load time; every
-- call goes through one pipeline (`scalekit.twitter.call`).
-- @module scalekit.twitter

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local tools = require "scalekit.twitter.tools"
local config = require "scalekit.twitter.config"
local call = require "scalekit.twitter.call"
local raw = require "scalekit.twitter.raw"
local oauth2 = require "scalekit.twitter.oauth2"
local accounts = require "scalekit.twitter.accounts"
local options = require "scalekit.twitter.options"
local drift = require "scalekit.twitter.drift"
local invoke = require "scalekit.twitter.invoke"
local bulk = require "scalekit.twitter.bulk"

local M = {}

--- Version of the SDK.
M._VERSION = core._VERSION
--- The JSON null sentinel: decoded JSON null, and a way to send one.
M.null = core.null
--- Metatable that marks a table as a JSON array for encoding.
M.array_mt = core.array_mt
--- Metatable that marks a table as a JSON object for encoding.
M.object_mt = core.object_mt
--- Error helpers (`errors.is(v)`, `errors.KINDS`).
M.errors = errors
-- The public JSON codec gives value | nil, message: the C core's nil,
-- kind, message without the kind, as io.open answers.
local json_encode, json_decode = core.json_encode, core.json_decode
local json = {}
function json.encode(value, root)
  local s, _, err = json_encode(value, root)
  return s, err
end
function json.decode(text, max_depth)
  local v, _, err = json_decode(text, max_depth)
  return v, err
end
--- The JSON codec the SDK uses: exact integers, `null`, `[]` vs `{}`.
-- `encode(value [, root])` returns a string or nil, message;
-- `decode(text [, max_depth])` returns a value or nil, message.
M.json = json

--- OAuth 2.0 helpers for direct mode: `authorize_url`, `exchange_code`,
-- `refresh`, `revoke`, `parse_redirect` (see `scalekit.twitter.oauth2`).
M.oauth2 = oauth2

--- Mark `t` (default: a new table) as a JSON array, so `{}` encodes as `[]`.
function M.array(t) return setmetatable(t or {}, core.array_mt) end
--- Mark `t` (default: a new table) as a JSON object.
function M.object(t) return setmetatable(t or {}, core.object_mt) end

-- The hooks clients made from now on get when their options set none.
local default_hooks = {}

--- Set the default progress hooks of the clients made from now on (the
-- scalekit-lua host sets them when stderr is a terminal):
-- `on_wait(seconds, why)` before a wait ("retry", "rate_limit",
-- "processing"), `on_progress(sent, total)` during uploads, `on_page(count)`
-- after each page of `pages`/`items`.  A hook left out is cleared.
-- @tparam table hooks
function M.set_defaults(hooks)
  if type(hooks) ~= "table" then error("scalekit.twitter.set_defaults expects a table of hooks", 2) end
  options.check(hooks, "scalekit.twitter.set_defaults", 2, {
    on_wait = { kind = "function" }, on_progress = { kind = "function" }, on_page = { kind = "function" } })
  default_hooks = { on_wait = hooks.on_wait, on_progress = hooks.on_progress, on_page = hooks.on_page }
end

-- Client state that must not show up when a client table is printed or
-- traversed (the backend holds the secrets), keyed by client: `backend`,
-- `hooks`, the cached own user id `me`, the account context `ctx`.
local state = setmetatable({}, { __mode = "k" })

-- The methods of every client; Scalekit and direct clients each get a copy
-- with the methods of their mode (connected accounts; streams).
local Client = {}

-- Raise unless `self` is a client; `level` as for check_table.
local function check_client(self, method, level)
  if state[self] == nil then
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

local EXECUTE_OPTIONS = { validate = { kind = "boolean" } }

--- Run a tool by name (full or short).
-- With `validate = false` (Scalekit mode) the name and input go to
-- Scalekit's execute_tool as given, unchecked: for a tool Scalekit added
-- after this SDK's catalog, or another connector's tool (pass its
-- `connection_name`).  Nothing is checked, filled in or refused before the
-- request; Scalekit's answer is the only judge.
-- @tparam string name e.g. "twitter_post_create"
-- @tparam[opt] table input the tool's parameters
-- @tparam[opt] table opts this call's `timeout`, `max_retries`,
--   `wait_on_rate_limit`, `max_wait`, ... (over the client's), the account
--   of the call (Scalekit mode), `validate` (default true)
-- @return data (the tool output), info `{ tool =, status =, execution_id =, rate_limit = }`
--   (`execution_id` in Scalekit mode); or nil, err
function Client:execute(name, input, opts)
  check_client(self, "execute")
  check_table(input, "tool input", 2)
  check_table(opts, "call options", 2)
  if opts ~= nil then
    options.check(opts, "scalekit.twitter: " .. tostring(name) .. " options", 2, EXECUTE_OPTIONS, true, self.mode)
    if opts.validate == false then
      if self.mode ~= "scalekit" then
        error("scalekit.twitter: validate = false sends a tool unchecked through Scalekit's execute_tool; "
              .. "direct mode needs the catalog's X route", 2)
      end
      if type(name) ~= "string" or not name:find("^[%w_]+$") then
        error("scalekit.twitter: execute needs a tool name of letters, digits and '_'", 2)
      end
      local data, info = invoke.run_unchecked(self, state[self], name, input, opts)
      return data, info
    end
  end
  local tool, err = tools.lookup(name)
  if not tool then return nil, err end
  return invoke.run(self, state[self], tool, input, opts)
end

--- The last rate-limit headers seen for a tool (full or short name) or a raw
-- request ("GET /2/users/me"): `{ limit =, remaining =, reset =, day = {...} }`,
-- or nil when none were seen.
function Client:rate_limit(name)
  check_client(self, "rate_limit")
  local tool = type(name) == "string" and tools.get(name)
  return state[self].backend.rate[tool and tool.name or name]
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
  local r = raw.check(req, self.mode)
  local st = state[self]
  return call.raw(st.backend, r, self.mode == "scalekit" and invoke.context(self, st, r.opts) or nil)
end

--- Close the client's connections now (they are also closed when the
-- client is garbage collected).
function Client:close()
  check_client(self, "close")
  state[self].backend:close()
end

-- The methods of each mode's clients: the common ones, plus the connected
-- accounts (Scalekit) or streams (direct).
local methods = { scalekit = {}, direct = {} }

local function backend_of(self) return state[self].backend end

bulk.install(Client, methods.direct, { state = state, check_client = check_client, check_table = check_table })

accounts.install(methods.scalekit, {
  backend = backend_of,
  check = function(self, name) check_client(self, name, 3) end,
  context = function(self, opts) return invoke.context(self, state[self], opts) end,
})

-- Which mode has the methods the other lacks (for the message when one is
-- called on the wrong client).
local MODE_OF = { stream = "direct" }
for _, name in ipairs(accounts.NAMES) do MODE_OF[name] = "scalekit" end

local client_mt = {}
for mode, t in pairs(methods) do
  -- an option left unset reads as nil; any other name is a programmer
  -- mistake and raises with a suggestion
  setmetatable(t, { __index = function(_, key)
    if options.SPEC[key] then return nil end
    if MODE_OF[key] then
      error(("scalekit.twitter: %s is available on %s clients; this client is in %s mode"):format(
        key, MODE_OF[key] == "direct" and "direct-mode" or "Scalekit", mode), 2)
    end
    local guess = type(key) == "string" and tools.suggest(key, tools.names())
    error(("scalekit.twitter: client has no method or field '%s'%s"):format(
      tostring(key), guess and ("; did you mean '%s'?"):format(guess) or ""), 2)
  end })
  client_mt[mode] = { __name = "scalekit.twitter.client", __index = t }
end

local function client_tostring(self)
  if self.mode == "direct" then
    return ("scalekit.twitter client (mode=direct, api_base_url=%s, client_id=%s)"):format(
      self.api_base_url, tostring(self.client_id))
  end
  return ("scalekit.twitter client (mode=%s, env_url=%s, client_id=%s, identifier=%s, connection=%s)"):format(
    self.mode, self.env_url, self.client_id, tostring(self.identifier), self.connection_name)
end
client_mt.scalekit.__tostring, client_mt.direct.__tostring = client_tostring, client_tostring

-- twitter.new without the re-raise (raises ConfigErrors).
local function make_client(opts)
  local fields, backend, hooks = config.make(opts, default_hooks)
  local self = setmetatable(fields, client_mt[fields.mode])
  state[self] = { backend = backend, hooks = hooks }
  return self
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
function M.new(opts)
  local client = config.guarded(make_client, opts, 2)    -- not a tail call: level 2 is our caller
  return client
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
  if not default_client then default_client = config.guarded(make_client, default_opts, level + 1) end
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

--- Compare the Twitter tools Scalekit lists with the built-in catalog, so
-- a tool or parameter added (or changed) on Scalekit's side is noticed.
-- @tparam table tw a Scalekit-mode client (it lists the tools)
-- @return report `{ ok =, listed =, drift = { { kind =, tool =, param =,
--   ours =, theirs =, message = }, ... } }` or nil, err
function M.check_catalog(tw)
  if getmetatable(tw) ~= client_mt.scalekit then
    error("scalekit.twitter.check_catalog expects a Scalekit-mode client", 2)
  end
  local report, err = drift.check(tw)
  return report, err
end

-- A tool call from a bound function: checks the arguments (raising at the
-- user's call: the bound functions make tail calls, so it is level 2 here),
-- then runs it.
local function dispatch(self, tool, input, opts)
  if state[self] == nil then check_client(self, tool.short, 2) end
  if input ~= nil and type(input) ~= "table" then check_table(input, tool.name, 2) end
  if opts ~= nil then
    if type(opts) ~= "table" then check_table(opts, tool.name .. " options", 2) end
    options.check(opts, "scalekit.twitter: " .. tool.name .. " options", 2, nil, true, self.mode)
  end
  return invoke.run(self, state[self], tool, input, opts)
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

-- Every client method goes on both modes' method tables (plain tables, so
-- method lookups stay fast).
for _, t in pairs(methods) do
  for k, f in pairs(Client) do t[k] = f end
end

--- The methods every client has, in both modes (each mode's clients add
-- their own: connected accounts, streams).
M.Client = Client

return M
