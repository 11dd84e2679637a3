-- The scalekit-lua host: a lua5.4 for scripts, with the SDK built in, .env
-- loading, shell commands and Ctrl-C.

local fake = require "support.fake"
local twitter = require "scalekit.twitter"

local HOST = fake.ROOT .. "/bin/scalekit-lua"

-- Run a shell command line in `dir` with a clean SDK environment; returns
-- exit code, stdout, stderr.
local function sh(cmd, dir, env)
  local errf = os.tmpname()
  local quoted = "'" .. cmd:gsub("'", "'\\''") .. "'"
  local full = ("cd %s && env -u LUA_PATH -u LUA_CPATH -u SCALEKIT_ENVIRONMENT_URL -u SCALEKIT_ENV_URL "
    .. "-u SCALEKIT_CLIENT_ID -u SCALEKIT_CLIENT_SECRET -u SCALEKIT_IDENTIFIER -u X_BEARER_TOKEN "
    .. "-u X_ACCESS_TOKEN -u X_REFRESH_TOKEN -u X_TOKEN_FILE -u X_CLIENT_ID -u X_CLIENT_SECRET -u X_API_BASE_URL "
    .. "-u SCALEKIT_DEBUG "
    .. "%s sh -c %s 2>%s; echo \"rc=$?\""):format(dir or "/tmp", env or "", quoted, errf)
  local p = assert(io.popen(full))
  local out = p:read("a")
  p:close()
  local err = assert(io.open(errf)):read("a")
  os.remove(errf)
  local rc = tonumber(out:match("rc=(%d+)\n$"))
  return rc, out:gsub("rc=%d+\n$", ""), err
end

local dir
setup(function()
  dir = fake.tempdir()
end)
teardown(function() fake.rmdir(dir) end)

local function write(name, text) return fake.write(dir, name, text) end

