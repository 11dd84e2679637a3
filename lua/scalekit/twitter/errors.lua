--- Error values of scalekit.twitter, and secret redaction.
--
-- Every runtime failure is returned as `nil, err`, where `err` is a table
-- with the fields below and a `__tostring`.  Programmer mistakes (unknown
-- method, non-table input) are raised instead, never returned.
--
-- Fields: `kind` (one of `KINDS`), `message`, `status` (HTTP status),
-- `code` (gRPC code in Scalekit's envelope), `error_code` (Scalekit
-- ErrorInfo code, e.g. "TOOL_ERROR"), `tool`, `param`, `execution_id`,
-- `tool_error_code`, `retry_after` (seconds), `details` (decoded error body),
-- `may_have_been_applied` (a write whose outcome is unknown).
-- @module scalekit.twitter.errors

local M = {}

--- The error kinds, in the order users usually test them.
M.KINDS = {
  invalid_input = true, auth = true, not_found = true, rate_limited = true,
  tool_error = true, network = true, timeout = true, server = true,
  protocol = true, reauth_required = true,
}

local Error = {}
Error.__index = Error
Error.__name = "scalekit.twitter.error"

local SHOWN = { "tool", "param", "status", "error_code", "tool_error_code",
                "execution_id", "retry_after" }

function Error.__tostring(e)
  local extra = {}
  for _, k in ipairs(SHOWN) do
    if e[k] ~= nil and not (k == "tool" and e.message:find(e.tool, 1, true))
       and not (k == "param" and e.kind == "invalid_input") then
      extra[#extra + 1] = k .. "=" .. tostring(e[k])
    end
  end
  local s = "scalekit.twitter: " .. e.kind .. ": " .. e.message
  if #extra > 0 then s = s .. " (" .. table.concat(extra, ", ") .. ")" end
  return s
end

--- Make an error value.
-- @tparam string kind one of `KINDS`
-- @tparam string message what went wrong, for a human
-- @tparam[opt] table fields extra fields (status, tool, param, ...)
-- @treturn table the error
function M.new(kind, message, fields)
  assert(M.KINDS[kind], "unknown error kind " .. tostring(kind))
  local e = { kind = kind, message = message }
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  return setmetatable(e, Error)
end

--- True if `v` is an error made by this module.
function M.is(v)
  return getmetatable(v) == Error
end

--- The error kind for an HTTP status that is not a success.
function M.kind_for_status(status)
  if status == 401 or status == 403 then return "auth" end
  if status == 404 then return "not_found" end
  if status == 429 then return "rate_limited" end
  if status == 408 or status == 504 then return "timeout" end
  if status >= 500 then return "server" end
  if status >= 400 then return "invalid_input" end
  return "protocol"
end

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- A function that replaces every secret in a string with "[REDACTED]".
-- `secrets` is a table whose values are the secrets (strings shorter than 4
-- characters are ignored: they would redact ordinary text).  It is read on
-- each call, so secrets added later (a new access token) are covered too.
function M.redactor(secrets)
  return function(s)
    if type(s) ~= "string" then return s end
    for _, secret in pairs(secrets) do
      if type(secret) == "string" and #secret >= 4 then
        s = s:gsub(escape_pattern(secret), "[REDACTED]")
      end
    end
    return s
  end
end

return M
