--- Connected accounts (Scalekit mode): the user's X account as Scalekit
-- holds it, and the magic link that connects it.  These methods exist on
-- Scalekit clients only.
-- @module scalekit.twitter.accounts

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local scalekit = require "scalekit.twitter.scalekit"

local M = {}

local object_mt, array_mt = core.object_mt, core.array_mt

--- The names of the methods `install` adds.
M.NAMES = { "get_authorization_link", "get_connected_account", "get_or_create_connected_account",
            "list_connected_accounts", "delete_connected_account", "verify_connected_account_user" }

-- Raise unless v is nil or a table, blaming the caller of the method.
local function check_table(v, what)
  if v ~= nil and type(v) ~= "table" then
    error(("scalekit.twitter: %s expects a table, got %s"):format(what, type(v)), 3)
  end
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

--- Add the connected-account methods to `methods` (the method table of
-- Scalekit clients); `backend(self)` gives a client's backend and
-- `check(self, name)` raises unless self is a client.
function M.install(methods, backend, check)
  local function call(self, what, method, path, opts)
    return backend(self):account_call(method, path, what, opts)
  end

  --- A magic link the user opens to connect their X account.
  -- @tparam[opt] table opts `state`, `user_verify_url`
  -- @return `{ link =, expiry = }` or nil, err
  function methods:get_authorization_link(opts)
    check_table(opts, "get_authorization_link")
    opts = opts or {}
    return call(self, "get_authorization_link", "POST", "/api/v1/connected_accounts/magic_link",
      { json = account_ref(self, { state = opts.state, user_verify_url = opts.user_verify_url }) })
  end

  --- The connected account (with its status and authorization details).
  -- @return account table or nil, err (kind "not_found" when there is none)
  function methods:get_connected_account()
    local j, err = call(self, "get_connected_account", "GET", "/api/v1/connected_accounts/auth",
                        { query = account_ref(self) })
    if not j then return nil, err end
    return j.connected_account or setmetatable({}, object_mt)
  end

  --- The connected account, created first when it does not exist.  When
  -- `authorization_details` is given and the account exists, it is updated.
  -- @tparam[opt] table opts `authorization_details`
  -- @return account table or nil, err
  function methods:get_or_create_connected_account(opts)
    check_table(opts, "get_or_create_connected_account")
    local details = opts and opts.authorization_details
    local acct, err = self:get_connected_account()
    local body, j
    if acct then
      if not details then return acct end
      body = account_ref(self, { connected_account = { authorization_details = details } })
      j, err = call(self, "update_connected_account", "PUT", "/api/v1/connected_accounts", { json = body })
      return j and j.connected_account, err
    end
    if err.kind ~= "not_found" then return nil, err end
    body = account_ref(self, { connected_account = {
      authorization_details = details or { oauth_token = setmetatable({}, object_mt) } } })
    body.id = nil
    j, err = call(self, "create_connected_account", "POST", "/api/v1/connected_accounts", { json = body })
    return j and j.connected_account, err
  end

  --- Connected accounts of this connection and identifier, one page.
  -- @tparam[opt] table opts `page_size`, `page_token`, `query`, `provider`
  -- @return `{ connected_accounts =, next_page_token =, total_size = }` or nil, err
  function methods:list_connected_accounts(opts)
    check_table(opts, "list_connected_accounts")
    opts = opts or {}
    local q = account_ref(self, { page_size = opts.page_size, page_token = opts.page_token,
                                  query = opts.query, provider = opts.provider })
    q.id = nil
    local j, err = call(self, "list_connected_accounts", "GET", "/api/v1/connected_accounts", { query = q })
    if not j then return nil, err end
    j.connected_accounts = setmetatable(j.connected_accounts or {}, array_mt)
    return j
  end

  --- Delete the connected account.
  -- @return true or nil, err
  function methods:delete_connected_account()
    local j, err = call(self, "delete_connected_account", "POST", "/api/v1/connected_accounts:delete",
                        { json = account_ref(self) })
    if not j then return nil, err end
    return true
  end

  --- Confirm the user who completed the authorization flow.
  -- @tparam table opts `auth_request_id` (required), `identifier` (default: the client's)
  -- @return `{ post_user_verify_redirect_url = }` or nil, err
  function methods:verify_connected_account_user(opts)
    check_table(opts, "verify_connected_account_user")
    opts = opts or {}
    if type(opts.auth_request_id) ~= "string" or opts.auth_request_id == "" then
      return nil, errors.new("invalid_input",
        "verify_connected_account_user: auth_request_id (a string) is required", { param = "auth_request_id" })
    end
    return call(self, "verify_connected_account_user", "POST", "/api/v1/connected_accounts/user/verify",
      { json = scalekit.compact{ auth_request_id = opts.auth_request_id,
                                 identifier = opts.identifier or self.identifier } })
  end

  for _, name in ipairs(M.NAMES) do
    local method = methods[name]
    methods[name] = function(self, ...)
      check(self, name)
      return method(self, ...)         -- a tail call: errors still blame the caller
    end
  end
end

return M
