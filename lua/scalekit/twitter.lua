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
local paging = require "scalekit.twitter.paging"
local media = require "scalekit.twitter.media"
local stream = require "scalekit.twitter.stream"
local accounts = require "scalekit.twitter.accounts"
local options = require "scalekit.twitter.options"
local drift = require "scalekit.twitter.drift"

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

-- The client's account context, sent with every Scalekit call, rebuilt
-- only when one of the client's account fields changed.
local function client_context(self)
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

-- The call options that name an account, and the context field each sets.
local ACCOUNT_OPTIONS = { identifier = "identifier", connection_name = "connector",
                          connected_account_id = "connected_account_id", organization_id = "organization_id",
                          user_id = "user_id" }

-- The account context of one call: the client's, with the call's own
-- account options over it (false: none).
local function context(self, opts)
  local c = client_context(self)
  if opts == nil then return c end
  local own
  for opt, field in pairs(ACCOUNT_OPTIONS) do
    local v = opts[opt]
    if v ~= nil then
      if not own then
        own = {}
        for k, cv in pairs(c) do if k ~= "fields" then own[k] = cv end end
      end
      own[field] = v or nil
    end
  end
  return own or c
end

-- The cache key of an account context (nil in direct mode: one account).
local function account_key(ctx)
  if ctx == nil then return "" end
  return table.concat({ tostring(ctx.identifier), tostring(ctx.connector), tostring(ctx.connected_account_id),
                        tostring(ctx.organization_id), tostring(ctx.user_id) }, "\0")
end

local MAX_CACHED_IDS = 1000      -- own user ids kept per client (one per account used)

-- The ID of the authenticated X user of account context `ctx`, looked up
-- once per account and client (never shared between accounts).
local function my_id(self, ctx)
  local st = state[self]
  local key = account_key(ctx)
  st.me = st.me or { n = 0 }
  if st.me[key] then return st.me[key] end
  local data, err = call.execute(st.backend, tools.get("twitter_user_me"), {}, ctx, nil)
  if not data then return nil, err end
  local user = type(data) == "table" and (type(data.data) == "table" and data.data or data) or {}
  local id = user.id
  if math.type(id) == "integer" then id = ("%d"):format(id) end
  if type(id) ~= "string" then
    return nil, errors.new("protocol", "twitter_user_me returned no user id", { tool = "twitter_user_me" })
  end
  if st.me.n >= MAX_CACHED_IDS then st.me = { n = 0 } end
  st.me[key], st.me.n = id, st.me.n + 1
  return id
end

-- The params to send and (Scalekit mode) the account context of a call of
-- `tool`, or nil, err: validation, the mode's parameter check, the account
-- check and the "your own id" fill-in.
local function prepare_call(self, tool, input, opts)
  local params, err = tools.validate(tool, input or {})
  if not params then return nil, err end
  if tool.scalekit_only[1] then
    err = tools.check_mode(tool, params, self.mode)
    if err then return nil, err end
  end
  local ctx
  if self.mode == "scalekit" then
    ctx = context(self, opts)
    if not ctx.identifier and not ctx.connected_account_id then
      return nil, errors.new("invalid_input", tool.name .. ": no connected account: set identifier "
        .. "(or SCALEKIT_IDENTIFIER) or connected_account_id", { tool = tool.name })
    end
  end
  if tool.self_id and params.id == nil then
    params.id, err = my_id(self, ctx)
    if not params.id then return nil, err end
  end
  return params, ctx
end

-- What the `before` hook is told of a call's account: the mode, and in
-- Scalekit mode the account fields as the client options name them.
local function hook_context(self, ctx)
  if not ctx then return { mode = self.mode } end
  return { mode = self.mode, identifier = ctx.identifier, connection_name = ctx.connector,
           connected_account_id = ctx.connected_account_id, organization_id = ctx.organization_id,
           user_id = ctx.user_id }
end

-- The client's `before` hook on a call of tool `name`: the input to use, or
-- nil, a `refused` error when the hook says no (returns false[, why]).
local function apply_before(self, name, input, opts)
  local before = state[self].hooks.before
  input = input or {}
  if not before then return input end
  local out, why = before(name, input, hook_context(self, self.mode == "scalekit" and context(self, opts) or nil))
  if out == false then
    return nil, errors.new("refused", ("%s: refused by the before hook%s"):format(name,
      why ~= nil and ": " .. tostring(why) or ""), { tool = name })
  end
  if out ~= nil and type(out) ~= "table" then
    error(("scalekit.twitter: the before hook of %s returned a %s; it returns a table (the input), "
      .. "false (refuse) or nothing"):format(name, type(out)), 0)
  end
  return out or input
