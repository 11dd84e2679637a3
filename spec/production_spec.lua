-- Production behaviour: rate limits, retries, timeouts, pagination, batches
-- and media uploads from files, against the fake servers with injected faults.

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"
local transport = require "scalekit.twitter.transport"
local policy = require "scalekit.twitter.policy"
local fake = require "support.fake"

local ME = "1720000000000000001"

local function direct(f, opts)
  local o = { mode = "direct", api_base_url = f.url, client_id = "sandbox-x-client",
              client_secret = "sandbox-x-secret-s3kr1t", access_token = "user-token-1",
              bearer_token = "sandbox-app-bearer-s3kr1t", retry_base = 0.01 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return twitter.new(o)
end

local function count(f, path, method)
  local n = 0
  for _, r in ipairs(f:requests(path)) do
    if method == nil or r.method == method then n = n + 1 end
  end
  return n
end

describe("rate limits", function()
  local f
  setup(function() f = fake.start{ script = "fake_x.py" } end)
  teardown(function() f:stop() end)
  before_each(function()
    f:reset()
    f:control("tokens", { access_token = "user-token-1" })
  end)

  it("keeps the x-rate-limit headers per endpoint", function()
    local tw = direct(f)
    assert.is_nil(tw:rate_limit("user_me"))
    local _, info = assert(tw:user_me{})
    local rl = tw:rate_limit("twitter_user_me")
    assert.equals(900, rl.limit)
    assert.equals(899, rl.remaining)
    assert.is_true(rl.reset > core.now())
    assert.same(rl, info.rate_limit)
    assert(tw:request{ path = "/2/users/me" })
    assert.equals(898, tw:rate_limit("GET /2/users/me").remaining)
    assert(tw:request{ path = "2/users/me?user.fields=id" })      -- keyed without the query
    assert.equals(897, tw:rate_limit("GET /2/users/me").remaining)
    tw:close()
  end)

  it("gives response headers lower-cased, trimmed, repeated ones joined with ', '", function()
    local tw = direct(f)
    f:script{ path = "/2/users/me", json = { data = { id = ME } },
              headers = { ["X-Multi"] = { "a", " b " }, Link = "<x>", ["x-rate-limit-remaining"] = "7" } }
    local resp = assert(tw:request{ path = "/2/users/me" })
    assert.equals("a, b", resp.headers["x-multi"])
    assert.equals("<x>", resp.headers.link)
    assert.equals("7", resp.headers["x-rate-limit-remaining"])
    assert.equals("application/json", resp.headers["content-type"])
    assert.is_nil(resp.headers["X-Multi"])
    assert.same({ ["x-rate-limit-remaining"] = "7" }, transport.headers_with(resp, policy.RATE_HEADER_PREFIXES))
    tw:close()
  end)

  it("parses a header block the same way (core.parse_headers), case and repeats included", function()
    assert.same({ a = "1, 3", b = "2", ["x-rate-limit-limit"] = "15" },
                core.parse_headers("A: 1\r\nb:   2 \r\na:3\r\nX-Rate-Limit-Limit: 15\r\n\r\n"))
    assert.same({}, core.parse_headers(""))
    assert.same({ a = "x" }, core.parse_headers("A:\r\nA: x\r\nA:\r\n"))      -- empty items add nothing
    assert.same({ ok = "1" }, core.parse_headers("HTTP/1.1 200 OK: fine\r\n\tfolded: 2\r\nbad name: 3\r\nok: 1"))
    -- with prefixes: only the headers a session watching them keeps apart
    local block = "A: 1\r\nX-Rate-Limit-Limit: 15\r\nx-rate-limit-limit: 16\r\nx-other: 2\r\n\r\n"
    assert.same({ ["x-rate-limit-limit"] = "15, 16" }, core.parse_headers(block, { "x-rate-" }))
    assert.same({ a = "1", ["x-other"] = "2" }, core.parse_headers(block, { "a", "X-O" }))
    assert.is_nil(core.parse_headers(block, {}))                               -- none: no table
    assert.is_nil(core.parse_headers(block, { "y-" }))
    assert.has_error(function() core.parse_headers(block, { 1 }) end)
    assert.has_error(function() core.parse_headers(block, { "a", "b", "c", "d", "e", "f", "g", "h", "i" }) end)
  end)

  it("reads the rate-limit headers alone from the header block, parsing no other header", function()
    f:script{ path = "/2/users/me", json = { data = { id = ME } },
              headers = { ["X-Watched-One"] = "1", ["x-watched-two"] = { "a", "b" }, ["X-Other"] = "no" } }
    local http = transport.new{}
    local resp = assert(http:send{ url = f.url .. "/2/users/me", headers = { Authorization = "Bearer user-token-1" } })
    assert.equals(200, resp.status)
    assert.same({ ["x-watched-one"] = "1", ["x-watched-two"] = "a, b" }, transport.headers_with(resp, { "x-watched-" }))
    assert.is_nil(rawget(resp, "headers"))                    -- no table of every header was made
    assert.equals("no", resp.headers["x-other"])              -- until someone looks
    assert.same({ ["x-watched-one"] = "1", ["x-watched-two"] = "a, b" }, transport.headers_with(resp, { "x-watched-" }))
    http:close()
  end)

  it("takes every timeout and the method from the Lua side: the C session has no defaults", function()
    local s = core.http_new()
    local req = { url = f.url .. "/2/users/me", method = "GET", timeout = 1, connect_timeout = 1, stall_timeout = 1 }
    for _, k in ipairs{ "timeout", "connect_timeout", "stall_timeout" } do
      local one = {}
      for name, v in pairs(req) do one[name] = v end
      one[k] = nil
      assert.has_error(function() s:request(one) end, "request field '" .. k .. "' (seconds) is required")
    end
    req.method = nil
    assert.has_error(function() s:request(req) end)
    s:close()
  end)

  it("replays every header block the fuzzer ever failed on (fuzz/regressions/headers)", function()
    local dir = fake.ROOT .. "/fuzz/regressions/headers/"
    local p = assert(io.popen("ls " .. dir))
    local n = 0
    for name in p:lines() do
      local block = assert(io.open(dir .. name, "rb")):read("a")
      local h = core.parse_headers(block)
      for k, v in pairs(h) do
        assert.is_nil(k:find("[%c%s:%u]"), name)                -- the fuzzer's properties
        assert.is_nil(v:find("\n") or v:find("^[ \t]") or v:find("[ \t\r]$"), name)
      end
      -- with prefixes: the matching entries of the full table, nil rather than empty
      local only = core.parse_headers(block, { "x-", "a" })
      assert.is_true(only == nil or next(only) ~= nil, name)
      for k, v in pairs(h) do
        local watched = k:sub(1, 2) == "x-" or k:sub(1, 1) == "a"
        assert.equals(watched and v or nil, (only or {})[k], name)
      end
      for k in pairs(only or {}) do assert.is_truthy(h[k], name) end
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 4)
  end)

  it("reads the 24-hour app and user limits too", function()
    local rl = policy.rate_of{ ["x-rate-limit-limit"] = "450", ["x-rate-limit-remaining"] = "3",
      ["x-rate-limit-reset"] = "1700000000", ["x-app-limit-24hour-limit"] = "10000",
      ["x-app-limit-24hour-remaining"] = "9000", ["x-app-limit-24hour-reset"] = "1700050000",
      ["x-user-limit-24hour-limit"] = "100", ["x-user-limit-24hour-remaining"] = "0",
      ["x-user-limit-24hour-reset"] = "1700060000" }
    assert.same({ limit = 450, remaining = 3, reset = 1700000000,
                  day = { app = { limit = 10000, remaining = 9000, reset = 1700050000 },
                          user = { limit = 100, remaining = 0, reset = 1700060000 } } }, rl)
  end)

  local function limited(reset_in, extra)
    local h = { ["x-rate-limit-limit"] = "75", ["x-rate-limit-remaining"] = "0",
                ["x-rate-limit-reset"] = tostring(math.floor(core.now()) + reset_in) }
    for k, v in pairs(extra or {}) do h[k] = v end
    return h
  end

  it("returns rate_limited at once when not asked to wait", function()
    local tw = direct(f)
    f:script{ path = "/2/users/me", status = 429, headers = limited(30),
              json = { title = "Too Many Requests", detail = "Too Many Requests", type = "about:blank" } }
    local t = core.monotonic()
    local _, err = tw:user_me{}
    assert.equals("rate_limited", err.kind)
    assert.is_true(err.retry_after >= 29)
    assert.equals(0, err.rate_limit.remaining)
    assert.is_true(core.monotonic() - t < 1)
    assert.equals(1, count(f, "/2/users/me"))
    tw:close()
  end)

  it("waits until the reset and retries when wait_on_rate_limit is on", function()
    local waits = {}
    local tw = direct(f, { wait_on_rate_limit = true, on_wait = function(_, why) waits[#waits + 1] = why end })
    f:script{ path = "/2/users/me", status = 429, headers = limited(1), json = { title = "Too Many Requests" } }
    local t = core.monotonic()
    local d = assert(tw:user_me{})
    assert.equals(ME, d.data.id)
    assert.is_true(core.monotonic() - t >= 0.5)
    assert.equals(2, count(f, "/2/users/me"))
    assert.same({ "rate_limit" }, waits)
    tw:close()
  end)

  it("never waits on a usage cap, nor longer than max_wait", function()
    local tw = direct(f, { wait_on_rate_limit = true, max_wait = 5 })
    f:script{ path = "/2/users/me", status = 429, headers = limited(1),
              json = { title = "UsageCapExceeded", detail = "Usage cap exceeded: Monthly product cap",
                       type = "https://api.x.com/2/problems/usage-capped" } }
    local _, err = tw:user_me{}
    assert.equals("rate_limited", err.kind)
    assert.is_true(err.usage_cap)
    f:script{ path = "/2/users/me", status = 429, headers = limited(60), json = { title = "Too Many Requests" } }
    _, err = tw:user_me{}
    assert.equals("rate_limited", err.kind)
    assert.equals(2, count(f, "/2/users/me"))
    tw:close()
  end)

  it("waits through Scalekit too when the 429 says when to come back", function()
    local sk = fake.start_connected()
    finally(function() sk:stop() end)
    local tw = fake.client(sk, { wait_on_rate_limit = true })
    sk:clear()
    sk:script{ path = "/api/v1/execute_tool", status = 429, headers = { ["Retry-After"] = "1" },
               json = { code = 8, message = "slow down" } }
    assert(tw:user_me{})
    assert.equals(2, #sk:requests("/api/v1/execute_tool"))
    tw:close()
  end)
end)

describe("retries", function()
  local f, tw
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    tw = direct(f)
  end)
  teardown(function()
    tw:close()
    f:stop()
  end)
  before_each(function()
    f:reset()
    f:control("tokens", { access_token = "user-token-1" })
  end)

  it("retries a GET through a 503 storm with backoff, up to max_retries", function()
    f:script{ path = "/2/users/me", status = 503, times = 2, json = { title = "Service Unavailable" } }
    assert(tw:user_me{})
    assert.equals(3, count(f, "/2/users/me"))
    f:clear()
    f:script{ path = "/2/users/me", status = 503, times = 5, json = { title = "Service Unavailable" } }
    local _, err = tw:user_me{}
    assert.equals("server", err.kind)
    assert.equals(503, err.status)
    assert.equals(3, count(f, "/2/users/me"))
  end)

  it("takes a raw request's own retry settings, and the client's when it has none", function()
    f:script{ path = "/2/users/me", status = 503, times = 5, json = { title = "Service Unavailable" } }
    local _, err = tw:request{ path = "/2/users/me", max_retries = 0 }
    assert.equals(503, err.status)
    assert.equals(1, count(f, "/2/users/me"))
    _, err = tw:request{ path = "2/users/me?user.fields=id" }
    assert.equals(503, err.status)
    assert.equals(4, count(f, "/2/users/me"))      -- 1 + the client's max_retries (2)
  end)

  it("never repeats a POST that reached the server", function()
    f:script{ path = "/2/tweets", status = 503, json = { title = "Service Unavailable" } }
    local _, err = tw:post_create{ text = "once" }
    assert.equals(503, err.status)
    assert.equals(1, count(f, "/2/tweets"))
    f:clear()
    f:script{ path = "/2/tweets", drop = true }
    _, err = tw:post_create{ text = "once" }
    assert.equals("network", err.kind)
    assert.is_true(err.may_have_been_applied)
    assert.matches("it may have been applied", err.message)
    assert.equals(1, count(f, "/2/tweets"))
  end)

  it("retries a GET whose connection resets mid-body, but not a POST", function()
    f:script{ path = "/2/users/me", truncate = true, json = { data = { id = "x" } } }
    local d = assert(tw:user_me{})
    assert.equals(ME, d.data.id)
    assert.equals(2, count(f, "/2/users/me"))
    f:clear()
    f:script{ path = "/2/tweets", truncate = true, status = 201, json = { data = { id = "9" } } }
    local _, err = tw:post_create{ text = "x" }
    assert.equals("network", err.kind)
    assert.is_true(err.may_have_been_applied)
    assert.equals(1, count(f, "/2/tweets"))
  end)

  it("retries a call refused before anything was sent, even a POST", function()
    local c = twitter.new{ mode = "direct", api_base_url = "http://127.0.0.1:1", access_token = "a",
                           retry_base = 0.01, max_retries = 2 }
    local waits = 0
    local _, err = c:post_create({ text = "x" }, { on_wait = function() waits = waits + 1 end })
    assert.equals("network", err.kind)
    assert.is_false(err.sent)
    assert.is_nil(err.may_have_been_applied)
    c:close()
  end)

  it("gives up on a stalled server after stall_timeout, and honours a per-call timeout", function()
    local c = direct(f, { stall_timeout = 1, max_retries = 0 })
    f:script{ path = "/2/users/me", delay = 3, json = {} }
    local t = core.monotonic()
    local _, err = c:user_me{}
    assert.equals("timeout", err.kind)
    assert.is_true(core.monotonic() - t < 2.8)
    f:script{ path = "/2/users/me", delay = 2, json = {} }
    t = core.monotonic()
    _, err = c:user_me({}, { timeout = 0.3 })
    assert.equals("timeout", err.kind)
    assert.is_true(core.monotonic() - t < 1.5)
    local c2 = direct(f, { max_retries = 0 })
    f:script{ path = "/2/users/me", delay = 3, json = {} }
    t = core.monotonic()
    _, err = c2:user_me({}, { stall_timeout = 1 })
    assert.equals("timeout", err.kind)
    assert.is_true(core.monotonic() - t < 2.8)
    c2:close()
    c:close()
  end)
end)

describe("per-call options", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, { script = "fake_x.py" }, function(x)
    x:control("tokens", { access_token = "user-token-1" })
    return direct(x)
  end)

  -- The same mistakes, refused the same way as client options, before any traffic.
  local bad = {
    { { timeoutt = 1 }, "unknown option 'timeoutt'; did you mean 'timeout'?" },
    { { max_retries = 500 }, "'max_retries' must be an integer from 0 to 10, got 500" },
    { { max_retries = 1.5 }, "'max_retries' must be an integer from 0 to 10, got 1.5" },
    { { retry_base = -1 }, "'retry_base' must be a positive number of seconds, got -1" },
    { { timeout = 0 }, "'timeout' must be a positive number of seconds, got 0" },
    { { wait_on_rate_limit = "yes" }, "'wait_on_rate_limit' must be a boolean, got \"yes\"" },
    { { identifier = "bob" },
      "'identifier' is a Scalekit option (the account of the call); this client is in direct mode" },
  }
  for _, case in ipairs(bad) do
    local opts, why = case[1], case[2]
    it("refuses " .. why:sub(1, 50) .. " on every way of calling, as twitter.new does", function()
      local calls = {
        function() tw:user_me({}, opts) end,
        function() tw:twitter_user_me({}, opts) end,
        function() tw:execute("twitter_user_me", {}, opts) end,
        function() tw:pages("twitter_followers_get", { id = ME }, opts) end,
        function() tw:items("twitter_followers_get", { id = ME }, opts) end,
        function() tw:batch({ { "twitter_user_me", {} } }, opts) end,
      }
      for i, call in ipairs(calls) do
        local ok, err = pcall(call)
        assert.is_false(ok, "call " .. i)
        assert.matches(why, err, 1, true)
        assert.matches("^spec/production_spec.lua:%d+: scalekit.twitter: ", err)   -- the caller's line
      end
      if not opts.identifier then
        local k, v = next(opts)
        local ok, err = pcall(twitter.new, { mode = "direct", access_token = "a", [k] = v })
        assert.is_false(ok)
        assert.matches(why, err, 1, true)
      end
      assert.equals(0, #f:requests())
    end)
  end

  it("takes the options of pages, items and batch besides the per-call ones", function()
    assert.has_error(function() tw:pages("twitter_followers_get", { id = ME }, { limit = 0 }) end)
    assert.has_error(function() tw:batch({}, { concurrency = 65 }) end)
    for page in tw:pages("twitter_followers_get", { id = ME }, { limit = 1, max_retries = 0, timeout = 5 }) do
      assert.is_table(page)
    end
    local results = tw:batch({ { "twitter_user_me", {} } }, { concurrency = 2, max_retries = 0 })
    assert.equals(ME, results[1].data.data.id)
  end)
end)

describe("the call's deadline", function()
  local f, tw
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    tw = direct(f, { retry_base = 0.4, max_retries = 10 })
  end)
  teardown(function()
    tw:close()
    f:stop()
  end)
  before_each(function()
    f:reset()
    f:control("tokens", { access_token = "user-token-1" })
  end)

  it("bounds every attempt and backoff together: timeout = 1 ends a 503 storm within 1 s", function()
    f:script{ path = "/2/users/me", status = 503, times = 50, json = { title = "Service Unavailable" } }
    local waits = 0
    local t = core.monotonic()
    local _, err = tw:user_me({}, { timeout = 1, on_wait = function() waits = waits + 1 end })
    local took = core.monotonic() - t
    assert.equals(503, err.status)
    assert.is_true(took < 1.2, "took " .. took .. " s")
    assert.is_true(waits >= 1 and waits < 10, "waits " .. waits)
    assert.equals(waits + 1, count(f, "/2/users/me"))
  end)

  it("gives a slow retry only the time left, then fails as a timeout", function()
    f:script{ path = "/2/users/me", status = 503, delay = 0.6, times = 50, json = { title = "Service Unavailable" } }
    local t = core.monotonic()
    local _, err = tw:user_me({}, { timeout = 1, retry_base = 0.01 })
    local took = core.monotonic() - t
    assert.is_true(took < 1.3, "took " .. took .. " s")
    assert.equals("timeout", err.kind)
  end)

  it("does not wait out a rate limit that resets after the deadline", function()
    f:script{ path = "/2/users/me", status = 429, headers = { ["Retry-After"] = "5" }, json = { title = "Too Many" } }
    local t = core.monotonic()
    local _, err = tw:user_me({}, { timeout = 2, wait_on_rate_limit = true })
    assert.equals("rate_limited", err.kind)
    assert.equals(5, err.retry_after)
    assert.is_true(core.monotonic() - t < 1)
    assert.equals(1, count(f, "/2/users/me"))
  end)

  it("defaults to 60 s, plus max_wait when the call waits on rate limits", function()
    local plain, waiting = policy.defaults{}, policy.defaults{ wait_on_rate_limit = true }
    assert.equals(60, plain.timeout)
    assert.equals(plain, policy.settings(nil, plain))                -- no call options: the client's, as made
    assert.equals(60 + 900, waiting.timeout)
    assert.equals(60 + 30, policy.settings({ wait_on_rate_limit = true, max_wait = 30 }, plain).timeout)
    assert.equals(5, policy.settings({ timeout = 5 }, waiting).timeout)
    assert.equals(7, policy.settings({ max_retries = 0 }, policy.defaults{ timeout = 7 }).timeout)
    assert.equals(60, policy.settings({ wait_on_rate_limit = false }, waiting).timeout)
  end)
end)

describe("interrupts", function()
  it("are final: an interrupted transfer is never retried or backed off", function()
    local attempts, waits = 0, 0
    local interrupted = twitter.errors.new("interrupted", "GET x: aborted by Ctrl-C",
                                           { transport = "interrupted", sent = false })
    local http = { send = function() attempts = attempts + 1; return nil, interrupted end }
    local s = policy.settings({ max_retries = 5, on_wait = function() waits = waits + 1 end }, policy.defaults{})
    local resp, err = policy.send(http, { method = "GET" }, s, { retry_any_method = {}, final = function() end })
    assert.is_nil(resp)
    assert.equals(interrupted, err)
    assert.same({ 1, 0 }, { attempts, waits })
  end)

  it("are final in a wait too: a sleep cut short ends the call as interrupted", function()
    local attempts = 0
    local http = { send = function() attempts = attempts + 1; return { status = 503, headers = {} } end }
    local s = policy.settings({ max_retries = 5, sleep = function() return nil, "interrupted" end }, policy.defaults{})
    local resp, err = policy.send(http, { method = "GET", tool = "twitter_user_me" }, s,
                                  { retry_any_method = {}, final = function() end })
    assert.is_nil(resp)
    assert.equals("interrupted", err.kind)
    assert.equals("twitter_user_me: interrupted while waiting", err.message)
    assert.equals(1, attempts)
  end)

  it("stop a script's transfer in the host after one request (Ctrl-C)", function()
    local f = fake.start{ script = "fake_x.py" }
    f:control("tokens", { access_token = "user-token-1" })
    f:script{ path = "/2/users/me", delay = 5, json = {} }
    local script = os.tmpname()
    local h = assert(io.open(script, "w"))
    h:write(([[
      local tw = require("scalekit.twitter").new{ mode = "direct", api_base_url = %q, access_token = "user-token-1" }
      local ok, err = pcall(tw.user_me, tw, {})
      io.write("after: ", tostring(ok), " ", tostring(err), "\n")
    ]]):format(f.url))
    h:close()
    local t = core.monotonic()
    local p = io.popen(("%s/bin/scalekit-lua --no-env %s & pid=$!; sleep 0.7; kill -INT $pid; wait $pid; echo rc=$?")
      :format(fake.ROOT, script))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.is_true(core.monotonic() - t < 3)
    assert.matches("after: false .*interrupted", out)
    assert.equals(1, count(f, "/2/users/me"))
    f:stop()
  end)
end)

describe("sequences", function()
  it("pass a call's options to every request explicitly, so none outlive the call", function()
    local f = fake.start{ script = "fake_x.py" }
    f:control("tokens", { access_token = "user-token-1" })
    local tw = direct(f)
    local bytes = string.rep("v", 64)
    -- a per-call option raising inside the processing wait (as Ctrl-C would)
    local ok, err = pcall(tw.media_upload_large, tw, { media_data = core.base64(bytes), total_bytes = #bytes,
      media_type = "video/mp4" }, { max_retries = 0, on_wait = function(_, why)
        if why == "processing" then error("stopped in the wait") end
      end })
    assert.is_false(ok)
    assert.matches("stopped in the wait", err)
    -- the next call has no options: the client's max_retries (2) applies, not 0
    f:clear()
    f:script{ path = "/2/users/me", status = 503, times = 1, json = { title = "Service Unavailable" } }
    assert(tw:user_me{})
    assert.equals(2, count(f, "/2/users/me"))
    tw:close()
    f:stop()
  end)
end)

describe("streams under hostile servers", function()
  local sequences = require "scalekit.twitter.sequences"
  local stream_mod = require "scalekit.twitter.stream"
  local f, tw
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    tw = direct(f, { bearer_token = "sandbox-app-bearer-s3kr1t" })
  end)
  teardown(function()
    tw:close()
    f:stop()
  end)

  it("stop at the tool form's time limit even when an error body drips forever", function()
    local seconds = sequences.STREAM_MAX_SECONDS
    sequences.STREAM_MAX_SECONDS = 1
    f:script{ path = "/2/tweets/label/stream", status = 503, drip = { chunk = "x", every = 0.05, ["for"] = 30 } }
    local t = core.monotonic()
    local data, err = tw:tweet_label_stream{}
    sequences.STREAM_MAX_SECONDS = seconds
    local took = core.monotonic() - t
    assert.is_nil(data)
    assert.equals("server", err.kind)
    assert.equals(503, err.status)
    assert.is_true(took < 2.5, "took " .. took .. " s")
  end)

  it("cap an error body and a line that never ends", function()
    local line_max = stream_mod.MAX_LINE
    stream_mod.MAX_LINE = 64 * 1024
    f:script{ path = "/2/tweets/label/stream", status = 200, drip = { chunk = string.rep("a", 4096), every = 0.001,
                                                                       ["for"] = 20 } }
    local t = core.monotonic()
    local n, err = tw:stream("twitter_tweet_label_stream", {}, function() return true end)
    stream_mod.MAX_LINE = line_max
    assert.is_nil(n)
    assert.equals("protocol", err.kind)
    assert.equals("twitter_tweet_label_stream: a stream line is longer than 65536 bytes", err.message)
    assert.is_true(core.monotonic() - t < 5)
    -- an error body is read up to its cap, not for as long as the server drips
    local body_max = stream_mod.MAX_ERROR_BODY
    stream_mod.MAX_ERROR_BODY = 1000
    f:script{ path = "/2/tweets/label/stream", status = 500, drip = { chunk = string.rep("e", 100), every = 0.001,
                                                                       ["for"] = 20 } }
    t = core.monotonic()
    n, err = tw:stream("twitter_tweet_label_stream", {}, function() return true end, { reconnect = false })
    stream_mod.MAX_ERROR_BODY = body_max
    assert.is_nil(n)
    assert.equals(500, err.status)
    assert.is_true(core.monotonic() - t < 3, "the error body was read for " .. (core.monotonic() - t) .. " s")
  end)

  it("go through the transport like any call: same headers, the debug trace, redaction", function()
    local lines = {}
    local traced = direct(f, { bearer_token = "sandbox-app-bearer-s3kr1t",
                               debug = function(l) lines[#lines + 1] = l end })
    f:clear()
    f:script{ path = "/2/tweets/label/stream", status = 200, body = '{"data":{"n":1}}\n' }
    assert.equals(1, traced:stream("twitter_tweet_label_stream", { backfill_minutes = 1 }, function() return false end))
    local r = f:requests("/2/tweets/label/stream")[1]
    assert.equals("backfill_minutes=1", r.query)
    assert.equals(transport.USER_AGENT, fake.header(r, "user-agent"))
    assert.equals("Bearer sandbox-app-bearer-s3kr1t", fake.header(r, "authorization"))
    assert.equals("> GET " .. f.url .. "/2/tweets/label/stream?backfill_minutes=1", lines[1])
    assert.truthy(table.concat(lines, "\n"):lower():find("> authorization: [redacted]", 1, true))
    assert.falsy(table.concat(lines, "\n"):find("s3kr1t", 1, true))
    traced:close()
  end)

  it("split thousands of events from one chunk, in order", function()
    local lines = {}
    for i = 1, 5000 do lines[i] = ('{"data":{"n":%d}}'):format(i) end
    f:script{ path = "/2/tweets/label/stream", status = 200, body = table.concat(lines, "\r\n") .. "\r\n" }
    local got = 0
    local n = tw:stream("twitter_tweet_label_stream", {}, function(ev)
      got = got + 1
      assert.equals(got, ev.data.n)
      return got < 5000
    end)
    assert.equals(5000, n)
  end)
end)

describe("a call without options and with {}", function()
  -- A tool call without options finishes in one pass when the answer is 2xx
  -- JSON; with options (even none set) it takes the general path.  For every
  -- kind of answer both must send the same requests and give the same result.
  local RESET = "4102444800"            -- 2100-01-01: a fixed rate-limit reset
  local SCENARIOS = {
    { "a 2xx JSON answer", { json = { data = { id = ME } } } },
    { "a 2xx answer with rate-limit headers",
      { json = { data = { id = ME, name = "n" }, execution_id = "e1" },
        headers = { ["x-rate-limit-limit"] = "900", ["x-rate-limit-remaining"] = "17",
                    ["x-rate-limit-reset"] = RESET } } },
    { "an empty 2xx answer", { body = "" } },
    { "a 2xx answer that is not JSON", { body = "<html>" } },
    { "a 2xx JSON answer that is not an object", { body = "[1, 2]" } },
    { "a 429", { status = 429, json = { title = "Too Many Requests" },
                 headers = { ["retry-after"] = "7", ["x-rate-limit-remaining"] = "0",
                             ["x-rate-limit-reset"] = RESET } } },
    { "a 503, then the answer", { status = 503, json = { title = "Service Unavailable" } },
      then_answer = { json = { data = { id = ME } } } },
    { "a 500 in plain text", { status = 500, body = "upstream exploded" } },
    { "a dropped connection, every time", { drop = true, times = 5 } },
    { "a 401, then the answer (token fetched again)", { status = 401, json = { title = "Unauthorized" } },
      scalekit_only = true },
  }

  -- The requests `f` recorded, reduced to what was sent; tokens become
  -- "<token>" (a repeated call may hold a fresher one).
  local function sent(f)
    local out = {}
    for i, r in ipairs(f:requests()) do
      local headers = {}
      for j, kv in ipairs(r.headers) do
        headers[j] = kv[1]:lower() .. ": " .. kv[2]:gsub("^Bearer %S+", "Bearer <token>")
      end
      out[i] = { r.method, r.path, r.query, r.body, table.concat(headers, "\n") }
    end
    return out
  end

  -- What a call gave, comparable across calls (errors by their fields).
  local function outcome(data, info)
    if data == nil then
      return { kind = info.kind, message = info.message, status = info.status, tool = info.tool,
               retry_after = info.retry_after, rate_limit = info.rate_limit,
               may_have_been_applied = info.may_have_been_applied }
    end
    local i = {}
    for k, v in pairs(info) do i[k] = v end
    if type(i.execution_id) == "string" then i.execution_id = i.execution_id:gsub("^exec_%d+$", "exec_<n>") end
    return { data = data, info = i }
  end

  -- Run scenario `sc` without options, then with `{}`; returns the outcome.
  local function compare(f, tw, path, sc)
    local runs = {}
    for n, opts in ipairs{ false, {} } do
      -- both start on a live kept-alive connection, the same rate limit seen
      f:clear()
      f:script{ path = path, json = { data = { id = ME } },
                headers = { ["x-rate-limit-limit"] = "900", ["x-rate-limit-remaining"] = "500",
                            ["x-rate-limit-reset"] = RESET } }
      assert(tw:user_me{})
      f:clear()
      for _, script in ipairs{ sc[2], sc.then_answer } do
        local s = { path = path }
        for k, v in pairs(script) do s[k] = v end
        f:script(s)
      end
      runs[n] = { outcome(tw:user_me({}, opts or nil)), sent(f) }
    end
    assert(#runs[1][2] > 0)
    assert.same(runs[2][2], runs[1][2])
    assert(fake.same(runs[2][1], runs[1][1]))
    return runs[1][1]
  end

  local fx, fs, direct_tw, scalekit_tw
  setup(function()
    fx = fake.start{ script = "fake_x.py" }
    direct_tw = direct(fx)
    fs = fake.start_connected()
    scalekit_tw = fake.client(fs, { retry_base = 0.01 })
    assert(scalekit_tw:user_me{})           -- the token is fetched before the comparisons
  end)
  teardown(function()
    direct_tw:close()
    scalekit_tw:close()
    fx:stop()
    fs:stop()
  end)
  before_each(function() fx:control("tokens", { access_token = "user-token-1" }) end)

  it("send and give the same in direct mode", function()
    for _, sc in ipairs(SCENARIOS) do
      if not sc.scalekit_only then
        local ok, err = pcall(compare, fx, direct_tw, "/2/users/me", sc)
        assert(ok, sc[1] .. ": " .. tostring(err))
      end
    end
  end)

  it("send and give the same through Scalekit", function()
    for _, sc in ipairs(SCENARIOS) do
      local ok, err = pcall(compare, fs, scalekit_tw, "/api/v1/execute_tool", sc)
      assert(ok, sc[1] .. ": " .. tostring(err))
    end
  end)

  it("give one info shape in both modes: the tool, the status, the rate limit (and Scalekit's execution id)", function()
    local got = compare(fx, direct_tw, "/2/users/me", SCENARIOS[2])
    assert(fake.same({ data = { data = { id = ME, name = "n" }, execution_id = "e1" },
                       info = { tool = "twitter_user_me", status = 200,
                                rate_limit = { limit = 900, remaining = 17, reset = 4102444800 } } }, got))
    got = compare(fs, scalekit_tw, "/api/v1/execute_tool", SCENARIOS[2])
    assert(fake.same({ data = { id = ME, name = "n" },
                       info = { tool = "twitter_user_me", execution_id = "e1", status = 200,
                                rate_limit = { limit = 900, remaining = 17, reset = 4102444800 } } }, got))
  end)
end)

describe("pagination", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, { script = "fake_x.py" }, function(s)
    s:control("tokens", { access_token = "user-token-1" })
    local c = direct(s)
    for i = 1, 25 do assert(c:post_create{ text = ("paging post %02d"):format(i) }) end
    return c
  end)

  it("walks every page with the tool's token parameter, keeping the other arguments", function()
    local sizes = {}
    for page, err in tw:pages("twitter_recent_search", { query = "paging", max_results = 10 }) do
      assert.is_nil(err)
      sizes[#sizes + 1] = #page.data
    end
    assert.same({ 10, 10, 5 }, sizes)
    local queries = {}
    for i, r in ipairs(f:requests("/2/tweets/search/recent")) do queries[i] = r.query end
    assert.same({ "max_results=10&query=paging", "max_results=10&next_token=10&query=paging",
                  "max_results=10&next_token=20&query=paging" }, queries)
  end)

  it("reports each page to on_page: the call's, the client's, or the default set before the client", function()
    local counts = {}
    for _ in tw:pages("recent_search", { query = "paging", max_results = 10 },
                      { on_page = function(n) counts[#counts + 1] = n end }) do end
    assert.same({ 1, 2, 3 }, counts)
    local seen, own = {}, {}
    twitter.set_defaults{ on_page = function(n) seen[#seen + 1] = n end }
    local later = direct(f)
    local mine = direct(f, { on_page = function(n) own[#own + 1] = n end })
    twitter.set_defaults{}
    for _ in tw:items("recent_search", { query = "paging", max_results = 10 }) do end
    assert.same({}, seen)                         -- made before: no hook
    for _ in later:items("recent_search", { query = "paging", max_results = 10 }) do end
    assert.same({ 1, 2, 3 }, seen)
    for _ in mine:items("recent_search", { query = "paging", max_results = 10 }) do end
    assert.same({ 1, 2, 3 }, own)
    assert.same({ 1, 2, 3 }, seen)                 -- its own hook wins
    later:close()
    mine:close()
    assert.has_error(function() twitter.set_defaults{ on_pag = print } end)
  end)

  it("stops at a page limit and resumes from a saved token", function()
    local last
    for page in tw:pages("recent_search", { query = "paging", max_results = 10 }, { limit = 1 }) do last = page end
    local token = last.meta.next_token
    assert.equals("10", token)
    local n = 0
    for page in tw:pages("recent_search", { query = "paging", max_results = 10, next_token = token }) do
      n = n + #page.data
    end
    assert.equals(15, n)
  end)

  it("stops when a page repeats its token", function()
    f:script{ path = "/2/tweets/search/recent", times = 5,
              json = { data = { { id = "1", text = "a" } }, meta = { result_count = 1, next_token = "same" } } }
    local pages = 0
    for _ in tw:pages("recent_search", { query = "x" }) do pages = pages + 1 end
    assert.equals(2, pages)
  end)

  it("stops on a token cycle within the last SEEN_TOKENS pages, remembering no more", function()
    local paging = require "scalekit.twitter.paging"
    local function cycle(tokens)
      for _, t in ipairs(tokens) do
        f:script{ path = "/2/tweets/search/recent", times = 1,
                  json = { data = { { id = "1", text = "a" } }, meta = { result_count = 1, next_token = t } } }
      end
      local pages = 0
      for _ in tw:pages("recent_search", { query = "x" }, { limit = 10 }) do pages = pages + 1 end
      f:clear()
      return pages
    end
    assert.equals(3, cycle{ "a", "b", "a", "b", "a", "b", "a", "b", "a", "b" })
    local saved = paging.SEEN_TOKENS
    paging.SEEN_TOKENS = 1           -- only the last token: an a-b cycle goes on to the page limit
    local ok, pages = pcall(cycle, { "a", "b", "a", "b", "a", "b", "a", "b", "a", "b" })
    paging.SEEN_TOKENS = saved
    assert(ok, pages)
    assert.equals(10, pages)
  end)

  it("yields a rate limit as false, err and stops cleanly", function()
    f:script{ path = "/2/tweets/search/recent", times = 1,
              json = { data = { { id = "1", text = "a" } }, meta = { result_count = 1, next_token = "20" } } }
    f:script{ path = "/2/tweets/search/recent", status = 429,
              headers = { ["x-rate-limit-reset"] = tostring(math.floor(core.now()) + 60) },
              json = { title = "Too Many Requests" } }
    local seen = {}
    for page, err in tw:pages("recent_search", { query = "paging", max_results = 10 }) do
      seen[#seen + 1] = page and "page" or err.kind
    end
    assert.same({ "page", "rate_limited" }, seen)
  end)

  it("iterates items across pages, with includes joined on request", function()
    local texts = {}
    for item in tw:items("recent_search", { query = "paging", max_results = 10 }, { limit = 12, expand = true }) do
      texts[#texts + 1] = item.text
      assert.equals("sandbox_user", item.author.username)
    end
    assert.equals(12, #texts)
    assert.equals("paging post 25", texts[1])
    assert.equals("paging post 14", texts[12])
  end)

  it("raises for a tool that does not paginate", function()
    assert.has_error(function() tw:pages("twitter_user_me", {}) end,
      "scalekit.twitter: twitter_user_me does not paginate")
  end)
end)

describe("batch", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, function(s)
    fake.connect(s)
    local c = fake.client(s, { retry_base = 0.01 })
    assert(c:user_me{})   -- token and connection ready
    return c
  end)

  it("runs 200 calls at concurrency 16 in about ceil(N/C)·L, results in input order", function()
    local L, N, C = 0.05, 200, 16
    f:control("config", { latency = L })
    local calls = {}
    for i = 1, N do calls[i] = { "twitter_user_lookup", { id = tostring(1000 + i) } } end
    local t = core.monotonic()
    local results = tw:batch(calls, { concurrency = C })
    local elapsed = core.monotonic() - t
    f:control("config", { latency = 0 })
    local ideal = math.ceil(N / C) * L
    assert.is_true(elapsed < ideal * 2 + 0.5, ("took %.2f s, ideal %.2f s"):format(elapsed, ideal))
    assert.is_true(elapsed >= ideal * 0.9)
    assert.equals(N, #results)
    for i, r in ipairs(results) do
      assert.is_nil(r.err)
      assert.equals(tostring(1000 + i), r.data.data.params.id)
    end
    assert.equals(N, #f:requests("/api/v1/execute_tool"))
  end)

  it("reports invalid calls in place and still runs the others", function()
    local results = tw:batch({ { "user_lookup", { id = "1" } }, { "user_lookup", { id = "x" } },
                               { "nope", {} }, { "post_create", { text = "b" } } })
    assert.is_table(results[1].data)
    assert.equals("id", results[2].err.param)
    assert.equals("invalid_input", results[3].err.kind)
    assert.is_table(results[4].data)
    assert.equals(2, #f:requests("/api/v1/execute_tool"))
  end)

  it("re-runs a call Scalekit answered 503 and a call that hit an expired token", function()
    f:script{ path = "/api/v1/execute_tool", status = 503, json = { code = 14, message = "unavailable" } }
    local results = tw:batch({ { "user_lookup", { id = "1" } } }, { concurrency = 1 })
    assert.is_table(results[1].data)
    assert.equals(2, #f:requests("/api/v1/execute_tool"))
  end)
end)

describe("media uploads from files", function()
  local dir
  setup(function()
    dir = fake.tempdir()
  end)
  teardown(function() fake.rmdir(dir) end)

  local function write(name, bytes)
    local p = dir .. "/" .. name
    local fh = assert(io.open(p, "wb"))
    fh:write(bytes)
    fh:close()
    return p
  end

  it("detects the type from the first bytes", function()
    local media = require "scalekit.twitter.media"
    assert.equals("image/png", media.detect("\137PNG\r\n\26\n...."))
    assert.equals("image/jpeg", media.detect("\255\216\255\224"))
    assert.equals("image/gif", media.detect("GIF89a"))
    assert.equals("video/mp4", media.detect("\0\0\0\24ftypisom"))
    assert.equals("video/quicktime", media.detect("\0\0\0\20ftypqt  "))
    assert.equals("video/webm", media.detect("\26\69\223\163"))
    assert.equals("text/vtt", media.detect("WEBVTT\n"))
    assert.is_nil(media.detect("hello"))
  end)

  it("says a directory or an empty file is one, before any request", function()
    local f = fake.start{ script = "fake_x.py" }
    finally(function() f:stop() end)
    f:control("tokens", { access_token = "user-token-1" })
    local tw = direct(f)
    local empty = write("empty.png", "")
    local _, err = tw:upload_media{ file = empty }
    assert.equals("invalid_input", err.kind)
    assert.equals("upload_media: " .. empty .. ": the file is empty", err.message)
    local folder = empty:gsub("/[^/]*$", "")
    _, err = tw:upload_media{ file = folder }
    assert.equals("invalid_input", err.kind)
    assert.equals("upload_media: " .. folder .. ": Is a directory", err.message)
    assert.equals(0, #f:requests())
    tw:close()
  end)

  it("uploads a small image in one request (direct mode)", function()
    local f = fake.start{ script = "fake_x.py" }
    finally(function() f:stop() end)
    f:control("tokens", { access_token = "user-token-1" })
    local tw = direct(f)
    local png = "\137PNG\r\n\26\n" .. string.rep("x", 100)
    local id = assert(tw:upload_media{ file = write("a.png", png) })
    local r = f:requests("/2/media/upload")[1]
    assert.equals('{"media":"' .. core.base64(png) .. '","media_category":"tweet_image"}', r.body)
    assert.equals(1, #f:requests())
    assert.matches("^%d+$", id)
    tw:close()
  end)

  it("uploads a video in chunks, reports progress and waits for processing (direct mode)", function()
    local f = fake.start{ script = "fake_x.py" }
    finally(function() f:stop() end)
    f:control("tokens", { access_token = "user-token-1" })
    f:control("config", { processing_polls = 2 })
    local tw = direct(f)
    local mp4 = "\0\0\0\24ftypisom" .. string.rep("v", 1000)
    local progress = {}
    local id, m = assert(tw:upload_media{ file = write("v.mp4", mp4), chunk_size = 400,
      on_progress = function(sent, total) progress[#progress + 1] = sent .. "/" .. total end })
    assert.same({ "400/1012", "800/1012", "1012/1012" }, progress)
    assert.equals("succeeded", m.processing_info.state)
    local steps = {}
    for i, r in ipairs(f:requests()) do steps[i] = r.method .. " " .. r.path:gsub(id, "ID") end
    assert.same({ "POST /2/media/upload/initialize", "POST /2/media/upload/ID/append",
                  "POST /2/media/upload/ID/append", "POST /2/media/upload/ID/append",
                  "POST /2/media/upload/ID/finalize", "GET /2/media/upload", "GET /2/media/upload",
                  "GET /2/media/upload" }, steps)
    assert.equals('{"media_category":"tweet_video","media_type":"video/mp4","total_bytes":1012}',
                  f:requests("/2/media/upload/initialize")[1].body)
    tw:close()
  end)

  it("uploads through Scalekit with the upload tools and the proxy for finalize", function()
    local f = fake.start_connected()
    finally(function() f:stop() end)
    local tw = fake.client(f)
    assert(tw:user_me{})
    f:clear()
    local mp4 = "\0\0\0\24ftypisom" .. string.rep("v", 500)
    local id = assert(tw:upload_media{ file = write("s.mp4", mp4), chunk_size = 300 })
    local seq = {}
    for i, r in ipairs(f:requests()) do
      seq[i] = r.path == "/api/v1/execute_tool" and r.body:match('"tool_name":"([^"]+)"') or r.method .. " " .. r.path
    end
    assert.same({ "twitter_media_upload_init", "twitter_media_upload_append", "twitter_media_upload_append",
                  "POST /proxy/2/media/upload/" .. id .. "/finalize", "twitter_media_upload_status_get" }, seq)
    tw:close()
  end)

  it("reports X's processing error", function()
    local f = fake.start{ script = "fake_x.py" }
    finally(function() f:stop() end)
    f:control("tokens", { access_token = "user-token-1" })
    local tw = direct(f)
    f:script{ path = "/2/media/upload", method = "GET", json = { data = { id = "1", processing_info = {
      state = "failed", error = { code = 1, name = "InvalidMedia", message = "Unsupported video format" } } } } }
    local _, err = tw:upload_media{ file = write("bad.mp4", "\0\0\0\24ftypisom" .. string.rep("z", 10)) }
    assert.equals("tool_error", err.kind)
    assert.equals("upload_media: X could not process the media: Unsupported video format", err.message)
    tw:close()
  end)

  it("streams a 200 MB file with flat memory (peak RSS under 40 MB)", function()
    if os.getenv("SCALEKIT_SANITIZED") then
      pending("AddressSanitizer's shadow memory makes RSS meaningless")
      return
    end
    local f = fake.start{ script = "fake_x.py" }
    finally(function() f:stop() end)
    f:control("tokens", { access_token = "user-token-1" })
    local path = dir .. "/big.mp4"
    local fh = assert(io.open(path, "wb"))
    fh:write("\0\0\0\24ftypisom")
    local block = string.rep("\0\1\2\3\4\5\6\7", 128 * 1024)     -- 1 MiB
    for _ = 1, 200 do fh:write(block) end
    fh:close()
    block = nil                                                     -- luacheck: ignore 311
    local code = ([[
      local tw = require("scalekit.twitter").new{ mode = "direct", api_base_url = %q, access_token = "user-token-1" }
      local id, err = tw:upload_media{ file = %q }
      assert(id, tostring(err))
      local st = io.open("/proc/self/status"):read("a")
      print(st:match("VmHWM:%%s*(%%d+) kB"))
    ]]):format(f.url, path)
    local p = io.popen(("LUA_PATH='%s' LUA_CPATH='%s' lua5.4 -e %q 2>&1"):format(package.path, package.cpath, code))
    local out = p:read("a")
    p:close()
    local kb = tonumber(out:match("^(%d+)"))
    assert.is_number(kb, out)
    assert.is_true(kb < 40 * 1024, ("peak RSS %d kB"):format(kb or -1))
    print(("# 200 MB upload: peak RSS %.1f MB"):format(kb / 1024))
    local appends = 0
    for _, r in ipairs(f:requests()) do
      if r.path:match("/append$") then appends = appends + 1 end
    end
    assert.equals(101, appends)         -- 200 MiB + 16 bytes in 2 MiB chunks
  end)
end)
