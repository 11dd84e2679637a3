-- export_followers.lua - write every follower of a user as JSON Lines.
--
--   scalekit-lua examples/export_followers.lua [user_id] [out.jsonl]
-- Pages through twitter_followers_get; on a rate limit it waits for the reset.

local twitter = require "scalekit.twitter"

local tw = twitter.new{ wait_on_rate_limit = true }
local user_id = arg[1]
if not user_id then
  local me = assert(tw:user_me{})
  user_id = me.data.id
end
local out = arg[2] and assert(io.open(arg[2], "w")) or io.stdout

local n = 0
for user, err in tw:items("twitter_followers_get", { id = user_id, max_results = 1000,
                                                     user_fields = "created_at,public_metrics" }) do
  if not user then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  out:write(twitter.json.encode(user), "\n")
  n = n + 1
end
if out ~= io.stdout then out:close() end
io.stderr:write(("exported %d followers of %s\n"):format(n, user_id))
