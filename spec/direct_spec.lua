-- Direct mode: every tool straight against a fake X API v2 that checks each
-- request against X's OpenAPI document (sandbox/x_routes.json), plus the
-- OAuth 2.0 token lifecycle and streaming.

local twitter = require "scalekit.twitter"
local tools = require "scalekit.twitter.tools"
local core = require "scalekit.core"
local fake = require "support.fake"

local ME = "1720000000000000001"
local CLIENT_ID, CLIENT_SECRET = "sandbox-x-client", "sandbox-x-secret-s3kr1t"
local APP = "sandbox-app-bearer-s3kr1t"

-- Values X accepts for parameters whose catalog type alone is too loose.
-- `false` leaves a parameter out (page tokens only come from a previous page).
local SAMPLES = {
  media_type = "image/png", pagination_token = false, next_token = false,
  media_category = "tweet_image", exclude = "replies", additional_owners = "1001,1002",
  media = core.base64("\137PNG fake"), media_data = core.base64("\137PNG fake"),
  total_bytes = 9, query = "lua", participant_ids = { "1001", "1002" },
}

local function sample(p)
  if p.name == "event_types" and p.type == "array" then return { "follow.follow", "spaces.start" } end
  if SAMPLES[p.name] ~= nil then return SAMPLES[p.name] or nil end
  return fake.sample(p, ME)
end

local function direct(f, opts)
  local o = { mode = "direct", api_base_url = f.url, client_id = CLIENT_ID, client_secret = CLIENT_SECRET }
  for k, v in pairs(opts or {}) do o[k] = v end
  return twitter.new(o)
end

local function seed_user(f, access, refresh, ttl)
  f:control("tokens", { access_token = access, refresh_token = refresh, expires_in = ttl or 7200 })
end