end

-- The client's `after` hook on a call's result: data, info (rewritten when
-- the hook returns a value), or nil, a `refused` error that still holds the
-- output and info (the call ran: nothing it returned is lost).
local function apply_after(self, name, data, info)
  local after = state[self].hooks.after
  if data == nil or not after then return data, info end
  local out, why = after(name, data, info)
  if out == false then
    return nil, errors.new("refused", ("%s: refused by the after hook%s"):format(name,
      why ~= nil and ": " .. tostring(why) or ""), { tool = name, output = data, info = info })
  end
  if out ~= nil then data = out end
  return data, info
end

-- A checked call of `tool`: the before hook, prepare, the pipeline, the
-- after hook.
local function run(self, tool, input, opts)
  local st = state[self]
  local hooks = st.hooks
  if hooks.before then
    local err
    input, err = apply_before(self, tool.name, input, opts)
    if not input then return nil, err end
  end
  local params, ctx = prepare_call(self, tool, input, opts)
  if not params then return nil, ctx end
  if hooks.after then return apply_after(self, tool.name, call.execute(st.backend, tool, params, ctx, opts)) end
  return call.execute(st.backend, tool, params, ctx, opts)
end

-- An unchecked call (`validate = false`, Scalekit mode): the tool name and
-- input go to execute_tool as given, for a tool the catalog does not know.
local function run_unchecked(self, name, input, opts)
  local known = tools.get(name)
  local tool = { name = known and known.name or name, scalekit_only = {} }
  local err
  input, err = apply_before(self, tool.name, input, opts)
  if not input then return nil, err end
  local ctx = context(self, opts)
  if not ctx.identifier and not ctx.connected_account_id then
    return nil, errors.new("invalid_input", tool.name .. ": no connected account: set identifier "
      .. "(or SCALEKIT_IDENTIFIER) or connected_account_id", { tool = tool.name })
  end
  return apply_after(self, tool.name, call.execute(state[self].backend, tool, input, ctx, opts))
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
      local data, info = run_unchecked(self, name, input, opts)
      return data, info
    end
  end
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
  return call.raw(state[self].backend, r, self.mode == "scalekit" and context(self, r.opts) or nil)
end

--- Close the client's connections now (they are also closed when the
-- client is garbage collected).
function Client:close()
  check_client(self, "close")
  state[self].backend:close()
end

-- opts with the client's on_page hook filled in when the caller set none.
local function with_page_hook(self, opts)
  local hook = state[self].hooks.on_page
  if hook == nil or (opts and opts.on_page ~= nil) then return opts end
  local o = { on_page = hook }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
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

local COUNT = { kind = "count", min = 1, max = math.maxinteger }
local PAGES_OPTIONS = { limit = COUNT, on_page = { kind = "function" } }
local ITEMS_OPTIONS = { limit = COUNT, pages = COUNT, expand = { kind = "boolean" }, on_page = { kind = "function" } }
local BATCH_OPTIONS = { concurrency = { kind = "count", min = 1, max = 64 } }
local BATCH_MAX_CALLS = 10000
local STREAM_OPTIONS = { reconnect = { kind = "boolean" }, sleep = { kind = "function" } }
local UPLOAD_OPTIONS = { file = { kind = "string" }, media_type = { kind = "string" },
                         media_category = { kind = "string" }, on_progress = { kind = "function" },
                         chunk_size = { kind = "count", min = 1, max = 5 * 1024 * 1024 },
                         on_wait = { kind = "function" } }

