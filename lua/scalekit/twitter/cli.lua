--- The shell commands of the scalekit-lua host: --tools, --schema, --call,
-- --request, --upload and --mcp (`scalekit-lua --help` and scalekit-lua(1)
-- list their options).
--
-- Output is made for pipelines: results are JSON on stdout (one document and
-- a newline; `--call --all` gives one item per line, JSON Lines), failures
-- are JSON on stderr with an exit code that tells them apart: 0 ok,
-- 2 invalid input or usage, 3 auth (including missing credentials),
-- 4 rate limited, 1 anything else.
-- @module scalekit.twitter.cli

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"

local M = {}

M.EXIT = { ok = 0, invalid_input = 2, auth = 3, reauth_required = 3, rate_limited = 4 }

local encode = twitter.json.encode
local new_error = twitter.errors.new

-- The options each command takes after its name: "flag" (no value),
-- "value" (the next argument) or "list" (repeatable value).
local COMMAND_OPTIONS = {
  ["--tools"] = {},
  ["--schema"] = {},
  ["--call"] = { ["--identifier"] = "value", ["--all"] = "flag", ["--limit"] = "value" },
  ["--request"] = { ["--identifier"] = "value", ["--param"] = "list", ["--body"] = "value" },
  ["--upload"] = { ["--identifier"] = "value", ["--media-type"] = "value", ["--media-category"] = "value" },
  ["--mcp"] = { ["--read-only"] = "flag", ["--tools"] = "value", ["--confirm-writes"] = "flag" },
}
-- How many positional arguments each command takes (at least, at most).
local POSITIONAL = {
  ["--tools"] = { 0, 0 }, ["--schema"] = { 1, 1 }, ["--call"] = { 1, 2 },
  ["--request"] = { 1, 2 }, ["--upload"] = { 1, 1 }, ["--mcp"] = { 0, 1 },
}
local USAGE = {
  ["--tools"] = "--tools",
  ["--schema"] = "--schema TOOL",
  ["--call"] = "--call TOOL [JSON|-] [--all [--limit N]] [--identifier ID]",
  ["--request"] = "--request [METHOD] PATH [--param NAME=VALUE ...] [--body JSON|-] [--identifier ID]",
  ["--upload"] = "--upload FILE [--media-type TYPE] [--media-category CAT] [--identifier ID]",
  ["--mcp"] = "--mcp [--read-only] [--tools PATTERN,...] [--confirm-writes] [script.lua]",
}

-- Writes err as `{"error": {...}}` on stderr; returns the exit code of its kind.
local function fail(err)
  local t = { kind = "error", message = tostring(err) }
  if twitter.errors.is(err) then
    t = {}
    for _, k in ipairs{ "kind", "message", "status", "code", "error_code", "tool", "param",
                        "execution_id", "retry_after", "identifier" } do
      t[k] = err[k]
    end
  end
  io.stderr:write(encode({ error = t }), "\n")
  return M.EXIT[t.kind] or 1
end

local function usage_error(command, message)
  return fail(new_error("invalid_input", ("%s; usage: scalekit-lua %s"):format(message, USAGE[command])))
end

