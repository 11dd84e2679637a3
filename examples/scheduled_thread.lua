-- scheduled_thread.lua - post a thread from a text file, one post per
-- paragraph (paragraphs are separated by blank lines), each replying to the
-- previous one.  Progress is saved after every post, so running it again
-- after an interruption continues where it stopped instead of posting twice.
--
--   scalekit-lua examples/scheduled_thread.lua thread.txt [state.json] [seconds between posts]

local twitter = require "scalekit.twitter"
local core = require "scalekit.core"

local file = assert(arg[1], "usage: scheduled_thread.lua thread.txt [state.json] [delay]")
local state_path = arg[2] or (file .. ".state.json")
local delay = tonumber(arg[3] or "0")

local paragraphs = {}
for para in (assert(io.open(file)):read("a") .. "\n\n"):gmatch("(.-)\n%s*\n") do
  para = para:gsub("^%s+", ""):gsub("%s+$", "")
  if para ~= "" then paragraphs[#paragraphs + 1] = para end
end

-- { posted = { "id1", "id2", ... } }: which paragraphs already went out
local state = { posted = {} }
local sf = io.open(state_path)
if sf then
  state = assert(twitter.json.decode(sf:read("a")))
  sf:close()
end

local tw = twitter.new{}
for i, text in ipairs(paragraphs) do
  if state.posted[i] then
    print(("%d/%d already posted as %s"):format(i, #paragraphs, state.posted[i]))
  else
    if i > 1 and delay > 0 then core.sleep(delay) end
    local post, err = tw:post_create{ text = text, reply_in_reply_to_tweet_id = state.posted[i - 1] }
    if not post then
      io.stderr:write(("post %d failed: %s\n"):format(i, tostring(err)))
      if err.may_have_been_applied then
        io.stderr:write("it may have gone out: check the thread before running again\n")
      end
      os.exit(1)
    end
    state.posted[i] = post.data.id
    local saved, _, why = core.write_file_atomic(state_path, twitter.json.encode(state))
    if not saved then     -- the post went out: say which, so nothing is posted twice
      io.stderr:write(("post %d went out as %s but %s could not be saved: %s\n"):format(
        i, post.data.id, state_path, why))
      os.exit(1)
    end
    print(("%d/%d posted as %s"):format(i, #paragraphs, post.data.id))
  end
end
