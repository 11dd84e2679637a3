--- Scalekit's own methods (Scalekit mode): the user's connected account,
-- the magic link that connects it, the environment's connections, and the
-- tools Scalekit lists.  These methods exist on Scalekit clients only.
--
-- Each takes one options table: its own fields, the per-call options
-- (`timeout`, `max_retries`, ...) and, for the account methods, the account
-- of this call (`identifier`, `connection_name`, `connected_account_id`,
-- `organization_id`, `user_id`) over the client's.  An unknown field
-- raises before any request.
-- @module scalekit.twitter.accounts

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local options = require "scalekit.twitter.options"
local scalekit = require "scalekit.twitter.scalekit"

local M = {}

local object_mt, array_mt = core.object_mt, core.array_mt

local STRING, TABLE = { kind = "string" }, { kind = "table" }
local PAGE = { page_size = { kind = "count", min = 1, max = 1000 }, page_token = STRING }

-- Each method: its route, its own options (name -> spec, as for
-- options.check), whether it takes the account of the call (`account`),
-- and the list its answer holds (`items`, for `each`).
local METHODS = {
  get_authorization_link = { "POST", "/api/v1/connected_accounts/magic_link", account = true,
                             own = { state = STRING, user_verify_url = STRING } },
  get_connected_account = { "GET", "/api/v1/connected_accounts/auth", account = true, own = {} },
  get_connected_account_details = { "GET", "/api/v1/connected_accounts/details", account = true, own = {} },
  create_connected_account = { "POST", "/api/v1/connected_accounts", account = true,
                               own = { authorization_details = TABLE, api_config = TABLE } },
  update_connected_account = { "PUT", "/api/v1/connected_accounts", account = true,
                               own = { authorization_details = TABLE, api_config = TABLE } },
  get_or_create_connected_account = { account = true,
                                      own = { authorization_details = TABLE, api_config = TABLE } },
  list_connected_accounts = { "GET", "/api/v1/connected_accounts", account = true, items = "connected_accounts",
                              own = { page_size = PAGE.page_size, page_token = STRING, query = STRING,
                                      provider = STRING, connection_names = TABLE } },
  delete_connected_account = { "POST", "/api/v1/connected_accounts:delete", account = true, own = {} },
  verify_connected_account_user = { "POST", "/api/v1/connected_accounts/user/verify",
                                    own = { auth_request_id = STRING, identifier = { kind = "account" } } },
  list_connections = { "GET", "/api/v1/connections/app", items = "connections",
                       own = { page_size = PAGE.page_size, page_token = STRING, provider = STRING, query = STRING } },
  list_tools = { "GET", "/api/v1/tools", items = "tools",
                 own = { filter = TABLE, page_size = PAGE.page_size, page_token = STRING } },
  list_scoped_tools = { "GET", "/api/v1/tools/scoped", account = true, items = "tools",
                        own = { filter = TABLE, page_size = PAGE.page_size, page_token = STRING } },
  list_available_tools = { "GET", "/api/v1/tools/available", account = true, items = "tools",
                           own = { page_size = PAGE.page_size, page_token = STRING } },
}

-- The fields of the filters Scalekit's tool listings take, and whether
-- each is a list (sent as repeated query keys).
local FILTERS = {
  list_tools = { summary = "boolean", provider = "string", identifier = "string", tool_name = "list",
                 query = "string", connector = "string", organization_id = "string", user_id = "string",
                 connected_account_id = "string" },
  list_scoped_tools = { providers = "list", tool_names = "list", connection_names = "list" },
}

