--- `scalekit-lua --mcp`: the tools as a Model Context Protocol server over
-- stdio (newline-delimited JSON-RPC 2.0; MCP 2025-11-25, negotiating
-- 2025-06-18 and 2025-03-26 too).
--
-- stdout carries protocol messages only.  Every tool call is checked by the
-- SDK before any request; a failing tool gives a result with `isError` whose
-- text says what to do (the parameter and what was expected, when to retry,
-- the link that connects the user's X account).
--
-- Tool calls run as tasks (scalekit.twitter.tasks): the loop watches stdin
-- and every transfer at once, so calls in flight run side by side, `ping`
-- is answered meanwhile, and `notifications/cancelled` aborts the named
-- call's transfer or wait at once (no answer is sent for it).  The server
-- is a table of handlers over a `write(message)` function, so the same
-- dispatch can be driven by another loop.
-- @module scalekit.twitter.mcp

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"
local tools = require "scalekit.twitter.tools"
local tasks = require "scalekit.twitter.tasks"

local M = {}

local json = twitter.json
local object_mt, array_mt = core.object_mt, core.array_mt

M.PROTOCOL_VERSIONS = { "2025-11-25", "2025-06-18", "2025-03-26" }
M.PAGE_SIZE = 100                -- tools per tools/list page
M.MAX_MESSAGE = 4 * 1024 * 1024  -- bytes of one incoming line
M.LEVELS = { debug = 1, info = 2, notice = 3, warning = 4, error = 5, critical = 6, alert = 7, emergency = 8 }

-- JSON-RPC error codes.
local PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602

local function object(t) return setmetatable(t or {}, object_mt) end
local function array(t) return setmetatable(t or {}, array_mt) end

-- A glob ("twitter_list_*") as an anchored Lua pattern.
local function glob_pattern(glob)
  return "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

-- The MCP annotations of a catalog tool, from its X route.
local function annotations(tool)
  local m = tool.method
  return object{
    title = tool.summary,
    readOnlyHint = m == "GET",
    destructiveHint = m == "DELETE",
    idempotentHint = m == "GET" or m == "PUT" or m == "DELETE",
    openWorldHint = true,
  }
end

-- "twitter_post_create" -> "Post create".
local function title_of(name)
  local words = name:gsub("^twitter_", ""):gsub("_", " ")
  return (words:gsub("^%l", string.upper))
end

local Server = {}
Server.__index = Server

--- A server.
-- @tparam table opts `write(message_table)` (required), `read_only`,
--   `patterns` (names and globs of the tools to serve), `confirm_writes`,
--   `client` (an SDK client; default: made from the environment on the
--   first call), `new_client` (function making one), `sched` (a
--   scalekit.twitter.tasks scheduler: tool calls run as its tasks; without
--   one they run to the end before the next message)
-- @treturn table the server
function M.new(opts)
  local self = setmetatable({
    write = assert(opts.write, "mcp.new needs write"), read_only = opts.read_only,
    confirm_writes = opts.confirm_writes, client = opts.client, new_client = opts.new_client or twitter.new,
    level = M.LEVELS.info, extra = {}, extra_order = {}, wraps = {}, next_id = 0,
    page_size = M.PAGE_SIZE, sched = opts.sched, calls = {}, waiting = {},
  }, Server)
  local patterns = {}
  for _, p in ipairs(opts.patterns or {}) do patterns[#patterns + 1] = glob_pattern(p) end
  self.patterns = patterns
  return self
end

-- Is catalog tool `tool` served (the --tools and --read-only filters)?
function Server:serves(tool)
  if self.read_only and tool.method ~= "GET" then return false end
  if #self.patterns == 0 then return true end
  for _, p in ipairs(self.patterns) do
    if tool.name:find(p) or tool.short:find(p) then return true end
  end
  return false
end

--- Add a tool of your own: `{ name =, description =, input_schema =,
-- handler = function(args, ctx) -> result table | nil, message }`, and
-- optionally `title`, `read_only` (annotations).  `ctx` has `client`,
-- `progress(done, total, message)` and `log(level, message)`.
function Server:tool(def)
  assert(type(def) == "table" and type(def.name) == "string" and def.name:find("^[%w_.-]+$"),
         "mcp: a tool needs a name of letters, digits, '_', '.' and '-'")
  assert(type(def.handler) == "function", "mcp: tool " .. def.name .. " needs a handler function")
  if not self.extra[def.name] then self.extra_order[#self.extra_order + 1] = def.name end
  self.extra[def.name] = def
end

--- Wrap a catalog tool: `fn(call, args, ctx)` runs instead of it, and
-- `call(args)` runs the tool (data, info or nil, err).
function Server:wrap(name, fn)
  local tool = assert(tools.get(name), "mcp: no tool " .. tostring(name))
  assert(type(fn) == "function", "mcp: wrap needs a function")
  self.wraps[tool.name] = fn
end

-- The tools list: catalog tools served, then the script's tools.
function Server:listing()
  if self.list then return self.list end
  local out = {}
  for _, t in ipairs(tools.list) do
    if self:serves(t) then
      local schema = tools.schema(t)
      out[#out + 1] = object{ name = t.name, title = title_of(t.name), description = schema.description,
                              inputSchema = schema, annotations = annotations(t) }
    end
  end
  for _, name in ipairs(self.extra_order) do
    local d = self.extra[name]
    out[#out + 1] = object{ name = name, title = d.title or title_of(name), description = d.description or "",
                            inputSchema = d.input_schema or object{ type = "object" },
                            annotations = object{ readOnlyHint = d.read_only == true, openWorldHint = true } }
  end
  self.list = out
  return out
end

-- Messages out ------------------------------------------------------------

function Server:reply(id, result)
  self.write(object{ jsonrpc = "2.0", id = id, result = result })
end

function Server:fail(id, code, message, data)
  self.write(object{ jsonrpc = "2.0", id = id == nil and core.null or id,
                     error = object{ code = code, message = message, data = data } })
end

function Server:notify(method, params)
  self.write(object{ jsonrpc = "2.0", method = method, params = params })
end

--- A log message to the client (notifications/message) at `level` or
-- above the level it asked for; never carries a secret (the SDK's
-- messages are redacted already).
function Server:log(level, message)
  if (M.LEVELS[level] or 0) >= self.level then
    self:notify("notifications/message", object{ level = level, logger = "scalekit-lua", data = message })
  end
end

-- The key of a JSON-RPC id (a number and its string are different ids).
local function id_key(id)
  return type(id) .. ":" .. tostring(id)
end

-- Asks the client `method` and waits for its answer (inside a task: the
-- task is parked until the answer arrives; the loop goes on meanwhile).
-- Returns the result, or nil, message.
function Server:ask(method, params)
  self.next_id = self.next_id + 1
  local id = "srv-" .. self.next_id
  local task = tasks.running()
  if task then
    self.waiting[id_key(id)] = task
    self.write(object{ jsonrpc = "2.0", id = id, method = method, params = params })
    local msg = tasks.park()
    if msg.error ~= nil then return nil, tostring(type(msg.error) == "table" and msg.error.message or msg.error) end
    return msg.result
  end
  return nil, "an answer can only be awaited in a task"
end

-- Tool calls ----------------------------------------------------------------

-- The SDK client, made on first use; nil, message without credentials.
function Server:sdk()
  if self.client then return self.client end
  local ok, c = pcall(self.new_client, {})
  if not ok then
    return nil, (tostring(c):gsub("^[^:]+:%d+: ", "")) .. ". Set SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID "
      .. "and SCALEKIT_CLIENT_SECRET (Scalekit), or X_ACCESS_TOKEN (direct mode), in the server's environment."
  end
  self.client = c
  return c
end

-- A tool result with isError and `text`.
local function tool_error(text)
  return object{ content = array{ object{ type = "text", text = text } }, isError = true }
end

-- s ending with a full stop (unless it ends a sentence already).
local function sentence(s)
  return s:find("[.!?]$") and s or s .. "."
end

-- The text an LLM can act on for SDK error `err` of a call of `name`.
function Server:error_text(name, err)
  if not twitter.errors.is(err) then return name .. ": " .. tostring(err) end
  local text = sentence((err.message:gsub("^" .. name:gsub("%p", "%%%0") .. ": ", "")))
  if err.kind == "invalid_input" then
    text = "Invalid input, nothing was sent: " .. text .. " Fix the arguments and call again."
  elseif err.kind == "rate_limited" then
    text = text .. (err.retry_after and (" Rate limited: retry after %d seconds."):format(err.retry_after)
                    or " Rate limited: retry later.")
  elseif err.kind == "not_found" and err.status == 404 and err.identifier ~= nil and self.client
         and self.client.mode == "scalekit" then
    local link = self.client:get_authorization_link{ identifier = err.identifier }
    if link and link.link then
      text = text .. " The user's X account is not connected. Show the user this link to connect it, "
        .. "then call the tool again: " .. link.link
    end
  elseif err.kind == "auth" then
    text = text .. " Authentication failed; the user may need to connect or re-authorize their X account."
  elseif err.may_have_been_applied then
    text = text .. " The write may have been applied: check before calling again."
  end
  return name .. ": " .. text
end

-- Asks the user (elicitation) before a write; nil when allowed, else the
-- tool result that refuses it.
function Server:confirm(name, args)
  local caps = self.client_capabilities or {}
  if type(caps.elicitation) ~= "table" then
    return tool_error(name .. ": this server asks the user before every write (--confirm-writes), "
      .. "and this client cannot ask (no elicitation capability); the write was not made.")
  end
  local result, err = self:ask("elicitation/create", object{
    mode = "form",
    message = ("Allow %s with %s?"):format(name, json.encode(args)),
    requestedSchema = object{ type = "object", properties = object{
      confirm = object{ type = "boolean", title = "Allow this write", default = false } },
      required = array{ "confirm" } },
  })
  if not result then return tool_error(name .. ": could not ask the user (" .. err .. "); the write was not made.") end
  if result.action ~= "accept" or type(result.content) ~= "table" or result.content.confirm ~= true then
    return tool_error(name .. ": the user did not allow this write; it was not made.")
  end
  return nil
end

-- The progress hook of a call with `token` (nil: none): `done` when it
-- moves on, else one step more, so the progress only ever increases.
function Server:progress_for(token)
  if token == nil then return nil end
  local last = 0
  return function(done, total, message)
    last = (done and done > last) and done or last + 1
    self:notify("notifications/progress", object{ progressToken = token, progress = last, total = total,
                                                  message = message })
  end
end

-- tools/call: run the tool, as the SDK checks it.
function Server:call_tool(id, params)
  if type(params) ~= "table" or type(params.name) ~= "string" then
    return self:fail(id, INVALID_PARAMS, "tools/call needs params.name")
  end
  local name, args = params.name, params.arguments
  if args == nil or args == core.null then args = {} end
  if type(args) ~= "table" or getmetatable(args) == array_mt then
    return self:reply(id, tool_error(name .. ": arguments must be a JSON object"))
  end
  local meta = type(params._meta) == "table" and params._meta or {}
  local progress = self:progress_for(meta.progressToken)
  local extra = self.extra[name]
  local tool = not extra and tools.get(name)
  if not extra and not (tool and tool.name == name and self:serves(tool)) then
    return self:fail(id, INVALID_PARAMS, "Unknown tool: " .. name)
  end
  if self.confirm_writes and tool and tool.method ~= "GET" then
    local refused = self:confirm(name, args)
    if refused then return self:reply(id, refused) end
  end
  local client, cerr = self:sdk()
  local ctx = { client = client, progress = progress or function() end,
                log = function(level, message) self:log(level, message) end }
  local data, info
  if extra then
    data, info = extra.handler(args, ctx)
  else
    if not client then return self:reply(id, tool_error(name .. ": " .. cerr)) end
    local opts = progress and {
      on_wait = function(seconds, why) progress(nil, nil, ("waiting %g s (%s)"):format(seconds, tostring(why))) end,
      on_progress = function(sent, total) progress(sent, total, ("uploaded %d of %d bytes"):format(sent, total)) end,
    } or nil
    local function run(a) return client:execute(name, a, opts) end
    if self.wraps[name] then
      data, info = self.wraps[name](run, args, ctx)
    else
      data, info = run(args)
    end
  end
  if data == nil then
    self:log("warning", name .. " failed: " .. tostring(info and info.message or info))
    return self:reply(id, tool_error(self:error_text(name, info)))
  end
  self:log("info", name .. ": ok")
  local structured = (type(data) == "table" and getmetatable(data) ~= array_mt) and data or object{ result = data }
  return self:reply(id, object{ content = array{ object{ type = "text", text = json.encode(structured) } },
                                structuredContent = structured, isError = false })
end

-- Handlers ----------------------------------------------------------------

local handlers = {}

function handlers:initialize(id, params)
  params = type(params) == "table" and params or {}
  local asked = params.protocolVersion
  local version = M.PROTOCOL_VERSIONS[1]
  for _, v in ipairs(M.PROTOCOL_VERSIONS) do
    if v == asked then version = v end
  end
  self.client_capabilities = type(params.capabilities) == "table" and params.capabilities or {}
  self:reply(id, object{
    protocolVersion = version,
    capabilities = object{ tools = object{ listChanged = false }, logging = object{} },
    serverInfo = object{ name = "scalekit-lua", title = "Scalekit Twitter / X tools", version = twitter._VERSION },
    instructions = "Twitter / X tools through Scalekit (or X API v2 directly). Call twitter_user_me first to "
      .. "learn your own user id. IDs are strings of digits; keep them as strings. A tool that needs the user's "
      .. "X account to be connected answers with a link to show the user.",
  })
end

function handlers:ping(id)
  self:reply(id, object{})
end

handlers["tools/list"] = function(self, id, params)
  local list = self:listing()
  local start = 1
  local cursor = type(params) == "table" and params.cursor or nil
  if cursor ~= nil then
    start = math.tointeger(tonumber(cursor))
    if not start or start < 1 or start > #list + 1 then return self:fail(id, INVALID_PARAMS, "invalid cursor") end
  end
  local page = array{}
  local size = self.page_size
  for i = start, math.min(#list, start + size - 1) do page[#page + 1] = list[i] end
  local result = object{ tools = page }
  if start + size <= #list then result.nextCursor = tostring(start + size) end
  self:reply(id, result)
end

-- tools/call runs as a task when the server has a scheduler: the loop goes
-- on reading messages while it is in flight.
handlers["tools/call"] = function(self, id, params)
  if not self.sched then return self:call_tool(id, params) end
  local key = id_key(id)
  if self.calls[key] then return self:fail(id, INVALID_REQUEST, "a request with this id is in flight") end
  local task = self.sched:spawn(self.call_tool, self, id, params)
  self.calls[key] = task
  task.on_done = function(t)
    if self.calls[key] == t then self.calls[key] = nil end
    if t.error and not t.cancelled then
      self:fail(id, -32603, "internal error: " .. tostring(t.error):gsub("^[^:]+:%d+: ", ""))
    end
  end
end

-- notifications/cancelled: stop the named call at once; it gets no answer.
function Server:cancelled(params)
  local key = type(params) == "table" and params.requestId ~= nil and id_key(params.requestId)
  local task = key and self.calls[key]
  if task and self.sched then
    self.sched:cancel(task)
    self:log("info", "cancelled request " .. tostring(params.requestId))
  end
end

handlers["logging/setLevel"] = function(self, id, params)
  local level = type(params) == "table" and M.LEVELS[params.level]
  if not level then return self:fail(id, INVALID_PARAMS, "unknown log level") end
  self.level = level
  self:reply(id, object{})
end

--- Handle one decoded message (a request, a notification or a batch).
function Server:handle(msg)
  if type(msg) ~= "table" then return self:fail(nil, INVALID_REQUEST, "a message is a JSON object") end
  if getmetatable(msg) == array_mt then
    if #msg == 0 then return self:fail(nil, INVALID_REQUEST, "empty batch") end
    for _, m in ipairs(msg) do self:handle(m) end
    return
  end
  local id, method = msg.id, msg.method
  if msg.jsonrpc ~= "2.0" or (method ~= nil and type(method) ~= "string") then
    return self:fail(id, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
  end
  if method == nil then                                 -- an answer: to a question a task asked?
    local task = id ~= nil and self.waiting[id_key(id)]
    if task then
      self.waiting[id_key(id)] = nil
      self.sched:wake(task, msg)
    end
    return
  end
  if id == nil then                                     -- notifications
    if method == "notifications/cancelled" then self:cancelled(msg.params) end
    return
  end
  local h = handlers[method]
  if not h then return self:fail(id, METHOD_NOT_FOUND, "Method not found: " .. method) end
  local ok, err = pcall(h, self, id, msg.params)
  if not ok then self:fail(id, -32603, "internal error: " .. tostring(err):gsub("^[^:]+:%d+: ", "")) end
end

--- Handle one line of input: JSON, or a parse error answered and skipped.
function Server:handle_line(line)
  if #line > M.MAX_MESSAGE then return self:fail(nil, INVALID_REQUEST, "message too large") end
  if not line:find("%S") then return end
  local msg, err = json.decode(line)
  if msg == nil and err then return self:fail(nil, PARSE_ERROR, "Parse error: " .. err) end
  return self:handle(msg)
end

--- Serve stdio until stdin ends and the calls in flight are done.
-- @tparam table opts as for `new` (without `write` and `sched`),
--   and `script` (a Lua file run with the server, to add or wrap tools)
function M.serve(opts)
  local out = io.stdout
  opts.write = function(msg)
    out:write(json.encode(msg), "\n")
    out:flush()
  end
  local sched = tasks.new()
  opts.sched = sched
  local server = M.new(opts)
  if opts.script then
    local chunk = assert(loadfile(opts.script))
    chunk(server)
  end
  -- the pieces of the line being read (so a long line is joined once),
  -- and whether the rest of a line too long is being skipped
  local pieces, size, eof, skipping = {}, 0, false, false
  local function line_done()
    local line = table.concat(pieces)
    pieces, size = {}, 0
    if skipping then skipping = false else server:handle_line(line) end
  end
  while not eof or sched:count() > 0 do
    if sched:step(1, not eof and 0 or nil) and not eof then
      local data = core.read_fd(0, 65536)
      if not data or data == "" then
        eof = true
        if size > 0 then line_done() end
      else
        local start = 1
        while true do
          local nl = data:find("\n", start, true)
          if not nl then break end
          pieces[#pieces + 1] = data:sub(start, nl - 1)
          line_done()
          start = nl + 1
        end
        if start <= #data then
          pieces[#pieces + 1] = data:sub(start)
          size = size + #data - start + 1
        end
        if size > M.MAX_MESSAGE and not skipping then   -- a line too long: answer, skip to its end
          server:fail(nil, INVALID_REQUEST, "message too large")
          pieces, size, skipping = {}, 0, true
        elseif skipping then
          pieces, size = {}, 0
        end
      end
    end
  end
  sched:close()
  if server.client then server.client:close() end
  return 0
end

return M
