--- `twitter.check_catalog(tw)`: the Twitter tools Scalekit lists against the
-- built-in catalog, so a tool or parameter added (or changed) on Scalekit's
-- side is noticed.
--
-- What counts as drift, per tool: a tool listed by one side only; a
-- parameter on one side only; a different JSON Schema type; a different
-- required flag, except where the SDK fills the parameter in itself (the
-- authenticated user's `id` of the self-id tools, a `default_from`
-- parameter), which Scalekit may well require.
-- @module scalekit.twitter.drift

local tools = require "scalekit.twitter.tools"

local M = {}

M.PAGE_SIZE = 100

-- Is `p` a parameter the SDK fills in when the caller leaves it out?
local function filled_in(tool, p)
  return (tool.self_id and p.name == "id") or p.default_from ~= nil
end

-- Append one difference to `out`.
local function add(out, kind, tool, param, ours, theirs, message)
  out[#out + 1] = { kind = kind, tool = tool, param = param, ours = ours, theirs = theirs,
                    message = param and ("%s.%s: %s"):format(tool, param, message) or ("%s: %s"):format(tool, message) }
end

-- The differences between one catalog tool and Scalekit's definition of it.
local function compare_tool(tool, def, out)
  local schema = type(def.input_schema) == "table" and def.input_schema or {}
  local props = type(schema.properties) == "table" and schema.properties or {}
  local required = {}
  for _, name in ipairs(type(schema.required) == "table" and schema.required or {}) do required[name] = true end
  for _, p in ipairs(tool.params) do
    local theirs = props[p.name]
    if theirs == nil then
      add(out, "param_missing", tool.name, p.name, p.type, nil, "in the catalog, not in Scalekit's listing")
    else
      local ttype = type(theirs) == "table" and theirs.type or nil
      if ttype ~= nil and ttype ~= p.type then
        add(out, "type", tool.name, p.name, p.type, ttype,
            ("type %s here, %s at Scalekit"):format(p.type, tostring(ttype)))
      end
      local treq = required[p.name] or false
      if treq ~= (p.required or false) and not (treq and filled_in(tool, p)) then
        add(out, "required", tool.name, p.name, p.required or false, treq,
            treq and "required at Scalekit, optional here" or "required here, optional at Scalekit")
      end
    end
  end
  local extra = {}
  for name in pairs(props) do
    if not tool.param[name] then extra[#extra + 1] = name end
  end
  table.sort(extra)
  for _, name in ipairs(extra) do
    add(out, "param_added", tool.name, name, nil, props[name].type, "at Scalekit, not in the catalog")
  end
end

--- Compare Scalekit's listed Twitter tools (every page of `list_tools`,
-- the tools whose name starts with "twitter_") with the catalog.
-- @tparam table client a Scalekit-mode client
-- @return report `{ ok = boolean, listed = n, drift = { { kind =, tool =,
--   param =, ours =, theirs =, message = }, ... } }` (drift sorted by tool,
--   then parameter; kinds "tool_added", "tool_missing", "param_added",
--   "param_missing", "type", "required"), or nil, err when the listing fails
function M.check(client)
  local listed, n = {}, 0
  for t, err in client:each("list_tools", { page_size = M.PAGE_SIZE }) do
    if t == false then return nil, err end
    local def = type(t) == "table" and t.definition
    if type(def) == "table" and type(def.name) == "string" and def.name:find("^twitter_") then
      if not listed[def.name] then n = n + 1 end
      listed[def.name] = def
    end
  end
  local drift = {}
  for _, tool in ipairs(tools.list) do
    local def = listed[tool.name]
    if def then
      compare_tool(tool, def, drift)
    else
      add(drift, "tool_missing", tool.name, nil, nil, nil, "in the catalog, not listed by Scalekit")
    end
  end
  local added = {}
  for name in pairs(listed) do
    if not tools.get(name) then added[#added + 1] = name end
  end
  table.sort(added)
  for _, name in ipairs(added) do
    add(drift, "tool_added", name, nil, nil, nil,
        "listed by Scalekit, not in the catalog (call it with { validate = false })")
  end
  table.sort(drift, function(a, b)
    if a.tool ~= b.tool then return a.tool < b.tool end
    return (a.param or "") < (b.param or "")
  end)
  return { ok = #drift == 0, listed = n, drift = drift }
end

return M
