--- Scalekit's REST/JSON protocol: the client-credentials token, tool
-- execution, the proxy, connected accounts, and the error envelope.
--
-- The token is fetched on first use, cached until shortly before
-- `expires_in` runs out, and fetched again once (then the call repeated once)
-- when a call answers 401 -- unless the answer is a TOOL_ERROR: then the
-- provider refused the tool, which ran upstream and is never repeated.
-- Calls are blocking, so two token requests can never be in flight for one
-- client at the same time.
-- @module scalekit.twitter.scalekit

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local transport = require "scalekit.twitter.transport"
local policy = require "scalekit.twitter.policy"

local M = {}

M.API_VERSION = "20260727"
M.EXECUTE_PATH = "/api/v1/execute_tool"
M.TOKEN_SKEW = 60          -- refresh this many seconds before expiry

local null, object_mt = core.null, core.object_mt

local Scalekit = {}
Scalekit.__index = Scalekit

--- Make a protocol client.
-- @tparam table cfg `env_url`, `client_id`, `secret` (a table holding
--   `client_secret`, and where the access token is kept so the redactor sees
--   it), plus transport options.
function M.new(cfg)
  local self = setmetatable({ env_url = cfg.env_url:gsub("/+$", ""), client_id = cfg.client_id,
                              secret = cfg.secret, policy = cfg.policy or {}, rate = {} }, Scalekit)
  self.http = transport.new{
    ca_file = cfg.ca_file, proxy = cfg.proxy, max_response = cfg.max_response,
    timeout = cfg.timeout, connect_timeout = cfg.connect_timeout,
    stall_timeout = cfg.stall_timeout, debug = cfg.debug, redact = cfg.redact,
    watch_headers = policy.RATE_HEADER_PREFIXES,
    headers = { ["x-sdk-version"] = transport.SDK_VERSION, ["x-api-version"] = M.API_VERSION },
  }
  self.execute_url = self.env_url .. M.EXECUTE_PATH
  return self
end

-- Field `snake` of t, or its camelCase spelling.
local function field(t, snake)
  if type(t) ~= "table" then return nil end
  local v = t[snake]
  if v == nil then
    v = t[snake:gsub("_(%l)", string.upper)]
  end
  if v == null then return nil end
  return v
end
M.field = field

-- Recursively rename camelCase keys to snake_case (for account records).
local function snake_keys(t)
  if type(t) ~= "table" then return t end
  local out = setmetatable({}, getmetatable(t))
  for k, v in pairs(t) do
    if type(k) == "string" then k = k:gsub("(%l)(%u)", function(a, b) return a .. "_" .. b:lower() end) end
    out[k] = (k == "api_config" or k == "details") and v or snake_keys(v)
  end
  return out
end

local TOOL_ERROR_KIND = { ["401"] = "auth", ["403"] = "auth", ["404"] = "not_found",
                          ["429"] = "rate_limited" }

--- Turn a non-2xx Scalekit response into an error.  Understands the
-- grpc-gateway envelope `{code, message, details=[ErrorInfo...]}`, OAuth-style
-- `{error, error_description}` bodies and plain HTTP failures.
-- @tparam table resp from `transport:send`
-- @tparam table ctx `tool` and `redact`
function M.error_from(resp, ctx)
  local j = type(resp.json) == "table" and resp.json or nil
  local f = { status = resp.status, tool = ctx.tool, details = j, rate_limit = policy.rate_of(resp.headers) }
  if resp.status == 429 then
    local ra = policy.retry_after(resp.headers)
    f.retry_after = ra and math.ceil(ra)
    f.usage_cap = policy.is_usage_cap(resp) or nil
  end
  local message
  if j then
    f.code = math.tointeger(field(j, "code"))
    message = field(j, "message") or field(j, "error_description") or field(j, "error")
    for _, d in ipairs(field(j, "details") or {}) do
      local ec = field(d, "error_code")
      if ec then
        f.error_code = f.error_code or ec
        local tei = field(d, "tool_error_info")
        if tei then
          f.execution_id = field(tei, "execution_id")
          f.tool_error_code = field(tei, "tool_error_code")
          message = field(tei, "tool_error_message") or message
        end
      end
    end
  end
  if type(message) ~= "string" then
    local snippet = (resp.body or ""):sub(1, 200):gsub("%s+", " ")
    message = ("HTTP %d%s"):format(resp.status, snippet ~= "" and (": " .. snippet) or "")
  end
  local kind = errors.kind_for_status(resp.status)
  if f.error_code == "TOOL_ERROR" then
    kind = TOOL_ERROR_KIND[tostring(f.tool_error_code)] or "tool_error"
  end
  if ctx.tool and not message:find(ctx.tool, 1, true) then message = ctx.tool .. ": " .. message end
  return errors.new(kind, ctx.redact(message), f)