--- The names of the methods `install` adds (and `each` on top).
M.NAMES = {}
for name in pairs(METHODS) do M.NAMES[#M.NAMES + 1] = name end
M.NAMES[#M.NAMES + 1] = "each"
table.sort(M.NAMES)

M.MAX_PAGES = 1000        -- pages `each` reads at most

local ACCOUNT_OPTIONS = { identifier = true, connection_name = true, connected_account_id = true,
                          organization_id = true, user_id = true }

-- Raise unless `filter` is a table of the fields tool listing `name`'s
-- filter takes, each of its type (a list: strings; one string is a list
-- of one).  `level` as for error, from the caller of check_filter.
local function check_filter(name, filter, level)
  local known = FILTERS[name]
  if type(filter) ~= "table" or not known then
    error(("scalekit.twitter: %s: 'filter' must be a table"):format(name), level + 1)
  end
  for k, v in pairs(filter) do
    local want = known[k]
    if not want then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("scalekit.twitter: %s: filter has no field '%s'; it takes %s"):format(
        name, tostring(k), table.concat(names, ", ")), level + 1)
    end
    local ok = type(v) == want
    if want == "list" then
      ok = type(v) == "string" or type(v) == "table"
      for _, item in ipairs(type(v) == "table" and v or {}) do ok = ok and type(item) == "string" end
    end
    if not ok then
      error(("scalekit.twitter: %s: filter.%s must be %s"):format(name, k,
        want == "list" and "a list of strings" or "a " .. want), level + 1)
    end
  end
end

-- Raise, blaming the caller of the caller of check_options, unless opts is
-- nil or a table of what method `name` takes.
local function check_options(name, opts)
  if opts == nil then return end
  if type(opts) ~= "table" then
    error(("scalekit.twitter: %s expects a table, got %s"):format(name, type(opts)), 3)
  end
  local m = METHODS[name]
  if not m.account then
    for k in pairs(opts) do
      if ACCOUNT_OPTIONS[k] and not m.own[k] then
        error(("scalekit.twitter: %s: '%s' does not apply (%s is not about one account)"):format(name, k, name), 3)
      end
    end
  end
  options.check(opts, "scalekit.twitter: " .. name, 3, m.own, true, "scalekit")
  if opts.filter ~= nil then check_filter(name, opts.filter, 3) end
  for i, v in ipairs(opts.connection_names or {}) do
    if type(v) ~= "string" then
      error(("scalekit.twitter: %s: connection_names[%d] must be a string"):format(name, i), 3)
    end
  end
end

-- The query fields of a (checked) tool-listing filter: "filter.<name>",
-- lists as arrays (sent as repeated keys), booleans as words.
local function filter_query(filter, q)
  for k, v in pairs(filter) do
    if type(v) == "boolean" then v = tostring(v) end
    q["filter." .. k] = v
  end
end

-- Each method's fields that are not per-call options: its own and the
-- account fields (options.call_options hands on the rest).
for _, m in pairs(METHODS) do
  m.not_call = {}
  for k in pairs(m.own) do m.not_call[k] = true end
  for k in pairs(ACCOUNT_OPTIONS) do m.not_call[k] = true end
end

--- Add the methods to `Client`, the method table of Scalekit clients.
-- @tparam table Client
-- @tparam table hooks `backend(self)` (a client's backend), `check(self, name)`
--   (raises unless self is a client) and `context(self, opts)` (the account
--   context of a call: the client's with the call's account options over it)
function M.install(Client, hooks)
  local backend, context = hooks.backend, hooks.context

  -- The fields that name the account of a call, as Scalekit's connected
  -- account messages spell them, plus `extra`.
  local function account_ref(self, opts, extra)
    local c = context(self, opts)
    local t = scalekit.compact{
      connector = c.connector, identifier = c.identifier, id = c.connected_account_id,
      organization_id = c.organization_id, user_id = c.user_id,
    }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  -- Send method `name`'s request: `query` or `json`; per-call options from opts.
  local function call(self, name, opts, req)
    local m = METHODS[name]
    return backend(self):account_call(m[1], m[2], name,
                                      { query = req.query, json = req.json,
                                        opts = opts and options.call_options(opts, m.not_call) })
  end

  -- A connected account from an answer (an empty object when there is none).
  local function account_of(j)
    return j.connected_account or setmetatable({}, object_mt)
  end

  -- The connected account body of a create or update.
  local function account_body(opts, default_details)
    local ca = setmetatable({}, object_mt)
    ca.authorization_details = opts and opts.authorization_details or default_details
    ca.api_config = opts and opts.api_config
    return ca
  end

  --- A magic link the user opens to connect their X account.
  -- @tparam[opt] table opts `state`, `user_verify_url`, the account
  -- @return `{ link =, expiry = }` or nil, err
  function Client:get_authorization_link(opts)
    return call(self, "get_authorization_link", opts, { json = account_ref(self, opts, {
      state = opts and opts.state, user_verify_url = opts and opts.user_verify_url }) })
  end

  --- The connected account, with its status and authorization details
  -- (the credentials).
  -- @tparam[opt] table opts the account
  -- @return account table or nil, err (kind "not_found" when there is none)
  function Client:get_connected_account(opts)
    local j, err = call(self, "get_connected_account", opts, { query = account_ref(self, opts) })
    if not j then return nil, err end
    return account_of(j)
  end

  --- The connected account without its credentials.
  -- @tparam[opt] table opts the account
  -- @return account table or nil, err (kind "not_found" when there is none)
  function Client:get_connected_account_details(opts)
    local j, err = call(self, "get_connected_account_details", opts, { query = account_ref(self, opts) })
    if not j then return nil, err end
    return account_of(j)
  end

  --- Create the connected account.
  -- @tparam[opt] table opts `authorization_details` (default: an empty OAuth
  --   token, to be filled by the authorization flow), `api_config`, the account
  -- @return account table or nil, err
  function Client:create_connected_account(opts)
    local body = account_ref(self, opts, {
      connected_account = account_body(opts, { oauth_token = setmetatable({}, object_mt) }) })
    body.id = nil
    local j, err = call(self, "create_connected_account", opts, { json = body })
    if not j then return nil, err end
    return account_of(j)
  end

  --- Update the connected account's credentials or API configuration.
  -- @tparam table opts `authorization_details`, `api_config` (at least one),
  --   the account
  -- @return account table or nil, err
  function Client:update_connected_account(opts)
    if opts == nil or (opts.authorization_details == nil and opts.api_config == nil) then
      error("scalekit.twitter: update_connected_account needs authorization_details or api_config", 2)
    end
    local j, err = call(self, "update_connected_account", opts, {
      json = account_ref(self, opts, { connected_account = account_body(opts) }) })
    if not j then return nil, err end
    return account_of(j)
  end

  --- The connected account, created first when it does not exist.  When
  -- `authorization_details` or `api_config` is given and the account
  -- exists, it is updated.
  -- @tparam[opt] table opts `authorization_details`, `api_config`, the account
  -- @return account table or nil, err
  function Client:get_or_create_connected_account(opts)
    local account_only
    if opts then
      account_only = {}
      for k, v in pairs(opts) do
        if k ~= "authorization_details" and k ~= "api_config" then account_only[k] = v end
      end
    end
    local acct, err = self:get_connected_account(account_only)
    if acct then
      if not (opts and (opts.authorization_details or opts.api_config)) then return acct end
      return self:update_connected_account(opts)
    end
    if err.kind ~= "not_found" then return nil, err end
    return self:create_connected_account(opts)
  end

  --- Connected accounts of this connection and identifier, one page.
  -- @tparam[opt] table opts `page_size`, `page_token`, `query`, `provider`,
  --   `connection_names` (a list), the account
  -- @return `{ connected_accounts =, next_page_token =, total_size = }` or nil, err
  function Client:list_connected_accounts(opts)
    local q = account_ref(self, opts, opts and {
      page_size = opts.page_size, page_token = opts.page_token, query = opts.query,
      provider = opts.provider, connection_names = opts.connection_names })
    q.id = nil
    local j, err = call(self, "list_connected_accounts", opts, { query = q })
    if not j then return nil, err end
    j.connected_accounts = setmetatable(j.connected_accounts or {}, array_mt)
    return j
  end

  --- Delete the connected account.
  -- @tparam[opt] table opts the account
  -- @return true or nil, err
  function Client:delete_connected_account(opts)
    local j, err = call(self, "delete_connected_account", opts, { json = account_ref(self, opts) })
    if not j then return nil, err end
    return true
  end

  --- Confirm the user who completed the authorization flow.
  -- @tparam table opts `auth_request_id` (required), `identifier` (default: the client's)
  -- @return `{ post_user_verify_redirect_url = }` or nil, err
  function Client:verify_connected_account_user(opts)
    if opts == nil or type(opts.auth_request_id) ~= "string" or opts.auth_request_id == "" then
      return nil, errors.new("invalid_input",
        "verify_connected_account_user: auth_request_id (a string) is required", { param = "auth_request_id" })
    end
    return call(self, "verify_connected_account_user", opts, {
      json = scalekit.compact{ auth_request_id = opts.auth_request_id,
                               identifier = context(self, opts).identifier } })
  end

  --- The environment's connections (Scalekit's app connections), one page.
  -- Each has `connection_name` (its key id) next to Scalekit's fields.
  -- @tparam[opt] table opts `page_size`, `page_token`, `provider` (e.g. "TWITTER"), `query`
  -- @return `{ connections =, next_page_token =, total_size = }` or nil, err
  function Client:list_connections(opts)
    local j, err = call(self, "list_connections", opts, { query = opts and scalekit.compact{
      page_size = opts.page_size, page_token = opts.page_token, provider = opts.provider, query = opts.query } })
    if not j then return nil, err end
    j.connections = setmetatable(j.connections or {}, array_mt)
    for _, c in ipairs(j.connections) do
      if type(c) == "table" and c.connection_name == nil then c.connection_name = c.key_id end
    end
    return j
  end

  -- One page of a tool listing `name`: filter and paging in the query.
  local function list_page(self, name, opts, q)
    if opts and opts.filter ~= nil then filter_query(opts.filter, q) end
    if opts then q.page_size, q.page_token = opts.page_size, opts.page_token end
    local j, err = call(self, name, opts, { query = scalekit.compact(q) })
    if not j then return nil, err end
    j.tools = setmetatable(j.tools or {}, array_mt)
    return j
  end

  --- Tools Scalekit lists (every connector's, unless the filter narrows it),
  -- one page.  Each tool has `definition` (`name`, `description`,
  -- `input_schema`, ...) as Scalekit describes it.
  -- @tparam[opt] table opts `filter` (`provider`, `tool_name` (a list),
  --   `query`, `connector`, `identifier`, `summary`, ...), `page_size`, `page_token`
  -- @return `{ tools =, tool_names =, next_page_token =, total_size = }` or nil, err
  function Client:list_tools(opts)
    return list_page(self, "list_tools", opts, {})
  end

  --- The tools the account's connections allow (connector's page: "list
  -- the tools available for the current user first"), one page.  Each entry
  -- is `{ tool =, identifier =, connected_account_id = }`.
  -- @tparam[opt] table opts `filter` (`providers`, `tool_names`,
  --   `connection_names`: lists), `page_size`, `page_token`, the account
  -- @return `{ tools =, next_page_token =, total_size = }` or nil, err
  function Client:list_scoped_tools(opts)
    return list_page(self, "list_scoped_tools", opts, { identifier = context(self, opts).identifier })
  end

  --- The tools available to the account, one page.
  -- @tparam[opt] table opts `page_size`, `page_token`, the account
  -- @return `{ tools =, next_page_token =, total_size = }` or nil, err
  function Client:list_available_tools(opts)
    return list_page(self, "list_available_tools", opts, { identifier = context(self, opts).identifier })
  end

  --- Iterate over every item of a listing, page after page:
  -- `for tool, err in tw:each("list_tools", { filter = { provider = "TWITTER" } }) do ... end`.
  -- A failure gives `false, err` once, then the loop ends; at most
  -- `MAX_PAGES` pages are read, and a page token seen twice ends it.
  -- @tparam string name "list_tools", "list_scoped_tools", "list_available_tools",
  --   "list_connected_accounts" or "list_connections"
  -- @tparam[opt] table opts the method's options (without `page_token`), and `limit` (items)
  function Client:each(name, opts)
    local m = METHODS[name]
    if not (m and m.items) then
      local lists = {}
      for n, spec in pairs(METHODS) do if spec.items then lists[#lists + 1] = n end end
      table.sort(lists)
      error(("scalekit.twitter: each takes %s, got %s"):format(table.concat(lists, ", "), tostring(name)), 2)
    end
    local own, limit = {}, nil
    for k, v in pairs(opts or {}) do
      if k == "limit" then limit = v else own[k] = v end
    end
    if limit ~= nil and (math.type(limit) ~= "integer" or limit < 1) then
      error("scalekit.twitter: each: 'limit' must be an integer of at least 1", 2)
    end
    check_options(name, own)
    local page, i, pages, seen, given, done = nil, 0, 0, {}, 0, false
    return function()
      while not done do
        if page and i < #page[m.items] then
          i = i + 1
          given = given + 1
          if limit and given >= limit then done = true end
          return page[m.items][i]
        end
        local token = page and page.next_page_token
        if page and (token == nil or token == "" or seen[token] or pages >= M.MAX_PAGES) then
          done = true
          break
        end
        if token then seen[token] = true end
        own.page_token = token
        local err
        page, err = Client[name](self, own)
        pages, i = pages + 1, 0
        if not page then
          done = true
          return false, err
        end
      end
      return nil
    end
  end

  for name in pairs(METHODS) do
    local method = Client[name]
    Client[name] = function(self, opts, ...)
      hooks.check(self, name)
      check_options(name, opts)
      return method(self, opts, ...)   -- a tail call: errors still blame the caller
    end
  end
  local each = Client.each
  Client.each = function(self, ...)
    hooks.check(self, "each")
    return each(self, ...)
  end
end

return M
