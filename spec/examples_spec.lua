-- Every example runs against the bundled sandbox with scalekit-lua, as
-- `make run` does (scripts/sandbox.sh starts the fake servers).

local fake = require "support.fake"
local core = require "scalekit.core"
local twitter = require "scalekit.twitter"

-- Run `sh scripts/sandbox.sh ARGS` in `dir` (default: the repository);
-- returns ok, combined output.
local function sandbox(args, dir)
  local p = assert(io.popen(("cd %s && env -u SCALEKIT_CLIENT_SECRET -u SCALEKIT_ENVIRONMENT_URL -u X_CLIENT_ID "
    .. "-u X_TOKEN_FILE -u X_ACCESS_TOKEN -u X_REFRESH_TOKEN sh %s/scripts/sandbox.sh %s 2>&1")
    :format(dir or fake.ROOT, fake.ROOT, args)))
  local out = p:read("a")
  return p:close(), out
end

-- Run an example through the sandbox, as `make run` does.
local function run(args) return sandbox(args) end

local tmp
setup(function()
  tmp = fake.tempdir()
end)
teardown(function() fake.rmdir(tmp) end)

describe("examples", function()
  it("quickstart.lua: who am I, post, search", function()
    local ok, out = run("examples/quickstart.lua 'sandbox hello'")
    assert.is_true(ok, out)
    assert.matches("Signed in as @sandbox_user %(Sandbox User%), id 1720000000000000001", out)
    assert.matches("Posted 1720000000000000101 %(execution exec_%d+%): sandbox hello", out)
    assert.matches('Recent search for "sandbox": 1 result%(s%)\n  1720000000000000101  sandbox hello', out)
  end)

  it("post_with_media.lua: uploads a file and posts it", function()
    local ok, out = run("examples/post_with_media.lua")
    assert.is_true(ok, out)
    assert.matches("uploaded 72/72 bytes", out)
    assert.matches("posted 1720000000000000102 with media 1720000000000000101: Posted with scalekit.twitter", out)
  end)

  it("export_followers.lua: pages through followers into JSON Lines", function()
    local ok, out = run("examples/export_followers.lua 2244994945 " .. tmp .. "/f.jsonl")
    assert.is_true(ok, out)
    assert.matches("exported 25 followers of 2244994945", out)
    local lines = {}
    for line in io.lines(tmp .. "/f.jsonl") do lines[#lines + 1] = assert(twitter.json.decode(line)) end
    assert.equals(25, #lines)
    assert.equals("follower_1", lines[1].username)
    assert.equals("1720000000000001025", lines[25].id)
  end)

  it("scheduled_thread.lua: posts a thread and resumes without posting twice", function()
    local file = tmp .. "/thread.txt"
    local f = assert(io.open(file, "w"))
    f:write("First post\n\nSecond\npost\n\n\nThird\n")
    f:close()
    local ok, out = run("examples/scheduled_thread.lua " .. file)
    assert.is_true(ok, out)
    assert.matches("3/3 posted as 1720000000000000103", out)
    local state = assert(twitter.json.decode(assert(io.open(file .. ".state.json")):read("a")))
    assert.same({ "1720000000000000101", "1720000000000000102", "1720000000000000103" }, state.posted)
    -- a second run with the saved state posts nothing new (a fresh sandbox would number from 101 again)
    ok, out = run("examples/scheduled_thread.lua " .. file)
    assert.is_true(ok, out)
    assert.matches("1/3 already posted as 1720000000000000101", out)
    assert.matches("3/3 already posted as 1720000000000000103", out)
    assert.is_nil(out:find("%d/3 posted as"))
  end)

  it("agent_tools.lua: writes 80 function definitions and runs a model's tool call", function()
    local defs = tmp .. "/tools.json"
    local ok, out = run(("examples/agent_tools.lua %s '%s'"):format(defs,
      '{"name":"twitter_post_create","arguments":"{\\"text\\":\\"from the model\\"}"}'))
    assert.is_true(ok, out)
    assert.matches("wrote 80 tool definitions", out)
    local list = assert(twitter.json.decode(assert(io.open(defs)):read("a")))
    assert.equals(80, #list)
    assert.equals("twitter_activity_subscription_create", list[1]["function"].name)
    assert.equals("object", list[1]["function"].parameters.type)
    assert.matches('{"ok":true,"output":{"data":{"edit_history_tweet_ids":%["1720000000000000101"%],'
                   .. '"id":"1720000000000000101","text":"from the model"}}}', out)
  end)

  it("sandbox.sh takes the script and its files from the caller's directory", function()
    local dir = fake.tempdir()
    fake.write(dir, "hello.lua", 'local f = assert(io.open(arg[1], "w")) f:write("written") f:close() print("ok")')
    local ok, out = sandbox("./hello.lua out.txt", dir)
    assert.is_true(ok, out)
    local banner = "(no SCALEKIT_CLIENT_SECRET set: using the local sandbox on 127.0.0.1:"
    assert.equals(banner, out:sub(1, #banner))
    assert.matches("\nok\n$", out)
    assert.equals("written", fake.read(dir .. "/out.txt"))
    ok, out = sandbox("", dir)
    assert.is_falsy(ok)
    assert.equals("usage: sh scripts/sandbox.sh [--x] SCRIPT [args]\n", out)
    fake.rmdir(dir)
  end)

  it("direct_oauth.lua: PKCE login through the loopback listener, tokens saved 0600", function()
    local tokens = tmp .. "/tokens.json"
    local listener = assert(core.listen(0))
    local port = listener:port()
    listener:close()
    local p = assert(io.popen(("cd %s && env -u X_CLIENT_ID sh scripts/sandbox.sh --x "
      .. "examples/direct_oauth.lua %s %d 2>&1"):format(fake.ROOT, tokens, port)))
    local url
    for line in p:lines() do
      url = line:match("^(http%S+/i/oauth2/authorize%?%S+)$")
      if url then break end
    end
    assert.is_string(url)
    -- act as the user's browser: approve, then follow the redirect to the listener
    local http = require("scalekit.twitter.transport").new{}
    local r = assert(http:send{ url = url })
    local status, headers = r.status, r.headers
    assert.equals(302, status)
    assert.matches("^http://127%.0%.0%.1:" .. port .. "/callback%?", headers.location)
    local r2 = assert(http:send{ url = headers.location })
    local s2, body = r2.status, r2.body
    assert.equals(200, s2)
    assert.matches("Logged in", body)
    local rest = p:read("a")
    assert.is_true(p:close(), rest)
    assert.matches("tokens saved to " .. tokens:gsub("%p", "%%%0"), rest)
    assert.matches("logged in as @sandbox_user %(1720000000000000001%)", rest)
    local mode = io.popen("stat -c %a " .. tokens)
    assert.equals("600", mode:read("l"))
    mode:close()
  end)
end)

-- The same examples in direct mode: `sandbox.sh --x` seeds a user token in
-- a local fake X (which checks every request against X's OpenAPI document),
-- each run from a scratch directory that receives what the example writes.
describe("examples in direct mode (sandbox.sh --x)", function()
  local X_BANNER = "(no X_CLIENT_ID set: using the local fake X API on 127.0.0.1:"
  local cases = {
    { "quickstart.lua 'direct hello'", {
        "^X API: http://127%.0%.0%.1:%d+ %(direct mode%)\n",
        "\nSigned in as @sandbox_user %(Sandbox User%), id 1720000000000000001\n",
        "\nPosted 1720000000000000101: direct hello\n",
        '\nRecent search for "direct": 1 result%(s%)\n  1720000000000000101  direct hello\n' } },
    { "post_with_media.lua", {
        "uploaded 72/72 bytes",
        "\nposted 1720000000000000102 with media 1720000000000000101: Posted with scalekit.twitter\n" } },
    { "export_followers.lua 2244994945 f.jsonl", { "exported 0 followers of 2244994945\n" }, "f.jsonl" },
    { "agent_tools.lua tools.json", { "wrote 80 tool definitions to tools.json\n" }, "tools.json" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local dir = fake.tempdir()
      os.execute(("cp %s/examples/*.lua %s/"):format(fake.ROOT, dir))
      local ok, out = sandbox("--x " .. case[1], dir)
      assert.is_true(ok, out)
      assert.equals(X_BANNER, out:sub(1, #X_BANNER))
      out = out:gsub("^[^\n]*\n", "")                    -- the banner line
      for _, want in ipairs(case[2]) do assert.matches(want, out) end
      if case[3] then
        assert.is_not_nil(io.open(dir .. "/" .. case[3]), case[3] .. " written in the caller's directory")
      end
      fake.rmdir(dir)
    end)
  end

  it("scheduled_thread.lua posts a thread once, its state file beside the text", function()
    local dir = fake.tempdir()
    os.execute(("cp %s/examples/*.lua %s/"):format(fake.ROOT, dir))
    fake.write(dir, "t.txt", "One\n\nTwo\n")
    local ok, out = sandbox("--x scheduled_thread.lua t.txt", dir)
    assert.is_true(ok, out)
    -- (separate lines: the ASan run's debug trace comes between them)
    assert.matches("\n1/2 posted as 1720000000000000101\n", out)
    assert.matches("\n2/2 posted as 1720000000000000102\n", out)
    local state = assert(twitter.json.decode(fake.read(dir .. "/t.txt.state.json")))
    assert.same({ "1720000000000000101", "1720000000000000102" }, state.posted)
    fake.rmdir(dir)
  end)
end)
