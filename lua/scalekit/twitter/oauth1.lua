--- OAuth 1.0a request signing (RFC 5849, HMAC-SHA1) for direct mode's
-- user context: the consumer key and secret of the X app plus the user's
-- access token and secret, as tweepy, twitter-api-v2 and xurl sign.
--
-- The signature covers the method, the base URL and every query and form
-- parameter (RFC 5849 section 3.4.1), never a JSON body.  The nonce is 16
-- bytes from OpenSSL's CSPRNG.
-- @module scalekit.twitter.oauth1

local core = require "scalekit.core"

local M = {}

local encode = core.urlencode        -- RFC 3986: all but A-Z a-z 0-9 - . _ ~

-- The default port of each scheme, left out of the base string URI.
local DEFAULT_PORT = { http = "80", https = "443" }

--- The base string URI of `url` (RFC 5849 section 3.4.1.2): scheme and host
-- in lower case, the port only when it is not the scheme's default, the
-- path, no query or fragment.
-- @treturn string
-- @return or nil, message for a URL that is not http(s)
function M.base_uri(url)
  local scheme, authority, path = url:match("^(%a[%w+.-]*)://([^/?#]*)([^?#]*)")
  if not scheme then return nil, "not an absolute URL" end
  scheme = scheme:lower()
  if not DEFAULT_PORT[scheme] then return nil, "not an http or https URL" end
  local host, port = authority:lower():match("^(.-):(%d+)$")
  host = host or authority:lower()
  if port and port ~= DEFAULT_PORT[scheme] then host = host .. ":" .. port end
  return scheme .. "://" .. host .. (path ~= "" and path or "/")
end

-- Decode one application/x-www-form-urlencoded component ("+" is a space).
local function form_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The query parameters of `url`, decoded, as `{ name, value }` pairs in order.
function M.query_pairs(url)
  local out = {}
  local q = url:match("%?([^#]*)")
  for part in (q or ""):gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    out[#out + 1] = { form_decode(k), form_decode(v) }
  end
  return out
end

--- The signature base string (RFC 5849 section 3.4.1.1) of a request.
-- @tparam string method e.g. "POST"
-- @tparam string url the request URL (its query parameters are signed)
-- @tparam table params more `{ name, value }` pairs: the oauth_* ones and
--   a form body's
-- @return the string, or nil, message for a URL that is not http(s)
function M.base_string(method, url, params)
  local base, err = M.base_uri(url)
  if not base then return nil, err end
  local all = {}
  for _, kv in ipairs(M.query_pairs(url)) do all[#all + 1] = { encode(kv[1]), encode(kv[2]) } end
  for _, kv in ipairs(params) do all[#all + 1] = { encode(kv[1]), encode(tostring(kv[2])) } end
  table.sort(all, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i, kv in ipairs(all) do all[i] = kv[1] .. "=" .. kv[2] end
  return method:upper() .. "&" .. encode(base) .. "&" .. encode(table.concat(all, "&"))
end

--- The HMAC-SHA1 signature (base64) of a base string.
-- @tparam string base the signature base string
-- @tparam string consumer_secret
-- @tparam[opt] string token_secret
function M.signature(base, consumer_secret, token_secret)
  local key = encode(consumer_secret) .. "&" .. encode(token_secret or "")
  return core.base64(assert(core.hmac_sha1(key, base)))
end

--- The Authorization header value of a signed request.
-- @tparam table creds `consumer_key`, `consumer_secret`, `token`, `token_secret`
-- @tparam string method
-- @tparam string url the full request URL, query included
-- @tparam[opt] table form the form body's `{ name, value }` pairs
-- @tparam[opt] table fixed `nonce` and `timestamp` (for tests; default: 16
--   random bytes as hex, and the current time)
-- @return `OAuth oauth_consumer_key="...", ...`, or nil, message for a URL
--   that is not http(s)
function M.authorization(creds, method, url, form, fixed)
  fixed = fixed or {}
  local nonce = fixed.nonce or (core.random_bytes(16):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  local oauth = {
    { "oauth_consumer_key", creds.consumer_key },
    { "oauth_nonce", nonce },
    { "oauth_signature_method", "HMAC-SHA1" },
    { "oauth_timestamp", tostring(fixed.timestamp or math.floor(core.now())) },
    { "oauth_token", creds.token },
    { "oauth_version", "1.0" },
  }
  local params = table.move(oauth, 1, #oauth, 1, {})
  for _, kv in ipairs(form or {}) do params[#params + 1] = kv end
  local base, err = M.base_string(method, url, params)
  if not base then return nil, err end
  oauth[#oauth + 1] = { "oauth_signature", M.signature(base, creds.consumer_secret, creds.token_secret) }
  table.sort(oauth, function(a, b) return a[1] < b[1] end)
  for i, kv in ipairs(oauth) do oauth[i] = ('%s="%s"'):format(encode(kv[1]), encode(kv[2])) end
  return "OAuth " .. table.concat(oauth, ", ")
end

return M