end

-- The token request.  Returns the access token or nil, err.
function Scalekit:fetch_token()
  local resp, err = self.http:send{
    method = "POST", url = self.env_url .. "/oauth/token",
    form = { { "grant_type", "client_credentials" }, { "client_id", self.client_id },
             { "client_secret", self.secret.client_secret } },
  }
  if not resp then return nil, err end
  local tok = resp.status == 200 and field(resp.json, "access_token")
  if type(tok) ~= "string" or tok == "" then
    local e = M.error_from(resp, { redact = self.http.redact })
    if resp.status == 200 then e.kind = "protocol" end
    if resp.status >= 400 and resp.status < 500 and resp.status ~= 429 then e.kind = "auth" end
    e.message = "could not get a Scalekit access token: " .. e.message
    return nil, e
  end
  if not transport.header_safe(tok) then
    return nil, errors.new("auth", "could not get a Scalekit access token: the token endpoint answered "
      .. "a token with spaces or control characters", { status = resp.status })
  end
  local ttl = math.tointeger(field(resp.json, "expires_in"))
  self.secret.access_token = tok
  self.auth_override = { authorization = "Bearer " .. tok }   -- shared by calls until the next token
  self.token_expires = ttl and core.monotonic() + ttl - M.TOKEN_SKEW or math.huge
  return tok
end

--- A valid access token (cached, or fetched now).
function Scalekit:token()
  if self.secret.access_token and core.monotonic() < self.token_expires then
    return self.secret.access_token
  end
  return self:fetch_token()
end

--- Drop the cached token, so the next call fetches a new one.
function Scalekit:forget_token()
  self.secret.access_token, self.token_expires, self.auth_override = nil, nil, nil
end

-- Scalekit answers 503 (UNAVAILABLE) only for calls it did not act on, so
-- even a POST may be repeated then (as the official SDKs do).
local SAFE_ANY_METHOD = { [503] = true }

