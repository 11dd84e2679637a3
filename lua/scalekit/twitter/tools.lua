--- Everything derived from the tool catalog: lookup, input validation,
-- JSON Schema and the public tool list.
--
-- Validation runs before any network traffic and turns a caller's input into
-- exactly what goes on the wire: IDs given as Lua integers become decimal
-- strings, integral floats for integer parameters become integers, array
-- parameters are marked so they encode as JSON arrays even when empty, and
-- `null` or nil values are dropped.
-- @module scalekit.twitter.tools

local core = require "scalekit.core"
local catalog = require "scalekit.twitter.catalog"
local errors = require "scalekit.twitter.errors"

local M = {}

local array_mt, object_mt, null = core.array_mt, core.object_mt, core.null
local PREFIX = "twitter_"

-- RFC 3339 date-time, as X's "format": "date-time" (fields range-checked).
local function is_date_time(v)
  local y, mo, d, h, mi, sec, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return false end
  rest = rest:gsub("^%.%d+", "")
  if not (rest == "Z" or rest == "z" or rest:find("^[+-]%d%d:%d%d$")) then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  return mo >= 1 and mo <= 12 and d >= 1 and d <= 31 and h <= 23 and mi <= 59 and sec <= 60
end

-- One-to-one DM conversations are two user IDs joined by "-"; group ones
-- are 15 to 19 digits.
local function is_dm_conversation_id(v)
  local a, b = v:match("^(%d+)%-(%d+)$")
  if a then return #a <= 19 and #b <= 19 end
  return #v >= 15 and #v <= 19 and v:find("^%d+$") ~= nil
end

-- String formats.  A character-class format is 1 to `max` characters of
-- the class `chars` (ranges as in a Lua pattern); the others are checked
-- by `check`.  `pattern` is the
-- JSON Schema (ECMA 262) pattern, X's own.
local FORMATS = {
  id = { chars = "0-9", max = 19, what = "a numeric ID string (1-19 digits)", items = "numeric IDs (1-19 digits)" },
  username = { chars = "A-Za-z0-9_", max = 15, what = "a username (letters, digits, _; up to 15)",
               items = "usernames (letters, digits, _; up to 15)" },
  space_id = { chars = "A-Za-z0-9", max = 13, what = "a Space ID (letters and digits; up to 13)",
               items = "Space IDs (letters and digits; up to 13)" },
  dm_conversation_id = { check = is_dm_conversation_id, pattern = "^([0-9]{1,19}-[0-9]{1,19}|[0-9]{15,19})$",
                         what = "a DM conversation ID (two user IDs joined by '-', or 15-19 digits)",
                         items = "DM conversation IDs" },
  date_time = { check = is_date_time, schema_format = "date-time",
                what = "an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)", items = "RFC 3339 times" },
}
for _, f in pairs(FORMATS) do
  if f.chars then
    f.pattern = "^[" .. f.chars .. "]{1," .. f.max .. "}$"
    -- A Lua class has the same ranges; anchored, the match is one scan.
    local whole, max, find = "^[" .. f.chars .. "]+$", f.max, string.find
    f.check = function(v)
      return type(v) == "string" and #v <= max and find(v, whole) ~= nil
    end
  else
    local check = f.check
    f.check = function(v) return type(v) == "string" and check(v) end
  end
end
M.FORMATS = FORMATS

-- True when `s` is a string in format `f`.
local function is_format(f, s)
  return type(s) == "string" and f.check(s)
end

-- X's constraints per tool and parameter (generated from its OpenAPI
-- document), applied over the catalog's own.
local x_constraints = require "scalekit.twitter.x_constraints"

