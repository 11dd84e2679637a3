-- OAuth 1.0a user context in direct mode: signatures byte for byte as
-- RFC 5849 and X's own documentation give them, every request signed and
-- verified by the fake X (its own HMAC-SHA1 in Python), secrets redacted.

local fake = require "support.fake"
local twitter = require "scalekit.twitter"
local oauth1 = require "scalekit.twitter.oauth1"

local MARK = fake.SECRET_MARK

describe("OAuth 1.0a signatures", function()
  it("match RFC 5849 section 1.2 (the photo request)", function()
    local base = oauth1.base_string("GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", {
      { "oauth_consumer_key", "dpf43f3p2l4k3l03" }, { "oauth_token", "nnch734d00sl2jdk" },
      { "oauth_signature_method", "HMAC-SHA1" }, { "oauth_timestamp", "137131202" }, { "oauth_nonce", "chapoH" } })
    assert.equals("GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3D"
      .. "dpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D"
      .. "137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal", base)
    assert.equals("MdpQcU8iPSUjWoN/UDMsK2sui9I=", oauth1.signature(base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"))
  end)

  it("match RFC 5849 section 3.4.1.1 (encoded, repeated and empty parameters)", function()
    local base = oauth1.base_string("POST", "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", {
      { "oauth_consumer_key", "9djdj82h48djs9d2" }, { "oauth_token", "kkk9d7dh3k39sjv7" },
      { "oauth_signature_method", "HMAC-SHA1" }, { "oauth_timestamp", "137131201" },
      { "oauth_nonce", "7d8f3e4a" }, { "c2", "" }, { "a3", "2 q" } })
    assert.equals("POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D"
      .. "%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26"
      .. "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7", base)
  end)

  it("match X's documented example (the signed status update), header and all", function()
    local header = oauth1.authorization({
      consumer_key = "xvz1evFS4wEEPTGEFPHBog", consumer_secret = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
      token = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
      token_secret = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    }, "POST", "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
      { { "status", "Hello Ladies + Gentlemen, a signed OAuth request!" } },
      { nonce = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", timestamp = 1318622958 })
    assert.equals('OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", '
      .. 'oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", '
      .. 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D", oauth_signature_method="HMAC-SHA1", '
      .. 'oauth_timestamp="1318622958", oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", '
      .. 'oauth_version="1.0"', header)
  end)

  it("sign the base string URI: scheme and host lower-cased, default ports dropped", function()
    assert.equals("https://api.x.com/2/tweets", oauth1.base_uri("HTTPS://API.X.com:443/2/tweets?x=1#f"))
    assert.equals("http://127.0.0.1:8080/2/users/me", oauth1.base_uri("http://127.0.0.1:8080/2/users/me"))
    assert.equals("http://example.com/", oauth1.base_uri("http://example.com:80"))
    assert.same({ nil, "not an http or https URL" }, { oauth1.base_uri("ftp://example.com/x") })
  end)
end)

describe("direct mode with OAuth 1.0a", function()
  local x
  local CREDS = { consumer_key = "ck-lua", consumer_secret = "cs-" .. MARK, token = "1720000000000000001-tok",
                  token_secret = "ts-" .. MARK }
  setup(function()
    x = fake.start{ script = "fake_x.py" }
  end)
  teardown(function() x:stop() end)
  before_each(function()
    x:clear()
    x:control("oauth1", { consumer_key = CREDS.consumer_key, consumer_secret = CREDS.consumer_secret,
                          token = CREDS.token, token_secret = CREDS.token_secret })
  end)
  local function client(extra)
    local o = { mode = "direct", consumer_key = CREDS.consumer_key, consumer_secret = CREDS.consumer_secret,
                access_token = CREDS.token, access_token_secret = CREDS.token_secret, api_base_url = x.url }
    for k, v in pairs(extra or {}) do o[k] = v end
    return twitter.new(o)
  end
  -- The oauth_* parameters of a recorded request's Authorization header.
  local function oauth_params(r)
    local h = fake.header(r, "authorization")
    assert.matches("^OAuth ", h)
    local p = {}
    for k, v in h:gmatch('([%w_]+)="([^"]*)"') do p[k] = v end
    return p
  end

  it("signs every request, and the fake X verifies each signature", function()
    local tw = client()
    assert(tw:user_me{ user_fields = "created_at,description" })
    local post = assert(tw:post_create{ text = "signed: ~!*'() & = + %" })
    assert.equals("signed: ~!*'() & = + %", post.data.text)
    assert(tw:recent_search{ query = 'lua OR "a b"', max_results = 10 })
    assert(tw:request{ path = "/2/users/me", params = { ["user.fields"] = "id" } })
    local reqs = x:requests()
    assert.equals(4, #reqs)
    local nonces = {}
    for _, r in ipairs(reqs) do
      assert.same({}, r.violations)
      local p = oauth_params(r)
      assert.same({ "oauth_consumer_key", "oauth_nonce", "oauth_signature", "oauth_signature_method",
                    "oauth_timestamp", "oauth_token", "oauth_version" },
                  (function() local k = {} for n in pairs(p) do k[#k + 1] = n end table.sort(k) return k end)())
      assert.equals("ck-lua", p.oauth_consumer_key)
      assert.equals("HMAC-SHA1", p.oauth_signature_method)
      assert.equals("1.0", p.oauth_version)
      assert.matches("^%x+$", p.oauth_nonce)
      assert.equals(32, #p.oauth_nonce)
      assert.is_true(math.abs(tonumber(p.oauth_timestamp) - os.time()) < 60)
      assert.is_nil(nonces[p.oauth_nonce])
      nonces[p.oauth_nonce] = true
    end
    assert.equals("user.fields=created_at%2Cdescription", reqs[1].query)
    assert.equals('{"text":"signed: ~!*\'() & = + %"}', reqs[2].body)    -- a JSON body is not signed
    assert.equals("max_results=10&query=lua%20OR%20%22a%20b%22", reqs[3].query)
    tw:close()
  end)

  it("a wrong secret is refused by X: an auth error, and nothing is retried", function()
    local tw = client{ consumer_secret = "wrong-" .. MARK }
    local data, err = tw:user_me{}
    assert.is_nil(data)
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    local reqs = x:requests()
    assert.equals(1, #reqs)
    assert.same({ "OAuth 1.0a: bad signature" }, reqs[1].violations)
    tw:close()
  end)

  it("comes from X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN and X_ACCESS_TOKEN_SECRET", function()
    -- (the sanitizer run's runtime and options pass through)
    local p = assert(io.popen(("cd /tmp && env -i PATH=\"$PATH\" LD_PRELOAD=\"$LD_PRELOAD\" "
      .. "ASAN_OPTIONS=\"$ASAN_OPTIONS\" X_API_BASE_URL=%s X_CONSUMER_KEY=%s "
      .. "X_CONSUMER_SECRET=%s X_ACCESS_TOKEN=%s X_ACCESS_TOKEN_SECRET=%s %s/bin/scalekit-lua --no-env "
      .. "--call user_me 2>&1"):format(x.url, CREDS.consumer_key, CREDS.consumer_secret, CREDS.token,
                                        CREDS.token_secret, fake.ROOT)))
    local out = p:read("a")
    p:close()
    assert.equals("sandbox_user", assert(twitter.json.decode(out)).data.username)
    assert.same({}, x:requests()[1].violations)
  end)

  it("needs all four credentials, and no OAuth 2.0 refresh, saying which are missing", function()
    local ok, msg = pcall(twitter.new, { mode = "direct", consumer_key = "ck", access_token = "t" })
    assert.is_false(ok)
    assert.matches("OAuth 1.0a needs consumer_key, consumer_secret, access_token and access_token_secret; "
                   .. "missing consumer_secret (X_CONSUMER_SECRET), access_token_secret (X_ACCESS_TOKEN_SECRET)",
                   tostring(msg), 1, true)
    ok, msg = pcall(client, { refresh_token = "r" })
    assert.is_false(ok)
    assert.matches("OAuth 1.0a tokens do not expire: refresh_token and token_file are for OAuth 2.0",
                   tostring(msg), 1, true)
  end)

  it("app-only tools use the bearer token when there is one, and say so when there is not", function()
    local tw = client()
    local _, err = tw:compliance_jobs_list{ type = "tweets" }
    assert.equals("auth", err.kind)
    assert.matches("X serves this only with an app%-only bearer token", err.message)
    tw:close()
    tw = client{ bearer_token = "sandbox-app-bearer-" .. MARK }
    local data = tw:compliance_jobs_list{ type = "tweets" }
    assert.is_table(data)
    local req = x:requests("/2/compliance/jobs")[1]
    assert.equals("Bearer sandbox-app-bearer-" .. MARK, fake.header(req, "authorization"))
    tw:close()
  end)

  it("keeps both secrets out of tostring, errors and debug traces", function()
    local lines = {}
    local tw = client{ debug = function(l) lines[#lines + 1] = l end }
    assert(tw:user_me{})
    local _, err = tw:post_delete{ id = "1" }
    local trace = table.concat(lines, "\n")
    assert.matches("Authorization: [REDACTED]", trace, 1, true)
    for _, s in ipairs{ trace, tostring(tw), tostring(err) } do
      assert.is_nil(s:find(MARK, 1, true))
      assert.is_nil(s:find("oauth_signature", 1, true))
    end
    tw:close()
  end)
end)
