-- The OAuth 2.0 scopes of the catalog, put to use: listed with the tools,
-- in the JSON Schema and `--tools`, asked for exactly by
-- `authorize_url{ scopes_for = }`, and named when X says a token is not
-- permitted.

local fake = require "support.fake"
local twitter = require "scalekit.twitter"

local POST_SCOPES = { "tweet.read", "tweet.write", "users.read" }

describe("scopes", function()
  it("twitter.tools() gives each tool's scopes, as X's OpenAPI document lists them", function()
    local routes = assert(twitter.json.decode(fake.read(fake.ROOT .. "/sandbox/x_routes.json"))).routes
    local by_route = {}
    for _, r in ipairs(routes) do by_route[r.method .. " " .. r.path] = r.scopes end
    local checked = 0
    for _, t in ipairs(twitter.tools()) do
      assert.equals(twitter.array_mt, getmetatable(t.scopes))
      local theirs = by_route[t.http]
      if theirs then
        assert.same(theirs, t.scopes, t.name)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 70, "most routes compared: " .. checked)
    for _, t in ipairs(twitter.tools()) do
      if t.name == "twitter_post_create" then assert.same(POST_SCOPES, t.scopes) end
    end
  end)

  it("the JSON Schema description and --tools name them", function()
    assert.equals("Publish a post: text, media, a poll, a reply or a quote. "
                  .. "OAuth 2.0 scopes (direct mode): tweet.read tweet.write users.read.",
                  twitter.schema("post_create").description)
    local p = assert(io.popen(fake.ROOT .. "/bin/scalekit-lua --no-env --tools"))
    local out = p:read("a")
    p:close()
    assert.matches("\ntwitter_post_create\tPublish a post: text, media, a poll, a reply or a quote%.\t"
                   .. "tweet%.read tweet%.write users%.read\n", out)
  end)

  it("authorize_url{ scopes_for = } asks for exactly what the tools need, and a refresh token", function()
    local url = twitter.oauth2.authorize_url{ client_id = "c", redirect_uri = "http://127.0.0.1:1/cb",
                                              scopes_for = { "twitter_post_create", "bookmarks_get" } }
    assert.equals("bookmark.read offline.access tweet.read tweet.write users.read",
                  (url:match("[?&]scope=([^&]+)"):gsub("%%20", " ")))
    assert.has_error(function()
      twitter.oauth2.authorize_url{ client_id = "c", redirect_uri = "http://x/", scopes_for = { "post_creat" } }
    end, "scalekit.twitter.oauth2.authorize_url: unknown tool 'post_creat'; did you mean 'twitter_post_create'?")
    assert.has_error(function()
      twitter.oauth2.authorize_url{ client_id = "c", redirect_uri = "http://x/", scopes = {}, scopes_for = {} }
    end, "scalekit.twitter.oauth2.authorize_url: give 'scopes' or 'scopes_for', not both")
  end)
end)

describe("a token without the scopes a tool needs (direct mode)", function()
  local x, dir
  setup(function()
    x = fake.start{ script = "fake_x.py" }
    dir = fake.tempdir()
  end)
  teardown(function()
    x:stop()
    fake.rmdir(dir)
  end)

  it("gets an auth error naming the scope the token lacks (its scopes known from the token file)", function()
    x:control("tokens", { access_token = "a-read-s3kr1t", scope = "tweet.read users.read offline.access" })
    local file = fake.write(dir, "t.json",
      '{"access_token":"a-read-s3kr1t","scope":"tweet.read users.read offline.access"}')
    local tw = twitter.new{ mode = "direct", token_file = file, api_base_url = x.url, allow_insecure_http = true }
    assert(tw:user_me{})                                        -- what the token may do still works
    local data, err = tw:post_create{ text = "hi" }
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(403, err.status)
    assert.equals("twitter_post_create: You are not permitted to perform this action. The tool needs "
                  .. "the OAuth 2.0 scopes tweet.read tweet.write users.read; the token lacks tweet.write.",
                  err.message)
    assert.same(POST_SCOPES, err.scopes_needed)
    assert.same({ "tweet.write" }, err.scopes_missing)
    assert.same({ "token lacks scopes tweet.write" }, x:requests("/2/tweets")[1].violations)
    tw:close()
  end)

  it("says when the token's scopes are not known", function()
    x:control("tokens", { access_token = "a-bare-s3kr1t", scope = "users.read" })
    local tw = twitter.new{ mode = "direct", access_token = "a-bare-s3kr1t", api_base_url = x.url,
                            allow_insecure_http = true }
    local _, err = tw:bookmarks_get{ id = "1720000000000000001" }
    assert.equals("auth", err.kind)
    assert.equals("twitter_bookmarks_get: You are not permitted to perform this action. The tool "
                  .. "needs the OAuth 2.0 scopes bookmark.read tweet.read users.read (the token's scopes are not "
                  .. "known).", err.message)
    assert.is_nil(err.scopes_missing)
    tw:close()
  end)

  it("a 403 that is not about permission keeps X's own words and kind", function()
    x:script{ path = "/2/tweets", status = 403, json = { title = "Forbidden", type = "about:blank", status = 403,
              detail = "You are not allowed to create a Tweet with duplicate content." } }
    x:control("tokens", { access_token = "a-dup-s3kr1t" })
    local tw = twitter.new{ mode = "direct", access_token = "a-dup-s3kr1t", api_base_url = x.url,
                            allow_insecure_http = true }
    local _, err = tw:post_create{ text = "again" }
    assert.equals("twitter_post_create: You are not allowed to create a Tweet with duplicate content.", err.message)
    assert.is_nil(err.scopes_needed)
    tw:close()
  end)
end)

describe("X's 'not permitted' through Scalekit", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, function(fk)
    fake.connect(fk)
    return fake.client(fk)
  end)

  it("names the scopes the tool needs", function()
    f:script{ path = "/api/v1/execute_tool", status = 403, json = { code = 7, message = "tool failed", details = {
      { ["@type"] = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo", error_code = "TOOL_ERROR",
        tool_error_info = { execution_id = "exec_403", tool_error_code = "403",
                            tool_error_message = "You are not permitted to perform this action." } } } } }
    local _, err = tw:post_create{ text = "hi" }
    assert.equals("auth", err.kind)
    assert.equals("twitter_post_create: You are not permitted to perform this action. The tool needs "
                  .. "the OAuth 2.0 scopes tweet.read tweet.write users.read (the token's scopes are not known).",
                  err.message)
    assert.same(POST_SCOPES, err.scopes_needed)
  end)
end)