-- A tool error means the tool ran upstream: never repeat it, whatever its
-- status (Scalekit answers a provider's 401 as HTTP 401 with TOOL_ERROR).
local function is_tool_error(resp)
  for _, d in ipairs(type(resp.json) == "table" and field(resp.json, "details") or {}) do
    if field(d, "error_code") == "TOOL_ERROR" then return true end
  end
  return false
end

-- The retry/wait settings of one call: its own options over the client's
-- (one table per method is kept for the common case of no call options).
local function call_policy(self, method, opts)
  local cached = not opts and self.ctx_cache and self.ctx_cache[method]
  if cached then return cached end
  local ctx = policy.context({ method = method, retry_any_method = SAFE_ANY_METHOD, final = is_tool_error },
                             opts, self.policy)
  if not opts then
    self.ctx_cache = self.ctx_cache or {}
    self.ctx_cache[method] = ctx
  end
  return ctx
end

-- Put the access token (fetched when needed) on `req`: in the caller's own
-- header map `own` when there is one, else as the client's shared override.
-- Returns the token, or nil, err.
function Scalekit:authorize(req, own)
  local tok, err = self:token()
  if not tok then err.tool = req.tool; return nil, err end
  if own then own.authorization = "Bearer " .. tok else req.override = self.auth_override end
  return tok
end

--- An authenticated request to `env_url .. path`, with retries (see
-- scalekit.twitter.policy).  On a 401 the token is fetched again and the
-- request repeated once.  `opts` are per-call settings (timeout, max_retries,
-- wait_on_rate_limit, max_wait).  `answer`, when given, is what a first
-- attempt already got (`{ resp =, err = }`, see `execute`): the loop goes on
-- from it instead of sending.
-- @return resp (any status) or nil, err
function Scalekit:send(req, opts, answer)
  req.url = req.url or self.env_url .. req.path
  if opts then
    req.timeout = req.timeout or opts.timeout
    req.connect_timeout, req.stall_timeout = opts.connect_timeout, opts.stall_timeout
  end
  local ctx = call_policy(self, req.method or "GET", opts)
  req.deadline = req.deadline or core.monotonic() + ctx.timeout
  -- the caller's own header map (the proxy's); `execute`, which hands over
  -- a first answer, sends with the client's shared one
  local own = not answer and req.override or nil
  for attempt = 1, 2 do
    local resp, err
    if answer then
      resp, err, answer = answer.resp, answer.err, nil
    else
      local tok
      tok, err = self:authorize(req, own)
      if not tok then return nil, err end
    end
    resp, err = policy.send(ctx, self.http.send, self.http, req, resp, err)
    if not resp then return nil, err end
    local key = req.rate_key or req.tool or req.path
    self.rate[key] = policy.rate_of_response(resp) or self.rate[key]
    if resp.status ~= 401 or attempt == 2 or is_tool_error(resp) then return resp end
    self:forget_token()
  end
end

-- The decoded body of a 2xx answer, or nil, err.
function Scalekit:decode(resp, method, path, tool)
  if resp.status < 200 or resp.status > 299 then
    return nil, M.error_from(resp, { tool = tool, redact = self.http.redact })
  end
  local j = transport.json_of(resp)
  if type(j) == "table" then return j, resp end
  if not resp.body:find("%S") then return setmetatable({}, object_mt), resp end
  return nil, errors.new("protocol", ("%s%s %s: the response is not a JSON object (%s)"):format(
    tool and tool .. ": " or "", method, path, resp.json_error or "unexpected value"),
    { status = resp.status, tool = tool })
end

-- A JSON API call: the decoded body of a 2xx answer, or nil, err.
function Scalekit:api(method, path, ctx, opts)
  opts = opts or {}
  local resp, err = self:send({ method = method, path = path, query = opts.query,
                                json = opts.json, tool = ctx.tool }, ctx.call)
  if not resp then return nil, err end
  return self:decode(resp, method, path, ctx.tool)
end

-- Drop nil/"" fields; `t` is marked as a JSON object.
local function compact(t)
  local out = setmetatable({}, object_mt)
  for k, v in pairs(t) do
    if v ~= "" and v ~= null then out[k] = v end
  end
  return out
end
M.compact = compact

local CONTEXT_FIELDS = { "identifier", "connector", "connected_account_id", "organization_id", "user_id" }

-- The execute_tool request body: the tool, its params and the account
-- context, without empty context fields.  The non-empty fields of a context
-- are listed once (`ctx.fields`, name/value pairs), contexts being reused.
local function execute_body(tool_name, params, ctx)
  local fields = ctx.fields
  if not fields then
    fields = {}
    for i = 1, #CONTEXT_FIELDS do
      local k = CONTEXT_FIELDS[i]
      local v = ctx[k]
      if v ~= nil and v ~= "" and v ~= null then
        local n = #fields
        fields[n + 1], fields[n + 2] = k, v
      end
    end
    ctx.fields = fields
  end
  -- sized for every field at once (nil slots), so filling it never rehashes;
  -- string keys only, so it encodes as an object without a mark
  local body = { tool_name = tool_name, params = params, identifier = nil, connector = nil,
                 connected_account_id = nil, organization_id = nil, user_id = nil }
  for i = 1, #fields, 2 do body[fields[i]] = fields[i + 1] end
  return body