-- Raise (blaming the caller's caller) unless opts is nil or a table of the
-- per-call options plus `extra`.
local function check_call_options(self, opts, what, extra)
  check_table(opts, what .. " options", 3)
  if opts ~= nil then options.check(opts, "scalekit.twitter: " .. what, 3, extra, true, self.mode) end
end

--- Iterate over the pages of a paginating tool.
--
-- `for page, err in tw:pages("twitter_followers_get", { id = "..." }, { limit = 10 }) do ... end`.
-- A failure gives `false, err` once, then the loop ends.  `page.meta.next_token`
-- can be saved and passed back in the input to resume.
-- @tparam string name tool name
-- @tparam table input the tool's parameters
-- @tparam[opt] table opts `limit` (pages) and per-call options
function Client:pages(name, input, opts)
  check_client(self, "pages")
  check_table(input, "pages input", 2)
  check_call_options(self, opts, "pages", PAGES_OPTIONS)
  return paging.pages(self, paging_tool(name), input, with_page_hook(self, opts))
end

--- Iterate over the items of every page (`data` entries).
--
-- `for item, err in tw:items("twitter_recent_search", { query = "lua" }, { limit = 500 }) do ... end`.
-- @tparam string name tool name
-- @tparam table input the tool's parameters
-- @tparam[opt] table opts `limit` (items), `pages` (pages), `expand = true` joins
--   `includes` onto each item (`author`, `media`, `referenced`, `pinned_tweet`),
--   and per-call options
function Client:items(name, input, opts)
  check_client(self, "items")
  check_table(input, "items input", 2)
  check_call_options(self, opts, "items", ITEMS_OPTIONS)
  return paging.items(self, paging_tool(name), input, with_page_hook(self, opts))
end

--- Run many tool calls concurrently over the client's connection pool.
-- @tparam table calls array of `{ name, input [, opts] }`: an entry's own
--   `opts` may name its account (`identifier`, ...; Scalekit mode)
-- @tparam[opt] table opts `concurrency` (default 8, at most 64) and per-call options
-- @return array of `{ data =, info =, err = }` in input order
function Client:batch(calls, opts)
  check_client(self, "batch")
  if type(calls) ~= "table" then error("scalekit.twitter: batch expects an array of { name, input }", 2) end
  if #calls > BATCH_MAX_CALLS then
    error(("scalekit.twitter: batch takes at most %d calls"):format(BATCH_MAX_CALLS), 2)
  end
  check_call_options(self, opts, "batch", BATCH_OPTIONS)
  opts = opts or {}
  local results, jobs, slot = {}, {}, {}
  for i, c in ipairs(calls) do
    local name, input, own = c[1], c[2], c[3]
    if own ~= nil then
      check_table(own, "batch entry options", 2)
      options.check(own, "scalekit.twitter: batch entry " .. i, 2, nil, true, self.mode)
    end
    local tool, params, ctx, err
    if type(input) ~= "table" and input ~= nil then
      err = errors.new("invalid_input", tostring(name) .. ": input must be a table")
    else
      tool, err = tools.lookup(name)
      if tool then input, err = apply_before(self, tool.name, input, own or opts) end
      if tool and input then
        params, ctx = prepare_call(self, tool, input, own or opts)
        if not params then err = ctx end
      end
    end
    if err then
      results[i] = { err = err }
    else
      jobs[#jobs + 1], slot[#jobs + 1] = { tool = tool, params = params, ctx = ctx }, i
    end
  end
  local out = call.batch(state[self].backend, jobs, options.call_options(opts, { concurrency = true }),
                         opts.concurrency or 8)
  for k, r in ipairs(out) do
    if r.data ~= nil then
      local data, info = apply_after(self, jobs[k].tool.name, r.data, r.info)
      r = data ~= nil and { data = data, info = info } or { err = info }
    end
    results[slot[k]] = r
  end
  return results
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
  options.check(opts, "scalekit.twitter: upload_media", 2, UPLOAD_OPTIONS, true, self.mode)
  local hook = state[self].hooks.on_progress
  if opts.on_progress == nil and hook then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.on_progress = hook
    opts = o
  end
  return media.upload(self, opts)
end

-- The methods of each mode's clients: the common ones, plus the connected
-- accounts (Scalekit) or streams (direct).
local methods = { scalekit = {}, direct = {} }

local function backend_of(self) return state[self].backend end

accounts.install(methods.scalekit, {
  backend = backend_of,
  check = function(self, name) check_client(self, name, 3) end,
  context = context,
})

--- Read a streaming tool (direct mode): `on_event(event)` is called for each
-- event while it returns true; the stream reconnects with X's backoff.
-- @tparam string name e.g. "twitter_tweet_label_stream"
-- @tparam table input the tool's parameters
-- @tparam function on_event
-- @tparam[opt] table opts `reconnect` (default true), `sleep`, and per-call options
-- @return the number of events delivered, or nil, err
function methods.direct:stream(name, input, on_event, opts)
  check_client(self, "stream")
  check_table(input, "stream input", 2)
  if type(on_event) ~= "function" then error("scalekit.twitter: stream needs an on_event function", 2) end
  check_call_options(self, opts, "stream", STREAM_OPTIONS)
  local tool, err = tools.lookup(name)
  if not tool then return nil, err end
  local params
  params, err = tools.validate(tool, input or {})
  if not params then return nil, err end
  return stream.read(state[self].backend, tool, params, on_event, opts)
end

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

-- Every client method goes on both modes' method tables (plain tables, so
-- method lookups stay fast).
for _, t in pairs(methods) do
  for k, f in pairs(Client) do t[k] = f end
end

--- The methods every client has, in both modes (each mode's clients add
-- their own: connected accounts, streams).
M.Client = Client

return M