-- Splits args into positional arguments and the command's options.
-- Returns positional, options or nil, message.
local function parse(command, args)
  local spec, positional, opts = COMMAND_OPTIONS[command], {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local kind = spec[a]
    if kind == "flag" then
      opts[a] = true
    elseif kind then
      if args[i + 1] == nil then return nil, a .. " needs a value" end
      i = i + 1
      if kind == "list" then
        opts[a] = opts[a] or {}
        table.insert(opts[a], args[i])
      elseif opts[a] ~= nil then
        return nil, a .. " is given twice"
      else
        opts[a] = args[i]
      end
    elseif a:match("^%-%-.") then
      return nil, ("%s takes no option %s"):format(command, a)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  local min, max = POSITIONAL[command][1], POSITIONAL[command][2]
  if #positional < min then return nil, "missing argument" end
  if #positional > max then return nil, "unexpected argument '" .. positional[max + 1] .. "'" end
  return positional, opts
end

-- The text of a JSON argument: "-" (or none, with stdin not a terminal)
-- reads stdin; blank means {}.
local function json_text(arg)
  if arg == nil or arg == "-" then
    arg = (arg == "-" or not core.isatty(0)) and io.stdin:read("a") or ""
  end
  return arg
end

-- Decodes a JSON object argument; returns the table or nil, err.
local function json_object(text, what, tool)
  if text:match("^%s*$") then return {} end
  local v, jerr = twitter.json.decode(text)
  if type(v) ~= "table" or getmetatable(v) == twitter.array_mt then
    return nil, new_error("invalid_input", ("%s is not a JSON object: %s"):format(what,
      jerr or "got " .. (type(v) == "table" and "an array" or type(v))), { tool = tool })
  end
  return v
end

-- A client from the environment; nil, err (an auth error) when there are
-- no usable credentials.
local function make_client()
  local opts = {}
  if os.getenv("X_REFRESH_TOKEN") and not os.getenv("X_TOKEN_FILE") then
    -- X rotates refresh tokens: without a file the new one dies with this process
    opts.on_token = function()
      io.stderr:write("scalekit-lua: X issued a new refresh token and the old one no longer works; "
                      .. "it is not kept (set X_TOKEN_FILE or pass --token-file FILE)\n")
    end
  end
  local ok, client = pcall(twitter.new, opts)
  if not ok then return nil, new_error("auth", (tostring(client):gsub("^[^:]+:%d+: ", ""))) end
  return client
end

-- Calls fn(...) and gives its results; a raised error (a mistake in what
-- the command line asked for, such as --identifier in direct mode) becomes
-- nil, an invalid_input error.
local function protect(fn, ...)
  local r = table.pack(pcall(fn, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  if twitter.errors.is(r[2]) then return nil, r[2] end
  return nil, new_error("invalid_input", (tostring(r[2]):gsub("^[^:]+:%d+: ", "")))
end

-- The per-call options of a command: the account of the call.
local function call_options(opts)
  return opts["--identifier"] and { identifier = opts["--identifier"] } or nil
end

local function write_json(v)
  io.stdout:write(encode(v), "\n")
end

local commands = {}

function commands.tools()
  for _, t in ipairs(twitter.tools()) do
    io.stdout:write(t.name, "\t", t.description, "\t", table.concat(t.scopes, " "), "\n")
  end
  return 0
end

function commands.schema(args)
  local s, err = twitter.schema(args[1])
  if not s then return fail(err) end
  write_json(s)
  return 0
end

-- --call TOOL [JSON|-]: one call, or with --all every item of every page
-- (includes joined on) as JSON Lines, at most --limit items.
function commands.call(args, opts)
  local name = args[1]
  local limit = opts["--limit"]
  if limit ~= nil then
    if not opts["--all"] then return usage_error("--call", "--limit needs --all") end
    limit = math.tointeger(tonumber(limit))
    if not limit or limit < 1 then return usage_error("--call", "--limit needs a whole number above 0") end
  end
  local input, err = json_object(json_text(args[2]), "the input", name)
  if not input then return fail(err) end
  local client
  client, err = make_client()
  if not client then return fail(err) end
  local per_call = call_options(opts)
  if not opts["--all"] then
    local data, info = protect(client.execute, client, name, input, per_call)
    if data == nil then return fail(info) end
    write_json(data)
    return 0
  end
  local items_opts = per_call or {}
  items_opts.limit, items_opts.expand = limit, true
  local iter
  iter, err = protect(client.items, client, name, input, items_opts)
  if not iter then return fail(err) end
  for item, ierr in iter do
    if item == false then return fail(ierr) end
    write_json(item)
  end
  return 0
end

-- --request [METHOD] PATH: the response body as received on stdout.
function commands.request(args, opts)
  local method, path = args[1], args[2]
  if path == nil then method, path = "GET", args[1] end
  local req = { method = method:upper(), path = path, identifier = opts["--identifier"] }
  for _, kv in ipairs(opts["--param"] or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return usage_error("--request", ("--param takes NAME=VALUE, got '%s'"):format(kv)) end
    req.params = req.params or {}
    local old = req.params[k]
    if old == nil then
      req.params[k] = v
    else
      if type(old) ~= "table" then old = { old }; req.params[k] = old end
      old[#old + 1] = v
    end
  end
  if opts["--body"] then
    local body, err = json_object(json_text(opts["--body"]), "the body")
    if not body then return fail(err) end
    req.body = body
  end
  local client, err = make_client()
  if not client then return fail(err) end
  local resp
  resp, err = protect(client.request, client, req)
  if not resp then return fail(err) end
  io.stdout:write(resp.body, resp.body:sub(-1) == "\n" and "" or "\n")
  return 0
end

-- --upload FILE: the media id on stdout.
function commands.upload(args, opts)
  local client, err = make_client()
  if not client then return fail(err) end
  local up = call_options(opts) or {}
  up.file, up.media_type, up.media_category = args[1], opts["--media-type"], opts["--media-category"]
  local id
  id, err = protect(client.upload_media, client, up)
  if not id then return fail(err) end
  io.stdout:write(id, "\n")
  return 0
end

-- --mcp: serve the tools over MCP on stdio until stdin ends.
function commands.mcp(args, opts)
  local patterns = {}
  for p in (opts["--tools"] or ""):gmatch("[^,%s]+") do patterns[#patterns + 1] = p end
  return require("scalekit.twitter.mcp").serve{
    read_only = opts["--read-only"], confirm_writes = opts["--confirm-writes"], patterns = patterns,
    script = args[1],
  }
end

--- Entry point for the host: `main(command, ...)` with the command
-- ("--tools", "--schema", "--call", "--request", "--upload", "--mcp") and the
-- arguments after it.  Returns the exit code.
function M.main(command, ...)
  if not COMMAND_OPTIONS[command] then
    return fail(new_error("invalid_input", "unknown command " .. tostring(command)))
  end
  if core.isatty(2) then twitter.set_defaults(require "scalekit.twitter.progress") end
  local args, opts = parse(command, { ... })
  if not args then return usage_error(command, opts) end
  return commands[command:sub(3)](args, opts)
end

return M
