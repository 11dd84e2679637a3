--- The options of a client and of one call, described once: names, types
-- and bounds.  `twitter.new` and every per-call `opts` table are checked
-- against the same table, so a setting means the same thing (and is refused
-- the same way) wherever it is given.
-- @module scalekit.twitter.options

local M = {}

-- kind: "seconds" (a positive number), "count" (an integer from min to
-- max), "boolean", "function", "string", "table", "any".  `call`: may also
-- be given per call.
M.SPEC = {
  mode = { kind = "string" }, env_url = { kind = "string" }, client_id = { kind = "string" },
  client_secret = { kind = "string" },
  -- the account fields (Scalekit mode; per call too: the account of that
  -- call): false says "none" (over the environment's or the client's)
  identifier = { kind = "account", call = true, mode = "scalekit" },
  connection_name = { kind = "account", call = true, mode = "scalekit" },
  connected_account_id = { kind = "account", call = true, mode = "scalekit" },
  organization_id = { kind = "account", call = true, mode = "scalekit" },
  user_id = { kind = "account", call = true, mode = "scalekit" },
  ca_file = { kind = "string" }, proxy = { kind = "string" }, allow_insecure_http = { kind = "boolean" },
  max_response = { kind = "count", min = 1, max = math.maxinteger },
  debug = { kind = "any" },
  timeout = { kind = "seconds", call = true },
  connect_timeout = { kind = "seconds", call = true },
  stall_timeout = { kind = "seconds", call = true },
  max_retries = { kind = "count", min = 0, max = 10, call = true },
  retry_base = { kind = "seconds", call = true },
  wait_on_rate_limit = { kind = "boolean", call = true },
  max_wait = { kind = "seconds", call = true },
  on_wait = { kind = "function", call = true },
  on_progress = { kind = "function", call = true }, on_page = { kind = "function" },
  -- before(tool, input, ctx) / after(tool, output, info): rewrite or refuse
  before = { kind = "function" }, after = { kind = "function" },
  -- direct mode
  bearer_token = { kind = "string" }, access_token = { kind = "string" },
  refresh_token = { kind = "string" }, expires_at = { kind = "number" },
  token_file = { kind = "string" }, on_token = { kind = "function" },
  api_base_url = { kind = "string" }, token_url = { kind = "string" },
  -- direct mode, OAuth 1.0a user context (with access_token)
  consumer_key = { kind = "string" }, consumer_secret = { kind = "string" },
  access_token_secret = { kind = "string" },
}

--- The names of every client option, sorted.
M.NAMES = {}
--- The names of the per-call options, sorted.
M.CALL_NAMES = {}
for k, spec in pairs(M.SPEC) do
  M.NAMES[#M.NAMES + 1] = k
  if spec.call then M.CALL_NAMES[#M.CALL_NAMES + 1] = k end
end
table.sort(M.NAMES)
table.sort(M.CALL_NAMES)

local EXPECTED = {
  seconds = "a positive number of seconds", boolean = "a boolean", ["function"] = "a function",
  string = "a string", table = "a table", number = "a number", account = "a string (or false for none)",
}

-- Why v is not a valid value for `spec`, or nil.
local function problem(spec, v)
  local kind = spec.kind
  if kind == "any" then return nil end
  if kind == "seconds" then
    if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then return EXPECTED.seconds end
  elseif kind == "count" then
    if math.type(v) ~= "integer" or v < spec.min or v > spec.max then
      return spec.max == math.maxinteger and ("an integer of at least %d"):format(spec.min)
             or ("an integer from %d to %d"):format(spec.min, spec.max)
    end
  elseif kind == "account" then
    if type(v) ~= "string" and v ~= false then return EXPECTED.account end
  elseif type(v) ~= kind then
    return EXPECTED[kind]
  end
  return nil
end

--- The fields of `opts` that are not in the set `own` (a helper's own
-- options): the per-call options to hand on to each request; nil when there
-- are none.
function M.call_options(opts, own)
  local out
  for k, v in pairs(opts) do
    if not own[k] then
      out = out or {}
      out[k] = v
    end
  end
  return out
end

local function suggest(word, names)
  local tools = require "scalekit.twitter.tools"      -- lazy: tools needs nothing from here
  return type(word) == "string" and tools.suggest(word, names) or nil
end

--- Raise unless every field of `opts` is a known option with a valid value.
-- @tparam table opts the options
-- @tparam string where what to name in the message ("scalekit.twitter.new",
--   "twitter_post_create options")
-- @tparam integer level as for `error`, counted from the caller of `check`
-- @tparam[opt] table extra name -> spec of options the call takes besides
--   the per-call ones (e.g. `limit` for `pages`); with it (or with `call`
--   true) only per-call options are accepted
-- @tparam[opt] boolean call check as per-call options
-- @tparam[opt] string mode the client's mode: an option of the other mode
--   (the account fields are Scalekit's) is refused
function M.check(opts, where, level, extra, call, mode)
  call = call or extra ~= nil
  for k, v in pairs(opts) do
    local spec = (extra and extra[k]) or M.SPEC[k]
    if spec and call and not spec.call and not (extra and extra[k]) then spec = nil end
    if not spec then
      local names = call and M.CALL_NAMES or M.NAMES
      if extra then
        names = table.move(names, 1, #names, 1, {})
        for name in pairs(extra) do names[#names + 1] = name end
        table.sort(names)
      end
      local guess = suggest(k, names)
      error(("%s: unknown option '%s'%s"):format(where, tostring(k),
        guess and ("; did you mean '%s'?"):format(guess)
        or (call and "; per-call options: " .. table.concat(names, ", ") or "")), level + 1)
    end
    if mode and spec.mode and spec.mode ~= mode then
      error(("%s: '%s' is a Scalekit option (the account of the call); this client is in %s mode"):format(
        where, k, mode), level + 1)
    end
    local why = problem(spec, v)
    if why then
      error(("%s: '%s' must be %s, got %s"):format(where, k, why,
        type(v) == "string" and ("%q"):format(v) or tostring(v)), level + 1)
    end
  end
end

return M