end

-- data, info from a decoded execute_tool answer.
function Scalekit:tool_result(tool_name, j)
  local data, id = j.data, j.execution_id
  if data == nil or data == null then data = field(j, "data") or setmetatable({}, object_mt) end
  if id == nil then id = field(j, "execution_id") end
  return data, { execution_id = id, tool = tool_name, rate_limit = self.rate[tool_name] }
end

--- Run one tool.  `ctx` holds identifier, connector, connected_account_id,
-- organization_id and user_id.
-- @return data, info `{ execution_id =, tool = }` or nil, err
function Scalekit:execute(tool_name, params, ctx, call_opts)
  local req = { method = "POST", path = M.EXECUTE_PATH, url = self.execute_url,
                json = execute_body(tool_name, params, ctx), tool = tool_name, override = nil }
  local resp, err
  if call_opts == nil and not self.http.debug then
    -- one pass for the usual call: a 2xx JSON answer is finished here; any
    -- other answer goes on through `send` from what was received (retries,
    -- the 401 token refresh), so nothing is sent twice
    local tok
    tok, err = self:authorize(req)
    if not tok then return nil, err end
    req.deadline = core.monotonic() + call_policy(self, "POST").timeout
    local j, status, watched = self.http:send_json(req)
    if j then
      -- the transport watches the rate headers: `watched` is a table or false
      if watched then self.rate[tool_name] = policy.rate_of(watched) or self.rate[tool_name] end
      return self:tool_result(tool_name, j)
    end
    -- anything else: send_json gave nil, resp or nil, nil, err
    resp, err = self:send(req, nil, { resp = status, err = watched })
  else
    resp, err = self:send(req, call_opts)
  end
  if not resp then return nil, err end
  local j
  j, err = self:decode(resp, "POST", M.EXECUTE_PATH, tool_name)
  if not j then return nil, err end
  return self:tool_result(tool_name, j)
end

--- The transport request for one tool call in a batch (token included), or
-- nil, err.
function Scalekit:batch_request(tool, params, ctx, opts)
  local req = { method = "POST", url = self.execute_url, tool = tool.name,
                json = execute_body(tool.name, params, ctx),
                deadline = core.monotonic() + call_policy(self, "POST", opts).timeout }
  local tok, err = self:authorize(req)
  if not tok then return nil, err end
  return req
end

--- data, info or nil, err for a batch answer.
function Scalekit:batch_result(tool, resp)
  local j, err = self:decode(resp, "POST", M.EXECUTE_PATH, tool.name)
  if not j then return nil, err end
  return self:tool_result(tool.name, j)
end

--- The proxy: forward a request to the provider API through Scalekit.
-- @return `{ status, headers, body, json }` for a 2xx answer, or nil, err
-- (with `err.response` holding the same table for HTTP failures).
function Scalekit:proxy(req, ctx)
  local override = { connection_name = ctx.connector, identifier = ctx.identifier or false }
  local resp, err = self:send({
    method = req.method, path = "/proxy" .. req.path, query = req.query,
    headers = req.headers, override = override, timeout = req.timeout,
    json = req.json, body = req.body, form = req.form,
    json_root = "body", tool = "request", rate_key = req.rate_key,
  }, req.opts)
  if not resp then return nil, err end
  local out = resp               -- status, headers, body, json (made on first use), seconds
  if resp.status < 200 or resp.status > 299 then
    local e = M.error_from(resp, { redact = self.http.redact })
    e.response = out
    return nil, e
  end
  return out
end

--- Connected-account calls (REST routes of ConnectedAccountService).
function Scalekit:account_call(method, path, ctx, opts)
  local j, err = self:api(method, path, { tool = ctx.what }, opts)
  if not j then return nil, err end
  return snake_keys(j)
end

return M
