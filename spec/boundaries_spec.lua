-- The SDK accepts exactly what X accepts: for every catalog parameter that
-- reaches X, boundary values taken from X's own schema for it (OpenAPI,
-- sandbox/x_routes.json: enums, patterns, lengths, ranges, list sizes,
-- RFC 3339 times) are judged by the fake X's validator and by the SDK's
-- validation, and the two verdicts must agree.

local tools = require "scalekit.twitter.tools"
local core = require "scalekit.core"
local fake = require "support.fake"

local xroutes = require "support.xroutes"
local read = xroutes.read
local x_schema = xroutes.x_schema

local CORPUS = {
  "", "a", "0", "1", "12", "-1", "12345678901234", "123456789012345", "1234567890123456789",
  "12345678901234567890", "1-2", "1234567890123456789-1234567890123456789", "12345678901234567890-1", "12-",
  "abc", "abc_DEF1", "A_1", ("a"):rep(15), ("a"):rep(16), "abcdefghijklm", "abcdefghijklmn",
  "1YqKDqWqdPLsV", "x y", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123Z", "2026-01-01T00:00:00+02:00",
  "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01T25:00:00Z", "image/png",
  "video/mp4", "tweet_image", "bogus",
}

-- Candidate strings for a string schema: the corpus, the enum (and a
-- wrong-case variant), and the length edges.
local function strings(s)
  local out, seen = {}, {}
  local function add(v) if not seen[v] then seen[v] = true; out[#out + 1] = v end end
  for _, v in ipairs(CORPUS) do add(v) end
  for _, v in ipairs(s.enum or {}) do add(v); add(v:upper()) end
  for _, n in ipairs{ s.minLength, s.maxLength } do
    if n and n <= 5000 then
      for d = -1, 1 do if n + d >= 0 then add(("a"):rep(n + d)) end end
    end
  end
  return out
end

local function integers(s)
  local out, seen = {}, {}
  for _, v in ipairs{ 0, 1, -1, s.minimum and s.minimum - 1, s.minimum, s.maximum, s.maximum and s.maximum + 1 } do
    if v and not seen[v] then seen[v] = true; out[#out + 1] = math.tointeger(v) end
  end
  return out
end

local x          -- the fake X
local function x_verdicts(schema, values)
  if #values == 0 then return {} end
  return x:control("validate", { schema = schema, values = values }).valid
end

-- Lists of n copies of a value X accepts as an item (n at the list's edges).
local function list_sizes(list, good)
  local out = {}
  local min, max = list.minItems, list.maxItems
  for _, n in ipairs{ (min or 0) - 1, min or 1, max, max and max + 1 } do
    if n and n >= 0 then
      local l = setmetatable({}, core.array_mt)
      for i = 1, n do l[i] = good end
      out[#out + 1] = l
    end
  end
  return out
end

-- A value the SDK and X both accept for p, for the required parameters
-- around the one under test.
local samples = {}

describe("validation matches X's OpenAPI document", function()
  setup(function() x = fake.start{ script = "fake_x.py" } end)
  teardown(function() x:stop() end)

  it("for every catalog parameter with a pattern, range, enum, length or list size", function()
    local mismatches, checked = {}, 0
    for _, tool in ipairs(tools.list) do
      -- one valid sample per parameter first (the others' companions)
      local cases = {}
      for _, p in ipairs(tool.params) do
        local xs = p.type ~= "boolean" and x_schema(tool, p)
        if xs and xs.schema then
          local values, wire = {}, {}
          if p.type == "integer" then
            values = integers(xs.schema)
            wire = values
          else
            local items = strings(xs.schema)
            local ok = x_verdicts(xs.schema, items)
            local good
            for i, v in ipairs(items) do if ok[i] and v ~= "" then good = good or v end end
            if xs.list or xs.fan_out then
              -- single items, then list sizes around X's bounds
              local lists = {}
              for _, v in ipairs(items) do lists[#lists + 1] = setmetatable({ v }, core.array_mt) end
              if good and xs.list then
                for _, l in ipairs(list_sizes(xs.list, good)) do lists[#lists + 1] = l end
              end
              for _, l in ipairs(lists) do
                values[#values + 1] = xs.joined and table.concat(l, ",") or l
                wire[#wire + 1] = l
              end
            else
              values, wire = items, items
            end
          end
          -- X's verdict on a list: its size within X's bounds, every item valid
          local verdict
          if xs.list or xs.fan_out then
            local l = xs.list or { minItems = 1 }
            verdict = {}
            for i, items in ipairs(wire) do
              local all = #items >= (l.minItems or 0) and #items <= (l.maxItems or math.huge)
              for _, ok in ipairs(x_verdicts(xs.schema, items)) do all = all and ok end
              verdict[i] = all
            end
          else
            verdict = x_verdicts(xs.schema, wire)
          end
          for i, v in ipairs(values) do
            if verdict[i] and samples[tool.name .. "." .. p.name] == nil and v ~= "" then
              samples[tool.name .. "." .. p.name] = v
            end
          end
          cases[#cases + 1] = { p = p, values = values, verdict = verdict }
        end
      end
      for _, case in ipairs(cases) do
        local p = case.p
        for i, v in ipairs(case.values) do
          local input = {}
          for _, q in ipairs(tool.params) do
            if (q.required or (tool.together and tool.together[q.name])) and q.name ~= p.name then
              local sample = samples[tool.name .. "." .. q.name]
              if sample == nil then
                sample = (q.type == "boolean" and true) or (q.format == "id" and "1720000000000000001")
                         or (q.type == "integer" and 10) or "value"
              end
              input[q.name] = sample
            end
          end
          input[p.name] = v
          local params, err = tools.validate(tool, input)
          local sdk_ok = params ~= nil or err.param ~= p.name
          checked = checked + 1
          if sdk_ok ~= case.verdict[i] then
            local shown = type(v) == "table" and ("[" .. (#v > 3 and (#v .. " items") or table.concat(v, ",")) .. "]")
                          or ("%q"):format(tostring(v):sub(1, 40))
            mismatches[#mismatches + 1] = ("%s.%s = %s: X %s, the SDK %s"):format(tool.name, p.name, shown,
              case.verdict[i] and "accepts" or "refuses", sdk_ok and "accepts" or ("refuses (" .. err.message .. ")"))
          end
        end
      end
    end
    assert.is_true(checked > 1000, "only " .. checked .. " values checked")
    assert.same({}, mismatches)
  end)

  it("uses constraints that are what scripts/x_constraints.lua makes of x_routes.json", function()
    local p = io.popen(("cd %s && LUA_PATH='%s' LUA_CPATH='%s' lua5.4 scripts/x_constraints.lua"):format(
      fake.ROOT, package.path, package.cpath))
    local made = p:read("a")
    p:close()
    assert.equals(read(fake.ROOT .. "/lua/scalekit/twitter/x_constraints.lua"), made,
                  "stale: run make x-constraints")
  end)
end)
