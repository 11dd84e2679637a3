--- Upload media from a file: `tw:upload_media{ file = "clip.mp4" }`.
--
-- The type comes from the file's first bytes.  Images up to 5 MB go up in one
-- request; GIFs, videos and larger files use the chunked flow (initialize,
-- append, finalize, then status checks while X processes).  The file is read
-- one chunk at a time, so memory stays flat whatever its size.  Built only on
-- the catalog's upload tools and a finalize request, so it works the same in
-- Scalekit mode (tools + proxy) and in direct mode.
-- @module scalekit.twitter.media

local core = require "scalekit.core"
local tasks = require "scalekit.twitter.tasks"
local errors = require "scalekit.twitter.errors"
local options = require "scalekit.twitter.options"

local M = {}

M.CHUNK_SIZE = 2 * 1024 * 1024      -- bytes per append (X allows up to 5 MB; less keeps memory low)
M.ONE_SHOT_MAX = 5 * 1024 * 1024    -- images up to this size go up in one request
M.MAX_SEGMENTS = 1000               -- X's segment_index runs 0..999
M.MAX_STATUS_CHECKS = 120
M.MAX_STATUS_WAIT = 30

-- First bytes -> MIME type.  Order matters (QuickTime before generic ftyp).
local MAGIC = {
  { "^\137PNG\r\n\26\n", "image/png" },
  { "^\255\216\255", "image/jpeg" },
  { "^GIF8[79]a", "image/gif" },
  { "^RIFF....WEBP", "image/webp" },
  { "^BM", "image/bmp" },
  { "^II%*%z", "image/tiff" },
  { "^MM%z%*", "image/tiff" },
  { "^....ftypqt  ", "video/quicktime" },
  { "^....ftyp", "video/mp4" },
  { "^\26\69\223\163", "video/webm" },
  { "^\239\187\191WEBVTT", "text/vtt" },
  { "^WEBVTT", "text/vtt" },
  { "^%d+\r?\n%d%d:%d%d:%d%d,%d%d%d %-%->", "text/srt" },
}

--- The MIME type of a file from its first bytes, or nil.
function M.detect(head)
  for _, m in ipairs(MAGIC) do
    if head:match(m[1]) then return m[2] end
  end
  if #head >= 189 and head:byte(1) == 0x47 and head:byte(189) == 0x47 then return "video/mp2t" end
  return nil
end

--- X's media_category for a MIME type: subtitles, tweet_gif, tweet_video or
-- tweet_image.
function M.category_for(media_type)
  if media_type:match("^text/") then return "subtitles" end
  if media_type == "image/gif" then return "tweet_gif" end
  if media_type:match("^video/") then return "tweet_video" end
  return "tweet_image"
end

local function fail(kind, msg, fields)
  return nil, errors.new(kind, "upload_media: " .. msg, fields)
end

-- The media object inside a tool answer ({data = {...}} or the object itself).
local function media_of(d)
  if type(d) ~= "table" then return {} end
  return type(d.data) == "table" and d.data or d
end

--- Wait while X processes uploaded media, honouring `check_after_secs`.
-- @tparam table media the media object from finalize (with `id`)
-- @tparam function status `status(id)` -> the media object again, or nil, err
-- @tparam[opt] table opts `label` (prefix of error messages, default
--   "upload_media"), `tool` (for the error), `on_wait(seconds, why)`
-- @return the final media object, or nil, err (`tool_error` carrying X's
--   `processing_info` when processing failed, `timeout` after MAX_STATUS_CHECKS)
function M.await(media, status, opts)
  opts = opts or {}
  local label = opts.label or "upload_media"
  for _ = 1, M.MAX_STATUS_CHECKS do
    local info = type(media.processing_info) == "table" and media.processing_info or nil
    if not info or info.state == "succeeded" then return media end
    if info.state == "failed" then
      local e = type(info.error) == "table" and info.error or {}
      return nil, errors.new("tool_error", ("%s: X could not process the media: %s"):format(
        label, tostring(e.message or e.name or "failed")), { details = info, tool = opts.tool })
    end
    local wait = math.min(math.max(tonumber(info.check_after_secs) or 1, 0), M.MAX_STATUS_WAIT)
    if opts.on_wait then opts.on_wait(wait, "processing") end
    if not tasks.sleep(wait) then
      return nil, errors.new("interrupted", label .. ": interrupted while waiting for processing",
                             { tool = opts.tool })
    end
    local m, err = status(media.id)
    if not m then return nil, err end
    m.id = m.id or media.id
    media = m
  end
  return nil, errors.new("timeout", ("%s: media still processing after %d checks"):format(
    label, M.MAX_STATUS_CHECKS), { tool = opts.tool })
end