describe("scalekit-lua as an interpreter", function()
  it("runs a script with its arguments from any directory, SDK built in", function()
    write("s.lua", 'local t = require "scalekit.twitter"\nprint(arg[0], arg[1], t._VERSION, #t.tools(), ...)')
    local rc, out = sh(HOST .. " s.lua one two", dir)
    assert.equals(0, rc)
    assert.equals("s.lua\tone\t0.1.0\t80\tone\ttwo\n", out)
  end)

  it("handles -e, -l, -v, - and --", function()
    local rc, out = sh(HOST .. " -l cj=scalekit.core -e 'print(cj.urlencode(\"a b\"))' -v")
    assert.equals(0, rc)
    assert.matches("^scalekit%-lua Lua 5%.4", out)
    assert.matches("a%%20b\n$", out)
    rc, out = sh("echo 'print(\"from stdin\", ...)' | " .. HOST .. " - x")
    assert.equals(0, rc)
    assert.equals("from stdin\tx\n", out)
    write("-dash.lua", "print('dash')")
    rc, out = sh(HOST .. " -- -dash.lua", dir)
    assert.equals(0, rc)
    assert.equals("dash\n", out)
  end)

  it("runs its built-in modules precompiled by the same Lua release, debug information kept", function()
    local gen = assert(io.open(fake.ROOT .. "/build/embedded.c")):read("a")
    local p = assert(io.popen("lua5.4 -v"))
    local release = p:read("a"):match("^(Lua %d+%.%d+%.%d+)")
    p:close()
    assert.equals(release, gen:match('embedded_release%[%] = "([^"]*)"'))
    -- error positions and tracebacks still name the module file and line
    local rc, _, err = sh(HOST .. [[ -e 'require("scalekit.twitter").new{ mode = "direct" }:user_lookup(5)']])
    assert.equals(1, rc)
    assert.matches("stack traceback:.*%[builtin%]/scalekit%.twitter%.lua:%d+:", err)
    local _, out = sh(HOST .. [[ -e 'local i = debug.getinfo(require("scalekit.twitter.direct").new, "S")
      print(i.source, i.linedefined > 0)']])
    assert.equals("@[builtin]/scalekit.twitter.direct.lua\ttrue\n", out)
  end)

  it("exits 1 on an uncaught error, printing its __tostring and a traceback", function()
    write("e.lua", 'local e = require("scalekit.twitter").errors.new("auth", "bad token")\nerror(e)')
    local rc, _, err = sh(HOST .. " e.lua", dir)
    assert.equals(1, rc)
    assert.matches("^scalekit%-lua: scalekit.twitter: auth: bad token\nstack traceback:", err)
    rc = sh(HOST .. " -e 'os.exit(7)'")
    assert.equals(7, rc)
  end)

  it("loads .env without overriding the environment and never prints a value", function()
    write(".env", 'A=from-file\nexport B="two\\nlines"  # note\nbroken line SECRETVALUE\nC=\'lit $x\'\n')
    local rc, out, err = sh(HOST .. [[ -e 'print(os.getenv("A"), os.getenv("B"), os.getenv("C"))']], dir, "A=from-env")
    assert.equals(0, rc)
    assert.equals("from-env\ttwo\nlines\tlit $x\n", out)
    assert.equals("scalekit-lua: .env:3: ignored a malformed line\n", err)
    assert.is_nil(err:find("SECRETVALUE", 1, true))
    write("other.env", "A=other\n")
    rc, out = sh(HOST .. [[ --env-file other.env -e 'print(os.getenv("A"), os.getenv("B"))']], dir)
    assert.equals(0, rc)
    assert.equals("other\tnil\n", out)
    rc, out = sh(HOST .. [[ --no-env -e 'print(os.getenv("A"))']], dir)
    assert.equals(0, rc)
    assert.equals("nil\n", out)
  end)

  it("gives clients the progress hooks when stderr is a terminal, and only then", function()
    local script = [[local c = require("scalekit.twitter").new{ mode = "direct", access_token = "a",
      api_base_url = "http://127.0.0.1:1" }
      print((select(2, c:user_me({}, { max_retries = 1, retry_base = 0.01 }))).kind)]]
    write("hooks.lua", script)
    -- `script` runs the host on a pseudo-terminal: stderr is a tty
    local rc, out = sh("script -qec '" .. HOST .. " --no-env hooks.lua' /dev/null", dir)
    assert.equals(0, rc)
    assert.matches("[scalekit] retry: waiting 0.0 s (Ctrl-C stops)", out, 1, true)
    assert.matches("network", out, 1, true)
    local rc2, out2, err2 = sh(HOST .. " --no-env hooks.lua", dir)       -- stderr a file: no progress
    assert.equals(0, rc2)
    assert.equals("network\n", out2)
    assert.equals("", err2)
  end)

  it("shows waits, upload progress and page counts on stderr", function()
    write("p.lua", [[
      local t = require "scalekit.twitter.progress"
      t.on_wait(12.5, "rate_limit"); t.on_progress(50, 100); t.on_progress(100, 100); t.on_page(3)]])
    local rc, out, err = sh(HOST .. " p.lua", dir)
    assert.equals(0, rc)
    assert.equals("", out)
    assert.matches("[scalekit] rate_limit: waiting 12.5 s (Ctrl-C stops)", err, 1, true)
    assert.matches("[scalekit] upload: 50 / 100 bytes (50%)", err, 1, true)
    assert.matches("[scalekit] upload: 100 / 100 bytes (100%)", err, 1, true)
    assert.matches("[scalekit] pages: 3", err, 1, true)
  end)

  it("stops a transfer in progress on Ctrl-C", function()
    local f = fake.start()
    finally(function() f:stop() end)
    f:script{ path = "/proxy/slow", delay = 20, json = {} }
    write("t.lua", ([[
      local tw = require("scalekit.twitter").new{ env_url = %q, client_id = %q, client_secret = %q,
                                                  identifier = "u", max_retries = 0 }
      print(tw:request{ path = "/slow" })]]):format(f.url, fake.CLIENT_ID, fake.CLIENT_SECRET))
    local t = os.time()
    local rc, _, err = sh(HOST .. " t.lua & pid=$!; sleep 1; kill -INT $pid; wait $pid", dir)
    assert.is_true(os.time() - t <= 6)
    assert.equals(1, rc)
    assert.matches("interrupted", err)
  end)

  it("stops a long wait on Ctrl-C", function()
    write("wait.lua", 'require("scalekit.core").sleep(30)')
    local t = os.time()
    local rc, _, err = sh(HOST .. " wait.lua & pid=$!; sleep 0.5; kill -INT $pid; wait $pid", dir)
    assert.is_true(os.time() - t <= 5)
    assert.equals(1, rc)
    assert.matches("interrupted", err)
  end)
end)

describe("scalekit-lua commands", function()
  local f
  setup(function() f = fake.start_connected() end)
  teardown(function() f:stop() end)
  local function env()
    return ("SCALEKIT_ENVIRONMENT_URL=%s SCALEKIT_CLIENT_ID=%s SCALEKIT_CLIENT_SECRET=%s SCALEKIT_IDENTIFIER=user_123")
      :format(f.url, fake.CLIENT_ID, fake.CLIENT_SECRET)
  end

  it("--tools lists one tool per line", function()
    local rc, out = sh(HOST .. " --tools")
    assert.equals(0, rc)
    local n = select(2, out:gsub("\n", ""))
    assert.equals(80, n)
    assert.matches("^twitter_activity_subscription_create\t", out)
  end)

  it("--schema prints the JSON Schema", function()
    local rc, out = sh(HOST .. " --schema recent_search")
    assert.equals(0, rc)
    assert.same(twitter.json.encode(twitter.schema("recent_search")) .. "\n", out)
  end)

  it("--call prints the result as JSON, input from an argument or stdin", function()
    local rc, out = sh(HOST .. [[ --call post_create '{"text":"from the shell"}']], nil, env())
    assert.equals(0, rc)
    local d = assert(twitter.json.decode(out))
    assert.equals("from the shell", d.data.text)
    rc, out = sh([[echo '{"query":"shell"}' | ]] .. HOST .. " --call recent_search -", nil, env())
    assert.equals(0, rc)
    assert.equals(1, assert(twitter.json.decode(out)).meta.result_count)
  end)

  it("--call fails with JSON on stderr and an exit code per kind", function()
    local rc, out, err = sh(HOST .. [[ --call recent_search '{"max_results":5}']], nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.equals("invalid_input", assert(twitter.json.decode(err)).error.kind)
    rc, out, err = sh(HOST .. " --call user_me '{}'")
    assert.equals(3, rc)
    assert.equals("", out)
    assert.matches('"kind":"auth"', err)
    f:script{ path = "/api/v1/execute_tool", status = 429, json = { code = 8, message = "slow down" } }
    rc, out, err = sh(HOST .. " --call user_me '{}'", nil, env())
    assert.equals(4, rc)
    assert.equals("", out)
    assert.matches('"kind":"rate_limited"', err)
    f:script{ path = "/api/v1/execute_tool", status = 500, body = "boom" }
    rc = sh(HOST .. " --call user_me '{}'", nil, env())
    assert.equals(1, rc)
  end)
end)

describe("scalekit-lua commands in direct mode", function()
  local x
  setup(function() x = fake.start{ script = "fake_x.py" } end)
  teardown(function() x:stop() end)
  local function env(extra)
    return ("X_API_BASE_URL=%s X_CLIENT_ID=sandbox-x-client X_CLIENT_SECRET=%s %s")
      :format(x.url, "sandbox-x-secret-s3kr1t", extra or "")
  end

  it("--token-file keeps the refresh token X rotates, so every later --call still works", function()
    x:control("tokens", { refresh_token = "r-host-s3kr1t" })
    local file = dir .. "/host-tokens.json"
    for run = 1, 3 do
      local rc, out, err = sh(HOST .. " --token-file " .. file .. " --call user_me '{}'", nil,
                              env("X_REFRESH_TOKEN=r-host-s3kr1t"))
      assert.equals(0, rc, err)
      assert.equals("sandbox_user", assert(twitter.json.decode(out)).data.username, "run " .. run)
      assert.equals("", err)
    end
    -- the first run refreshed; the others used the saved access token
    assert.equals(1, #x:requests("/2/oauth2/token"))
    local saved = assert(twitter.json.decode(assert(io.open(file)):read("a")))
    assert.matches("^ur%-", saved.refresh_token)
    -- X_TOKEN_FILE does the same
    local rc = sh(HOST .. " --call user_me '{}'", nil, env("X_TOKEN_FILE=" .. file))
    assert.equals(0, rc)
  end)

  it("--call without a token file says the rotated refresh token is not kept", function()
    x:control("tokens", { refresh_token = "r-once-s3kr1t" })
    local rc, out, err = sh(HOST .. " --call user_me '{}'", nil, env("X_REFRESH_TOKEN=r-once-s3kr1t"))
    assert.equals(0, rc)
    assert.equals("sandbox_user", assert(twitter.json.decode(out)).data.username)
    assert.equals("scalekit-lua: X issued a new refresh token and the old one no longer works; it is not kept "
                  .. "(set X_TOKEN_FILE or pass --token-file FILE)\n", err)
  end)

  it("--call refuses a token with CR/LF as an auth error, without a traceback", function()
    local rc, out, err = sh(HOST .. " --call user_me '{}'", nil, env("X_ACCESS_TOKEN=\"$(printf 'ab\\r\\nX: y')\""))
    assert.equals(3, rc)
    assert.equals("", out)
    local e = assert(twitter.json.decode(err)).error
    assert.equals("auth", e.kind)
    assert.equals("scalekit.twitter.new: access_token must be a string without spaces or control characters",
                  e.message)
    assert.is_nil(err:find("traceback", 1, true))
  end)
end)
