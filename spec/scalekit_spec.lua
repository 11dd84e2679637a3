-- Scalekit's wire protocol as the SDK speaks it: token, headers, execute_tool,
-- error mapping, the proxy and connected accounts.

local twitter = require "scalekit.twitter"
local fake = require "support.fake"

local header = fake.header

describe("the Scalekit token", function()
  local f
  setup(function() f = fake.start() end)
  teardown(function() f:stop() end)
  before_each(function()
    f:reset()
    fake.connect(f)
    -- clients share a token by credentials, held weakly: collecting the
    -- clients of earlier tests lets each test start without one
    collectgarbage()
    collectgarbage()
    f:clear()
  end)

  it("is shared by every client with the same credentials: 100 clients for 100 users fetch one, "
     .. "over one connection", function()
    for i = 1, 100 do fake.connect(f, "user_" .. i) end
    collectgarbage()
    collectgarbage()
    f:clear()
    local clients = {}
    for i = 1, 100 do clients[i] = fake.client(f, { identifier = "user_" .. i }) end
    for i = 1, 100 do assert(clients[i]:user_lookup{ id = "2244994945" }) end
    assert.equals(1, #f:requests("/oauth/token"))
    local calls = f:requests("/api/v1/execute_tool")
    assert.equals(100, #calls)
    for i, r in ipairs(calls) do
      assert.equals("user_" .. i, twitter.json.decode(r.body).identifier)
      assert.equals(f:requests("/oauth/token")[1].connection, r.connection)   -- one pool, one kept-alive connection
    end
    -- another environment URL is other credentials: its own token
    local other = fake.client(f, { env_url = f.url:gsub("127%.0%.0%.1", "localhost") })
    assert(other:user_me{})
    assert.equals(2, #f:requests("/oauth/token"))
    other:close()
    for i = 1, 100 do clients[i]:close() end
  end)

  it("the shared pool outlives a client that closes; the last one to close closes it", function()
    collectgarbage()
    collectgarbage()
    f:clear()
    local a, b = fake.client(f), fake.client(f, { identifier = "user_2" })
    fake.connect(f, "user_2")
    assert(a:user_me{})
    a:close()
    a:close()                                              -- twice is harmless
    assert(b:user_me{})                                    -- b still has the pool
    local conns = {}
    for _, r in ipairs(f:requests("/api/v1/execute_tool")) do conns[r.connection] = true end
    assert.equals(1, (function() local n = 0 for _ in pairs(conns) do n = n + 1 end return n end)())
    b:close()
    local c = fake.client(f)                               -- a new pool, a new connection
    assert(c:user_me{})
    local last = f:requests("/api/v1/execute_tool")
    assert.is_nil(conns[last[#last].connection])
    c:close()
  end)

  it("refuses a token answer with CR/LF as auth, before it reaches any header", function()
    f:script{ path = "/oauth/token", json = { access_token = "tok\r\nX-Injected: 1", expires_in = 3600 } }
    local tw = fake.client(f)
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.matches("a token with spaces or control characters", err.message, 1, true)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
    tw:close()
  end)

  it("is fetched with a form POST on first use, then cached", function()
    local tw = fake.client(f)
    assert(tw:user_me{})
    assert(tw:user_me{})
    local reqs = f:requests()
    assert.equals(3, #reqs)
    local tok = reqs[1]
    assert.equals("POST", tok.method)
    assert.equals("/oauth/token", tok.path)
    assert.equals("application/x-www-form-urlencoded", header(tok, "content-type"))
    assert.equals("grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret-s3kr1t",
                  tok.body)
    assert.is_nil(header(tok, "authorization"))
    assert.equals("Bearer tok-s3kr1t-2", header(reqs[2], "authorization"))
    assert.equals("Bearer tok-s3kr1t-2", header(reqs[3], "authorization"))
    tw:close()
  end)

  it("percent-encodes credentials as RFC 3986 requires", function()
    local tw = fake.client(f, { client_id = "id with space", client_secret = "s/+&=é" })
    local _, err = tw:user_me{}
    assert.equals("auth", err.kind)
    assert.equals("grant_type=client_credentials&client_id=id%20with%20space&client_secret=s%2F%2B%26%3D%C3%A9",
                  f:requests("/oauth/token")[1].body)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
    tw:close()
  end)

  it("is refreshed before expires_in runs out", function()
    f:control("config", { token_ttl = 61 })       -- 61 s minus the 60 s skew: stale after 1 s
    local tw = fake.client(f)
    assert(tw:user_me{})
    require("scalekit.core").sleep(1.1)
    assert(tw:user_me{})
    -- token, call, token, call: the second token came before the second call, not after a 401
    local reqs, paths = f:requests(), {}
    for i, r in ipairs(reqs) do paths[i] = r.path end
    assert.same({ "/oauth/token", "/api/v1/execute_tool", "/oauth/token", "/api/v1/execute_tool" }, paths)
    assert.matches("^Bearer tok%-s3kr1t%-%d+$", fake.header(reqs[4], "authorization"))
    assert.not_equals(fake.header(reqs[2], "authorization"), fake.header(reqs[4], "authorization"))
    f:control("config", { token_ttl = 3600 })
    tw:close()
  end)

  it("is fetched again once on a 401 and the call repeated once", function()
    local tw = fake.client(f)
    assert(tw:user_me{})
    f:control("revoke_tokens")
    f:clear()
    local data = assert(tw:user_me{})
    assert.equals("sandbox_user", data.data.username)
    local reqs = f:requests()
    assert.same({ "/api/v1/execute_tool", "/oauth/token", "/api/v1/execute_tool" },
                { reqs[1].path, reqs[2].path, reqs[3].path })
    assert.equals(3, #reqs)
    assert.not_equals(header(reqs[1], "authorization"), header(reqs[3], "authorization"))
    tw:close()
  end)

  it("does not loop when the server keeps answering 401", function()
    local tw = fake.client(f)
    f:script{ path = "/api/v1/execute_tool", times = 5, status = 401,
              json = { code = 16, message = "unauthenticated" } }
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    assert.equals(16, err.code)
    assert.equals(2, #f:requests("/api/v1/execute_tool"))
    assert.equals(2, #f:requests("/oauth/token"))
    tw:close()
  end)

  it("reports rejected credentials as an auth error without the secret", function()
    local tw = fake.client(f, { client_secret = "wrong-secret-value" })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    assert.equals("could not get a Scalekit access token: client authentication failed", err.message)
    assert.not_matches("wrong%-secret%-value", tostring(err))
    tw:close()
  end)
end)

describe("execute_tool", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, function(s)
    fake.connect(s)
    return fake.client(s, { organization_id = "org_1", user_id = "usr_1" })
  end)

  it("sends the SDK headers and the full account context", function()
    assert(tw:user_me{})
    local r = f:requests("/api/v1/execute_tool")[1]
    local os_name, arch = require("scalekit.core").platform()
    assert.equals(("Scalekit-Lua/%s Lua/5.4 (%s; %s)"):format(twitter._VERSION, os_name, arch),
                  header(r, "user-agent"))
    assert.equals("Scalekit-Lua/" .. twitter._VERSION, header(r, "x-sdk-version"))
    assert.equals("20260727", header(r, "x-api-version"))
    assert.equals("application/json", header(r, "accept"))
    assert.equals('{"connector":"twitter","identifier":"user_123","organization_id":"org_1",'
                  .. '"params":{},"tool_name":"twitter_user_me","user_id":"usr_1"}', r.body)
  end)

  it("asks for gzip once and decodes a gzip-compressed answer", function()
    f:script{ path = "/api/v1/execute_tool", gzip = true,
              json = { data = { data = { id = "1460323743973015556", n = 10 } }, execution_id = "exec_gz" } }
    local data, info = assert(tw:user_me{})
    assert.same({ id = "1460323743973015556", n = 10 }, data.data)
    assert.equals("integer", math.type(data.data.n))
    assert.equals("exec_gz", info.execution_id)
    local seen = {}
    for _, h in ipairs(f:requests("/api/v1/execute_tool")[1].headers) do
      if h[1]:lower() == "accept-encoding" then seen[#seen + 1] = h[2] end
    end
    assert.same({ "gzip" }, seen)
  end)

  it("uses connected_account_id and a custom connection name when given", function()
    local tw2 = fake.client(f, { identifier = false, connected_account_id = "ca_9",
                                 connection_name = "x-prod" })
    rawset(tw2, "identifier", nil)
    assert(tw2:user_me{})
    assert.equals('{"connected_account_id":"ca_9","connector":"x-prod","params":{},"tool_name":"twitter_user_me"}',
                  f:requests("/api/v1/execute_tool")[1].body)
    tw2:close()
  end)

  -- the params are encoded into a frame made once per account and tool:
  -- the body must be what encoding the whole body gives, whatever the
  -- account's text holds
  local frames = {
    { "a plain identifier", { identifier = "alice" } },
    { "quotes and the frame's own marker", { identifier = 'odd"params":"\1"x\\' } },
    { "non-ASCII text", { identifier = "ünïcødé ✓" } },
    { "an account id and a connection", { identifier = false, connected_account_id = "ca_7",
                                          connection_name = "x-prod" } },
  }
  for _, case in ipairs(frames) do
    it("frames the params exactly for " .. case[1], function()
      f:clear()
      tw:user_lookup({ id = "2244994945" }, case[2])
      tw:user_lookup({ id = "1" }, case[2])          -- the second call reuses the frame
      local body = { connector = case[2].connection_name or "twitter", organization_id = "org_1",
                     user_id = "usr_1", tool_name = "twitter_user_lookup",
                     identifier = case[2].identifier or nil, connected_account_id = case[2].connected_account_id }
      local sent = f:requests("/api/v1/execute_tool")
      assert.equals(2, #sent)
      for i, id in ipairs{ "2244994945", "1" } do
        body.params = { id = id }
        assert.equals(twitter.json.encode(body), sent[i].body)
      end
    end)
  end

  it("refuses params that cannot be encoded before any request", function()
    f:clear()
    local data, err = tw:post_create{ text = "ok\xff" }
    assert.is_nil(data)
    assert.equals("invalid_input", err.kind)
    assert.equals("twitter_post_create", err.tool)
    assert.equals("body.params.text: invalid UTF-8 in string (byte 3)", err.message)
    assert.same({}, f:requests())
  end)

  it("keeps integers, IDs, null, [] and {} of the output exactly", function()
    f:script{ path = "/api/v1/execute_tool",
              body = '{"data":{"data":{"id":"1460323743973015556","n":10,"big":9007199254740993,'
                     .. '"f":1.5,"z":null,"a":[],"o":{}}},"execution_id":"exec_x"}',
              headers = { ["Content-Type"] = "application/json" } }
    local data, info = assert(tw:user_me{})
    local d = data.data
    assert.equals("1460323743973015556", d.id)
    assert.equals("integer", math.type(d.n))
    assert.equals(9007199254740993, d.big)
    assert.equals(twitter.null, d.z)
    assert.equals('{"a":[],"big":9007199254740993,"f":1.5,"id":"1460323743973015556","n":10,"o":{},"z":null}',
                  twitter.json.encode(d))
    assert.equals("exec_x", info.execution_id)
  end)

  it("accepts camelCase response keys", function()
    f:script{ path = "/api/v1/execute_tool", json = { data = { ok = true }, executionId = "exec_camel" } }
    local data, info = assert(tw:user_me{})
    assert.is_true(data.ok)
    assert.equals("exec_camel", info.execution_id)
  end)

  local function fails_with(script, kind, check)
    return function()
      script.path = script.path or "/api/v1/execute_tool"
      f:script(script)
      local data, err = tw:user_me{}
      assert.is_nil(data)
      assert.is_true(twitter.errors.is(err))
      assert.equals(kind, err.kind)
      assert.equals("twitter_user_me", err.tool)
      if check then check(err) end
    end
  end

  it("maps a 404 with ErrorInfo to not_found, naming the account", fails_with(
    { status = 404, json = { code = 5, message = "connected account not found", details = {
      { ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", error_code = "NOT_FOUND" } } } },
    "not_found", function(err)
      assert.equals(404, err.status)
      assert.equals(5, err.code)
      assert.equals("NOT_FOUND", err.error_code)
      assert.equals("twitter_user_me: connected account not found (identifier 'user_123', connection 'twitter')",
                    err.message)
      assert.equals("user_123", err.identifier)
    end))

  it("a provider's 404 (TOOL_ERROR) is the provider's: no account in the message", fails_with(
    { status = 404, json = { code = 5, message = "tool failed", details = {
      { ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", error_code = "TOOL_ERROR",
        tool_error_info = { execution_id = "exec_404", tool_error_message = "Not Found Error",
                            tool_error_code = "404" } } } } },
    "not_found", function(err)
      assert.equals("twitter_user_me: Not Found Error", err.message)
      assert.is_nil(err.identifier)
    end))

  it("a proxy request refuses account options the proxy cannot send, before any traffic", function()
    for _, k in ipairs{ "connected_account_id", "organization_id", "user_id" } do
      local ok, msg = pcall(function() local r = tw:request{ path = "/2/users/me", [k] = "x_1" }; return r end)
      assert.is_false(ok)
      assert.matches("scalekit_spec.lua:%d+: scalekit.twitter: request: Scalekit's proxy picks the account by "
                     .. "identifier and connection_name only; it has no way to send '" .. k .. "'", msg)
    end
    assert.equals(0, #f:requests())
  end)

  it("a proxy request's 404 names the account it was for", function()
    f:script{ path = "/proxy/2/users/me", status = 404,
              json = { code = 5, message = "connected account not found" } }
    local resp, err = tw:request{ path = "/2/users/me", identifier = "carol" }
    assert.is_nil(resp)
    assert.equals("not_found", err.kind)
    assert.equals("connected account not found (identifier 'carol', connection 'twitter')", err.message)
    assert.equals("carol", err.identifier)
  end)

  it("maps TOOL_ERROR to tool_error with the tool's own message and execution id", fails_with(
    { status = 400, json = { code = 2, message = "tool failed", details = {
      { ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", error_code = "TOOL_ERROR",
        tool_error_info = { execution_id = "exec_err_1", tool_error_message = "Duplicate content",
                            tool_error_code = "403x" } } } } },
    "tool_error", function(err)
      assert.equals("TOOL_ERROR", err.error_code)
      assert.equals("exec_err_1", err.execution_id)
      assert.equals("403x", err.tool_error_code)
      assert.equals("twitter_user_me: Duplicate content", err.message)
      assert.equals(1, #f:requests("/api/v1/execute_tool"))   -- never retried
    end))

  it("maps a TOOL_ERROR from X's rate limit (camelCase) to rate_limited", fails_with(
    { status = 429, json = { code = 8, message = "provider rate limited", details = {
      { ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", errorCode = "TOOL_ERROR",
        toolErrorInfo = { executionId = "exec_err_2", toolErrorMessage = "Too Many Requests",
                          toolErrorCode = "429" } } } } },
    "rate_limited", function(err)
      assert.equals("exec_err_2", err.execution_id)
      assert.equals("429", err.tool_error_code)
    end))

  it("maps a 429 to rate_limited with retry_after", fails_with(
    { status = 429, headers = { ["Retry-After"] = "7" }, json = { code = 8, message = "slow down" } },
    "rate_limited", function(err)
      assert.equals(7, err.retry_after)
      assert.equals(1, #f:requests("/api/v1/execute_tool"))
    end))

  it("maps a 500 with a plain-text body to server", fails_with(
    { status = 500, body = "upstream exploded" }, "server", function(err)
      assert.equals(500, err.status)
      assert.equals("twitter_user_me: HTTP 500: upstream exploded", err.message)
    end))

  it("maps a malformed JSON success to protocol", fails_with(
    { status = 200, body = '{"data": {', headers = { ["Content-Type"] = "application/json" } },
    "protocol", function(err)
      assert.matches("not a JSON object or array %(invalid JSON: ", err.message)
    end))

  it("maps a slow response to timeout", function()
    local tw2 = fake.client(f, { timeout = 0.3 })
    f:script{ path = "/api/v1/execute_tool", delay = 1.5, json = {} }
    local data, err = tw2:user_me{}
    assert.is_nil(data)
    assert.equals("timeout", err.kind)
    assert.is_true(err.sent)
    tw2:close()
  end)

  it("never sends a POST twice when the connection drops after the request", fails_with(
    { drop = true }, "network", function(err)
      assert.matches("POST http://127.0.0.1:%d+/api/v1/execute_tool: ", err.message)
      assert.is_true(err.may_have_been_applied)
      assert.equals(1, #f:requests("/api/v1/execute_tool"))
    end))

  it("lets libcurl repeat a GET on a dropped kept-alive connection", function()
    assert(tw:request{ path = "/2/users/me" })             -- warm the connection
    f:clear()
    f:script{ path = "/proxy/2/users/me", drop = true }
    local resp = assert(tw:request{ path = "/2/users/me" })
    assert.equals(200, resp.status)
    assert.equals(2, #f:requests("/proxy/2/users/me"))
  end)

  it("maps a refused connection to network, naming the URL", function()
    local tw2 = twitter.new{ env_url = "http://127.0.0.1:1", client_id = "a", client_secret = "b",
                             identifier = "u" }
    local data, err = tw2:user_me{}
    assert.is_nil(data)
    assert.equals("network", err.kind)
    assert.matches("POST http://127.0.0.1:1/oauth/token", err.message, 1, true)
    assert.is_false(err.sent)
  end)

  it("caps the response size", function()
    local tw2 = fake.client(f, { max_response = 1000 })
    f:script{ path = "/api/v1/execute_tool", body = string.rep("x", 5000) }
    local _, err = tw2:user_me{}
    assert.equals("protocol", err.kind)
    assert.matches("response body would exceed the limit of 1000 bytes", err.message, 1, true)
    tw2:close()
  end)

  it("reuses one kept-alive connection for sequential calls", function()
    local tw2 = fake.client(f)
    for _ = 1, 3 do assert(tw2:user_me{}) end
    tw2:close()
    -- the fake records the client address of each request: one TCP connection served all three
    -- (the token is the block's client's: clients with the same credentials share it)
    local reqs, conns = f:requests(), {}
    for _, r in ipairs(reqs) do conns[r.connection] = true end
    assert.equals(3, #reqs)
    assert.equals(1, #(function() local l = {} for c in pairs(conns) do l[#l + 1] = c end return l end)())
  end)

  it("never repeats a tool whose provider answered 401 (a TOOL_ERROR is final, not a stale token)", function()
    local tool_401 = { path = "/api/v1/execute_tool", status = 401, json = { code = 16,
      message = "tool execution failed", details = { {
        ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", error_code = "TOOL_ERROR",
        tool_error_info = { execution_id = "exec_401", tool_error_code = "401",
                            tool_error_message = "Unauthorized" } } } } }
    assert(tw:user_me{})                         -- the token is cached
    f:clear()
    f:script(tool_401)
    local data, err = tw:post_create{ text = "only once" }
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    assert.equals("TOOL_ERROR", err.error_code)
    assert.equals("exec_401", err.execution_id)
    local paths = {}
    for i, r in ipairs(f:requests()) do paths[i] = r.path end
    assert.same({ "/api/v1/execute_tool" }, paths)
    -- the same in a batch
    f:clear()
    f:script(tool_401)
    local results = tw:batch{ { "twitter_post_create", { text = "only once" } } }
    assert.equals("auth", results[1].err.kind)
    assert.equals(1, #f:requests())
    -- a plain 401 (Scalekit's own token) still re-authenticates once
    f:clear()
    f:script{ path = "/api/v1/execute_tool", status = 401, json = { code = 16, message = "unauthenticated" } }
    assert(tw:user_me{})
    paths = {}
    for i, r in ipairs(f:requests()) do paths[i] = r.path end
    assert.same({ "/api/v1/execute_tool", "/oauth/token", "/api/v1/execute_tool" }, paths)
  end)
end)

describe("the proxy", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, fake.client)

  it("forwards method, path and query with the account headers", function()
    local resp = assert(tw:request{ path = "/2/users/me", params = { ["user.fields"] = "name,username" } })
    assert.equals(200, resp.status)
    assert.equals("application/json", resp.headers["content-type"])
    assert.equals("/2/users/me", resp.json.proxied.path)
    local r = f:requests("/proxy/2/users/me")[1]
    assert.equals("GET", r.method)
    assert.equals("user.fields=name%2Cusername", r.query)
    assert.equals("twitter", header(r, "connection_name"))
    assert.equals("user_123", header(r, "identifier"))
    assert.matches("^Bearer tok%-s3kr1t%-%d+$", header(r, "authorization"))
    assert.equals(resp.body, '{"proxied": {"method": "GET", "path": "/2/users/me", "query": '
                  .. '"user.fields=name%2Cusername", "body": ""}}')
  end)

  it("decodes the JSON body only when .json is read", function()
    local resp = assert(tw:request{ path = "/2/users/me" })
    assert.is_nil(rawget(resp, "json"))
    assert.equals("/2/users/me", resp.json.proxied.path)
    assert.is_table(rawget(resp, "json"))
    f:script{ path = "/proxy/plain", body = "not json", headers = { ["Content-Type"] = "text/plain" } }
    local plain = assert(tw:request{ path = "/plain" })
    assert.equals("not json", plain.body)
    assert.is_nil(plain.json)
    assert.is_nil(plain.json)
  end)

  it("accepts query_params as well as params, and joins arrays with commas", function()
    assert(tw:request{ path = "2/tweets/search/recent", query_params = { query = "lua lang", max_results = 10 },
                       params = { ids = { 1, "2" }, flag = true, skip = twitter.null } })
    local r = f:requests("/proxy/2/tweets/search/recent")[1]
    assert.equals("flag=true&ids=1%2C2&max_results=10&query=lua%20lang", r.query)
  end)

  it("appends to a query already in the path", function()
    assert(tw:request{ path = "/2/users/by?usernames=a,b", params = { ["user.fields"] = "id" } })
    assert.equals("usernames=a,b&user.fields=id", f:requests("/proxy/2/users/by")[1].query)
  end)

  it("sends a table body as JSON and lets its own headers override the caller's", function()
    assert(tw:request{ path = "/2/tweets", method = "post", body = { text = "hi", n = 12345678901 },
                       headers = { connection_name = "spoofed", IDENTIFIER = "spoofed",
                                   Authorization = "Bearer stolen", ["X-Custom"] = "yes" } })
    local r = f:requests("/proxy/2/tweets")[1]
    assert.equals("POST", r.method)
    assert.equals('{"n":12345678901,"text":"hi"}', r.body)
    assert.equals("application/json", header(r, "content-type"))
    assert.equals("twitter", header(r, "connection_name"))
    assert.equals("user_123", header(r, "identifier"))
    assert.not_equals("Bearer stolen", header(r, "authorization"))
    assert.equals("yes", header(r, "x-custom"))
    local count = { identifier = 0, authorization = 0 }
    for _, kv in ipairs(r.headers) do
      local name = kv[1]:lower()
      if count[name] then count[name] = count[name] + 1 end
    end
    assert.same({ identifier = 1, authorization = 1 }, count)
  end)

  it("sends a string body as is, with the caller's content type", function()
    assert(tw:request{ path = "/upload", method = "PUT", body = "<x/>",
                       headers = { ["Content-Type"] = "application/xml" } })
    local r = f:requests("/proxy/upload")[1]
    assert.equals("PUT", r.method)
    assert.equals("<x/>", r.body)
    assert.equals("application/xml", header(r, "content-type"))
  end)

  it("returns an HTTP failure as an error that keeps the response", function()
    f:script{ path = "/proxy/2/tweets/1", status = 404,
              json = { title = "Not Found Error", detail = "Could not find tweet" } }
    local resp, err = tw:request{ path = "/2/tweets/1" }
    assert.is_nil(resp)
    assert.equals("not_found", err.kind)
    assert.equals(404, err.status)
    assert.equals(404, err.response.status)
    assert.equals("Could not find tweet", err.response.json.detail)
  end)

  it("never follows a redirect (credentials must not travel to another host)", function()
    f:script{ path = "/proxy/moved", status = 302, headers = { Location = "http://127.0.0.2:9/steal" }, body = "" }
    local resp, err = tw:request{ path = "/moved" }
    assert.is_nil(resp)
    assert.equals(302, err.status)
    assert.equals("http://127.0.0.2:9/steal", err.response.headers.location)
    assert.equals(1, #f:requests())
  end)

  it("raises for a request without a path", function()
    assert.has_error(function() tw:request{ method = "GET" } end,
      "scalekit.twitter: request expects a table with a string 'path'")
  end)

  it("sends form_data urlencoded, in key order or in the order of a list of pairs", function()
    assert(tw:request{ path = "/form", method = "POST", form_data = { b = "two words", a = "1", c = "x&y=z" } })
    assert(tw:request{ path = "/form", method = "POST", form_data = { { "z", "last" }, { "a", 1 } } })
    local reqs = f:requests("/proxy/form")
    assert.equals("a=1&b=two%20words&c=x%26y%3Dz", reqs[1].body)
    assert.equals("application/x-www-form-urlencoded", header(reqs[1], "content-type"))
    assert.equals("z=last&a=1", reqs[2].body)
  end)

  it("sends raw_body as is, and takes queryParams as the official Node SDK names it", function()
    assert(tw:request{ path = "/raw", method = "PUT", raw_body = "\0binary\255",
                       headers = { ["Content-Type"] = "application/octet-stream" },
                       queryParams = { ["user.fields"] = "id" } })
    local r = f:requests("/proxy/raw")[1]
    assert.equals("PUT", r.method)
    assert.equals(8, r.body_length)
    assert.equals("application/octet-stream", header(r, "content-type"))
    assert.equals("user.fields=id", r.query)
  end)

  -- Each raw request mistake raises before anything is sent, with what to do instead.
  local bad_requests = {
    { { path = "/x", form = { a = 1 } }, "request has no field 'form'; did you mean 'form_data'?" },
    { { path = "/x", queryparams = {} }, "request has no field 'queryparams'; did you mean 'queryParams'?" },
    { { path = "/x", timeoutt = 1 }, "request has no field 'timeoutt'; did you mean 'timeout'?" },
    { { path = "/x", body = {}, form_data = {} }, "request takes one of body, form_data and raw_body" },
    { { path = "/x", raw_body = {} }, "request field 'raw_body' must be a string, got table" },
    { { path = "/x", max_retries = 500 }, "request: 'max_retries' must be an integer from 0 to 10, got 500" },
    { { path = "/x", retry_base = -1 }, "request: 'retry_base' must be a positive number of seconds, got -1" },
    { { path = "/x", method = "GET /admin HTTP/1.1\r\nHost: evil\r\n\r\nGET" },
      "request method must be a word of letters (GET, POST, ...), got "
      .. "\"GET /admin HTTP/1.1\\r\\nHost: evil\\r\\n\\r\\nGET\"" },
    { { path = "/x", method = "G\nET" }, "request method must be a word of letters (GET, POST, ...), got \"G\\nET\"" },
    { { path = "/x HTTP/1.1\r\nX: y" }, "request path must not contain spaces or control characters" },
  }
  for _, case in ipairs(bad_requests) do
    it("raises before sending for a bad request: " .. case[2]:sub(1, 60), function()
      local ok, err = pcall(tw.request, tw, case[1])
      assert.is_false(ok)
      assert.equals("scalekit.twitter: " .. case[2], (err:gsub("^[^:]+:%d+: ", "")))
      assert.equals(0, #f:requests())
    end)
  end

  it("blames the caller's line for a bad request", function()
    local ok, err = pcall(function() tw:request{ path = "/x", nope = 1 } end)
    assert.is_false(ok)
    assert.matches("^spec/scalekit_spec.lua:%d+: scalekit.twitter: request has no field 'nope'", err)
  end)
end)

describe("connected accounts", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, fake.client)

  it("creates the account when it does not exist, then finds it", function()
    local acct = assert(tw:get_or_create_connected_account())
    assert.equals("ACTIVE", acct.status)
    local reqs = f:requests()
    local auth = reqs[2]
    assert.equals("GET", auth.method)
    assert.equals("/api/v1/connected_accounts/auth", auth.path)
    assert.equals("connector=twitter&identifier=user_123", auth.query)
    local create = reqs[3]
    assert.equals("POST", create.method)
    assert.equals("/api/v1/connected_accounts", create.path)
    assert.equals('{"connected_account":{"authorization_details":{"oauth_token":{}}},'
                  .. '"connector":"twitter","identifier":"user_123"}', create.body)
    f:clear()
    assert.equals(acct.id, assert(tw:get_or_create_connected_account()).id)
    assert.equals(1, #f:requests())
  end)

  it("updates an existing account when authorization details are given", function()
    local acct = assert(tw:get_or_create_connected_account{
      authorization_details = { oauth_token = { access_token = "at", refresh_token = "rt",
                                                scopes = { "tweet.read" } } } })
    assert.equals("at", acct.authorization_details.oauth_token.access_token)
    local put = f:requests()[2]
    assert.equals("PUT", put.method)
    assert.equals('{"connected_account":{"authorization_details":{"oauth_token":{"access_token":"at",'
                  .. '"refresh_token":"rt","scopes":["tweet.read"]}}},"connector":"twitter","identifier":"user_123"}',
                  put.body)
  end)

  it("gets the account, and reports a missing one as not_found", function()
    assert.equals("ACTIVE", assert(tw:get_connected_account()).status)
    local other = fake.client(f, { identifier = "nobody" })
    local acct, err = other:get_connected_account()
    assert.is_nil(acct)
    assert.equals("not_found", err.kind)
    assert.equals("CONNECTED_ACCOUNT_NOT_FOUND", err.error_code)
    other:close()
  end)

  it("makes an authorization link", function()
    local link = assert(tw:get_authorization_link{ state = "s1", user_verify_url = "https://app.example/verify" })
    assert.equals("https://sandbox.scalekit.local/magic/user_123", link.link)
    assert.equals("2030-01-01T00:00:00Z", link.expiry)
    local r = f:requests("/api/v1/connected_accounts/magic_link")[1]
    assert.equals('{"connector":"twitter","identifier":"user_123","state":"s1",'
                  .. '"user_verify_url":"https://app.example/verify"}', r.body)
  end)

  it("lists accounts one page at a time", function()
    local page = assert(tw:list_connected_accounts{ page_size = 20, page_token = "p2" })
    assert.equals(1, #page.connected_accounts)
    assert.equals(1, page.total_size)
    assert.equals("connector=twitter&identifier=user_123&page_size=20&page_token=p2",
                  f:requests("/api/v1/connected_accounts")[1].query)
  end)

  it("verifies the user of an authorization request", function()
    local out = assert(tw:verify_connected_account_user{ auth_request_id = "areq_1" })
    assert.equals("https://sandbox.scalekit.local/verified", out.post_user_verify_redirect_url)
    assert.equals('{"auth_request_id":"areq_1","identifier":"user_123"}',
                  f:requests("/api/v1/connected_accounts/user/verify")[1].body)
    local _, err = tw:verify_connected_account_user{}
    assert.equals("invalid_input", err.kind)
    assert.equals("auth_request_id", err.param)
  end)

  it("deletes the account", function()
    assert.is_true(tw:delete_connected_account())
    assert.equals('{"connector":"twitter","identifier":"user_123"}',
                  f:requests("/api/v1/connected_accounts:delete")[1].body)
    local _, err = tw:get_connected_account()
    assert.equals("not_found", err.kind)
  end)
end)

describe("the account of one call", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, function(s)
    fake.connect(s)
    fake.connect(s, "bob")
    return fake.client(s)
  end)

  -- The identifier of each execute_tool request, in order, and its tool.
  local function sent()
    local out = {}
    for i, r in ipairs(f:requests("/api/v1/execute_tool")) do
      local body = twitter.json.decode(r.body)
      out[i] = body.tool_name:gsub("^twitter_", "") .. " as " .. tostring(body.identifier)
    end
    return out
  end

  it("goes in the request of that call only, however the tool is called", function()
    assert(tw:execute("twitter_user_lookup", { id = "2244994945" }, { identifier = "bob" }))
    assert(tw:user_lookup({ id = "2244994945" }, { identifier = "bob" }))
    assert(tw:twitter_user_lookup{ id = "2244994945" })
    local page = 0
    for p in tw:pages("followers_get", { id = "2244994945" }, { identifier = "bob", limit = 1 }) do
      assert.is_table(p)
      page = page + 1
    end
    assert.equals(1, page)
    local results = tw:batch{ { "user_lookup", { id = "1" }, { identifier = "bob" } }, { "user_lookup", { id = "2" } } }
    assert.is_table(results[1].data)
    assert.is_table(results[2].data)
    assert.same({ "user_lookup as bob", "user_lookup as bob", "user_lookup as user_123", "followers_get as bob",
                  "user_lookup as bob", "user_lookup as user_123" }, sent())
  end)

  it("goes to the proxy as its identifier header", function()
    assert(tw:request{ path = "/2/users/me", identifier = "bob" })
    assert(tw:request{ path = "/2/users/me" })
    local reqs = f:requests()
    assert.equals("bob", fake.header(reqs[#reqs - 1], "identifier"))
    assert.equals("user_123", fake.header(reqs[#reqs], "identifier"))
  end)

  it("looks up the own user id once per account, never sharing one between accounts", function()
    assert(tw:bookmarks_get({}, { identifier = "bob" }))
    assert(tw:bookmarks_get{})
    assert(tw:bookmarks_get({}, { identifier = "bob" }))
    assert(tw:bookmarks_get{})
    assert.same({ "user_me as bob", "bookmarks_get as bob", "user_me as user_123", "bookmarks_get as user_123",
                  "bookmarks_get as bob", "bookmarks_get as user_123" }, sent())
  end)

  it("is checked like a client option, and false means none", function()
    local ok, err = pcall(function() tw:user_me({}, { identifier = 5 }) end)
    assert.is_false(ok)
    assert.matches("^spec/scalekit_spec.lua:%d+: scalekit.twitter: twitter_user_me options: 'identifier' must be "
                   .. "a string %(or false for none%), got 5$", err)
    local data, e = tw:user_me({}, { identifier = false })
    assert.is_nil(data)
    assert.equals("invalid_input", e.kind)
    assert.matches("no connected account", e.message, 1, true)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
  end)
end)
