--- The shell commands of the scalekit-lua host: --tools, --schema, --call.
--
-- Output is made for pipelines: results are JSON on stdout (one document and
-- a newline), failures are JSON on stderr with an exit code that tells them
-- apart: 0 ok, 2 invalid input, 3 auth (including missing credentials),
-- 4 rate limited, 1 anything else.
-- @module scalekit.twitter.cli

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"

local M = {}

M.EXIT = { ok = 0, invalid_input = 2, auth = 3, reauth_required = 3, rate_limited = 4 }

local encode = twitter.json.encode

local function fail(err)
  local t = { kind = "error", message = tostring(err) }
  if twitter.errors.is(err) then
    t = {}
    for _, k in ipairs{ "kind", "message", "status", "code", "error_code", "tool", "param",
                        "execution_id", "retry_after" } do
      t[k] = err[k]
    end
  end
  io.stderr:write(encode({ error = t }), "\n")
  return M.EXIT[t.kind] or 1
end

function M.tools()
  for _, t in ipairs(twitter.tools()) do
    io.stdout:write(t.name, "\t", t.description, "\n")
  end
  return 0
end

function M.schema(name)
  if not name then return fail(twitter.errors.new("invalid_input", "--schema needs a tool name")) end
  local s, err = twitter.schema(name)
  if not s then return fail(err) end
  io.stdout:write(encode(s), "\n")
  return 0
end

function M.call(name, json)
  if not name then return fail(twitter.errors.new("invalid_input", "--call needs a tool name")) end
  if json == nil or json == "-" then
    json = (json == "-" or not core.isatty(0)) and io.stdin:read("a") or "{}"
  end
  if json:match("^%s*$") then json = "{}" end
  local input, jerr = twitter.json.decode(json)
  if type(input) ~= "table" or getmetatable(input) == twitter.array_mt then
    return fail(twitter.errors.new("invalid_input", "the input is not a JSON object: "
                                   .. (jerr or "got " .. (type(input) == "table" and "an array" or type(input))),
                                   { tool = name }))
  end
  local opts = {}
  if os.getenv("X_REFRESH_TOKEN") and not os.getenv("X_TOKEN_FILE") then
    -- X rotates refresh tokens: without a file the new one dies with this process
    opts.on_token = function()
      io.stderr:write("scalekit-lua: X issued a new refresh token and the old one no longer works; "
                      .. "it is not kept (set X_TOKEN_FILE or pass --token-file FILE)\n")
    end
  end
  local ok, client = pcall(twitter.new, opts)
  if not ok then
    return fail(twitter.errors.new("auth", (tostring(client):gsub("^[^:]+:%d+: ", ""))))
  end
  local data, info = client:execute(name, input)
  if data == nil then return fail(info) end
  io.stdout:write(encode(data), "\n")
  return 0
end

--- Entry point for the host: main("--tools" | "--schema" | "--call", ...).
function M.main(command, ...)
  if core.isatty(2) then twitter.set_defaults(require "scalekit.twitter.progress") end
  if command == "--tools" then return M.tools() end
  if command == "--schema" then return M.schema(...) end
  if command == "--call" then return M.call(...) end
  return fail(twitter.errors.new("invalid_input", "unknown command " .. tostring(command)))
end

return M
