--- One checked tool call of a client: its account context (Scalekit
-- mode), the `before` and `after` hooks, validation, the own-id fill-in,
-- then the call pipeline (scalekit.twitter.call).  Each function takes the
-- client and its private state record `st` (`backend`, `hooks`, the
-- cached context `ctx` and own user ids `me`); scalekit.twitter keeps the
-- records.
-- @module scalekit.twitter.invoke

local errors = require "scalekit.twitter.errors"
local tools = require "scalekit.twitter.tools"
local call = require "scalekit.twitter.call"

local M = {}

-- The error of a Scalekit call that names no account.
local function no_account(tool_name)
  return errors.new("invalid_input", tool_name .. ": no connected account: set identifier "
    .. "(or SCALEKIT_IDENTIFIER) or connected_account_id", { tool = tool_name })
end

-- The client's account context, sent with every Scalekit call, rebuilt
-- only when one of the client's account fields changed.
local function client_context(self, st)
  local get = rawget                       -- rawget: unset fields skip __index
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
function M.context(self, st, opts)
  local c = client_context(self, st)
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
local function my_id(st, ctx)
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
function M.prepare(self, st, tool, input, opts)
  local params, err = tools.validate(tool, input or {})
  if not params then return nil, err end
  if tool.scalekit_only[1] then
    err = tools.check_mode(tool, params, self.mode)
    if err then return nil, err end
  end
  local ctx
  if self.mode == "scalekit" then
    ctx = M.context(self, st, opts)
    if not ctx.identifier and not ctx.connected_account_id then
      return nil, no_account(tool.name)
    end
  end
  if tool.self_id and params.id == nil then
    params.id, err = my_id(st, ctx)
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
function M.before(self, st, name, input, opts)
  local before = st.hooks.before
  input = input or {}
  if not before then return input end
  local ctx = self.mode == "scalekit" and M.context(self, st, opts) or nil
  local out, why = before(name, input, hook_context(self, ctx))
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
function M.after(st, name, data, info)
  local after = st.hooks.after
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
function M.run(self, st, tool, input, opts)
  local hooks = st.hooks
  if hooks.before then
    local err
    input, err = M.before(self, st, tool.name, input, opts)
    if not input then return nil, err end
  end
  local params, ctx = M.prepare(self, st, tool, input, opts)
  if not params then return nil, ctx end
  if hooks.after then return M.after(st, tool.name, call.execute(st.backend, tool, params, ctx, opts)) end
  return call.execute(st.backend, tool, params, ctx, opts)
end

-- An unchecked call (`validate = false`, Scalekit mode): the tool name and
-- input go to execute_tool as given, for a tool the catalog does not know.
function M.run_unchecked(self, st, name, input, opts)
  local known = tools.get(name)
  local tool = { name = known and known.name or name, scalekit_only = {} }
  local err
  input, err = M.before(self, st, tool.name, input, opts)
  if not input then return nil, err end
  local ctx = M.context(self, st, opts)
  if not ctx.identifier and not ctx.connected_account_id then
    return nil, no_account(tool.name)
  end
  return M.after(st, tool.name, call.execute(st.backend, tool, input, ctx, opts))
end

return M
