-- agent_tools.lua - give an LLM every tool, then run the tool call it makes.
--
--   scalekit-lua examples/agent_tools.lua tools.json            -- writes the function definitions
--   scalekit-lua examples/agent_tools.lua tools.json \
--     '{"name":"twitter_recent_search","arguments":"{\"query\":\"lua\"}"}'
--
-- The definitions use the common function-calling shape:
--   { type = "function", ["function"] = { name, description, parameters = <JSON Schema> } }

local twitter = require "scalekit.twitter"

local out_path, call_json = arg[1] or "tools.json", arg[2]

local defs = twitter.array()
for _, t in ipairs(twitter.tools()) do
  defs[#defs + 1] = { type = "function",
                      ["function"] = { name = t.name, description = t.description,
                                       parameters = assert(twitter.schema(t.name)) } }
end
local f = assert(io.open(out_path, "w"))
f:write(twitter.json.encode(defs), "\n")
f:close()
print(("wrote %d tool definitions to %s"):format(#defs, out_path))

if call_json then
  -- A model's tool call: arguments arrive as a JSON string (or an object).
  local call = assert(twitter.json.decode(call_json))
  local args = call.arguments
  if type(args) == "string" then args = assert(twitter.json.decode(args)) end
  local tw = twitter.new{}
  local data, err = tw:execute(call.name, args or {})
  -- What goes back to the model: the output, or the error as data it can act on.
  local reply = data and { ok = true, output = data }
                or { ok = false, error = { kind = err.kind, message = err.message, param = err.param } }
  print(twitter.json.encode(reply))
end