-- Turns one catalog param entry into a full record; `x` holds X's
-- constraints for it.
local function normalize_param(entry, x)
  local p = {}
  if type(entry) == "string" then entry = { entry } end
  local base = catalog.shared[entry[1]]
  if base and entry[2] == nil then
    for k, v in pairs(base) do p[k] = v end
    p.type = base[1]
  end
  for k, v in pairs(entry) do p[k] = v end
  p.name, p.type, p[1], p[2] = entry[1], entry[2] or p.type, nil, nil
  if p.doc == nil and base then p.doc = base.doc end
  for k, v in pairs(x or {}) do p[k] = v end
  if p.type == "array" and p.max_len and not p.items_max_len then p.items_max_len = p.max_len end
  p.required = p.required == true
  assert(p.type and p.doc, "catalog: parameter without type or doc: " .. p.name)
  for _, k in ipairs{ "format", "items_format" } do
    assert(p[k] == nil or FORMATS[p[k]], "catalog: unknown format " .. tostring(p[k]))
  end
  -- a string param that is a comma-separated list
  p.list = p.type == "string" and (p.items_enum or p.items_format or p.max_items or p.min_items
                                   or p.items_max_len or p.items_min_len) and true or nil
  -- a string checked by its format alone (the usual ID): one check per call
  if p.type == "string" and p.format and not (p.max_len or p.min_len or p.enum or p.list) then
    p.only_format = FORMATS[p.format]
  end
  return p
end

-- The parameter every `self_id` tool has: the authenticated user's ID,
-- looked up (and cached per client) when it is left out.
local SELF_ID = { "id", "string", format = "id", doc = "ID of the authenticated user (looked up when omitted)" }

