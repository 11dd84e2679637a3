-- direct_oauth.lua - log in to X with OAuth 2.0 + PKCE, no broker: opens a
-- loopback listener for the redirect, exchanges the code, saves the tokens
-- to a file (0600) and calls the API with them (direct mode).
--
--   X_CLIENT_ID=... [X_CLIENT_SECRET=...] scalekit-lua examples/direct_oauth.lua [tokens.json] [port]
-- Register http://127.0.0.1:<port>/callback as a callback URL of your X app.

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"

local token_file = arg[1] or "tokens.json"
local port = tonumber(arg[2] or "8976")
local client_id = assert(os.getenv("X_CLIENT_ID"), "set X_CLIENT_ID")
local client_secret = os.getenv("X_CLIENT_SECRET")
local api = os.getenv("X_API_BASE_URL")
local redirect_uri = ("http://127.0.0.1:%d/callback"):format(port)

-- The core's functions give a value or nil, kind, message: raise the message.
local function checked(v, _, message)
  if v == nil then error(message, 2) end
  return v
end

local listener = checked(core.listen(port))
local url, verifier, state = twitter.oauth2.authorize_url{
  client_id = client_id, redirect_uri = redirect_uri, authorize_url = os.getenv("X_AUTHORIZE_URL"),
  scopes = { "tweet.read", "tweet.write", "users.read", "offline.access" } }
print("Open this URL in your browser and approve the app:")
print(url)
io.stdout:flush()

local target = checked(listener:accept(300, "<p>Logged in. You can close this window.</p>"))
listener:close()
local code = assert(twitter.oauth2.parse_redirect(target, state))
local token = assert(twitter.oauth2.exchange_code{ client_id = client_id, client_secret = client_secret,
  code = code, redirect_uri = redirect_uri, code_verifier = verifier, api_base_url = api })
checked(core.write_file_atomic(token_file, twitter.json.encode(token)))
print(("tokens saved to %s (expires in %d s)"):format(token_file, token.expires_in or 0))

local tw = twitter.new{ mode = "direct", token_file = token_file, client_id = client_id,
                        client_secret = client_secret, api_base_url = api }
local me = assert(tw:user_me{})
print(("logged in as @%s (%s)"):format(me.data.username, me.data.id))
