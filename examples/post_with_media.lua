-- post_with_media.lua - upload an image or video from a file and post it.
--
--   scalekit-lua examples/post_with_media.lua photo.png "caption"
-- Without a file it makes a tiny PNG to upload (handy against the sandbox).

local twitter = require "scalekit.twitter"

local path, caption = arg[1], arg[2] or "Posted with scalekit.twitter"
if not path then
  path = os.tmpname() .. ".png"
  local f = assert(io.open(path, "wb"))
  f:write("\137PNG\r\n\26\n", string.rep("\0", 64))   -- PNG signature and filler
  f:close()
end

local tw = twitter.new{}
local media_id, err = tw:upload_media{ file = path,
  on_progress = function(sent, total) io.stderr:write(("uploaded %d/%d bytes\n"):format(sent, total)) end }
if not media_id then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print("media id: " .. media_id)

local post, perr = tw:post_create{ text = caption, media_media_ids = { media_id } }
if not post then
  io.stderr:write(tostring(perr), "\n")
  os.exit(1)
end
print(("posted %s with media %s: %s"):format(post.data.id, media_id, post.data.text))
