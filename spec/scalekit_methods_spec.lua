-- Scalekit's own methods, as the official SDKs have them: connected
-- accounts (per call for any account), connections, the tool listings and
-- their paging, the catalog drift check, unchecked calls of tools the
-- catalog does not know, and the before/after hooks.  Each case asserts the
-- exact request the fake Scalekit got and the exact result.

local fake = require "support.fake"
local twitter = require "scalekit.twitter"

local json = twitter.json

-- The fake's connected account and a client for it (see fake.per_block).
local function connected_client(f)
  fake.connect(f)
  return fake.client(f)
end

describe("Scalekit methods", function()
  local f, tw
  setup(function()
    f = fake.start_connected()
    fake.connect(f, "bob")
    tw = fake.client(f)
  end)
  teardown(function()
    tw:close()
    f:stop()
  end)
  before_each(function() f:clear() end)

  -- The one request the fake got besides token fetches: method, path, query, decoded body.
  local function sent()
    local out = {}
    for _, r in ipairs(f:requests()) do
      if r.path ~= "/oauth/token" then
        out[#out + 1] = { method = r.method, path = r.path, query = r.query,
                          body = r.body ~= "" and assert(json.decode(r.body)) or nil }
      end
    end
    assert.equals(1, #out, "one request")
    return out[1]
  end

  -- Each account method, for another account than the client's: the route
  -- and exactly what names the account.
  local cases = {
    { "get_connected_account", { identifier = "bob" },
      { method = "GET", path = "/api/v1/connected_accounts/auth", query = "connector=twitter&identifier=bob" } },
    { "get_connected_account_details", { identifier = "bob", organization_id = "org_1" },
      { method = "GET", path = "/api/v1/connected_accounts/details",
        query = "connector=twitter&identifier=bob&organization_id=org_1" } },
    { "get_authorization_link", { identifier = "carol", state = "st_9", user_verify_url = "https://app/verify" },
      { method = "POST", path = "/api/v1/connected_accounts/magic_link", query = "",
        body = { connector = "twitter", identifier = "carol", state = "st_9",
                 user_verify_url = "https://app/verify" } } },
    { "list_connected_accounts", { identifier = "bob", connection_names = { "twitter", "x-backup" }, page_size = 5 },
      { method = "GET", path = "/api/v1/connected_accounts",
        query = "connection_names=twitter&connection_names=x-backup&connector=twitter&identifier=bob&page_size=5" } },
    { "verify_connected_account_user", { auth_request_id = "areq_1", identifier = "bob" },
      { method = "POST", path = "/api/v1/connected_accounts/user/verify", query = "",
        body = { auth_request_id = "areq_1", identifier = "bob" } } },
    { "list_connections", { provider = "TWITTER", page_size = 10 },
      { method = "GET", path = "/api/v1/connections/app", query = "page_size=10&provider=TWITTER" } },
    { "list_tools", { filter = { provider = "TWITTER", tool_name = { "twitter_user_me", "twitter_post_create" },
                                 summary = true }, page_size = 5 },
      { method = "GET", path = "/api/v1/tools", query = "filter.provider=TWITTER&filter.summary=true"
        .. "&filter.tool_name=twitter_user_me&filter.tool_name=twitter_post_create&page_size=5" } },
    { "list_scoped_tools", { identifier = "bob", filter = { connection_names = { "twitter" } }, page_size = 2 },
      { method = "GET", path = "/api/v1/tools/scoped",
        query = "filter.connection_names=twitter&identifier=bob&page_size=2" } },
    { "list_available_tools", { identifier = "bob", page_token = "2" },
      { method = "GET", path = "/api/v1/tools/available", query = "identifier=bob&page_token=2" } },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " sends exactly its route and account", function()
      local out, err = tw[case[1]](tw, case[2])
      assert.is_not_nil(out, err and tostring(err))
      assert.same(case[3], sent())
    end)
  end

  it("the account of a call never sticks: the next call is the client's again", function()
    assert(tw:get_connected_account{ identifier = "bob" })
    f:clear()
    assert(tw:get_connected_account())
    assert.equals("connector=twitter&identifier=user_123", sent().query)
  end)

  it("get_connected_account_details gives the account without its credentials", function()
    local acct = assert(tw:get_connected_account_details{ identifier = "bob" })
    assert.equals("bob", acct.identifier)
    assert.equals("ACTIVE", acct.status)
    assert.is_nil(acct.authorization_details)
    assert.is_table(assert(tw:get_connected_account{ identifier = "bob" }).authorization_details)
  end)

  it("create_connected_account and update_connected_account carry api_config and credentials", function()
    local acct = assert(tw:create_connected_account{ identifier = "dave", api_config = { region = "eu", n = 2 } })
    assert.same({ method = "POST", path = "/api/v1/connected_accounts", query = "",
                  body = { connector = "twitter", identifier = "dave", connected_account = {
                    authorization_details = { oauth_token = {} }, api_config = { region = "eu", n = 2 } } } }, sent())
    assert.same({ region = "eu", n = 2 }, acct.api_config)
    f:clear()
    local id = acct.id
    acct = assert(tw:update_connected_account{ connected_account_id = id, identifier = false,
      authorization_details = { oauth_token = { access_token = "at-s3kr1t", scopes = { "tweet.read" } } } })
    local req = sent()
    assert.same({ method = "PUT", path = "/api/v1/connected_accounts", query = "",
                  body = { connector = "twitter", id = id, connected_account = {
                    authorization_details = { oauth_token = { access_token = "at-s3kr1t",
                                                              scopes = { "tweet.read" } } } } } },
                req)
    assert.equals("dave", acct.identifier)
    assert.has_error(function() tw:update_connected_account{ identifier = "dave" } end,
      "scalekit.twitter: update_connected_account needs authorization_details or api_config")
    assert(tw:delete_connected_account{ identifier = "dave" })
  end)

  it("get_or_create_connected_account updates an existing account's api_config", function()
    local acct = assert(tw:get_or_create_connected_account{ identifier = "bob", api_config = { tier = "pro" } })
    assert.same({ tier = "pro" }, acct.api_config)
    local reqs, lines = f:requests(), {}
    for _, r in ipairs(reqs) do
      if r.path ~= "/oauth/token" then lines[#lines + 1] = r.method .. " " .. r.path end
    end
    assert.same({ "GET /api/v1/connected_accounts/auth", "PUT /api/v1/connected_accounts" }, lines)
  end)

  it("list_connections names each connection (its key id)", function()
    local page = assert(tw:list_connections{ provider = "TWITTER" })
    assert.equals(1, #page.connections)
    assert.equals("twitter", page.connections[1].connection_name)
    assert.equals("OAUTH", page.connections[1].type)
    assert.equals(1, page.total_size)
  end)

  it("list_tools answers Scalekit's definitions, keys of the definition kept as they are", function()
    local page = assert(tw:list_tools{ filter = { tool_name = "twitter_user_me" } })
    assert.same({ "twitter_user_me" }, page.tool_names)
    local def = page.tools[1].definition
    assert.equals("twitter_user_me", def.name)
    assert.same({ type = "string" }, def.input_schema.properties.user_fields)
    assert.equals("TWITTER", page.tools[1].provider)
    assert.is_true(page.tools[1].is_default)
  end)

  it("list_scoped_tools lists what the account's connections allow", function()
    local page = assert(tw:list_scoped_tools{ identifier = "bob", filter = { tool_names = { "twitter_user_me" } } })
    assert.equals(1, #page.tools)
    assert.equals("bob", page.tools[1].identifier)
    assert.equals("twitter_user_me", page.tools[1].tool.definition.name)
    assert.matches("^ca_", page.tools[1].connected_account_id)
  end)

  it("each pages through a listing, with a limit", function()
    local names = {}
    for tool, err in tw:each("list_tools", { page_size = 30 }) do
      assert.is_not_false(tool, err and tostring(err))
      names[#names + 1] = tool.definition.name
    end
    assert.equals(81, #names)                      -- 80 Twitter tools and one of another connector
    assert.equals(3, #f:requests("/api/v1/tools"))
    assert.same({ "", "page_size=30&page_token=30", "page_size=30&page_token=60" },
                { f:requests("/api/v1/tools")[1].query:gsub("page_size=30", ""),
                  f:requests("/api/v1/tools")[2].query, f:requests("/api/v1/tools")[3].query })
    f:clear()
    local n = 0
    for _ in tw:each("list_tools", { page_size = 30, limit = 31 }) do n = n + 1 end
    assert.equals(31, n)
    assert.equals(2, #f:requests("/api/v1/tools"))
  end)

  it("each gives a failure once, and ends on a page token seen twice", function()
    f:script{ path = "/api/v1/tools", status = 403, json = { code = 7, message = "permission denied" } }
    local got = {}
    for tool, err in tw:each("list_tools") do got[#got + 1] = { tool, err and err.kind } end
    assert.same({ { false, "auth" } }, got)
    f:clear()
    f:script{ path = "/api/v1/tools", times = 5, json = { tools = { { id = "t1" } }, nextPageToken = "same" } }
    local n = 0
    for _ in tw:each("list_tools") do n = n + 1 end
    assert.equals(2, n)                             -- the second page repeats the token: the end
    assert.equals(2, #f:requests("/api/v1/tools"))
  end)

  it("refuses unknown options, filters and accounts where they mean nothing, before any traffic", function()
    local function fails(pattern, fn)
      local ok, msg = pcall(fn)
      assert.is_false(ok)
      assert.matches(pattern, msg, 1, true)
    end
    fails("scalekit_methods_spec.lua", function() local r = tw:get_connected_account{ identifer = "bob" }; return r end)
    fails("unknown option 'identifer'; did you mean 'identifier'?",
          function() local r = tw:get_connected_account{ identifer = "bob" }; return r end)
    fails("list_connections: 'identifier' does not apply (list_connections is not about one account)",
          function() local r = tw:list_connections{ identifier = "bob" }; return r end)
    fails("list_tools: filter has no field 'tool_names'; it takes connected_account_id, connector, identifier, "
          .. "organization_id, provider, query, summary, tool_name, user_id",
          function() local r = tw:list_tools{ filter = { tool_names = { "x" } } }; return r end)
    fails("list_scoped_tools: filter.tool_names must be a list of strings",
          function() local r = tw:list_scoped_tools{ filter = { tool_names = { 1 } } }; return r end)
    fails("list_connected_accounts: connection_names[2] must be a string",
          function() local r = tw:list_connected_accounts{ connection_names = { "a", 2 } }; return r end)
    fails("each takes list_available_tools, list_connected_accounts, list_connections, list_scoped_tools, "
          .. "list_tools, got list_everything", function() local r = tw:each("list_everything"); return r end)
    assert.equals(0, #f:requests())
  end)

  it("an account call takes per-call options such as timeout and max_retries", function()
    f:script{ path = "/api/v1/connected_accounts/auth", delay = 2 }
    local t0 = require("scalekit.core").monotonic()
    local acct, err = tw:get_connected_account{ timeout = 0.3, max_retries = 0 }
    assert.is_nil(acct)
    assert.equals("timeout", err.kind)
    assert.is_true(require("scalekit.core").monotonic() - t0 < 1.5)
  end)
end)

describe("check_catalog", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, connected_client)

  it("finds no drift against the connector's tools (the self-id ids Scalekit requires are filled in here)", function()
    local report = assert(twitter.check_catalog(tw))
    assert.same({ ok = true, listed = 80, drift = {} }, report)
    assert.equals(1, #f:requests("/api/v1/tools"))
    assert.equals("page_size=100", f:requests("/api/v1/tools")[1].query)
  end)

  it("reports a tool and a parameter Scalekit added, and a changed type and required flag", function()
    local page = assert(tw:list_tools{ page_size = 100 })
    local listed = {}
    for _, t in ipairs(page.tools) do
      local d = t.definition
      if d.name == "twitter_user_me" then
        d.input_schema.properties.user_fields.type = "array"
        d.input_schema.properties.new_flag = { type = "boolean" }
      elseif d.name == "twitter_post_create" then
        d.input_schema.required = { "text" }
      end
      if d.name ~= "twitter_tweet_usage_get" then listed[#listed + 1] = t end
    end
    listed[#listed + 1] = { id = "tool_new", provider = "TWITTER", definition = {
      name = "twitter_post_schedule", input_schema = { type = "object", properties = {} } } }
    f:script{ path = "/api/v1/tools", json = { tools = listed, nextPageToken = "" } }
    local report = assert(twitter.check_catalog(tw))
    assert.is_false(report.ok)
    local lines = {}
    for i, d in ipairs(report.drift) do lines[i] = d.kind .. " " .. d.message end
    assert.same({
      "required twitter_post_create.text: required at Scalekit, optional here",
      "tool_added twitter_post_schedule: listed by Scalekit, not in the catalog (call it with { validate = false })",
      "tool_missing twitter_tweet_usage_get: in the catalog, not listed by Scalekit",
      "param_added twitter_user_me.new_flag: at Scalekit, not in the catalog",
      "type twitter_user_me.user_fields: type string here, array at Scalekit",
    }, lines)
    assert.same({ kind = "type", tool = "twitter_user_me", param = "user_fields", ours = "string", theirs = "array",
                  message = "twitter_user_me.user_fields: type string here, array at Scalekit" }, report.drift[5])
  end)

  it("gives the listing's error, and refuses a direct-mode client", function()
    f:script{ path = "/api/v1/tools", status = 500, body = "down", times = 4 }
    local report, err = twitter.check_catalog(tw)
    assert.is_nil(report)
    assert.equals("server", err.kind)
    local x = twitter.new{ mode = "direct", access_token = "a-s3kr1t", api_base_url = "http://127.0.0.1:9" }
    assert.has_error(function() twitter.check_catalog(x) end,
      "scalekit.twitter.check_catalog expects a Scalekit-mode client")
  end)
end)

describe("tools the catalog does not know (validate = false)", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, connected_client)

  it("sends the name and input as given through execute_tool, unchecked", function()
    local data, info = tw:execute("twitter_post_schedule", { text = "later", at = 1767225600, odd = { 1, 2 } },
                                  { validate = false })
    assert.same({ data = { tool = "twitter_post_schedule", sandbox = true,
                           params = { text = "later", at = 1767225600, odd = { 1, 2 } } } }, data)
    assert.equals("twitter_post_schedule", info.tool)
    local calls = f:requests("/api/v1/execute_tool")
    assert.equals(1, #calls)
    assert.equals('{"connector":"twitter","identifier":"user_123","params":{"at":1767225600,"odd":[1,2],'
                  .. '"text":"later"},"tool_name":"twitter_post_schedule"}', calls[1].body)
  end)

  it("takes another connector's tool with its connection_name", function()
    fake.connect(f, "user_123")
    local _, err = tw:execute("slack_send_message", { channel = "c1" }, { validate = false, connection_name = "slack" })
    assert.equals("not_found", err.kind)                   -- no slack account in the sandbox
    assert.equals('{"connector":"slack","identifier":"user_123","params":{"channel":"c1"},'
                  .. '"tool_name":"slack_send_message"}', f:requests("/api/v1/execute_tool")[1].body)
  end)

  it("a known tool with validate = false skips the checks too", function()
    local data = assert(tw:execute("user_me", { nonsense = true }, { validate = false }))
    assert.is_table(data)
    assert.equals('{"connector":"twitter","identifier":"user_123","params":{"nonsense":true},'
                  .. '"tool_name":"twitter_user_me"}', f:requests("/api/v1/execute_tool")[1].body)
  end)

  it("is refused in direct mode and for a name that is not one, before any traffic", function()
    local x = twitter.new{ mode = "direct", access_token = "a-s3kr1t", api_base_url = "http://127.0.0.1:9" }
    assert.has_error(function() x:execute("twitter_post_schedule", {}, { validate = false }) end,
      "scalekit.twitter: validate = false sends a tool unchecked through Scalekit's execute_tool; "
      .. "direct mode needs the catalog's X route")
    assert.has_error(function() tw:execute("bad name", {}, { validate = false }) end,
      "scalekit.twitter: execute needs a tool name of letters, digits and '_'")
    assert.has_error(function() tw:execute("user_me", {}, { validate = "no" }) end)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
  end)
end)

describe("before and after hooks", function()
  local f
  setup(function()
    f = fake.start_connected()
    fake.connect(f, "bob")
  end)
  teardown(function() f:stop() end)
  before_each(function() f:clear() end)

  it("before sees the tool, input and account, and may rewrite the input", function()
    local seen = {}
    local tw = fake.client(f, { before = function(tool, input, ctx)
      seen[#seen + 1] = { tool, input.text, ctx.identifier, ctx.connection_name, ctx.mode }
      return { text = input.text .. " #lua" }
    end })
    local data = assert(tw:post_create({ text = "hi" }, { identifier = "bob" }))
    assert.equals("hi #lua", data.data.text)
    assert.same({ { "twitter_post_create", "hi", "bob", "twitter", "scalekit" } }, seen)
    assert.equals('{"connector":"twitter","identifier":"bob","params":{"text":"hi #lua"},'
                  .. '"tool_name":"twitter_post_create"}', f:requests("/api/v1/execute_tool")[1].body)
    tw:close()
  end)

  it("a rewritten input is validated like any other", function()
    local tw = fake.client(f, { before = function() return { txt = "hi" } end })
    local data, err = tw:post_create{ text = "hi" }
    assert.is_nil(data)
    assert.equals("invalid_input", err.kind)
    assert.equals("txt", err.param)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
    tw:close()
  end)

  it("before refuses with false and a reason: a refused error, nothing sent", function()
    local tw = fake.client(f, { before = function(tool)
      if tool == "twitter_post_delete" then return false, "deletes need a human" end
    end })
    local data, err = tw:post_delete{ id = "1720000000000000101" }
    assert.is_nil(data)
    assert.equals("refused", err.kind)
    assert.equals("twitter_post_delete: refused by the before hook: deletes need a human", err.message)
    assert.equals(0, #f:requests("/api/v1/execute_tool"))
    assert(tw:user_me{})                                   -- other tools go through
    tw:close()
  end)

  it("after may rewrite the output, or refuse it keeping the output and info", function()
    local tw = fake.client(f, { after = function(tool, output, info)
      if tool == "twitter_user_me" then return { name = output.data.name, via = info.execution_id } end
      return false, "not for this agent"
    end })
    local data, info = assert(tw:user_me{})
    assert.same({ name = "Sandbox User", via = info.execution_id }, data)
    local _, err = tw:post_create{ text = "applied anyway" }
    assert.equals("refused", err.kind)
    assert.equals("twitter_post_create: refused by the after hook: not for this agent", err.message)
    assert.equals("applied anyway", err.output.data.text)     -- the call ran: nothing is lost
    assert.matches("^exec_", err.info.execution_id)
    tw:close()
  end)

  it("applies to batch entries and to unchecked calls", function()
    local tools_seen = {}
    local tw = fake.client(f, {
      before = function(tool, input) tools_seen[#tools_seen + 1] = tool; return input end,
      after = function(tool, output) return { tool = tool, ok = output ~= nil } end,
    })
    local results = tw:batch{ { "user_me", {} }, { "post_create", { text = "b" } } }
    assert.same({ tool = "twitter_user_me", ok = true }, results[1].data)
    assert.same({ tool = "twitter_post_create", ok = true }, results[2].data)
    assert(tw:execute("twitter_post_schedule", {}, { validate = false }))
    table.sort(tools_seen)
    assert.same({ "twitter_post_create", "twitter_post_schedule", "twitter_user_me" }, tools_seen)
    tw:close()
  end)

  it("are client options: a hook that is not a function is a configuration error", function()
    assert.has_error(function() fake.client(f, { before = "yes" }) end,
      "scalekit.twitter.new: 'before' must be a function, got \"yes\"")
  end)
end)
