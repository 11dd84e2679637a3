--- Many tool calls at once over one connection pool (libcurl's multi
-- interface): `tw:batch(calls, { concurrency = 8 })`.
--
-- Every call is validated first; the valid ones go out together, at most
-- `concurrency` in flight.  A call whose answer the retry policy would repeat
-- (a 401, a 429 when waiting is on, an unavailable server, a connection that
-- failed before sending) is run again on its own through `execute`, which
-- applies the full policy; a write that may have been applied is never
-- repeated.  Tools that are sequences (large media upload, stream, fan-out)
-- run on their own too.
-- @module scalekit.twitter.batch

local policy = require "scalekit.twitter.policy"
local options = require "scalekit.twitter.options"

local M = {}

M.MAX_CALLS = 10000
local OWN = { concurrency = true }     -- batch's own option; the others go to every call

-- Should this failed batch call be run again through execute?
local function rerun(err, method, ctx)
  if err.kind == "invalid_input" then return false end
  if policy.is_transient(err) then
    return not err.sent or policy.IDEMPOTENT[method]
  end
  local s = err.status
  if s == 401 then return err.error_code ~= "TOOL_ERROR" end   -- a tool error ran upstream
  if s == 429 then return ctx.wait_on_rate_limit and not err.usage_cap end
  if s == 502 or s == 503 or s == 504 then
    return policy.IDEMPOTENT[method] or (ctx.scalekit and s == 503 and err.error_code ~= "TOOL_ERROR")
  end
  return false
end

--- Run `calls` (array of `{ name, input }`); results[i] = { data =, info =, err = }.
-- @tparam table client the client
-- @tparam table backend its backend (scalekit or direct)
-- @tparam table hooks `prepare(name, input)` -> tool, params | nil, err;
--   `request(tool, params)` -> transport request | nil (run alone) | nil, err
-- @tparam table opts `concurrency` (default 8), plus per-call options
function M.run(client, backend, hooks, calls, opts)
  local results, jobs, reqs = {}, {}, {}
  local call_opts = options.call_options(opts, OWN)   -- for execute
  for i, call in ipairs(calls) do
    local tool, params = hooks.prepare(call[1], call[2])
    if not tool then
      results[i] = { err = params }
    else
      local req, err = hooks.request(tool, params)
      if req then
        jobs[#jobs + 1] = { i = i, tool = tool, call = call }
        reqs[#reqs + 1] = req
      elseif err then
        results[i] = { err = err }
      else
        local data, info = client:execute(tool.name, call[2], call_opts)
        results[i] = data and { data = data, info = info } or { err = info }
      end
    end
  end
  local answers = backend.http:send_many(reqs, opts.concurrency or 8)
  local ctx = { wait_on_rate_limit = opts.wait_on_rate_limit, scalekit = client.mode == "scalekit" }
  if ctx.wait_on_rate_limit == nil then ctx.wait_on_rate_limit = backend.policy.wait_on_rate_limit end
  for k, job in ipairs(jobs) do
    local a = answers[k]
    local data, info
    if a.resp then data, info = backend:batch_result(job.tool, a.resp) else info = a.err end
    if data == nil and rerun(info, reqs[k].method, ctx) then
      data, info = client:execute(job.tool.name, job.call[2], call_opts)
    elseif data == nil and info.sent and not policy.IDEMPOTENT[reqs[k].method] then
      info.may_have_been_applied = true
    end
    results[job.i] = data ~= nil and { data = data, info = info } or { err = info }
  end
  return results
end

return M
