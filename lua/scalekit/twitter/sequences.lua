--- The tools that are several X requests in direct mode, named in the
-- catalog by `sequence` (in Scalekit mode each is one execute_tool call):
--
--   fan_out         one POST per item of the tool's `fan_out` parameter;
--                   the results in order, `errors` for the items that
--                   failed (the call fails only if every item failed)
--   chunked_upload  base64 media sent as initialize, append chunks of
--                   media.CHUNK_SIZE bytes, finalize and status checks
--                   (media.upload_chunks, the loop upload_media uses too)
--   stream          a streaming endpoint read as a tool: the events seen
--                   within STREAM_MAX_SECONDS, at most STREAM_MAX_EVENTS
--
-- Each request goes through the call pipeline (scalekit.twitter.call), so
-- it gets the call's options, retries, rate bookkeeping and token refresh.
-- The timeout applies to each request, not to the sequence as a whole.
-- @module scalekit.twitter.sequences

local core = require "scalekit.core"
local errors = require "scalekit.twitter.errors"
local call = require "scalekit.twitter.call"
local policy = require "scalekit.twitter.policy"
local media = require "scalekit.twitter.media"
local tools = require "scalekit.twitter.tools"
local stream = require "scalekit.twitter.stream"

local M = {}

M.STREAM_MAX_EVENTS = 100    -- a stream tool called as a tool stops after this many
M.STREAM_MAX_SECONDS = 10    -- ... or this long

local object_mt, array_mt = core.object_mt, core.array_mt

local run = {}

function run.fan_out(b, tool, params, s)
  local results, failures = setmetatable({}, array_mt), setmetatable({}, array_mt)
  local last_err, last
  for _, item in ipairs(params[tool.fan_out]) do
    local one = {}
    for k, v in pairs(params) do one[k] = v end
    one[tool.fan_out] = item
    local j, resp = call.request(b, tool, b:request_for(tool, one), s)
    if j then
      results[#results + 1], last = j.data or j, resp
    else
      last_err = resp
      failures[#failures + 1] = setmetatable({ item = item, error = resp.message, status = resp.status }, object_mt)
    end
  end
  if #results == 0 and last_err then return nil, last_err end
  local out = setmetatable({ data = results }, object_mt)
  if #failures > 0 then out.errors = failures end
  return out, last
end

-- The request of catalog tool `name` with `params`, made for `tool` (its
-- errors and rate limits are the sequence's).
local function step_request(b, tool, name, params)
  local req = b:request_for(tools.get(name), params)
  req.tool, req.rate_key = tool.name, tool.name
  return req
end

function run.chunked_upload(b, tool, params, s)
  local bytes, _, derr = core.unbase64(params.media_data)
  if not bytes then
    return nil, errors.new("invalid_input", tool.name .. ": parameter 'media_data': " .. derr,
                           { tool = tool.name, param = "media_data" })
  end
  if #bytes ~= params.total_bytes then
    return nil, errors.new("invalid_input", ("%s: parameter 'total_bytes': is %d but media_data decodes to %d bytes")
      :format(tool.name, params.total_bytes, #bytes), { tool = tool.name, param = "total_bytes" })
  end
  local last
  -- one request of the flow: its data object, or nil, err
  local function send(req)
    local j, resp = call.request(b, tool, req, s)
    if not j then return nil, resp end
    last = resp
    return type(j.data) == "table" and j.data or j
  end
  local steps = {
    init = function()
      local d, err = send(step_request(b, tool, "twitter_media_upload_init", {
        media_type = params.media_type, total_bytes = params.total_bytes,
        media_category = params.media_category, additional_owners = params.additional_owners }))
      if not d then return nil, err end
      if type(d.id) ~= "string" then
        return nil, errors.new("protocol", tool.name .. ": initialize returned no media id", { tool = tool.name })
      end
      return d.id
    end,
    append = function(id, chunk, segment)
      return send(step_request(b, tool, "twitter_media_upload_append",
                               { media_id = id, media_data = core.base64(chunk), segment_index = segment }))
    end,
    finalize = function(id)
      local req = b:raw_for{ method = "POST", path = "/2/media/upload/" .. id .. "/finalize" }
      req.tool, req.rate_key = tool.name, tool.name
      return send(req)
    end,
    status = function(id)
      return send(step_request(b, tool, "twitter_media_upload_status_get", { media_id = id }))
    end,
  }
  local pos, size = 1, media.CHUNK_SIZE
  local function read()
    if pos > #bytes then return nil end
    local chunk = bytes:sub(pos, pos + size - 1)
    pos = pos + size
    return chunk
  end
  local progress = s.on_progress
  local m, err = media.upload_chunks(function(what, ...) return steps[what](...) end, read,
    { label = tool.name, tool = tool.name, on_wait = s.on_wait,
      on_progress = progress and function(sent) progress(sent, #bytes) end })
  if not m then return nil, err end
  return setmetatable({ data = m }, object_mt), last
end

function run.stream(b, tool, params, s)
  local events = setmetatable({}, array_mt)
  local deadline = core.monotonic() + M.STREAM_MAX_SECONDS
  local _, err = stream.read(b, tool, params, function(ev)
    events[#events + 1] = ev
    return #events < M.STREAM_MAX_EVENTS and core.monotonic() < deadline
  end, { reconnect = false, deadline = deadline, connect_timeout = s.connect_timeout,
         stall_timeout = s.stall_timeout })
  if err and #events == 0 then return nil, err end
  return setmetatable({ data = events }, object_mt)
end

--- The names of the sequences (what `sequence` may say in the catalog).
M.NAMES = { "chunked_upload", "fan_out", "stream" }

--- Run sequence `tool.sequence` for validated `params` through backend `b`.
-- @return data, info (`status` of the last response, when there was one)
--   or nil, err
function M.run(b, tool, params, opts)
  local data, last = run[tool.sequence](b, tool, params, policy.settings(opts, b.settings))
  if data == nil then return nil, last end
  return data, { tool = tool.name, status = last and last.status, rate_limit = b.rate[tool.name] }
end

return M
