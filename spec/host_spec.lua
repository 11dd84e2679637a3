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
    assert.equals("s.lua\tone\t" .. twitter._VERSION .. "\t80\tone\ttwo\n", out)
  end)

  it("handles -e, -l, -v, - and --", function()
    local rc, out = sh(HOST .. " -l cj=scalekit.core -e 'print(cj.urlencode(\"a b\"))' -v")
    assert.equals(0, rc)
    assert.matches("^scalekit%-lua %d+%.%d+%.%d+ %(scalekit%.twitter%) on Lua 5%.4", out)
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

  it("starts generational collection over once the SDK is loaded: the heap stays near its size", function()
    -- short-lived garbage after the load; before, Lua let the heap double
    -- (a "bad" first major collection) before collecting any of it
    write("gc.lua", [[
      require "scalekit.twitter"
      local base, peak = collectgarbage("count"), 0
      for i = 1, 20000 do
        local t = { i, tostring(i), { i } }
        peak = math.max(peak, collectgarbage("count"))
        if t[1] < 0 then print(t) end
      end
      print(collectgarbage("generational"), peak / base < 1.6, ("%.2f"):format(peak / base))]])
    local rc, out = sh(HOST .. " gc.lua", dir)
    assert.equals(0, rc)
    assert.matches("^generational\ttrue\t", out)
    -- a script that picked the incremental collector keeps it
    rc, out = sh(HOST .. [[ -e 'collectgarbage("incremental"); require "scalekit.twitter"
      print(collectgarbage("incremental"))']])
    assert.equals(0, rc)
    assert.equals("incremental\n", out)
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

-- The command line, option by option: exit code, stdout and stderr exactly,
-- and for the commands the exact request the fake Scalekit got.
describe("scalekit-lua command line", function()
  local f
  setup(function()
    f = fake.start_connected()
    fake.connect(f, "bob")
  end)
  teardown(function() f:stop() end)
  before_each(function() f:clear() end)
  local function env(extra)
    return ("SCALEKIT_ENVIRONMENT_URL=%s SCALEKIT_CLIENT_ID=%s SCALEKIT_CLIENT_SECRET=%s "
      .. "SCALEKIT_IDENTIFIER=user_123 %s"):format(f.url, fake.CLIENT_ID, fake.CLIENT_SECRET, extra or "")
  end
  -- The execute_tool bodies the fake got, decoded.
  local function executed()
    local out = {}
    for i, r in ipairs(f:requests("/api/v1/execute_tool")) do out[i] = assert(twitter.json.decode(r.body)) end
    return out
  end
  local function usage_error(message)
    return twitter.json.encode({ error = { kind = "invalid_input", message = message } }) .. "\n"
  end

  it("--help and -h print every option, variable and exit status on stdout", function()
    local rc, out, err = sh(HOST .. " --help")
    assert.equals(0, rc)
    assert.equals("", err)
    assert.equals("usage: scalekit-lua [options] [script [args]]\n", out:match("^[^\n]*\n"))
    assert.matches(" 4 rate limited%.\n$", out)
    local rc2, out2 = sh(HOST .. " -h")
    assert.equals(0, rc2)
    assert.equals(out, out2)
    -- every variable the SDK reads is listed
    for name in io.popen("grep -rhoE 'getenv\\(\"[A-Z_]+\"(, \"[A-Z_]+\")*' " .. fake.ROOT .. "/lua"):read("a")
                  :gmatch('"([A-Z_]+)"') do
      assert.matches(name, out, 1, true)
    end
  end)

  it("--help and the man page list the same options and commands", function()
    local _, help = sh(HOST .. " --help")
    local function sorted(set)
      local list = {}
      for o in pairs(set) do list[#list + 1] = o end
      table.sort(list)
      return list
    end
    -- --help: the options that start its indented lines ("  -h, --help  ...")
    local in_help = {}
    for line in help:gmatch("[^\n]+") do
      local head = line:match("^%s+(%-[^%s]*,? ?%-?%-?[%w%-]*)")
      for o in (head or ""):gmatch("%-%-?[%w][%w%-]*") do in_help[o] = true end
    end
    -- the man page: the options named on the line after each .TP
    local man = fake.read(fake.ROOT .. "/docs/scalekit-lua.1")
    local in_man = {}
    for line in man:gmatch("%.TP\n([^\n]+)") do
      local name_part = (line:match("^%.B[IR]? (.*)") or ""):gsub('"[^"]*"', " ")   -- quoted: arguments
      for o in name_part:gsub("\\%-", "-"):gmatch("%-%-?[%w][%w%-]*") do in_man[o] = true end
    end
    in_help["-"], in_man["-"] = nil, nil
    assert.same(sorted(in_help), sorted(in_man))
    assert.is_true(#sorted(in_help) > 20)   -- the parsing found them
  end)

  it("a bad option prints the usage on stderr and exits 1, like lua5.4", function()
    local rc, out, err = sh(HOST .. " --bogus")
    assert.equals(1, rc)
    assert.equals("", out)
    assert.equals("scalekit-lua: unrecognized option '--bogus'\nusage: scalekit-lua [options] [script [args]]\n",
                  err:match("^[^\n]*\n[^\n]*\n"))
  end)

  it("-v shows the SDK and the Lua release", function()
    local p = assert(io.popen("lua5.4 -v"))
    local release = p:read("a"):match("^(Lua %S+)")
    p:close()
    local rc, out, err = sh(HOST .. " -v")
    assert.equals(0, rc)
    assert.equals("", err)
    assert.equals("scalekit-lua " .. twitter._VERSION .. " (scalekit.twitter) on " .. release .. "\n", out)
  end)

  it("-i reads statements after the script and prints expressions", function()
    local rc, out = sh("printf 'x + 1\\nprint(\"done\")\\n' | " .. HOST .. " -i -e 'x = 5'")
    assert.equals(0, rc)
    assert.equals("6\ndone\n\n", out)
  end)

  it("-i on a terminal loads the line editor then (history), and a script never maps it", function()
    -- a pseudo-terminal from Python's standard library: the prompt, an
    -- expression, then the up arrow brings it back
    write("term.py", [[
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--no-env", "-i"])
out = b""
def read(t):
    global out
    end = time.time() + t
    while time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
read(0.5)
for keys in (b"1+2\r", b"\x1b[A\r", b"os.exit(0)\r"):
    os.write(fd, keys)
    read(1.0)
sys.stdout.write(out.decode().replace("\r", ""))
]])
    local rc, out = sh("python3 term.py " .. HOST, dir)
    assert.equals(0, rc)
    assert.equals("> 1+2\n3\n> > 1+2\n3\n> os.exit(0)\n", out)
    rc, out = sh(HOST .. [[ -e 'print((io.open("/proc/self/maps"):read("a"):find("libedit", 1, true)))']])
    assert.equals(0, rc)
    assert.equals("nil\n", out)
  end)

  it("-W turns warnings on", function()
    local rc, out, err = sh(HOST .. " -W -e 'warn(\"careful\")'")
    assert.equals(0, rc)
    assert.equals("", out)
    assert.equals("Lua warning: careful\n", err)
    rc, out, err = sh(HOST .. " -e 'warn(\"careful\")'")
    assert.equals(0, rc)
    assert.equals("", out)
    assert.equals("", err)
  end)

  it("--env-file loads that file, a missing one is an error; --no-env skips ./.env", function()
    write(".env", "FROM_DOT_ENV=dot\n")
    write("other.env", "FROM_DOT_ENV=other\n")
    local show = " -e 'print(os.getenv(\"FROM_DOT_ENV\"))'"
    local rc, out = sh(HOST .. " --env-file other.env" .. show, dir)
    assert.equals(0, rc)
    assert.equals("other\n", out)
    rc, out = sh(HOST .. " --no-env" .. show, dir)
    assert.equals(0, rc)
    assert.equals("nil\n", out)
    local err
    rc, out, err = sh(HOST .. " --env-file missing.env" .. show, dir)
    assert.equals(1, rc)
    assert.equals("", out)
    assert.equals("scalekit-lua: cannot open missing.env: No such file or directory\n", err)
    os.remove(dir .. "/.env")
  end)

  it("--call --identifier runs the call for that account", function()
    local rc, out, err = sh(HOST .. " --call user_me --identifier bob", nil, env())
    assert.equals(0, rc, err)
    assert.equals('{"data":{"id":"1720000000000000001","name":"Sandbox User","username":"sandbox_user"}}\n', out)
    local calls = executed()
    assert.equals(1, #calls)
    assert.same({ connector = "twitter", identifier = "bob", params = {}, tool_name = "twitter_user_me" }, calls[1])
  end)

  it("an account Scalekit does not know is named in the error", function()
    local rc, out, err = sh(HOST .. " --call user_me --identifier nobody", nil, env())
    assert.equals(1, rc)
    assert.equals("", out)
    local e = assert(twitter.json.decode(err)).error
    assert.equals("twitter_user_me: connected account not found or not active (identifier 'nobody', "
                  .. "connection 'twitter')", e.message)
    assert.equals("not_found", e.kind)
    assert.equals("nobody", e.identifier)
  end)

  it("--call --all --limit writes the items of every page as JSON Lines", function()
    local rc, out, err = sh(HOST .. [[ --call followers_get '{"id":"2244994945","max_results":2}' --all --limit 3]],
                            nil, env())
    assert.equals(0, rc, err)
    assert.equals('{"id":"1720000000000001001","name":"Follower 1","username":"follower_1"}\n'
               .. '{"id":"1720000000000001002","name":"Follower 2","username":"follower_2"}\n'
               .. '{"id":"1720000000000001003","name":"Follower 3","username":"follower_3"}\n', out)
    local calls = executed()
    assert.equals(2, #calls)                               -- two pages of two; the limit stops the loop
    assert.same({ id = "2244994945", max_results = 2 }, calls[1].params)
    assert.equals("2244994945", calls[2].params.id)
    assert.is_string(calls[2].params.pagination_token)
  end)

  it("--call --all on a tool that does not page, and --limit alone, are usage errors", function()
    local rc, out, err = sh(HOST .. " --call user_me --all", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.equals(usage_error("scalekit.twitter: twitter_user_me does not paginate"), err)
    rc, out, err = sh(HOST .. " --call followers_get --limit 3", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.equals(usage_error("--limit needs --all; usage: scalekit-lua --call TOOL [JSON|-] [--all [--limit N]] "
                              .. "[--identifier ID]"), err)
    rc, out, err = sh(HOST .. " --call followers_get --all --limit 0", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.matches("--limit needs a whole number above 0", err, 1, true)
    rc, out, err = sh(HOST .. " --call user_me --bogus", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.matches("--call takes no option --bogus", err, 1, true)
    assert.equals(0, #f:requests())
  end)

  it("--request sends one proxy request with --param and --body, the body printed as received", function()
    local rc, out, err = sh(HOST .. [[ --request POST /2/tweets --param a=1 --param ids=1 --param ids=2 ]]
                            .. [[--body '{"text":"hi","n":12345678901234567}' --identifier bob]], nil, env())
    assert.equals(0, rc, err)
    assert.equals('{"proxied": {"method": "POST", "path": "/2/tweets", "query": "a=1&ids=1%2C2", '
                  .. '"body": "{\\"n\\":12345678901234567,\\"text\\":\\"hi\\"}"}}\n', out)
    local r = f:requests("/proxy/2/tweets")
    assert.equals(1, #r)
    assert.equals("POST", r[1].method)
    assert.equals("bob", fake.header(r[1], "identifier"))
    assert.equals("twitter", fake.header(r[1], "connection_name"))
    assert.equals("application/json", fake.header(r[1], "content-type"))
    -- the method defaults to GET; the body can come from stdin
    rc, out = sh(HOST .. " --request /2/users/me", nil, env())
    assert.equals(0, rc)
    assert.equals('{"proxied": {"method": "GET", "path": "/2/users/me", "query": "", "body": ""}}\n', out)
    rc, out = sh([[echo '{"text":"piped"}' | ]] .. HOST .. " --request POST /2/tweets --body -", nil, env())
    assert.equals(0, rc)
    assert.matches('"body": "{\\"text\\":\\"piped\\"}"', out, 1, true)
  end)

  it("--request refuses a bad --param, a body that is not an object and a bad method, before sending", function()
    local rc, out, err = sh(HOST .. " --request GET /2/users/me --param nonsense", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.matches("--param takes NAME=VALUE, got 'nonsense'", err, 1, true)
    rc, out, err = sh(HOST .. " --request POST /2/tweets --body '[1]'", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.equals(usage_error("the body is not a JSON object: got an array"), err)
    rc, out, err = sh(HOST .. " --request 'GE T' /2/users/me", nil, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.equals(usage_error("scalekit.twitter: request method must be a word of letters (GET, POST, ...), "
                              .. 'got "GE T"'), err)
    assert.equals(0, #f:requests())
  end)

  it("--upload prints the media id, with --media-type and --media-category passed on", function()
    write("cat.png", "\137PNG\r\n\26\nabcdefgh")
    local rc, out, err = sh(HOST .. " --upload cat.png --media-category dm_image --identifier bob", dir, env())
    assert.equals(0, rc, err)
    assert.equals("1720000000000000101\n", out)
    local calls = executed()
    assert.equals(1, #calls)
    assert.same({ connector = "twitter", identifier = "bob", tool_name = "twitter_media_upload_base64",
                  params = { media_category = "dm_image", media_data = "iVBORw0KGgphYmNkZWZnaA==",
                             media_type = "image/png" } }, calls[1])
    write("clip.bin", "not a known format")
    rc, out, err = sh(HOST .. " --upload clip.bin --media-type image/gif", dir, env())
    assert.equals(0, rc, err)
    assert.equals("1720000000000000102\n", out)
    assert.equals("image/gif", executed()[2].params.media_type)
    rc, out, err = sh(HOST .. " --upload missing.png", dir, env())
    assert.equals(2, rc)
    assert.equals("", out)
    assert.matches("missing.png", err, 1, true)
  end)
end)

describe("scalekit-lua command line in direct mode", function()
  local x
  setup(function() x = fake.start{ script = "fake_x.py" } end)
  teardown(function() x:stop() end)

  it("--identifier is refused (it names a Scalekit account), before any request", function()
    x:control("tokens", { access_token = "a-cli-s3kr1t" })
    local rc, out, err = sh(HOST .. " --call user_me --identifier bob", nil,
                            ("X_API_BASE_URL=%s X_ACCESS_TOKEN=a-cli-s3kr1t"):format(x.url))
    assert.equals(2, rc)
    assert.equals("", out)
    local e = assert(twitter.json.decode(err)).error
    assert.equals("invalid_input", e.kind)
    assert.matches("identifier", e.message, 1, true)
    assert.equals(0, #x:requests())
  end)

  it("--request goes to X with the user's token", function()
    x:control("tokens", { access_token = "a-cli2-s3kr1t" })
    local rc, out, err = sh(HOST .. " --request /2/users/me --param user.fields=created_at", nil,
                            ("X_API_BASE_URL=%s X_ACCESS_TOKEN=a-cli2-s3kr1t"):format(x.url))
    assert.equals(0, rc, err)
    assert.equals("sandbox_user", assert(twitter.json.decode(out)).data.username)
    local r = x:requests("/2/users/me")
    assert.equals(1, #r)
    assert.equals("user.fields=created_at", r[1].query)
    assert.equals("Bearer a-cli2-s3kr1t", fake.header(r[1], "authorization"))
  end)
end)

-- docs/scalekit-lua.bash, run by bash as completion would: COMP_WORDS in, COMPREPLY out.
describe("scalekit-lua bash completion", function()
  local function complete(...)
    local words = { HOST, ... }
    local quoted = {}
    for i, w in ipairs(words) do quoted[i] = "'" .. w .. "'" end
    local script = ("source %s/docs/scalekit-lua.bash; COMP_WORDS=(%s); COMP_CWORD=%d; _scalekit_lua; "
      .. "printf '%%s\\n' \"${COMPREPLY[@]}\""):format(fake.ROOT, table.concat(quoted, " "), #words - 1)
    local p = assert(io.popen("cd " .. dir .. " && bash -c " .. "'" .. script:gsub("'", "'\\''") .. "'"))
    local out = {}
    for line in p:lines() do if line ~= "" then out[#out + 1] = line end end
    p:close()
    table.sort(out)
    return out
  end

  it("completes host options and commands", function()
    assert.same({ "--token-file", "--tools" }, complete("--to"))
    assert.same({ "--call" }, complete("--ca"))
  end)

  it("completes tool names after --call and --schema, short or full", function()
    assert.same({ "user_me", "user_mute" }, complete("--call", "user_m"))
    assert.same({ "twitter_user_me", "twitter_user_mute" }, complete("--schema", "twitter_user_m"))
  end)

  it("completes each command's own options, and files after --upload", function()
    assert.same({ "--all", "--identifier", "--limit" }, complete("--call", "user_me", "--"))
    assert.same({ "--body", "--identifier", "--param" }, complete("--request", "GET", "/2/users/me", "--"))
    assert.same({ "--media-category", "--media-type" }, complete("--upload", "x.png", "--media"))
    assert.same({ "--confirm-writes" }, complete("--mcp", "--con"))
    assert.same({ "DELETE" }, complete("--request", "D"))
    fake.write(dir, "upload-me.png", "x")
    assert.same({ "upload-me.png" }, complete("--upload", "upload-m"))
  end)
end)
