-- Every tool of the catalog, called through the SDK against the fake Scalekit:
-- the exact request that goes out, the exact result that comes back, and the
-- input errors that stop a call before any traffic.

local twitter = require "scalekit.twitter"
local tools = require "scalekit.twitter.tools"
local fake = require "support.fake"

local SAMPLE_ID = "1460323743973015556"

local function sample(p) return fake.sample(p, SAMPLE_ID) end

local WRONG = { string = true, integer = "10", boolean = "yes", array = "1,2" }

describe("the tool catalog", function()
  it("has the 80 tools of the connector, sorted, each with a unique short name", function()
    local list = twitter.tools()
    assert.equals(80, #list)
    local seen = {}
    for i, t in ipairs(list) do
      if i > 1 then assert.is_true(list[i - 1].name < t.name) end
      assert.equals("twitter_" .. t.short_name, t.name)
      assert.is_nil(seen[t.short_name])
      seen[t.short_name] = true
      assert.is_true(#t.description > 10)
      for _, p in ipairs(t.params) do
        assert.is_string(p.name)
        assert.is_true(({ string = 1, integer = 1, boolean = 1, array = 1 })[p.type] ~= nil)
        assert.is_boolean(p.required)
        assert.is_string(p.description)
      end
    end
  end)

  it("describes a tool's parameters", function()
    local t
    for _, x in ipairs(twitter.tools()) do if x.name == "twitter_recent_search" then t = x end end
    local names = {}
    for _, p in ipairs(t.params) do names[#names + 1] = p.name .. (p.required and "!" or "") end
    assert.same({ "end_time", "expansions", "max_results", "media_fields", "next_token", "query!",
                  "since_id", "start_time", "tweet_fields", "until_id", "user_fields" }, names)
  end)

  it("gives a JSON Schema for LLM function calling", function()
    local s = assert(twitter.schema("twitter_recent_search"))
    assert.equals("https://json-schema.org/draft/2020-12/schema", s["$schema"])
    assert.equals("object", s.type)
    assert.same({ "query" }, s.required)
    assert.same({ type = "integer", minimum = 10, maximum = 100,
                  description = "Maximum number of results in one page" }, s.properties.max_results)
    assert.equals("^[0-9]{1,19}$", s.properties.since_id.pattern)
    assert.is_false(s.additionalProperties)
    -- an empty `required` stays an array in JSON
    local text = twitter.json.encode(twitter.schema("user_me"))
    assert.matches('"required":%[%]', text)
    local _, err = twitter.schema("twitter_nope")
    assert.equals("invalid_input", err.kind)
  end)

  it("makes the 18 'your own id' tools take id as optional", function()
    local n = 0
    for _, t in ipairs(tools.list) do
      if t.self_id then
        n = n + 1
        assert.is_false(t.param.id.required)
      end
    end
    assert.equals(18, n)
  end)

  it("has no short name that shadows a client method", function()
    local methods = { "execute", "request", "close", "get_authorization_link", "get_connected_account",
                      "get_or_create_connected_account", "list_connected_accounts",
                      "delete_connected_account", "verify_connected_account_user" }
    local tw = twitter.new{ env_url = "http://127.0.0.1:1", client_id = "c", client_secret = "s" }
    for _, m in ipairs(methods) do
      assert.is_function(tw[m])
      assert.is_nil(tools.get(m))
    end
    tw:close()
  end)
end)

-- A client whose connected account exists on the fake.
local function connected_client(f)
  fake.connect(f)
  return fake.client(f)
end

describe("every tool", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, connected_client)

  for _, tool in ipairs(tools.list) do
    it(tool.name .. " sends exactly its input and returns exactly the output", function()
      local input = {}
      for _, p in ipairs(tool.params) do input[p.name] = sample(p) end
      local canned = { data = { data = { id = SAMPLE_ID, tool = tool.name, count = 12345678901234 },
                                meta = { result_count = 1 }, empty = {} },
                       execution_id = "exec-" .. tool.short }
      f:clear()
      f:script{ path = "/api/v1/execute_tool", json = canned }
      local data, info = tw[tool.short](tw, input)
      assert.is_table(data, tostring(info))
      assert.same({ execution_id = "exec-" .. tool.short, tool = tool.name, status = 200 }, info)
      assert.is_true(fake.same(canned.data, data))
      assert.equals("integer", math.type(data.data.count))
      assert.equals("{}", twitter.json.encode(data.empty))

      local reqs = f:requests("/api/v1/execute_tool")
      assert.equals(1, #reqs)
      local r = reqs[1]
      assert.equals("POST", r.method)
      assert.equals("", r.query)
      assert.equals("application/json", fake.header(r, "content-type"))
      local body = assert(twitter.json.decode(r.body))
      local want = { tool_name = tool.name, identifier = "user_123", connector = "twitter",
                     params = input }
      assert.is_true(fake.same(want, body))
      -- the full name is the same function
      assert.equals(tw[tool.short], tw[tool.name])
      assert.equals(twitter[tool.short], twitter[tool.name])
    end)

    local first = tool.params[1]
    for _, p in ipairs(tool.params) do
      if p.required then first = p; break end
    end
    if first then
      it(tool.name .. " rejects a wrong type for '" .. first.name .. "' before sending", function()
        f:clear()
        local input = {}
        for _, p in ipairs(tool.params) do input[p.name] = sample(p) end
        input[first.name] = WRONG[first.type]
        local data, err = tw:execute(tool.name, input)
        assert.is_nil(data)
        assert.equals("invalid_input", err.kind)
        assert.equals(tool.name, err.tool)
        assert.equals(first.name, err.param)
        assert.matches("expected", err.message)
        assert.equals(0, #f:requests())
      end)
    end
    if first and first.required then
      it(tool.name .. " rejects a call without '" .. first.name .. "' before sending", function()
        f:clear()
        local data, err = tw[tool.short](tw, {})
        assert.is_nil(data)
        assert.equals("invalid_input", err.kind)
        assert.equals(first.name, err.param)
        assert.matches("required parameter is missing", err.message)
        assert.equals(0, #f:requests())
      end)
    end
    if #tool.params == 0 then
      it(tool.name .. " rejects any parameter before sending", function()
        f:clear()
        local _, err = tw[tool.short](tw, { id = "1" })
        assert.equals("invalid_input", err.kind)
        assert.matches("this tool takes none", err.message)
        assert.equals(0, #f:requests())
      end)
    end
  end
end)

describe("tool input", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, connected_client)

  local function sent_params()
    local reqs = f:requests("/api/v1/execute_tool")
    return reqs[#reqs].body:match('"params":(%b{})')
  end

  it("takes one-to-one DM conversation IDs (two user IDs joined by '-') as X does", function()
    local one_to_one = "750362064426721281-1072250532645998596"
    assert(tw:dm_conversation_retrieve{ dm_conversation_id = one_to_one })
    assert(tw:dm_conversation_send{ dm_conversation_id = one_to_one, text = "hi" })
    assert(tw:dm_conversation_send{ dm_conversation_id = "1072250532645998596", text = "group" })
    assert.equals(3, #f:requests("/api/v1/execute_tool"))
    f:clear()
    for _, bad in ipairs{ "750362064426721281-", "12345678901234-1-2", "12345678901234", "1-12345678901234567890" } do
      local _, err = tw:dm_conversation_send{ dm_conversation_id = bad, text = "x" }
      assert.equals("dm_conversation_id", err.param, bad)
    end
    assert.equals(0, #f:requests())
    local schema = twitter.schema("twitter_dm_conversation_send").properties.dm_conversation_id
    assert.equals("^([0-9]{1,19}-[0-9]{1,19}|[0-9]{15,19})$", schema.pattern)
  end)

  -- Rules X's schemas state that no single parameter carries: refused before any traffic.
  local refused = {
    { "post_create", { text = "poll", poll_options = { "a", "b" } }, "poll_duration_minutes",
      "required with 'poll_options' (poll_options and poll_duration_minutes go together)" },
    { "post_create", { text = "poll", poll_duration_minutes = 60 }, "poll_options",
      "required with 'poll_duration_minutes' (poll_options and poll_duration_minutes go together)" },
    { "post_create", { poll_options = { "a", "" }, poll_duration_minutes = 60 }, "poll_options",
      "item 2: expected at least 1 character, got 0" },
    { "dm_send", { participant_id = "2244994945" }, "media_id", "give at least one of media_id, text" },
    { "dm_conversation_send", { dm_conversation_id = "1-2", text = "" }, "text",
      "expected at least 1 character, got 0" },
    { "activity_subscription_create", { event_types = {}, user_id = "2244994945" }, "event_types",
      "got 0" },
    { "activity_subscription_create", { event_types = { "profile.updated" }, user_id = "2244994945" },
      "event_types", "item 1: expected one of profile.update.bio" },
    { "recent_search", { query = "" }, "query", "expected at least 1 character, got 0" },
    { "list_create", { name = "" }, "name", "expected at least 1 character, got 0" },
    { "users_lookup", { ids = "1,,2" }, "ids", "got an empty value at position 2" },
    { "users_lookup", { ids = "1,x" }, "ids", "value 2: a numeric ID string (1-19 digits), got the string \"x\"" },
    { "post_analytics_get", { tweet_ids = ("1,"):rep(100) .. "1", start_time = "2026-01-01T00:00:00Z",
      end_time = "2026-01-02T00:00:00Z" }, "tweet_ids", "(1 to 100 comma-separated values), got 101" },
    { "recent_search", { query = "x", start_time = "2026-01-01" }, "start_time", "an RFC 3339 time" },
    { "recent_search", { query = "x", start_time = "2026-02-30T25:00:00Z" }, "start_time", "an RFC 3339 time" },
    { "recent_search", { query = "x", tweet_fields = "created_at,bogus" }, "tweet_fields",
      "value 2: one of article, article_title" },
    { "media_upload_init", { media_type = "image/png", total_bytes = -1 }, "total_bytes", "got -1" },
    { "media_upload_init", { media_type = "application/pdf", total_bytes = 10 }, "media_type", "one of " },
    { "media_upload_append", { media_id = "1", media_data = "AA==", segment_index = 1000 }, "segment_index",
      "from 0 to 999, got 1000" },
  }
  for _, c in ipairs(refused) do
    it(("refuses %s with %s: %s"):format(c[1], c[3], c[4]:sub(1, 50)), function()
      local _, err = tw[c[1]](tw, c[2])
      assert.is_table(err, "accepted")
      assert.equals("invalid_input", err.kind)
      assert.equals(c[3], err.param)
      assert.matches(c[4], err.message, 1, true)
      assert.equals(0, #f:requests())
    end)
  end

  it("sends an ID given as a Lua integer as its exact decimal string", function()
    assert(tw:user_lookup{ id = 1460323743973015556 })
    assert.equals('{"id":"1460323743973015556"}', sent_params())
  end)

  it("refuses an ID given as a float, which has already lost digits", function()
    local _, err = tw:post_lookup{ id = 1.4603237437930156e18 }
    assert.equals("id", err.param)
    assert.matches("IDs must be strings", err.message)
  end)

  it("sends an integral float for an integer parameter as an integer, and refuses 1.5", function()
    assert(tw:recent_search{ query = "lua", max_results = 50.0 })
    assert.equals('{"max_results":50,"query":"lua"}', sent_params())
    local _, err = tw:recent_search{ query = "lua", max_results = 50.5 }
    assert.equals("max_results", err.param)
  end)

  it("sends an array parameter as a JSON array even when empty", function()
    assert(tw:dm_group_conversation_create{ message_text = "hi", participant_ids = { "1", 2 },
                                            message_media_ids = {} })
    assert.equals('{"message_media_ids":[],"message_text":"hi","participant_ids":["1","2"]}', sent_params())
  end)

  it("sends {} when a tool has no parameters", function()
    assert(tw:openapi_spec_get())
    assert.equals("{}", sent_params())
  end)

  it("drops parameters set to twitter.null", function()
    assert(tw:user_me{ user_fields = twitter.null })
    assert.equals("{}", sent_params())
  end)

  it("keeps UTF-8 text intact", function()
    assert(tw:post_create{ text = "héllo 😀 \"quoted\"\n" })
    assert.equals('{"text":"héllo 😀 \\"quoted\\"\\n"}', sent_params())
  end)

  it("enforces the ranges the catalog states", function()
    local cases = {
      { "recent_search", { query = "x", max_results = 9 }, "max_results", "from 10 to 100, got 9" },
      { "full_archive_search", { query = "x", max_results = 501 }, "max_results", "from 10 to 500" },
      { "post_create", { poll_options = { "a", "b", "c", "d", "e" } }, "poll_options", "(2 to 4 items), got 5" },
      { "post_create", { poll_options = { "a", string.rep("b", 26) } }, "poll_options", "at most 25 characters" },
      { "post_create", { poll_duration_minutes = 4 }, "poll_duration_minutes", "from 5 to 10080" },
      { "recent_tweet_counts", { query = "x", granularity = "week" }, "granularity", "one of minute, hour, day" },
      { "user_lookup_by_username", { username = "not a name" }, "username", "a username" },
      { "user_lookup", { id = "12ab" }, "id", "numeric ID" },
      { "users_lookup", { ids = string.rep("1,", 100) .. "1" }, "ids", "(1 to 100 comma-separated values), got 101" },
      { "tweet_usage_get", { days = 91 }, "days", "from 1 to 90" },
    }
    for _, c in ipairs(cases) do
      local _, err = tw[c[1]](tw, c[2])
      assert.equals("invalid_input", err.kind, c[1])
      assert.equals(c[3], err.param, c[1])
      assert.matches(c[4], err.message, 1, true)
    end
    assert.equals(0, #f:requests())
  end)

  it("checks ID, username and Space ID formats at their edges, strings only", function()
    local cases = {    -- tool, param, value, accepted
      { "user_lookup", "id", "1", true }, { "user_lookup", "id", ("9"):rep(19), true },
      { "user_lookup", "id", ("9"):rep(20), false }, { "user_lookup", "id", "", false },
      { "user_lookup", "id", "12\0", false }, { "user_lookup", "id", " 12", false },
      { "user_lookup", "id", "0x1F", false }, { "user_lookup", "id", { "1" }, false },
      { "user_lookup", "id", true, false },
      { "user_lookup_by_username", "username", "Ab_9" .. ("x"):rep(11), true },
      { "user_lookup_by_username", "username", ("x"):rep(16), false },
      { "user_lookup_by_username", "username", "a-b", false },
      { "space_get", "id", "1YqKDqWqdPLsV", true }, { "space_get", "id", "1YqKDqWq_PLsV", false },
    }
    for _, c in ipairs(cases) do
      local data, err = tw[c[1]](tw, { [c[2]] = c[3] })
      if c[4] then
        assert(data, c[1] .. " " .. c[2])
        assert.equals('{"' .. c[2] .. '":"' .. c[3] .. '"}', sent_params(), c[1])
      else
        assert.is_nil(data, c[1] .. " " .. tostring(c[3]))
        assert.equals(c[2], err.param, c[1])
        assert.matches("expected ", err.message, 1, true)
      end
    end
  end)

  it("suggests the closest parameter for a typo", function()
    local _, err = tw:post_create{ txet = "hi" }
    assert.equals("twitter_post_create: parameter 'txet': unknown parameter; did you mean 'text'?", err.message)
    assert.equals("scalekit.twitter: invalid_input: twitter_post_create: parameter 'txet': "
                  .. "unknown parameter; did you mean 'text'?", tostring(err))
  end)

  it("suggests the closest tool for an unknown tool name", function()
    local _, err = tw:execute("twitter_post_creat", {})
    assert.equals("invalid_input", err.kind)
    assert.equals("unknown tool 'twitter_post_creat'; did you mean 'twitter_post_create'?", err.message)
  end)

  it("fills in the authenticated user's id once per client", function()
    assert(tw:bookmarks_get{ max_results = 5 })
    assert(tw:post_like{ tweet_id = "20" })
    local reqs = f:requests("/api/v1/execute_tool")
    local names = {}
    for i, r in ipairs(reqs) do names[i] = r.body:match('"tool_name":"([^"]+)"') end
    assert.same({ "twitter_user_me", "twitter_bookmarks_get", "twitter_post_like" }, names)
    assert.matches('"id":"1720000000000000001"', reqs[2].body, 1, true)
    assert.matches('"params":{"id":"1720000000000000001","tweet_id":"20"}', reqs[3].body, 1, true)
  end)

  it("reports a failed id lookup as the error of the call", function()
    local tw2 = fake.client(f, { retry_base = 0.01 })
    f:script{ path = "/api/v1/execute_tool", status = 503, times = 3, json = { code = 14, message = "unavailable" } }
    local data, err = tw2:bookmarks_get{}
    assert.is_nil(data)
    assert.equals("server", err.kind)
    assert.equals(503, err.status)
    tw2:close()
  end)

  it("raises for programmer mistakes: non-table input, dot call, unknown method", function()
    assert.has_error(function() tw:post_create("hello") end,
      "scalekit.twitter: twitter_post_create expects a table, got string")
    assert.has_error(function() tw.post_create{ text = "x" } end,
      "scalekit.twitter: call post_create with a colon: tw:post_create{...}")
    assert.has_error(function() return tw:post_creat{} end,
      "scalekit.twitter: client has no method or field 'post_creat'; did you mean 'post_create'?")
    assert.has_error(function() tw:execute("twitter_user_me", 5) end)
    assert.equals(0, #f:requests())
  end)

  it("needs an identifier or a connected account id", function()
    local tw2 = twitter.new{ env_url = f.url, client_id = fake.CLIENT_ID,
                             client_secret = fake.CLIENT_SECRET, identifier = false }
    rawset(tw2, "identifier", nil)
    local _, err = tw2:user_me{}
    assert.equals("invalid_input", err.kind)
    assert.matches("no connected account", err.message)
    assert.equals(0, #f:requests())
  end)
end)
