-- Configuration, TLS, secrets and the module-level API.

local twitter = require "scalekit.twitter"
local fake = require "support.fake"

-- Run Lua `code` in a child lua5.4 with exactly these SCALEKIT_* / X_* variables
-- (Lua cannot set its own environment); returns its stdout and stderr.
local function with_env(env, code)
  local parts = { ("LUA_PATH='%s' LUA_CPATH='%s'"):format(package.path, package.cpath) }
  for k, v in pairs(env) do parts[#parts + 1] = ("%s='%s'"):format(k, v) end
  local cmd = ("env -u SCALEKIT_ENVIRONMENT_URL -u SCALEKIT_ENV_URL -u SCALEKIT_CLIENT_ID "
    .. "-u SCALEKIT_CLIENT_SECRET -u SCALEKIT_IDENTIFIER -u X_BEARER_TOKEN -u X_ACCESS_TOKEN "
    .. "-u X_REFRESH_TOKEN -u X_TOKEN_FILE %s lua5.4 -e %q 2>&1"):format(
      table.concat(parts, " "), code)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

describe("configuration", function()
  it("reads credentials and identifier from the environment", function()
    local out = with_env({ SCALEKIT_ENVIRONMENT_URL = "https://acme.scalekit.dev/",
                           SCALEKIT_CLIENT_ID = "skc_1", SCALEKIT_CLIENT_SECRET = "sk_secret_value",
                           SCALEKIT_IDENTIFIER = "user_9" },
      [[local tw = require("scalekit.twitter").new{}; print(tw.env_url, tw.client_id, tw.identifier)]])
    assert.equals("https://acme.scalekit.dev\tskc_1\tuser_9\n", out)
  end)

  it("accepts SCALEKIT_ENV_URL, the connector page's other name", function()
    local out = with_env({ SCALEKIT_ENV_URL = "https://b.scalekit.dev", SCALEKIT_CLIENT_ID = "i",
                           SCALEKIT_CLIENT_SECRET = "s" },
      [[print(require("scalekit.twitter").new{}.env_url)]])
    assert.equals("https://b.scalekit.dev\n", out)
  end)

  it("picks direct mode when only X credentials are in the environment", function()
    local out = with_env({ X_BEARER_TOKEN = "app-token-value", X_CLIENT_ID = "xc",
                           X_API_BASE_URL = "http://127.0.0.1:9" },
      [[local tw = require("scalekit.twitter").new{}; print(tw.mode, tw.api_base_url, tw.client_id, tostring(tw))]])
    assert.equals("direct\thttp://127.0.0.1:9\txc\tscalekit.twitter client (mode=direct, "
                  .. "api_base_url=http://127.0.0.1:9, client_id=xc)\n", out)
    assert.is_nil(out:find("app-token-value", 1, true))
  end)

  it("says which credentials are missing", function()
    local out = with_env({}, [[print(pcall(require("scalekit.twitter").new, {}))]])
    assert.matches("missing env_url %(SCALEKIT_ENVIRONMENT_URL%), client_id %(SCALEKIT_CLIENT_ID%), "
                   .. "client_secret %(SCALEKIT_CLIENT_SECRET%)", out)
  end)

  local base = { env_url = "https://acme.scalekit.dev", client_id = "i", client_secret = "s" }
  local function with(over)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(over) do o[k] = v end
    return o
  end

  it("refuses plain http to a remote host unless explicitly allowed", function()
    assert.has_error(function() twitter.new(with{ env_url = "http://acme.scalekit.dev" }) end,
      "scalekit.twitter.new: env_url uses http:// for a non-loopback host; use https:// "
      .. "(or set allow_insecure_http = true)")
    assert.is_table(twitter.new(with{ env_url = "http://acme.scalekit.dev", allow_insecure_http = true }))
    assert.is_table(twitter.new(with{ env_url = "http://localhost:8080" }))
    assert.is_table(twitter.new(with{ env_url = "http://[::1]:8080" }))
    assert.has_error(function() twitter.new(with{ env_url = "ftp://x" }) end)
    assert.has_error(function() twitter.new(with{ env_url = "acme.scalekit.dev" }) end)
  end)

  it("rejects unknown options with a suggestion, and bad timeouts", function()
    assert.has_error(function() twitter.new(with{ identifer = "u" }) end,
      "scalekit.twitter.new: unknown option 'identifer'; did you mean 'identifier'?")
    assert.has_error(function() twitter.new(with{ timeout = 0 }) end,
      "scalekit.twitter.new: 'timeout' must be a positive number of seconds, got 0")
    assert.has_error(function() twitter.new("x") end,
      "scalekit.twitter.new: expected a table of options, got string")
    assert.has_error(function() twitter.new(with{ mode = "direct" }) end)
  end)
end)

describe("TLS", function()
  local cert, f
  setup(function()
    cert = fake.self_signed()
    f = fake.start{ tls = cert }
  end)
  teardown(function()
    f:stop()
    fake.rmdir(cert.dir)
  end)

  it("verifies the server certificate by default", function()
    local tw = twitter.new{ env_url = f.url, client_id = fake.CLIENT_ID,
                            client_secret = fake.CLIENT_SECRET, identifier = "user_123" }
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("network", err.kind)
    assert.equals("tls", err.transport)
    assert.equals(0, #f:requests())
  end)

  it("trusts a private CA given as ca_file", function()
    local tw = twitter.new{ env_url = f.url, client_id = fake.CLIENT_ID,
                            client_secret = fake.CLIENT_SECRET, identifier = "user_123",
                            ca_file = cert.cert }
    assert(tw:get_or_create_connected_account())
    local me = assert(tw:user_me{})
    assert.equals("sandbox_user", me.data.username)
    tw:close()
  end)
end)

describe("secrets", function()
  local f
  local SECRET = "sandbox-secret-s3kr1t"
  setup(function() f = fake.start() end)
  teardown(function() f:stop() end)

  it("never appear in tostring or a traversal of the client", function()
    local tw = fake.client(f)
    assert(tw:get_or_create_connected_account())
    local s = tostring(tw)
    assert.equals(("scalekit.twitter client (mode=scalekit, env_url=%s, client_id=sandbox-client, "
                   .. "identifier=user_123, connection=twitter)"):format(f.url), s)
    for k, v in pairs(tw) do
      assert.not_equals(SECRET, v, k)
      assert.is_nil(tostring(v):find("tok-", 1, true), k)
    end
    tw:close()
  end)

  it("are redacted from the debug trace, which still shows the calls", function()
    local lines = {}
    collectgarbage()                  -- no client of an earlier test holds the shared token: this one fetches it
    collectgarbage()
    local tw = fake.client(f, { debug = function(l) lines[#lines + 1] = l end })
    assert(tw:user_me{})
    f:script{ path = "/api/v1/execute_tool", status = 400,
              json = { message = "bad token tok-1 and secret sandbox-secret-s3kr1t echoed" } }
    local _, err = tw:user_me{}
    local trace = table.concat(lines, "\n")
    assert.matches("> POST " .. f.url .. "/oauth/token", trace, 1, true)
    assert.matches("> Authorization: [REDACTED]", trace, 1, true)
    assert.matches("client_secret=[REDACTED]", trace, 1, true)
    assert.matches("< 200", trace, 1, true)
    assert.is_nil(trace:find(SECRET, 1, true))
    assert.is_nil(trace:find("Bearer tok-", 1, true))
    assert.is_nil(tostring(err):find(SECRET, 1, true))
    assert.matches("[REDACTED]", err.message, 1, true)
    tw:close()
  end)

  it("are redacted from SCALEKIT_DEBUG output on stderr", function()
    local out = with_env({ SCALEKIT_DEBUG = "1", SCALEKIT_ENVIRONMENT_URL = f.url,
                           SCALEKIT_CLIENT_ID = fake.CLIENT_ID, SCALEKIT_CLIENT_SECRET = SECRET,
                           SCALEKIT_IDENTIFIER = "user_123" },
      [[local tw = require("scalekit.twitter").new{}; assert(tw:user_me{}); print("done")]])
    assert.matches("[scalekit] > POST", out, 1, true)
    assert.matches("done", out)
    assert.is_nil(out:find(SECRET, 1, true))
    assert.is_nil(out:find("Bearer tok", 1, true))
  end)
end)

describe("secrets in traces and messages", function()
  local MARK = fake.SECRET_MARK

  it("hide a token in the very answer that issues it (Scalekit's token endpoint), by key", function()
    local f = fake.start_connected()
    local lines = {}
    collectgarbage()                  -- the connecting client's shared token goes with it: this one fetches its own
    collectgarbage()
    local tw = fake.client(f, { debug = function(l) lines[#lines + 1] = l end })
    assert(tw:user_me{})
    local trace = table.concat(lines, "\n")
    assert.matches('< {"access_token": "[REDACTED]"', trace, 1, true)
    assert.is_nil(trace:find(MARK, 1, true))
    tw:close()
    f:stop()
  end)

  it("hide the access and refresh tokens of a direct-mode refresh, and the code exchange's fields", function()
    local f = fake.start{ script = "fake_x.py" }
    f:control("tokens", { refresh_token = "r-trace-" .. MARK })
    local lines = {}
    local debug = function(l) lines[#lines + 1] = l end
    local tw = twitter.new{ mode = "direct", api_base_url = f.url, client_id = "sandbox-x-client",
                            client_secret = "sandbox-x-secret-" .. MARK, access_token = "stale-" .. MARK,
                            refresh_token = "r-trace-" .. MARK, debug = debug }
    assert(tw:user_me{})
    local trace = table.concat(lines, "\n")
    assert.matches('"access_token": "[REDACTED]"', trace, 1, true)
    assert.matches('"refresh_token": "[REDACTED]"', trace, 1, true)
    assert.matches("refresh_token=[REDACTED]", trace, 1, true)
    assert.is_nil(trace:find(MARK, 1, true))
    tw:close()
    -- the same by key in any string the redactor sees
    local r = twitter.errors.redactor({})
    assert.equals("grant_type=authorization_code&code=[REDACTED]&redirect_uri=x&code_verifier=[REDACTED]",
                  r("grant_type=authorization_code&code=abc-" .. MARK .. "&redirect_uri=x&code_verifier=v" .. MARK))
    assert.equals('{"id_token":"[REDACTED]","client_secret":"[REDACTED]","code":16}',
                  r('{"id_token":"a\\"' .. MARK .. '","client_secret":"' .. MARK .. '","code":16}'))
    f:stop()
  end)

  it("are redacted in their percent-encoded and JSON-escaped forms too", function()
    local f = fake.start()
    local secret = "s/+=:" .. MARK .. "&x"
    local encoded = "s%2F%2B%3D%3A" .. MARK .. "%26x"
    -- the body as written by hand: the secret percent-encoded (both cases), JSON-escaped ("\/") and raw
    f:script{ path = "/oauth/token", status = 400, headers = { ["Content-Type"] = "application/json" },
              body = '{"error":"invalid_client","error_description":"bad client_secret ' .. encoded .. " / "
                .. encoded:lower() .. " / " .. secret:gsub("/", "\\/") .. " / " .. secret .. '"}' }
    local lines = {}
    local tw = twitter.new{ env_url = f.url, client_id = fake.CLIENT_ID, client_secret = secret, identifier = "u",
                            debug = function(l) lines[#lines + 1] = l end }
    local _, err = tw:user_me{}
    assert.equals("auth", err.kind)
    assert.equals("could not get a Scalekit access token: bad client_secret [REDACTED] / [REDACTED] / [REDACTED] / "
                  .. "[REDACTED]", err.message)
    local trace = table.concat(lines, "\n")
    assert.is_nil(trace:find(MARK, 1, true))
    assert.is_nil(tostring(err):find(MARK, 1, true))
    tw:close()
    f:stop()
  end)
end)

describe("module-level calls", function()
  it("forward a call's options", function()
    local f = fake.start_connected()
    twitter.configure{ env_url = f.url, client_id = fake.CLIENT_ID, client_secret = fake.CLIENT_SECRET,
                       identifier = "user_123", retry_base = 0.01 }
    assert(twitter.execute("user_me", {}))
    f:clear()
    f:script{ path = "/api/v1/execute_tool", status = 503, times = 5, json = { code = 14, message = "unavailable" } }
    local _, err = twitter.execute("user_me", {}, { max_retries = 0 })
    assert.equals(503, err.status)
    assert.equals(1, #f:requests("/api/v1/execute_tool"))
    assert.has_error(function() twitter.execute("user_me", {}, { timeoutt = 1 }) end)
    twitter.configure{}
    f:stop()
  end)

  it("blame the caller's line for a configuration mistake of the default client", function()
    local out = with_env({}, [[
      local twitter = require "scalekit.twitter"
      twitter.configure{}
      print(select(2, pcall(function() local r = twitter.execute("user_me", {}); return r end)))
      print(select(2, pcall(function() local r = twitter.user_me({}); return r end)))
      print(select(2, pcall(function() local r = twitter.request{ path = "/2/users/me" }; return r end)))
      twitter.configure{ timeout = -1 }
      print(select(2, pcall(function() local r = twitter.post_create{ text = "x" }; return r end)))
    ]])
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    -- (the shell joins the chunk into one line: every position is line 1, in the caller's chunk)
    assert.equals(4, #lines, out)
    for i = 1, 3 do
      assert.matches("^%(command line%):1: scalekit%.twitter%.new: missing env_url", lines[i])
    end
    assert.equals("(command line):1: scalekit.twitter.new: 'timeout' must be a positive number of seconds, got -1",
                  lines[4])
  end)
end)

describe("the module", function()
  local f
  setup(function() f = fake.start_connected() end)
  teardown(function() f:stop() end)

  it("has a version", function()
    assert.matches("^%d+%.%d+%.%d+$", twitter._VERSION)
  end)

  it("calls tools with the default client set by configure", function()
    twitter.configure{ env_url = f.url, client_id = fake.CLIENT_ID,
                       client_secret = fake.CLIENT_SECRET, identifier = "user_123" }
    f:clear()
    local data, info = twitter.post_create{ text = "from the module" }
    assert.is_table(data, tostring(info))
    assert.equals("twitter_post_create", info.tool)
    local same = assert(twitter.twitter_user_me{})
    assert.equals("sandbox_user", same.data.username)
    assert(twitter.execute("user_me", {}))
    assert.equals(200, assert(twitter.request{ path = "/2/users/me" }).status)
    assert.equals(3, #f:requests("/api/v1/execute_tool"))
    assert.has_error(function() twitter.post_create("x") end,
      "scalekit.twitter: twitter_post_create expects a table, got string")
  end)
end)

describe("each mode's methods", function()
  it("connected accounts exist on Scalekit clients, streams on direct ones; the other raises saying so", function()
    local sk = twitter.new{ env_url = "http://127.0.0.1:1", client_id = "c", client_secret = "s", identifier = "u" }
    local dm = twitter.new{ mode = "direct", access_token = "a", api_base_url = "http://127.0.0.1:1" }
    assert.is_function(sk.get_authorization_link)
    assert.is_function(dm.stream)
    local ok, err = pcall(function() return dm:get_authorization_link() end)
    assert.is_false(ok)
    assert.matches("^spec/config_spec.lua:%d+: scalekit.twitter: get_authorization_link is available on Scalekit "
                   .. "clients; this client is in direct mode$", err)
    ok, err = pcall(function() return sk:stream("tweet_label_stream", {}, print) end)
    assert.is_false(ok)
    assert.matches("stream is available on direct%-mode clients; this client is in scalekit mode$", err)
    ok, err = pcall(sk.get_connected_account)                            -- called with a dot
    assert.is_false(ok)
    assert.matches("call get_connected_account with a colon", err, 1, true)
    sk:close()
    dm:close()
  end)
end)
