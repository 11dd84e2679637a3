--- OAuth 2.0 for X: authorization code with PKCE (S256), code exchange,
-- refresh (X rotates refresh tokens) and revocation.
--
-- A token is `{ access_token =, refresh_token =, expires_in =, expires_at =
-- (epoch seconds), scope =, token_type = }`.  Failures are `nil, err`; a
-- refresh token X no longer accepts gives kind `reauth_required`.
-- @module scalekit.twitter.oauth2

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local transport = require "scalekit.twitter.transport"

local M = {}

M.AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
M.API_BASE_URL = "https://api.x.com"
M.TOKEN_PATH = "/2/oauth2/token"
M.REVOKE_PATH = "/2/oauth2/revoke"

local encode = core.urlencode

local function need(opts, fn, ...)
  if type(opts) ~= "table" then
    error(("scalekit.twitter.oauth2.%s expects a table"):format(fn), 3)
  end
  for i = 1, select("#", ...) do
    local k = select(i, ...)
    if type(opts[k]) ~= "string" or opts[k] == "" then
      error(("scalekit.twitter.oauth2.%s: '%s' (a string) is required"):format(fn, k), 3)
    end
  end
end

--- A fresh PKCE verifier (43 characters, 256 bits from OpenSSL's CSPRNG) and
-- its S256 challenge.
function M.pkce()
  local verifier = core.base64(core.random_bytes(32), true)
  return verifier, core.base64(core.sha256(verifier), true)
end

--- Compare two strings in time independent of where they differ.
function M.same_secret(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

--- The URL to send the user to, with a new PKCE verifier and state.
-- @tparam table opts `client_id`, `redirect_uri`, `scopes` (array) or
--   `scopes_for` (tool names: exactly the scopes those tools need, plus
--   offline.access), `state` (default: 128 random bits), `authorize_url`
-- @return url, code_verifier, state
function M.authorize_url(opts)
  need(opts, "authorize_url", "client_id", "redirect_uri")
  if opts.scopes ~= nil and opts.scopes_for ~= nil then
    error("scalekit.twitter.oauth2.authorize_url: give 'scopes' or 'scopes_for', not both", 2)
  end
  local scopes = opts.scopes or { "tweet.read", "users.read", "offline.access" }
  if opts.scopes_for ~= nil then
    if type(opts.scopes_for) ~= "table" then
      error("scalekit.twitter.oauth2.authorize_url: 'scopes_for' must be an array of tool names", 2)
    end
    local err
    scopes, err = require("scalekit.twitter.tools").scopes_for(opts.scopes_for)
    if not scopes then error("scalekit.twitter.oauth2.authorize_url: " .. err.message, 2) end
  end
  if type(scopes) ~= "table" then error("scalekit.twitter.oauth2.authorize_url: 'scopes' must be an array", 2) end
  local verifier, challenge = M.pkce()
  local state = opts.state or core.base64(core.random_bytes(16), true)
  local q = table.concat({
    "response_type=code",
    "client_id=" .. encode(opts.client_id),
    "redirect_uri=" .. encode(opts.redirect_uri),
    "scope=" .. encode(table.concat(scopes, " ")),
    "state=" .. encode(state),
    "code_challenge=" .. challenge,
    "code_challenge_method=S256",
  }, "&")
  return (opts.authorize_url or M.AUTHORIZE_URL) .. "?" .. q, verifier, state
end

--- Read `code` and `state` from the redirect URL (or its query string) and
-- check the state.  Returns code, or nil and an error (`auth` when the user
-- denied access or the state does not match).
function M.parse_redirect(url, expected_state)
  local q = url:match("%?(.*)$") or url
  local args = {}
  for k, v in q:gmatch("([^&=]+)=([^&]*)") do
    args[k] = (v:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  if args.error then
    return nil, errors.new("auth", "authorization was not granted: " .. args.error)
  end
  if not M.same_secret(args.state, expected_state) then
    return nil, errors.new("auth", "the state in the redirect does not match (possible CSRF)")
  end
  if not args.code then return nil, errors.new("protocol", "the redirect has no code") end
  return args.code
end

-- Send `req` over the caller's transport (`opts.transport`), or over one
-- made for this request and closed after it (no state between calls).
local function send(opts, req)
  if opts.transport then return opts.transport:send(req) end
  local http = transport.new{ ca_file = opts.ca_file, timeout = 30 }
  local resp, err = http:send(req)
  http:close()
  return resp, err
end

-- POST a form to an OAuth endpoint; confidential clients use Basic auth.
local function post(opts, path, form)
  local base = (opts.api_base_url or M.API_BASE_URL):gsub("/+$", "")
  local url = opts[path == M.TOKEN_PATH and "token_url" or "revoke_url"] or (base .. path)
  local headers
  if opts.client_secret then
    headers = { Authorization = "Basic " .. core.base64(encode(opts.client_id) .. ":" .. encode(opts.client_secret)) }
  else
    form[#form + 1] = { "client_id", opts.client_id }
  end
  return send(opts, { method = "POST", url = url, form = form, headers = headers, tool = "oauth2" })
end

local function token_from(resp, what)
  local j = type(resp.json) == "table" and resp.json or {}
  if resp.status == 200 and type(j.access_token) == "string" then
    local ttl = math.tointeger(j.expires_in)
    return { access_token = j.access_token, refresh_token = j.refresh_token, expires_in = ttl,
             expires_at = ttl and math.floor(core.now()) + ttl or nil, scope = j.scope,
             token_type = j.token_type }
  end
  local code = type(j.error) == "string" and j.error or nil
  local msg = ("%s failed: %s"):format(what, j.error_description or code or ("HTTP " .. resp.status))
  local kind = resp.status >= 500 and "server" or (resp.status == 429 and "rate_limited") or "auth"
  if what == "refresh" and (code == "invalid_grant" or code == "invalid_request" or code == "invalid_token") then
    kind = "reauth_required"
  end
  return nil, errors.new(kind, msg, { status = resp.status, error_code = code, details = j })
end

--- Exchange an authorization code for a token.
-- @tparam table opts `client_id`, `client_secret` (confidential clients only),
--   `code`, `redirect_uri`, `code_verifier`, `token_url` or `api_base_url`
function M.exchange_code(opts)
  need(opts, "exchange_code", "client_id", "code", "redirect_uri", "code_verifier")
  local resp, err = post(opts, M.TOKEN_PATH, {
    { "grant_type", "authorization_code" }, { "code", opts.code },
    { "redirect_uri", opts.redirect_uri }, { "code_verifier", opts.code_verifier } })
  if not resp then return nil, err end
  return token_from(resp, "code exchange")
end

--- Get a new token pair from a refresh token.  X rotates refresh tokens:
-- keep the returned `refresh_token`, the old one stops working.
-- @tparam table opts `client_id`, `client_secret`, `refresh_token`, `token_url` or `api_base_url`
function M.refresh(opts)
  need(opts, "refresh", "client_id", "refresh_token")
  local resp, err = post(opts, M.TOKEN_PATH, {
    { "grant_type", "refresh_token" }, { "refresh_token", opts.refresh_token } })
  if not resp then return nil, err end
  return token_from(resp, "refresh")
end

--- Revoke an access or refresh token.
-- @tparam table opts `client_id`, `client_secret`, `token`, `token_type_hint`
--   ("access_token" or "refresh_token"), `revoke_url` or `api_base_url`
-- @return true or nil, err
function M.revoke(opts)
  need(opts, "revoke", "client_id", "token")
  local form = { { "token", opts.token } }
  if opts.token_type_hint then form[2] = { "token_type_hint", opts.token_type_hint } end
  local resp, err = post(opts, M.REVOKE_PATH, form)
  if not resp then return nil, err end
  if resp.status ~= 200 then
    local _, e = token_from(resp, "revoke")
    return nil, e
  end
  return true
end

return M