--- The chunked upload flow, written once for every way of uploading:
-- initialize, append each chunk, finalize, then wait while X processes.
-- `step(what, ...)` makes the requests: `step("init")` -> media id;
-- `step("append", id, bytes, segment)` -> true; `step("finalize", id)` and
-- `step("status", id)` -> the media object; each may fail with nil, err.
-- `read()` gives the next chunk (at most MAX_SEGMENTS of them) or nil at
-- the end.
-- @tparam[opt] table opts `on_progress(sent)` after each chunk, plus
--   `await`'s options
-- @return the final media object (with `id`), or nil, err
function M.upload_chunks(step, read, opts)
  opts = opts or {}
  local id, err = step("init")
  if not id then return nil, err end
  local sent, segment = 0, 0
  while true do
    local bytes = read()
    if not bytes then break end
    if segment == M.MAX_SEGMENTS then
      return nil, errors.new("invalid_input", ("%s: the media needs more than %d chunks"):format(
        opts.label or "upload_media", M.MAX_SEGMENTS), { tool = opts.tool })
    end
    local ok
    ok, err = step("append", id, bytes, segment)
    if not ok then return nil, err end
    sent, segment = sent + #bytes, segment + 1
    if opts.on_progress then opts.on_progress(sent) end
  end
  local media
  media, err = step("finalize", id)
  if not media then return nil, err end
  media.id = media.id or id
  return M.await(media, function(mid) return step("status", mid) end, opts)
end

-- A reader of `chunk`-byte pieces of the open file f (the last piece of
-- memory dropped before the next is read, so memory stays flat).
local function file_chunks(f, chunk)
  return function()
    collectgarbage()
    return f:read(chunk)
  end
end

--- Upload a file; returns the media id (string) and the final media object.
-- @tparam table client
-- @tparam table opts `file` (path, required), `media_type` (default: from
--   the file's bytes), `media_category` (default: from the type),
--   `on_progress(sent, total)`, `chunk_size`
-- @return media_id, media  or nil, err
-- The per-call options among upload_media's (timeout, max_retries, ...),
-- handed to every request of the upload; nil when there are none.
local OWN = { file = true, media_type = true, media_category = true, on_progress = true, chunk_size = true,
              on_wait = true }

function M.upload(client, opts)
  local call = options.call_options(opts, OWN)
  local f, ferr = io.open(opts.file, "rb")
  if not f then return fail("invalid_input", ferr, { param = "file" }) end
  local head, rerr = f:read(512)
  if head == nil then
    f:close()
    return fail("invalid_input", ("%s: %s"):format(opts.file, rerr or "the file is empty"), { param = "file" })
  end
  local size = f:seek("end")
  f:seek("set", 0)
  local media_type = opts.media_type or M.detect(head)
  if not media_type then
    f:close()
    return fail("invalid_input", opts.file .. ": unknown media type (pass media_type)", { param = "media_type" })
  end
  local category = opts.media_category or M.category_for(media_type)
  local progress = opts.on_progress or function() end
  local chunk = opts.chunk_size or M.CHUNK_SIZE

  if media_type:match("^image/") and media_type ~= "image/gif" and size <= M.ONE_SHOT_MAX then
    local bytes = f:read("a")
    f:close()
    local d, err = client:execute("twitter_media_upload_base64", {
      media_data = core.base64(bytes), media_type = media_type, media_category = category }, call)
    if not d then return nil, err end
    progress(size, size)
    local m = media_of(d)
    return m.id, m
  end

  if size == 0 or math.ceil(size / chunk) > M.MAX_SEGMENTS then
    f:close()
    return fail("invalid_input", ("%s: %d bytes cannot be sent in 1..%d chunks of %d bytes"):format(
      opts.file, size, M.MAX_SEGMENTS, chunk), { param = "file" })
  end
  local steps = {
    init = function()
      local d, err = client:execute("twitter_media_upload_init", {
        media_type = media_type, total_bytes = size, media_category = category }, call)
      if not d then return nil, err end
      local id = media_of(d).id
      if type(id) ~= "string" then return fail("protocol", "initialize returned no media id") end
      return id
    end,
    append = function(id, bytes, segment)
      return client:execute("twitter_media_upload_append", {
        media_id = id, media_data = core.base64(bytes), segment_index = segment }, call)
    end,
    finalize = function(id)
      local finalize = { method = "POST", path = "/2/media/upload/" .. id .. "/finalize" }
      for k, v in pairs(call or {}) do finalize[k] = v end
      local resp, err = client:request(finalize)
      if not resp then return nil, err end
      return media_of(resp.json)
    end,
    status = function(id)
      local st, err = client:execute("twitter_media_upload_status_get", { media_id = id }, call)
      if not st then return nil, err end
      return media_of(st)
    end,
  }
  local media, err = M.upload_chunks(function(what, ...) return steps[what](...) end, file_chunks(f, chunk), {
    on_progress = function(sent) progress(sent, size) end,
    on_wait = opts.on_wait, tool = "twitter_media_upload_status_get" })
  f:close()
  if not media then return nil, err end
  return media.id, media
end

return M