-- The path template of a tool split into literal pieces and parameter
-- names: "/2/users/{id}" -> { "/2/users/", "id", "" } (odd: text, even:
-- name), with `names` the set of path parameters.
local function route_of(path)
  local route, pos = { names = {} }, 1
  for s, name, e in path:gmatch("(){([%w_]+)}()") do
    route[#route + 1] = path:sub(pos, s - 1)
    route[#route + 1] = name
    route.names[name] = true
    pos = e
  end
  route[#route + 1] = path:sub(pos)
  return route
end

local SEQUENCES = { fan_out = true, chunked_upload = true, stream = true }

local function normalize_tool(entry)
  local t = {}
  for k, v in pairs(entry) do t[k] = v end
  t.short = t.name:sub(#PREFIX + 1)
  t.method, t.path = t.http:match("^(%u+) (/%S+)$")
  t.route = route_of(t.path)
  assert(t.sequence == nil or SEQUENCES[t.sequence], "catalog: unknown sequence " .. tostring(t.sequence))
  t.params, t.param, t.derived, t.scalekit_only = {}, {}, {}, {}
  local x = x_constraints[t.name] or {}
  local entries = entry.params
  if t.self_id then entries = table.move(entries, 1, #entries, 2, { SELF_ID }) end
  for i, e in ipairs(entries) do
    local p = normalize_param(e, x[type(e) == "table" and e[1] or e])
    assert(not t.param[p.name], "catalog: parameter given twice: " .. t.name .. "." .. p.name)
    t.params[i], t.param[p.name] = p, p
    if p.default_from then t.derived[#t.derived + 1] = p end
    if p.scalekit_only then t.scalekit_only[#t.scalekit_only + 1] = p.name end
  end
  local read = {}
  for _, p in ipairs(t.derived) do
    assert(t.param[p.default_from], "catalog: default_from names no parameter")
    read[p.default_from] = true
  end
  for name, p in pairs(t.param) do   -- a parameter not sent must be read by the SDK
    assert(p.wire ~= false or read[name], "catalog: " .. t.name .. "." .. name .. " is neither sent nor read")
  end
  table.sort(t.params, function(a, b) return a.name < b.name end)
  t.required = {}
  for _, p in ipairs(t.params) do
    if p.required and not p.scalekit_only then t.required[#t.required + 1] = p.name end
  end
  for _, rule in ipairs{ "together", "one_of" } do
    for _, name in ipairs(t[rule] or {}) do assert(t.param[name], "catalog: " .. rule .. " names no parameter") end
  end
  if t.param.pagination_token then t.paginate = "pagination_token"
  elseif t.param.next_token then t.paginate = "next_token" end
  return t
end

--- All tools, normalized, sorted by name.
M.list = {}
local by_name = {}
for i, entry in ipairs(catalog.tools) do
  local t = normalize_tool(entry)
  M.list[i] = t
  by_name[t.name], by_name[t.short] = t, t
end
table.sort(M.list, function(a, b) return a.name < b.name end)
-- The catalog and X's constraints are read once, into these records: let
-- their raw tables go (a fifth of the SDK's heap).  A later require of
-- either module loads it afresh.
catalog, x_constraints = nil, nil
package.loaded["scalekit.twitter.catalog"], package.loaded["scalekit.twitter.x_constraints"] = nil, nil

--- Levenshtein distance, capped: returns `cap + 1` once it is exceeded.
local function distance(a, b, cap)
  if math.abs(#a - #b) > cap then return cap + 1 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur, best = { [0] = i }, i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if cur[j] < best then best = cur[j] end
    end
    if best > cap then return cap + 1 end
    prev = cur
  end
  return prev[#b]
end

--- The candidate closest to `word`, or nil if none is close.
-- @tparam string word what the caller typed
-- @tparam table candidates array of names
function M.suggest(word, candidates)
  local cap = math.max(2, #word // 3)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(word, c, cap)
    if d <= cap and (best_d == nil or d < best_d) then best, best_d = c, d end
  end
  if best or #word < 4 then return best end
  for _, c in ipairs(candidates) do
    if c:find(word, 1, true) or word:find(c, 1, true) then return c end
  end
  return nil
end

--- The tool named `name` (full or short name), or nil.
function M.get(name)
  return by_name[name]
end

local all_names
--- Every full and short tool name.
function M.names()
  if not all_names then
    all_names = {}
    for _, t in ipairs(M.list) do
      all_names[#all_names + 1] = t.name
      all_names[#all_names + 1] = t.short
    end
  end
  return all_names
end

--- The tool for `name`, or nil and an `invalid_input` error with a suggestion.
function M.lookup(name)
  local t = by_name[name]
  if t then return t end
  local msg = ("unknown tool '%s'"):format(tostring(name))
  local guess = type(name) == "string" and M.suggest(name, M.names())
  if guess then msg = msg .. ("; did you mean '%s'?"):format(by_name[guess].name) end
  return nil, errors.new("invalid_input", msg, { tool = tostring(name) })
end

-- Validation ---------------------------------------------------------------

local function describe(v)
  if math.type(v) == "float" then return ("the float %s"):format(tostring(v)) end
  if type(v) == "string" then
    return ("the string %q"):format(#v > 40 and v:sub(1, 37) .. "..." or v)
  end
  if type(v) == "table" then return "a table" end
  return ("%s %s"):format(type(v), tostring(v))
end

local function quantity(n, what)
  return ("%d %s%s"):format(n, what, n == 1 and "" or "s")
end

local function expected(p)
  if p.type == "array" or p.list then
    local s = p.type == "array" and "an array of " or "comma-separated "
    local item = p.items_enum and ("values of " .. table.concat(p.items_enum, ", "))
                 or (p.items_format and FORMATS[p.items_format].items) or "strings"
    local unit = p.type == "array" and "items" or "comma-separated values"
    s = s .. item
    if p.min_items and p.max_items then s = s .. (" (%d to %d %s)"):format(p.min_items, p.max_items, unit)
    elseif p.max_items then s = s .. (" (up to %d %s)"):format(p.max_items, unit)
    elseif p.min_items and p.min_items > 1 then s = s .. (" (at least %d %s)"):format(p.min_items, unit) end
    return s
  end
  if p.type == "integer" and p.min then
    if p.max then return ("an integer from %d to %d"):format(p.min, p.max) end
    return ("an integer of at least %d"):format(p.min)
  end
  if p.format then return FORMATS[p.format].what end
  if p.enum then return "one of " .. table.concat(p.enum, ", ") end
  return ({ string = "a string", integer = "an integer", boolean = "a boolean" })[p.type]
end

-- Why the string s breaks a length, format or enum constraint (the item_
-- ones when `items`), or nil.
local function check_value(p, s, items)
  local prefix = items and "items_" or ""
  local min, max = p[prefix .. "min_len"], p[prefix .. "max_len"]
  if min or max then
    local n = utf8.len(s) or #s
    if max and n > max then return ("at most %s, got %d"):format(quantity(max, "character"), n) end
    if min and n < min then return ("at least %s, got %d"):format(quantity(min, "character"), n) end
  end
  local f = p[prefix .. "format"]
  f = f and FORMATS[f]
  if f and not f.check(s) then return f.what .. ", got " .. describe(s) end
  local enum = p[prefix .. "enum"]
  if enum then
    for _, v in ipairs(enum) do if v == s then return nil end end
    return "one of " .. table.concat(enum, ", ") .. ", got " .. describe(s)
  end
  return nil
end

-- The count of a list, or why it is too short or too long.
local function check_count(p, n)
  if (p.min_items and n < p.min_items) or (p.max_items and n > p.max_items) then
    return ("%s, got %d"):format(expected(p), n)
  end
  return nil
end

-- Check a string against its constraints; a comma-separated list is split
-- and each value checked (an empty one is refused: X reads it as a value).
local function check_string(p, s)
  local why = check_value(p, s, false)
  if why or not p.list then return why end
  local n = 0
  for item in (s .. ","):gmatch("(.-),") do
    n = n + 1
    if item == "" then return ("%s, got an empty value at position %d"):format(expected(p), n) end
    why = check_value(p, item, true)
    if why then return ("value %d: %s"):format(n, why) end
  end
  return check_count(p, n)
end

-- Coerce a scalar for a string parameter: integers become decimal strings.
local function to_string(p, v)
  local f = p.only_format
  if f and is_format(f, v) then return v end         -- the usual case: an ID
  if type(v) == "string" then
    if f then return nil, "expected " .. f.what .. ", got " .. describe(v) end
  elseif math.type(v) == "integer" then
    v = ("%d"):format(v)
  end
  if type(v) ~= "string" then
    local hint = ""
    if math.type(v) == "float" and (p.format == "id" or p.items_format == "id") then
      hint = " (IDs must be strings: a float has already lost digits)"
    end
    return nil, "expected " .. expected(p) .. ", got " .. describe(v) .. hint
  end
  local why = check_string(p, v)
  if why then return nil, "expected " .. why end
  return v
end

local function to_integer(p, v)
  local i = math.tointeger(v)
  if type(v) ~= "number" or i == nil then
    return nil, "expected " .. expected(p) .. ", got " .. describe(v)
  end
  if p.min and (i < p.min or i > p.max) then
    return nil, ("expected an integer from %d to %d, got %d"):format(p.min, p.max, i)
  end
  return i
end

local function to_array(p, v)
  if type(v) ~= "table" then return nil, "expected " .. expected(p) .. ", got " .. describe(v) end
  local n, out = #v, setmetatable({}, array_mt)
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      return nil, "expected " .. expected(p) .. ", got a table with key " .. describe(k)
    end
  end
  local why = check_count(p, n)
  if why then return nil, "expected " .. why end
  local item = p.item
  if not item then      -- the items as string parameters of their own
    item = { type = "string", format = p.items_format, enum = p.items_enum, max_len = p.items_max_len,
             min_len = p.items_min_len }
    p.item = item
  end
  for i = 1, n do
    local s, iwhy = to_string(item, v[i])
    if not s then return nil, ("item %d: %s"):format(i, iwhy) end
    out[i] = s
  end
  return out
end

local COERCE = {
  string = to_string,
  integer = to_integer,
  array = to_array,
  boolean = function(p, v)
    if type(v) ~= "boolean" then return nil, "expected " .. expected(p) .. ", got " .. describe(v) end
    return v
  end,
}

local function input_error(tool, param, why)
  local msg = param and ("%s: parameter '%s': %s"):format(tool.name, param, why)
                     or ("%s: %s"):format(tool.name, why)
  return nil, errors.new("invalid_input", msg, { tool = tool.name, param = param })
end

-- The tool's rules across parameters (catalog `together`, `one_of`) over
-- the validated params: params, or nil, err naming the first missing one.
local function check_rules(tool, out)
  local together = tool.together
  if together then
    local given, missing = nil, nil
    for _, name in ipairs(together) do
      if out[name] ~= nil then given = given or name else missing = missing or name end
    end
    if given and missing then
      return input_error(tool, missing, ("required with '%s' (%s go together)"):format(
        given, table.concat(together, " and ")))
    end
  end
  local one_of = tool.one_of
  if one_of then
    for _, name in ipairs(one_of) do if out[name] ~= nil then return out end end
    return input_error(tool, one_of[1], "give at least one of " .. table.concat(one_of, ", "))
  end
  return out
end

-- The careful pass: parameters in name order, so the error reported is
-- always the same one whatever the table's traversal order.
local function validate_sorted(tool, input)
  local out = {}
  local names = {}
  for k in pairs(input) do
    if type(k) ~= "string" then
      return input_error(tool, nil, "parameter names must be strings, got " .. describe(k))
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local p = tool.param[k]
    if not p then
      local known = {}
      for _, q in ipairs(tool.params) do known[#known + 1] = q.name end
      local guess = M.suggest(k, known)
      local why = guess and ("unknown parameter; did you mean '%s'?"):format(guess)
                  or (#known > 0 and "unknown parameter; known: " .. table.concat(known, ", ")
                      or "unknown parameter; this tool takes none")
      return input_error(tool, k, why)
    end
    local v = input[k]
    if v ~= null then
      local value, why = COERCE[p.type](p, v)
      if value == nil then return input_error(tool, k, why) end
      out[k] = value
    end
  end
  for _, p in ipairs(tool.params) do
    if p.required and not p.scalekit_only and out[p.name] == nil then
      return input_error(tool, p.name, "required parameter is missing (" .. expected(p) .. ")")
    end
  end
  return check_rules(tool, out)
end

--- Validate `input` for `tool` and return the params to send.
-- Valid input takes one pass in any order; any problem is reported by the
-- sorted pass, so the message does not depend on traversal order.
-- @tparam table tool a record from `list`
-- @tparam table input the caller's parameters
-- @return params (a new table; its keys are parameter names, so it encodes
--   as a JSON object, `{}` when empty) or nil, err
function M.validate(tool, input)
  local out, param = {}, tool.param
  for k, v in next, input do
    local p = param[k]                      -- found: k is a string
    if p == nil then return validate_sorted(tool, input) end
    local f = p.only_format
    if f and f.check(v) then                     -- the usual case: an ID
      out[k] = v
    elseif v ~= null then
      local value = COERCE[p.type](p, v)
      if value == nil then return validate_sorted(tool, input) end
      out[k] = value
    end
  end
  local required = tool.required
  for i = 1, #required do
    if out[required[i]] == nil then return validate_sorted(tool, input) end
  end
  if tool.together or tool.one_of then return check_rules(tool, out) end
  return out
end

-- Schema and public view -------------------------------------------------

-- The JSON Schema words for one string value's constraints (the items_
-- ones when `items`), set on s.
local function string_schema(s, p, items)
  local prefix = items and "items_" or ""
  s.minLength, s.maxLength = p[prefix .. "min_len"], p[prefix .. "max_len"]
  local enum = p[prefix .. "enum"]
  if enum then s.enum = setmetatable({ table.unpack(enum) }, array_mt) end
  local f = p[prefix .. "format"] and FORMATS[p[prefix .. "format"]]
  if f then s.pattern, s.format = f.pattern, f.schema_format end
  return s
end

local function param_schema(p)
  local s = setmetatable({ description = p.doc }, object_mt)
  if p.type == "array" then
    s.type = "array"
    s.items = string_schema(setmetatable({ type = "string" }, object_mt), p, true)
    s.minItems, s.maxItems = p.min_items, p.max_items
  else
    s.type = p.type
    s.minimum, s.maximum = p.min, p.max
    string_schema(s, p, false)
    if p.list then                    -- a comma-separated list: say what each value may be
      local each = {}
      if p.items_enum then each[#each + 1] = "each one of " .. table.concat(p.items_enum, ", ") end
      if p.items_format then each[#each + 1] = "each " .. FORMATS[p.items_format].what end
      if p.max_items then each[#each + 1] = ("at most %d values"):format(p.max_items) end
      if #each > 0 then s.description = ("%s (comma-separated: %s)"):format(p.doc, table.concat(each, "; ")) end
    end
  end
  return s
end

--- JSON Schema (draft 2020-12) of a tool's input, as a Lua table that
-- encodes with the right array/object shapes.
function M.schema(tool)
  local props, required = setmetatable({}, object_mt), setmetatable({}, array_mt)
  for _, p in ipairs(tool.params) do
    props[p.name] = param_schema(p)
    if p.required then required[#required + 1] = p.name end
  end
  local scopes = tool.scopes and #tool.scopes > 0
    and (" OAuth 2.0 scopes (direct mode): %s."):format(table.concat(tool.scopes, " ")) or ""
  return setmetatable({
    ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
    title = tool.name,
    description = tool.summary .. scopes,
    type = "object",
    properties = props,
    required = required,
    additionalProperties = false,
  }, object_mt)
end

--- The public description of a tool: name, description, params, X route,
-- who X accepts (`auth`) and the OAuth 2.0 scopes it needs (`scopes`).
function M.describe(tool)
  local params = {}
  for i, p in ipairs(tool.params) do
    params[i] = { name = p.name, type = p.type, required = p.required, description = p.doc }
  end
  return { name = tool.name, short_name = tool.short, description = tool.summary,
           params = params, http = tool.http, auth = tool.auth,
           scopes = table.move(tool.scopes or {}, 1, #(tool.scopes or {}), 1, setmetatable({}, array_mt)) }
end

--- The OAuth 2.0 scopes a set of tools needs, for `authorize_url`: the
-- union of their scopes, sorted, plus "offline.access" (a refresh token).
-- @tparam table names full or short tool names
-- @return array of scopes, or nil, err (invalid_input) for an unknown tool
function M.scopes_for(names)
  local set, out = { ["offline.access"] = true }, {}
  for _, name in ipairs(names) do
    local tool, err = M.lookup(name)
    if not tool then return nil, err end
    for _, s in ipairs(tool.scopes or {}) do set[s] = true end
  end
  for s in pairs(set) do out[#out + 1] = s end
  table.sort(out)
  return out
end

--- `message` (X's "You are not permitted ...") with a sentence on the
-- scopes `tool` needs and, when `granted` (a space-separated list, as X's
-- token answer gives it) is known, which of them the token lacks.
-- @return the message, and an array of the missing scopes (nil when the
--   token's scopes are not known)
function M.scope_message(message, tool, granted)
  local needed = tool.scopes or {}
  if #needed == 0 then return message, nil end
  local out = message:gsub("%s+$", "")
  if not out:find("[.!?]$") then out = out .. "." end
  out = out .. (" The tool needs the OAuth 2.0 scopes %s"):format(table.concat(needed, " "))
  if type(granted) ~= "string" then return out .. " (the token's scopes are not known).", nil end
  local have, missing = {}, {}
  for s in granted:gmatch("%S+") do have[s] = true end
  for _, s in ipairs(needed) do
    if not have[s] then missing[#missing + 1] = s end
  end
  if #missing == 0 then return out .. ", and the token has them all.", missing end
  return out .. "; the token lacks " .. table.concat(missing, " ") .. ".", missing
end

--- The check of the parameters Scalekit's tool takes and X's route does
-- not (`scalekit_only`), after `validate`: in Scalekit mode a required one
-- must be there; in direct mode none may be (it would be dropped).
-- Returns nil, or an `invalid_input` error naming the parameter.
function M.check_mode(tool, params, mode)
  for _, name in ipairs(tool.scalekit_only) do
    local p = tool.param[name]
    if mode == "scalekit" and p.required and params[name] == nil then
      return input_error(tool, name, "required parameter is missing (" .. expected(p) .. ")")
    elseif mode == "direct" and params[name] ~= nil then
      return errors.new("invalid_input", ("%s: parameter '%s': Scalekit's tool takes it, but X's %s %s does not "
        .. "(direct mode); leave it out"):format(tool.name, name, tool.method, tool.path),
        { tool = tool.name, param = name })
    end
  end
  return nil
end

return M
