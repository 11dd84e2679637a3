-- `scalekit-lua --mcp`: the Model Context Protocol server, driven by the
-- official MCP TypeScript SDK (spec/mcp/client.mjs, installed by the test
-- command) and, for the protocol's edges, by raw JSON-RPC lines.

local fake = require "support.fake"
local twitter = require "scalekit.twitter"

local HOST = fake.ROOT .. "/bin/scalekit-lua"
local json = twitter.json

-- The environment of a server using fake Scalekit `f` as `identifier`.
local function env_of(f, identifier)
  return ("SCALEKIT_ENVIRONMENT_URL=%s SCALEKIT_CLIENT_ID=%s SCALEKIT_CLIENT_SECRET=%s SCALEKIT_IDENTIFIER=%s")
    :format(f.url, fake.CLIENT_ID, fake.CLIENT_SECRET, identifier or "user_123")
end

-- A scenario of client.mjs against the server with `args`; returns what the
-- client saw (decoded).
local function scenario(name, env, args)
  local preload = os.getenv("LD_PRELOAD")
  local cmd = ("cd %s && env -u LD_PRELOAD %s %s node spec/mcp/client.mjs %s %s %s 2>&1"):format(
    fake.ROOT, preload and ("SERVER_LD_PRELOAD='%s'"):format(preload) or "", env, name, HOST, args or "")
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "client.mjs " .. name .. " failed:\n" .. out)
  return assert(json.decode(out), out)
end