describe("direct mode", function()
  local f, user, app
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    seed_user(f, "user-token-1", "refresh-1")
    user = direct(f, { access_token = "user-token-1", refresh_token = "refresh-1", bearer_token = APP })
    app = direct(f, { bearer_token = APP })
  end)
  teardown(function()
    user:close()
    app:close()
    f:stop()
  end)
  before_each(function() f:clear() end)

  -- A few tools act on something that must exist first.
  local prepare = {
    twitter_media_upload_append = function(input)
      local d = assert(user:media_upload_init{ media_type = "video/mp4", total_bytes = 9 })
      input.media_id = d.data.id
    end,
    twitter_media_upload_status_get = function(input)
      local d = assert(user:media_upload{ media = SAMPLES.media, media_type = "image/png" })
      input.media_id = d.data.id
    end,
  }

  for _, tool in ipairs(tools.list) do
    it(tool.name .. " sends a request X's OpenAPI document accepts and returns X's answer", function()
      local input = {}
      for _, p in ipairs(tool.params) do
        if not p.scalekit_only then input[p.name] = sample(p) end
      end
      if prepare[tool.name] then prepare[tool.name](input); f:clear() end
      local client = tool.auth == "app" and app or user
      local data, info = client:execute(tool.name, input)
      assert.is_table(data, tostring(info))
      assert.equals(tool.name, info.tool)
      local reqs = f:requests()
      assert.is_true(#reqs >= 1)
      for _, r in ipairs(reqs) do
        assert.same({}, r.violations, r.method .. " " .. r.path)
      end
      -- every tool's first request is its route, sequences' too
      local r = reqs[1]
      local method, path = tool.http:match("^(%u+) (%S+)$")
      assert.equals(method, r.method)
      assert.matches("^" .. path:gsub("{[%w_]+}", "[^/]+") .. "$", r.path)
    end)
  end

  -- Each named sequence of the catalog: the tool, its input, and the exact
  -- requests it makes (method, path with long IDs as ID, query, body).
  local SEQUENCES = {
    { "fan_out", "twitter_activity_subscription_create",
      { event_types = { "follow.follow", "like.create" }, user_id = ME }, {
      { "POST", "/2/activity/subscriptions", "",
        '{"event_type":"follow.follow","filter":{"user_id":"' .. ME .. '"}}' },
      { "POST", "/2/activity/subscriptions", "",
        '{"event_type":"like.create","filter":{"user_id":"' .. ME .. '"}}' } } },
    { "chunked_upload", "twitter_media_upload_large",
      { media_data = core.base64("012345"), media_type = "video/mp4", total_bytes = 6, additional_owners = "7,8" }, {
      { "POST", "/2/media/upload/initialize", "",
        '{"additional_owners":["7","8"],"media_category":"tweet_video","media_type":"video/mp4","total_bytes":6}' },
      { "POST", "/2/media/upload/ID/append", "", '{"media":"MDEyMw==","segment_index":0}' },
      { "POST", "/2/media/upload/ID/append", "", '{"media":"NDU=","segment_index":1}' },
      { "POST", "/2/media/upload/ID/finalize", "", "" },
      { "GET", "/2/media/upload", "command=STATUS&media_id=ID", "" },
      { "GET", "/2/media/upload", "command=STATUS&media_id=ID", "" } } },
    { "stream", "twitter_tweet_label_stream", { backfill_minutes = 1 }, {
      { "GET", "/2/tweets/label/stream", "backfill_minutes=1", "" } } },
  }
  for _, case in ipairs(SEQUENCES) do
    local name, tool_name, input, want = case[1], case[2], case[3], case[4]
    it("runs the " .. name .. " sequence (" .. tool_name .. ") as exactly its requests", function()
      assert.equals(name, tools.get(tool_name).sequence)
      local media = require "scalekit.twitter.media"
      local saved = media.CHUNK_SIZE
      media.CHUNK_SIZE = 4
      local client = tools.get(tool_name).auth == "app" and app or user
      local data, info = client:execute(tool_name, input)
      media.CHUNK_SIZE = saved
      assert.is_table(data, tostring(info))
      assert.equals(tool_name, info.tool)
      local got = {}
      for i, r in ipairs(f:requests()) do
        if r.path ~= "/2/users/me" then
          got[#got + 1] = { r.method, (r.path:gsub("%d%d%d%d%d+", "ID")), (r.query:gsub("%d%d%d%d%d+", "ID")),
                            r.body }
        end
        assert.same({}, r.violations, "request " .. i)
      end
      assert.same(want, got)
    end)
  end

  describe("maps catalog parameters to X's wire names", function()
    it("renames *_fields, keeps IDs as strings and fills path parameters", function()
      assert(user:user_lookup{ id = 2244994945, user_fields = "created_at", tweet_fields = "text" })
      local r = f:requests()[1]
      assert.equals("GET", r.method)
      assert.equals("/2/users/2244994945", r.path)
      assert.equals("tweet.fields=text&user.fields=created_at", r.query)
      assert.equals("Bearer user-token-1", fake.header(r, "authorization"))
    end)

    it("unflattens post_create into X's nested body", function()
      local d = assert(user:post_create{ text = "hi", reply_in_reply_to_tweet_id = "1460323743973015556",
                                         poll_options = { "a", "b" }, poll_duration_minutes = 60 })
      local r = f:requests()[1]
      assert.equals('{"poll":{"duration_minutes":60,"options":["a","b"]},'
                    .. '"reply":{"in_reply_to_tweet_id":"1460323743973015556"},"text":"hi"}', r.body)
      assert.equals("application/json", fake.header(r, "content-type"))
      assert.equals("hi", d.data.text)
    end)

    it("builds DM attachments and the group conversation type", function()
      assert(user:dm_group_conversation_create{ message_text = "yo", participant_ids = { "1001", "1002" },
                                                message_media_ids = { "55" } })
      assert.equals('{"conversation_type":"Group","message":{"attachments":[{"media_id":"55"}],"text":"yo"},'
                    .. '"participant_ids":["1001","1002"]}', f:requests()[1].body)
      assert(user:dm_send{ participant_id = "2244994945", text = "hey", media_id = "77" })
      assert.equals('{"attachments":[{"media_id":"77"}],"text":"hey"}', f:requests()[2].body)
    end)

    it("refuses, before any traffic, a parameter Scalekit's tool takes and X's route does not", function()
      local data, err = user:dm_delete{ event_id = "1", participant_id = "2" }
      assert.is_nil(data)
      assert.equals("invalid_input", err.kind)
      assert.equals("participant_id", err.param)
      assert.equals("twitter_dm_delete: parameter 'participant_id': Scalekit's tool takes it, but X's "
                    .. "DELETE /2/dm_events/{event_id} does not (direct mode); leave it out", err.message)
      assert.equals(0, #f:requests())
      assert(user:dm_delete{ event_id = "1" })
      local r = f:requests()[1]
      assert.equals("/2/dm_events/1", r.path)
      assert.equals("", r.query)
    end)

    it("fills the authenticated user's id from /2/users/me once", function()
      local c = direct(f, { access_token = "user-token-1", refresh_token = "refresh-1" })
      assert(c:bookmark_add{ tweet_id = "5" })
      assert(c:bookmarks_get{})
      local paths = {}
      for i, r in ipairs(f:requests()) do paths[i] = r.method .. " " .. r.path end
      assert.same({ "GET /2/users/me", "POST /2/users/" .. ME .. "/bookmarks",
                    "GET /2/users/" .. ME .. "/bookmarks" }, paths)
      c:close()
    end)

    it("subscribes to each event type with its own POST", function()
      local d = assert(user:activity_subscription_create{ event_types = { "follow.follow", "like.create" },
                                                          user_id = ME })
      local reqs = f:requests()
      assert.equals(2, #reqs)
      assert.equals('{"event_type":"follow.follow","filter":{"user_id":"' .. ME .. '"}}', reqs[1].body)
      assert.equals('{"event_type":"like.create","filter":{"user_id":"' .. ME .. '"}}', reqs[2].body)
      assert.equals(2, #d.data)
      assert.equals("like.create", d.data[2].subscription.event_type)
    end)

    it("uploads large media as initialize, append chunks, finalize and status polls", function()
      local media = require "scalekit.twitter.media"
      local saved = media.CHUNK_SIZE
      media.CHUNK_SIZE = 4
      local bytes = "0123456789"
      local sent = {}
      local function progress(n, total) sent[#sent + 1] = n .. "/" .. total end
      local d = assert(user:media_upload_large({ media_data = core.base64(bytes), media_type = "video/mp4",
                                                 total_bytes = #bytes }, { on_progress = progress }))
      media.CHUNK_SIZE = saved
      assert.same({ "4/10", "8/10", "10/10" }, sent)          -- after each chunk, per call
      local steps = {}
      for i, r in ipairs(f:requests()) do steps[i] = r.method .. " " .. r.path:gsub("%d%d%d+", "ID") end
      assert.same({ "POST /2/media/upload/initialize", "POST /2/media/upload/ID/append",
                    "POST /2/media/upload/ID/append", "POST /2/media/upload/ID/append",
                    "POST /2/media/upload/ID/finalize", "GET /2/media/upload", "GET /2/media/upload" }, steps)
      local reqs = f:requests()
      assert.equals('{"media_category":"tweet_video","media_type":"video/mp4","total_bytes":10}', reqs[1].body)
      assert.equals('{"media":"' .. core.base64("0123") .. '","segment_index":0}', reqs[2].body)
      assert.equals('{"media":"' .. core.base64("89") .. '","segment_index":2}', reqs[4].body)
      assert.equals("succeeded", d.data.processing_info.state)
      local _, err = user:media_upload_large{ media_data = core.base64(bytes), media_type = "video/mp4",
                                              total_bytes = 11 }
      assert.equals("invalid_input", err.kind)
      assert.equals("total_bytes", err.param)
    end)
  end)

  describe("auth kinds", function()
    it("refuses a user-context tool with only an app-only token, before any request", function()
      local data, err = app:bookmarks_get{ id = ME }
      assert.is_nil(data)
      assert.equals("auth", err.kind)
      assert.equals("twitter_bookmarks_get: X serves this only with an OAuth 2.0 user-context token; "
                    .. "this client has an app-only bearer token", err.message)
      assert.equals(0, #f:requests())
    end)

    it("refuses an app-only tool with only a user token, before any request", function()
      local c = direct(f, { access_token = "user-token-1" })
      local _, err = c:tweet_usage_get{}
      assert.equals("auth", err.kind)
      assert.matches("only with an app%-only bearer token", err.message)
      assert.equals(0, #f:requests())
      c:close()
    end)

    it("uses the app token for app-only tools when the client has both", function()
      assert(user:tweet_usage_get{ days = 3 })
      assert.equals("Bearer " .. APP, fake.header(f:requests()[1], "authorization"))
    end)

    it("maps X's problem details: 403 wrong auth kind, 400 unknown query parameter", function()
      local resp, err = app:request{ path = "/2/users/me" }
      assert.is_nil(resp)
      assert.equals("auth", err.kind)
      assert.equals(403, err.status)
      assert.equals("unsupported-authentication", err.error_code)
      resp, err = app:request{ path = "/2/tweets/search/recent", params = { query = "x", bogus = 1 } }
      assert.is_nil(resp)
      assert.equals("invalid_input", err.kind)
      assert.matches("One or more parameters", err.message)
      assert.equals("The query parameter [bogus] is not one of [end_time,expansions,max_results,media.fields,"
                    .. "next_token,pagination_token,place.fields,poll.fields,post.fields,query,since_id,"
                    .. "sort_order,start_time,tweet.fields,until_id,user.fields]",
                    err.response.json.errors[1].message)
    end)

    it("returns partial errors inside a 200 as data", function()
      local d = assert(user:posts_lookup{ ids = "999" })
      assert.equals("resource-not-found", d.errors[1].type:match("([%w%-]+)$"))
    end)

    it("reports a 429 as rate_limited with the reset time", function()
      f:script{ path = "/2/users/me", status = 429,
                json = { title = "Too Many Requests", detail = "Too Many Requests" },
                headers = { ["x-rate-limit-limit"] = "75", ["x-rate-limit-remaining"] = "0",
                            ["x-rate-limit-reset"] = tostring(math.floor(core.now()) + 30) } }
      local _, err = user:user_me{}
      assert.equals("rate_limited", err.kind)
      assert.is_true(err.retry_after >= 29 and err.retry_after <= 30)
      assert.same({ limit = 75, remaining = 0, reset = err.rate_limit.reset }, err.rate_limit)
    end)
  end)
end)

describe("OAuth 2.0", function()
  local f
  setup(function() f = fake.start{ script = "fake_x.py" } end)
  teardown(function() f:stop() end)
  before_each(function() f:reset() end)

  it("builds an authorize URL with PKCE S256 and a fresh state", function()
    local url, verifier, state = twitter.oauth2.authorize_url{
      client_id = CLIENT_ID, redirect_uri = "http://127.0.0.1:8976/cb",
      scopes = { "tweet.read", "users.read", "offline.access" } }
    assert.equals(43, #verifier)
    assert.matches("^[%w%-_]+$", verifier)
    assert.equals(22, #state)
    local challenge = core.base64(core.sha256(verifier), true)
    assert.equals("https://x.com/i/oauth2/authorize?response_type=code&client_id=" .. CLIENT_ID
      .. "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcb&scope=tweet.read%20users.read%20offline.access"
      .. "&state=" .. state .. "&code_challenge=" .. challenge .. "&code_challenge_method=S256", url)
    local _, v2, s2 = twitter.oauth2.authorize_url{ client_id = "c", redirect_uri = "r" }
    assert.not_equals(verifier, v2)
    assert.not_equals(state, s2)
  end)

  it("runs the whole PKCE flow: authorize, redirect, exchange, call, refresh, revoke", function()
    local redirect = "http://127.0.0.1:8976/cb"
    local url, verifier, state = twitter.oauth2.authorize_url{
      client_id = CLIENT_ID, redirect_uri = redirect, authorize_url = f.url .. "/i/oauth2/authorize" }
    local http = require("scalekit.twitter.transport").new{}
    local r = assert(http:send{ url = url })
    local status, headers = r.status, r.headers
    assert.equals(302, status)
    local code = assert(twitter.oauth2.parse_redirect(headers.location, state))
    local _, bad = twitter.oauth2.parse_redirect(headers.location, "other-state")
    assert.equals("auth", bad.kind)
    local _, wrong = twitter.oauth2.exchange_code{ client_id = CLIENT_ID, client_secret = CLIENT_SECRET,
      code = code, redirect_uri = redirect, code_verifier = verifier .. "x", api_base_url = f.url }
    assert.equals("auth", wrong.kind)
    -- the failed attempt used the code up, as X does: start again
    url, verifier, state = twitter.oauth2.authorize_url{
      client_id = CLIENT_ID, redirect_uri = redirect, authorize_url = f.url .. "/i/oauth2/authorize" }
    r = assert(http:send{ url = url })
    status, headers = r.status, r.headers
    assert.equals(302, status)
    code = assert(twitter.oauth2.parse_redirect(headers.location, state))
    f:clear()
    local tok = assert(twitter.oauth2.exchange_code{ client_id = CLIENT_ID, client_secret = CLIENT_SECRET,
      code = code, redirect_uri = redirect, code_verifier = verifier, api_base_url = f.url })
    r = f:requests()[1]
    assert.equals("/2/oauth2/token", r.path)
    assert.equals("Basic " .. core.base64(CLIENT_ID .. ":" .. CLIENT_SECRET), fake.header(r, "authorization"))
    assert.equals("grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. core.urlencode(redirect)
                  .. "&code_verifier=" .. verifier, r.body)
    assert.equals(7200, tok.expires_in)
    assert.is_true(math.abs(tok.expires_at - (core.now() + 7200)) < 5)

    local tw = direct(f, { access_token = tok.access_token, refresh_token = tok.refresh_token })
    assert.equals("sandbox_user", assert(tw:user_me{}).data.username)
    tw:close()

    local tok2 = assert(twitter.oauth2.refresh{ client_id = CLIENT_ID, client_secret = CLIENT_SECRET,
                                                refresh_token = tok.refresh_token, api_base_url = f.url })
    assert.not_equals(tok.refresh_token, tok2.refresh_token)
    local _, reauth = twitter.oauth2.refresh{ client_id = CLIENT_ID, client_secret = CLIENT_SECRET,
                                              refresh_token = tok.refresh_token, api_base_url = f.url }
    assert.equals("reauth_required", reauth.kind)

    assert.is_true(twitter.oauth2.revoke{ client_id = CLIENT_ID, client_secret = CLIENT_SECRET,
      token = tok2.access_token, token_type_hint = "access_token", api_base_url = f.url })
    local c = direct(f, { access_token = tok2.access_token })
    local _, err = c:user_me{}
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    c:close()
  end)

  it("sends client_id in the body for public clients", function()
    f:control("tokens", { refresh_token = "pub-r", client_id = "sandbox-public-client" })
    assert(twitter.oauth2.refresh{ client_id = "sandbox-public-client", refresh_token = "pub-r",
                                   api_base_url = f.url })
    local r = f:requests("/2/oauth2/token")[1]
    assert.is_nil(fake.header(r, "authorization"))
    assert.equals("grant_type=refresh_token&refresh_token=pub-r&client_id=sandbox-public-client", r.body)
  end)
end)

describe("the token lifecycle", function()
  local f, dir
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    dir = fake.tempdir()
  end)
  teardown(function()
    f:stop()
    fake.rmdir(dir)
  end)
  before_each(function() f:reset() end)

  it("refreshes once on a 401, hands the new pair to on_token and repeats the call", function()
    f:control("tokens", { refresh_token = "r-1" })
    local seen = {}
    local tw = direct(f, { access_token = "expired-or-revoked", refresh_token = "r-1",
                           on_token = function(t) seen[#seen + 1] = t end })
    local d = assert(tw:user_me{})
    assert.equals(ME, d.data.id)
    local paths = {}
    for i, r in ipairs(f:requests()) do paths[i] = r.path end
    assert.same({ "/2/users/me", "/2/oauth2/token", "/2/users/me" }, paths)
    assert.equals(1, #seen)
    assert.matches("^ua%-", seen[1].access_token)
    assert.matches("^ur%-", seen[1].refresh_token)
    tw:close()
  end)

  it("refreshes shortly before expiry without waiting for a 401", function()
    f:control("tokens", { access_token = "a-1", refresh_token = "r-1" })
    local tw = direct(f, { access_token = "a-1", refresh_token = "r-1", expires_at = math.floor(core.now()) + 30 })
    assert(tw:user_me{})
    local paths = {}
    for i, r in ipairs(f:requests()) do paths[i] = r.path end
    assert.same({ "/2/oauth2/token", "/2/users/me" }, paths)
    tw:close()
  end)

  it("gives reauth_required when the refresh token is dead, without looping", function()
    local tw = direct(f, { access_token = "dead", refresh_token = "dead-refresh" })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("reauth_required", err.kind)
    assert.equals("twitter_user_me", err.tool)
    assert.equals(2, #f:requests())
    tw:close()
  end)

  it("writes the rotated pair atomically to token_file with mode 0600", function()
    local path = dir .. "/tokens.json"
    f:control("tokens", { refresh_token = "r-file" })
    local tw = direct(f, { access_token = "stale", refresh_token = "r-file", token_file = path })
    assert(tw:user_me{})
    local saved = assert(twitter.json.decode(assert(io.open(path)):read("a")))
    assert.matches("^ua%-", saved.access_token)
    assert.matches("^ur%-", saved.refresh_token)
    local p = io.popen("stat -c %a " .. path)
    assert.equals("600", p:read("l"))
    p:close()
    -- a new client picks the saved tokens up, whatever it was given
    local tw2 = direct(f, { token_file = path, refresh_token = "r-file" })
    f:clear()
    assert(tw2:user_me{})
    assert.equals("Bearer " .. saved.access_token, fake.header(f:requests()[1], "authorization"))
    tw:close()
    tw2:close()
  end)

  it("lets two clients sharing one token_file rotate without losing the refresh token", function()
    local path = dir .. "/shared.json"
    f:control("tokens", { refresh_token = "r-shared" })
    assert(core.write_file_atomic(path, '{"access_token":"old","refresh_token":"r-shared"}'))
    local a = direct(f, { token_file = path })
    local b = direct(f, { token_file = path })
    assert(a:user_me{})         -- a refreshes: r-shared is now used up
    assert(b:user_me{})         -- b's token is stale: it must adopt a's pair, not refresh r-shared
    assert.equals(1, #f:requests("/2/oauth2/token"))
    a:close()
    b:close()
  end)

  it("lets two processes refreshing at the same moment use one refresh between them", function()
    local path = dir .. "/race.json"
    f:control("tokens", { refresh_token = "r-race" })
    assert(core.write_file_atomic(path, '{"access_token":"old","refresh_token":"r-race"}'))
    local code = ([[
      local tw = require("scalekit.twitter").new{ mode = "direct", api_base_url = %q, client_id = %q,
        client_secret = %q, token_file = %q }
      local d, err = tw:user_me{}
      print(d and d.data.username or tostring(err))
    ]]):format(f.url, CLIENT_ID, CLIENT_SECRET, path)
    local cmd = ("LUA_PATH='%s' LUA_CPATH='%s' lua5.4 -e %q"):format(package.path, package.cpath, code)
    local a = io.popen(cmd .. " & " .. cmd .. "; wait")
    local out = a:read("a")
    a:close()
    assert.equals("sandbox_user\nsandbox_user\n", out)
    assert.equals(1, #f:requests("/2/oauth2/token"))
  end)

  it("refuses to refresh when the token file cannot be written, so the rotated token is never lost", function()
    f:control("tokens", { refresh_token = "r-keep" })
    local seen = {}
    -- /proc/self takes no new files, whoever runs the suite (root included):
    -- the lock sits in dir, the token file's target (behind a link) cannot be replaced
    assert(os.execute(("ln -sf /proc/self/tokens.json %s/unwritable.json"):format(dir)))
    local link = dir .. "/unwritable.json"
    local tw = direct(f, { access_token = "stale", refresh_token = "r-keep", token_file = link,
                           on_token = function(t) seen[#seen + 1] = t end })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("storage", err.kind)
    assert.equals(link, err.file)
    assert.matches("not refreshing the token: cannot create a temporary file for " .. link, err.message, 1, true)
    -- a lock that cannot be made stops it just as early
    local tw2 = direct(f, { access_token = "stale", refresh_token = "r-keep", token_file = "/proc/self/t.json" })
    local _, err2 = tw2:user_me{}
    assert.equals("storage", err2.kind)
    assert.matches("cannot open lock file /proc/self/t.json.lock", err2.message, 1, true)
    assert.equals(0, #f:requests("/2/oauth2/token"))       -- the refresh token is still good
    assert.equals(0, #seen)
    tw:close()
    tw2:close()
  end)

  it("hands a refreshed pair that could not be saved to on_token, keeps it and says where it is", function()
    f:control("tokens", { refresh_token = "r-unsaved" })
    local path = dir .. "/is-a-directory"
    assert(os.execute("mkdir -p " .. path))               -- the rename over it fails after the refresh
    local seen = {}
    local tw = direct(f, { access_token = "stale", refresh_token = "r-unsaved", token_file = path,
                           on_token = function(t) seen[#seen + 1] = t end })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("storage", err.kind)
    assert.equals(path, err.file)
    assert.matches("the token was refreshed but could not be saved: cannot write " .. path, err.message, 1, true)
    assert.matches("kept by this client, was passed to on_token and in err.token", err.message, 1, true)
    assert.equals(1, #seen)
    assert.matches("^ur%-", seen[1].refresh_token)
    assert.equals(seen[1].refresh_token, err.token.refresh_token)
    assert.is_nil(tostring(err):find(seen[1].refresh_token, 1, true))
    -- the client goes on with the new pair: no second refresh
    f:clear()
    assert(tw:user_me{})
    assert.equals(0, #f:requests("/2/oauth2/token"))
    assert.equals("Bearer " .. seen[1].access_token, fake.header(f:requests()[1], "authorization"))
    tw:close()
  end)

  it("writes through a symlinked token_file to its target", function()
    f:control("tokens", { refresh_token = "r-link" })
    assert(os.execute(("mkdir -p %s/real && ln -sf real/tokens.json %s/link.json"):format(dir, dir)))
    local tw = direct(f, { access_token = "stale", refresh_token = "r-link", token_file = dir .. "/link.json" })
    assert(tw:user_me{})
    local p = io.popen(("stat -c %%F %s/link.json; readlink %s/link.json"):format(dir, dir))
    assert.equals("symbolic link\nreal/tokens.json\n", p:read("a"))
    p:close()
    local saved = assert(twitter.json.decode(assert(io.open(dir .. "/real/tokens.json")):read("a")))
    assert.matches("^ur%-", saved.refresh_token)
    tw:close()
  end)

  it("keeps the old refresh token when a refresh answer has none", function()
    local path = dir .. "/no-rotation.json"
    f:control("tokens", { refresh_token = "r-stays" })
    f:script{ path = "/2/oauth2/token", json = { access_token = "ua-new-s3kr1t", token_type = "bearer",
                                                  expires_in = 7200, scope = "tweet.read" } }
    local seen = {}
    local tw = direct(f, { access_token = "stale", refresh_token = "r-stays", token_file = path,
                           on_token = function(t) seen[#seen + 1] = t end })
    f:control("tokens", { access_token = "ua-new-s3kr1t" })
    assert(tw:user_me{})
    local saved = assert(twitter.json.decode(assert(io.open(path)):read("a")))
    assert.equals("ua-new-s3kr1t", saved.access_token)
    assert.equals("r-stays", saved.refresh_token)
    assert.equals("r-stays", seen[1].refresh_token)
    tw:close()
  end)

  it("waits for the token file's lock no longer than the call's timeout", function()
    local path = dir .. "/locked.json"
    f:control("tokens", { refresh_token = "r-locked" })
    local lock = assert(core.lock_file(path .. ".lock"))      -- another process holds it
    local tw = direct(f, { access_token = "stale", refresh_token = "r-locked", token_file = path })
    local t0 = core.monotonic()
    local data, err = tw:user_me({}, { timeout = 0.5 })
    local took = core.monotonic() - t0
    assert.is_nil(data)
    assert.equals("timeout", err.kind)
    assert.matches("timed out waiting for the lock on " .. path .. ".lock", err.message, 1, true)
    assert.is_true(took < 2, "took " .. took .. " s")
    assert.equals(0, #f:requests("/2/oauth2/token"))
    lock:unlock()
    assert(tw:user_me{})
    tw:close()
  end)

  -- A token with CR or LF would break every request's headers: it is refused
  -- where it enters, as `auth`, and never reaches the transport.
  it("fails every call naming a token file that is not one; an empty one is nothing stored yet", function()
    local path = dir .. "/corrupt.json"
    assert(core.write_file_atomic(path, "{ not json"))
    local tw = direct(f, { token_file = path, refresh_token = "r-1" })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(path, err.file)
    assert.matches("^the token file " .. path:gsub("%p", "%%%0") .. " is not a token file %(invalid JSON: ",
                   err.message)
    assert.matches("fix or remove it$", err.message)
    assert.equals(0, #f:requests())
    tw:close()
    assert(core.write_file_atomic(path, "{}"))
    data, err = direct(f, { token_file = path }):user_me{}
    assert.is_nil(data)
    assert.matches("is not a token file (no access_token string)", err.message, 1, true)
    assert(core.write_file_atomic(path, ""))
    f:control("tokens", { access_token = "user-token-9" })
    data = assert(direct(f, { token_file = path, access_token = "user-token-9" }):user_me{})
    assert.is_table(data.data)
  end)

  it("refuses tokens with CR/LF where they enter: options, token file and refresh answers", function()
    assert.has_error(function() direct(f, { access_token = "abc\r\nX-Injected: 1" }) end,
      "scalekit.twitter.new: access_token must be a string without spaces or control characters")
    assert.has_error(function() direct(f, { bearer_token = "abc\n" }) end,
      "scalekit.twitter.new: bearer_token must be a string without spaces or control characters")
    local path = dir .. "/crlf.json"
    assert(core.write_file_atomic(path, '{"access_token":"bad\\r\\ntoken","refresh_token":"r"}'))
    local tw = direct(f, { token_file = path })
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.matches("the token file " .. path .. " holds a token with spaces or control characters",
                   err.message, 1, true)
    tw:close()
    f:control("tokens", { refresh_token = "r-crlf" })
    f:script{ path = "/2/oauth2/token", json = { access_token = "ua-bad\r\nX: y", refresh_token = "ur-next",
                                                  token_type = "bearer", expires_in = 7200 } }
    tw = direct(f, { access_token = "stale", refresh_token = "r-crlf" })
    data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.matches("the refresh answer holds a token with spaces or control characters", err.message, 1, true)
    tw:close()
  end)

  it("replaces the token file by rename, never rewriting it in place", function()
    local path = dir .. "/atomic.json"
    assert(core.write_file_atomic(path, "old"))
    local function inode()
      local p = io.popen("stat -c %i " .. path)
      local v = p:read("l")
      p:close()
      return v
    end
    local before = inode()
    assert(core.write_file_atomic(path, "new"))
    assert.not_equals(before, inode())
    assert.equals("new", assert(io.open(path)):read("a"))
    local p = io.popen("ls -a " .. dir)
    local listing = p:read("a")
    p:close()
    assert.is_nil(listing:find("tmp", 1, true))
    local ok, kind, err = core.write_file_atomic(dir .. "/missing/dir/t.json", "x")
    assert.is_nil(ok)
    assert.equals("io", kind)
    assert.matches("cannot create a temporary file", err)
  end)
end)

describe("streaming", function()
  local f, app
  setup(function()
    f = fake.start{ script = "fake_x.py" }
    app = direct(f, { bearer_token = APP })
  end)
  teardown(function()
    app:close()
    f:stop()
  end)

  it("hands each NDJSON event to the callback, skipping heartbeats and joining split lines", function()
    f:control("config", { stream_events = 5 })
    local got = {}
    local n = assert(app:stream("twitter_tweet_label_stream", { backfill_minutes = 2 }, function(ev)
      got[#got + 1] = ev.data.public_tweet_notice.tweet.id
      return #got < 3
    end))
    assert.equals(3, n)
    assert.same({ "1720000000000000900", "1720000000000000901", "1720000000000000902" }, got)
    local r = f:requests("/2/tweets/label/stream")[1]
    assert.equals("backfill_minutes=2", r.query)
  end)

  it("reconnects with backoff when the stream ends, and gives up after the cap", function()
    f:control("config", { stream_events = 0 })
    f:clear()
    local stream = require "scalekit.twitter.stream"
    local waits = {}
    local n, err = app:stream("tweet_label_stream", {}, function() return true end,
                              { sleep = function(s) waits[#waits + 1] = s end })
    assert.is_nil(n)
    assert.equals("network", err.kind)
    assert.equals(stream.MAX_RECONNECTS + 1, #f:requests("/2/tweets/label/stream"))
    assert.same({ 0.25, 0.5, 0.75, 1.0, 1.25, 1.5 }, waits)
  end)

  it("X's documented backoff schedule", function()
    local b = require("scalekit.twitter.stream").backoff
    assert.same({ 0.25, 0.5, 16 }, { b("network", 1), b("network", 2), b("network", 100) })
    assert.same({ 5, 10, 320 }, { b("server", 1), b("server", 2), b("server", 10) })
    assert.same({ 60, 120 }, { b("rate_limited", 1), b("rate_limited", 2) })
  end)

  it("collects a bounded number of events when called as a tool", function()
    f:control("config", { stream_events = 2 })
    local d = assert(app:tweet_label_stream{})
    assert.equals(2, #d.data)
  end)
end)
