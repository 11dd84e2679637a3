--- X's routes and parameter schemas (sandbox/x_routes.json, from X's
-- OpenAPI document) mapped onto the catalog: for a tool and one of its
-- parameters, the schema X checks that parameter's value against.  Used by
-- the boundary spec and by scripts/x_constraints.lua.

local core = require "scalekit.core"

local M = {}

--- The contents of the file at `path` (raises when it cannot be read).
M.read = require("support.fake").read
local read = M.read

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
M.ROUTES = assert(core.json_decode(read(here .. "/../../sandbox/x_routes.json"))).routes
local ROUTES = M.ROUTES

local function segments(path)
  local out = {}
  for s in path:gmatch("[^/]+") do out[#out + 1] = s end
  return out
end

-- X's route for a tool's request, and catalog path parameter -> X's name.
function M.route_of(tool)
  local want = segments(tool.path)
  for _, r in ipairs(ROUTES) do
    local have = segments(r.path)
    if r.method == tool.method and #have == #want then
      local names, same = {}, true
      for i, s in ipairs(want) do
        local a, b = s:match("^{(.+)}$"), have[i]:match("^{(.+)}$")
        if (a == nil) ~= (b == nil) or (a == nil and s ~= have[i]) then same = false; break end
        if a then names[a] = b end
      end
      if same then return r, names end
    end
  end
  return nil
end

-- The schema a dotted wire path ("a.b", "a[].b") leads to in a body schema,
-- and the schema of the array on the way ("a[]"), if any.
local function body_schema(schema, wire)
  local list
  for part in wire:gmatch("[^.]+") do
    if type(schema) ~= "table" then return nil end
    local name, is_list = part:match("^(.-)(%[%])$")
    schema = (schema.properties or {})[name or part]
    if is_list and schema then list, schema = schema, schema.items end
  end
  return schema, list
end

-- Where X's document leaves a value open that X constrains: the same ID
-- has a pattern on X's other routes (the conversation ID on GET
-- /2/dm_conversations/{id}/dm_events, a user ID everywhere), and an empty or
-- malformed one cannot name anything.
local DOCUMENT_FIXES = {
  ["twitter_dm_conversation_send.dm_conversation_id"] = {
    type = "string", pattern = "^([0-9]{1,19}-[0-9]{1,19}|[0-9]{15,19})$" },
  ["twitter_activity_subscription_create.user_id"] = { type = "string", pattern = "^[0-9]{1,19}$" },
}
M.DOCUMENT_FIXES = DOCUMENT_FIXES

-- X's schema for the value of catalog parameter p of tool: `schema` for one
-- value; `list` when X takes an array the SDK gets as an array, or as a
-- comma-separated string (`joined`).
function M.x_schema(tool, p)
  local fix = DOCUMENT_FIXES[tool.name .. "." .. p.name]
  if fix then return { schema = fix } end
  local route, names = M.route_of(tool)
  if not route then return nil end
  if names[p.name] then
    local q = route.params[names[p.name]]
    return q and { schema = q.schema }
  end
  local wire = p.wire or p.name
  if tool.method == "GET" or tool.method == "DELETE" then
    local q = route.params[wire] or (wire == "tweet.fields" and route.params["post.fields"])
    if not q then return nil end
    if q.schema.type == "array" then
      return { list = q.schema, schema = q.schema.items, joined = p.type == "string" }
    end
    return { schema = q.schema }
  end
  local body = route.body and route.body["application/json"]
  if not body then return nil end
  local s, list = body_schema(body, wire)
  if not s then return nil end
  if tool.fan_out == p.name then return { schema = s, fan_out = true } end      -- one POST per item
  if list then
    -- a string sent as one object of a list ("a[].b"): X checks it as one item
    if p.type == "string" and not p.split then return { schema = s } end
    return { list = list, schema = s, joined = p.type == "string" }
  end
  if s.type == "array" then return { list = s, schema = s.items or {}, joined = p.type == "string" } end
  return { schema = s }
end


return M