-- The server fed `lines` on stdin; returns its stdout lines decoded (every
-- one must be a JSON-RPC message) and its stderr.
local function raw(lines, env, args)
  local dir = fake.tempdir()
  local input = fake.write(dir, "in.jsonl", table.concat(lines, "\n") .. "\n")
  local p = assert(io.popen(("cd /tmp && env %s %s --no-env --mcp %s < %s 2>%s/err"):format(
    env or "", HOST, args or "", input, dir)))
  local out = {}
  for line in p:lines() do out[#out + 1] = assert(json.decode(line), "not JSON on stdout: " .. line) end
  p:close()
  local err = fake.read(dir .. "/err")
  fake.rmdir(dir)
  for _, m in ipairs(out) do assert.equals("2.0", m.jsonrpc) end
  return out, err
end

describe("scalekit-lua --mcp with the official MCP client", function()
  local f
  setup(function() f = fake.start_connected() end)
  teardown(function() f:stop() end)
  before_each(function() f:clear() end)

  it("initializes, lists every tool with its schema and annotations, calls tools and logs", function()
    f:script{ path = "/api/v1/execute_tool", match = "twitter_post_likers_get", status = 429,
              headers = { ["Retry-After"] = "7" }, json = { code = 8, message = "rate limited" } }
    local s = scenario("session", env_of(f))
    assert.same({}, s.invalidSchemas)                      -- every inputSchema compiles (Ajv, 2020-12)
    assert.same({ name = "scalekit-lua", title = "Scalekit Twitter / X tools", version = twitter._VERSION }, s.server)
    assert.same({ logging = {}, tools = { listChanged = false } }, s.capabilities)
    assert.matches("Call twitter_user_me first", s.instructions, 1, true)
    assert.equals(80, s.count)
    assert.equals(1, s.pages)
    assert.is_true(s.schemasAreObjects)
    assert.same(twitter.schema("user_me"), s.user_me.inputSchema)
    assert.equals("User me", s.user_me.title)
    assert.same({ title = "Fetch the authenticated user.", readOnlyHint = true, destructiveHint = false,
                  idempotentHint = true, openWorldHint = true }, s.user_me.annotations)
    assert.is_true(s.post_delete_annotations.destructiveHint)
    assert.is_false(s.post_create_annotations.readOnlyHint)
    assert.is_false(s.post_create_annotations.idempotentHint)
    -- a call: the tool output as structured content and as JSON text
    local me = { data = { id = "1720000000000000001", name = "Sandbox User", username = "sandbox_user" } }
    assert.same({ content = { { type = "text", text = json.encode(me) } }, structuredContent = me, isError = false },
                s.ok)
    -- failures an LLM can act on, checked before any request
    assert.same({ content = { { type = "text", text = "twitter_recent_search: Invalid input, nothing was sent: "
      .. "parameter 'max_results': expected an integer from 10 to 100, got 5. Fix the arguments and call again." } },
      isError = true }, s.invalid)
    assert.equals("twitter_post_create: Invalid input, nothing was sent: parameter 'txt': unknown parameter; "
                  .. "did you mean 'text'? Fix the arguments and call again.", s.typo.content[1].text)
    assert.same({ code = -32602, message = "MCP error -32602: Unknown tool: twitter_no_such_tool" }, s.unknown)
    assert.is_true(s.limited.isError)
    assert.equals("twitter_post_likers_get: rate limited. Rate limited: retry after 7 seconds.",
                  s.limited.content[1].text)
    assert.same({}, s.ping)
    assert.same({ level = "info", logger = "scalekit-lua", data = "twitter_user_me: ok" }, s.logs[1])
    assert.equals("warning", s.logs[2].level)
    -- two tool calls reached Scalekit: the valid one and the rate-limited one
    local calls = f:requests("/api/v1/execute_tool")
    assert.equals(2, #calls)
    assert.equals('{"connector":"twitter","identifier":"user_123","params":{},"tool_name":"twitter_user_me"}',
                  calls[1].body)
  end)

  it("serves the same 80 tools in direct mode, against the fake X", function()
    local x = fake.start{ script = "fake_x.py" }
    finally(function() x:stop() end)
    x:control("tokens", { access_token = "a-mcp-s3kr1t" })
    local s = scenario("session", ("X_API_BASE_URL=%s X_ACCESS_TOKEN=a-mcp-s3kr1t"):format(x.url))
    assert.equals(80, s.count)
    assert.same({}, s.invalidSchemas)
    assert.same({ data = { id = "1720000000000000001", name = "Sandbox User", username = "sandbox_user" } },
                s.ok.structuredContent)
    assert.is_true(s.invalid.isError)
    assert.equals(-32602, s.unknown.code)
    local me = x:requests("/2/users/me")
    assert.equals(1, #me)
    assert.equals("Bearer a-mcp-s3kr1t", fake.header(me[1], "authorization"))
    assert.same({}, me[1].violations)
  end)

  it("reports a large upload's chunks as progress (direct mode)", function()
    local x = fake.start{ script = "fake_x.py" }
    finally(function() x:stop() end)
    x:control("tokens", { access_token = "a-up-s3kr1t" })
    local r = scenario("upload_progress", ("X_API_BASE_URL=%s X_ACCESS_TOKEN=a-up-s3kr1t"):format(x.url))
    assert.is_false(r.result.isError, r.result.content[1].text)
    local uploads = {}
    for _, p in ipairs(r.progress) do
      if p.message:find("^uploaded") then uploads[#uploads + 1] = { p.progress, p.total, p.message } end
    end
    assert.same({ { 2097152, 2500000, "uploaded 2097152 of 2500000 bytes" },
                  { 2500000, 2500000, "uploaded 2500000 of 2500000 bytes" } }, uploads, json.encode(r.progress))
    for i = 2, #r.progress do assert.is_true(r.progress[i].progress > r.progress[i - 1].progress) end
    assert.equals(2, #x:requests("/2/media/upload/" .. r.result.structuredContent.data.id .. "/append"))
  end)

  it("a user whose X account is not connected gets the link to connect it", function()
    local r = scenario("not_connected", env_of(f, "nobody"))
    assert.is_true(r.isError)
    assert.equals("twitter_user_me: connected account not found or not active (identifier 'nobody', "
      .. "connection 'twitter'). The user's X account is not connected. Show the user this link to connect it, "
      .. "then call the tool again: https://sandbox.scalekit.local/magic/nobody", r.content[1].text)
    assert.equals(1, #f:requests("/api/v1/connected_accounts/magic_link"))
  end)

  it("reports a wait as progress when the call has a progress token", function()
    f:script{ path = "/api/v1/execute_tool", status = 503, json = { code = 14, message = "unavailable" } }
    local r = scenario("progress", env_of(f))
    assert.is_false(r.result.isError)
    assert.equals(1, #r.progress)
    assert.matches("^waiting [%d.]+ s %(retry%)$", r.progress[1].message)
    assert.equals(2, #f:requests("/api/v1/execute_tool"))
  end)

  it("--read-only lists and allows only the tools that read; --tools takes names and globs", function()
    local r = scenario("read_only", env_of(f), "--read-only")
    assert.is_true(r.allRead)
    local reads = 0
    for _, t in ipairs(twitter.tools()) do
      if t.http:match("^GET ") then reads = reads + 1 end
    end
    assert.equals(reads, r.count)
    assert.equals(-32602, r.write.code)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
    r = scenario("read_only", env_of(f), "--tools 'twitter_list_*,user_me'")
    local want = { "twitter_user_me" }
    for _, t in ipairs(twitter.tools()) do
      if t.name:find("^twitter_list_") then want[#want + 1] = t.name end
    end
    table.sort(want)
    assert.same(want, r.names)
    assert.equals(-32602, r.write.code)
  end)

  it("--confirm-writes asks the user before a write, and refuses it when they say no", function()
    local r = scenario("confirm_accept", env_of(f), "--confirm-writes")
    assert.equals(1, #r.asked)                             -- the read was not asked about
    assert.equals("form", r.asked[1].mode)
    assert.equals('Allow twitter_post_create with {"text":"asked first"}?', r.asked[1].message)
    assert.same({ type = "object", properties = { confirm = { type = "boolean", title = "Allow this write",
                  default = false } }, required = { "confirm" } }, r.asked[1].requestedSchema)
    assert.is_false(r.write.isError)
    assert.equals("asked first", r.write.structuredContent.data.text)
    f:clear()
    r = scenario("confirm_decline", env_of(f), "--confirm-writes")
    assert.same({ content = { { type = "text", text = "twitter_post_create: the user did not allow this write; "
                  .. "it was not made." } }, isError = true }, r.write)
    r = scenario("confirm_unsupported", env_of(f), "--confirm-writes")
    assert.matches("this client cannot ask %(no elicitation capability%); the write was not made%.$",
                   r.write.content[1].text)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
  end)

  it("runs calls side by side: a slow call does not hold up a fast one or a ping; a cancelled call stops", function()
    f:script{ path = "/api/v1/execute_tool", match = "twitter_user_me", delay = 2,
              json = { data = { data = { id = "1" } }, execution_id = "exec_slow" } }
    f:script{ path = "/api/v1/execute_tool", match = "twitter_user_me", delay = 3,
              json = { data = { data = { id = "2" } }, execution_id = "exec_cancelled" } }
    local r = scenario("concurrent", env_of(f))
    assert.same({ "fast", "ping", "slow" }, r.order)      -- answered as they finished, not as they came
    assert.is_true(r.slowOk)
    assert.is_true(r.fastOk)
    assert.equals("McpError: MCP error -32001: user gave up", r.cancelled)   -- the SDK sent notifications/cancelled
    assert.equals("still here", r.after)
    assert.equals(4, #f:requests("/api/v1/execute_tool"))  -- the cancelled call had started
  end)

  it("a script adds tools and wraps the catalog's", function()
    local dir = fake.tempdir()
    local script = fake.write(dir, "tools.lua", [[
      local server = ...
      server:tool{ name = "shout", description = "Upper-case a text", read_only = true,
        input_schema = { type = "object", properties = { text = { type = "string" } }, required = { "text" } },
        handler = function(args, ctx) return { text = args.text:upper(), mode = ctx.client.mode } end }
      server:wrap("twitter_post_create", function(call, args)
        args.text = args.text .. " #lua"
        return call(args)
      end)
    ]])
    local r = scenario("script", env_of(f), script)
    fake.rmdir(dir)
    assert.equals(81, r.count)
    assert.same({ name = "shout", title = "Shout", description = "Upper-case a text",
                  inputSchema = { type = "object", properties = { text = { type = "string" } }, required = { "text" } },
                  annotations = { readOnlyHint = true, openWorldHint = true } }, r.shout_tool)
    assert.same({ text = "HELLO", mode = "scalekit" }, r.shout.structuredContent)
    assert.equals("wrapped #lua", r.post.structuredContent.data.text)
    assert.equals('{"connector":"twitter","identifier":"user_123","params":{"text":"wrapped #lua"},'
                  .. '"tool_name":"twitter_post_create"}', f:requests("/api/v1/execute_tool")[1].body)
  end)
end)

describe("scalekit-lua --mcp at the protocol's edges", function()
  local INIT = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{},'
    .. '"clientInfo":{"name":"raw","version":"1"}}}'

  it("negotiates 2025-11-25, 2025-06-18 and 2025-03-26, and answers its latest otherwise", function()
    for _, v in ipairs{ "2025-11-25", "2025-06-18", "2025-03-26" } do
      local out = raw{ INIT:format(v) }
      assert.equals(v, out[1].result.protocolVersion)
    end
    assert.equals("2025-11-25", raw{ INIT:format("2024-01-01") }[1].result.protocolVersion)
  end)

  it("answers malformed JSON, invalid requests and unknown methods, and keeps serving", function()
    local out, err = raw{
      INIT:format("2025-11-25"),
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":2,"method":',
      '{"id":3,"method":"ping"}',
      '{"jsonrpc":"2.0","id":4,"method":"resources/list"}',
      '[{"jsonrpc":"2.0","id":5,"method":"ping"},{"jsonrpc":"2.0","id":6,"method":"ping"}]',
      '{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"loud"}}',
      '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}',
      '{"jsonrpc":"2.0","id":8,"method":"ping"}',
    }
    assert.equals("", err)
    assert.equals(8, #out)                                 -- notifications get no answer
    assert.equals(-32700, out[2].error.code)
    assert.equals(twitter.null, out[2].id)
    assert.same({ code = -32600, message = "not a JSON-RPC 2.0 message" }, out[3].error)
    assert.equals(3, out[3].id)
    assert.same({ code = -32601, message = "Method not found: resources/list" }, out[4].error)
    assert.same({ 5, 6 }, { out[5].id, out[6].id })
    assert.equals(-32602, out[7].error.code)
    assert.same({ jsonrpc = "2.0", id = 8, result = {} }, out[8])
  end)

  it("sends no answer for a call cancelled while in flight, and exits without waiting for it", function()
    local f = fake.start_connected()
    finally(function() f:stop() end)
    f:script{ path = "/api/v1/execute_tool", delay = 5, json = { data = {} } }
    local dir = fake.tempdir()
    fake.write(dir, "a.jsonl", INIT:format("2025-11-25") .. "\n"
      .. '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"twitter_user_me","arguments":{}}}\n')
    fake.write(dir, "b.jsonl", '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}\n'
      .. '{"jsonrpc":"2.0","id":6,"method":"ping"}\n')
    local t0 = require("scalekit.core").monotonic()
    local p = assert(io.popen(("cd %s && (cat a.jsonl; sleep 0.5; cat b.jsonl) | env %s %s --no-env --mcp"):format(
      dir, env_of(f), HOST)))
    local ids = {}
    for line in p:lines() do
      local m = assert(json.decode(line))
      if m.id ~= nil then ids[#ids + 1] = m.id end       -- answers (the log notification has none)
    end
    p:close()
    local took = require("scalekit.core").monotonic() - t0
    fake.rmdir(dir)
    assert.same({ 1, 6 }, ids)                             -- no answer for 5
    assert.equals(1, #f:requests("/api/v1/execute_tool"))  -- it had started
    assert.is_true(took < 4, "the server waited for the cancelled call: " .. took .. " s")
  end)

  it("answers a line over 4 MiB with an error, skips it to its end and keeps serving", function()
    local out = raw{ INIT:format("2025-11-25"), '{"jsonrpc":"2.0","id":2,"method":"ping","x":"' .. ("a"):rep(5 * 2 ^ 20)
                     .. '"}', '{"jsonrpc":"2.0","id":3,"method":"ping"}' }
    assert.equals(3, #out)
    assert.same({ code = -32600, message = "message too large" }, out[2].error)
    assert.same({ jsonrpc = "2.0", id = 3, result = {} }, out[3])
  end)

  it("pages tools/list with nextCursor when the page is smaller than the list", function()
    local dir = fake.tempdir()
    local script = fake.write(dir, "page.lua", "local server = ...\nserver.page_size = 30\n")
    local out = raw({ INIT:format("2025-11-25"),
                      '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
                      '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"31"}}',
                      '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"61"}}',
                      '{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"x"}}' }, nil, script)
    fake.rmdir(dir)
    assert.equals(30, #out[2].result.tools)
    assert.equals("31", out[2].result.nextCursor)
    assert.equals("61", out[3].result.nextCursor)
    assert.equals(20, #out[4].result.tools)
    assert.is_nil(out[4].result.nextCursor)
    assert.same({ code = -32602, message = "invalid cursor" }, out[5].error)
  end)

  it("without credentials, a call says what to set, and stdout stays protocol only", function()
    local out, err = raw({ INIT:format("2025-11-25"),
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"twitter_user_me","arguments":{}}}' },
      "-u SCALEKIT_ENVIRONMENT_URL -u SCALEKIT_CLIENT_SECRET -u X_ACCESS_TOKEN -u X_BEARER_TOKEN "
      .. "-u X_REFRESH_TOKEN -u X_TOKEN_FILE -u X_CONSUMER_KEY")
    assert.equals("", err)
    assert.is_true(out[2].result.isError)
    assert.matches("Set SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET %(Scalekit%), "
                   .. "or X_ACCESS_TOKEN %(direct mode%), in the server's environment%.$",
                   out[2].result.content[1].text)
  end)
end)
