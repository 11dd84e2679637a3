-- quickstart.lua - connect an X account through Scalekit, then: who am I,
-- post, and find the post again with search.  In direct mode (your own X
-- tokens) there is no account to connect: it goes straight to the calls.
--
--   make run                      (uses the local sandbox when no credentials are set)
--   SCALEKIT_ENVIRONMENT_URL=... SCALEKIT_CLIENT_ID=... SCALEKIT_CLIENT_SECRET=... \
--   SCALEKIT_IDENTIFIER=user_123 scalekit-lua examples/quickstart.lua "hello from Lua"
--   X_TOKEN_FILE=tokens.json scalekit-lua examples/quickstart.lua      (direct mode)
--   sh scripts/sandbox.sh --x examples/quickstart.lua                  (direct mode, local fake X)

local twitter = require "scalekit.twitter"

-- Stop with the error on failure; pass both results through on success.
local function check(value, err_or_info)
  if value == nil then
    io.stderr:write(tostring(err_or_info), "\n")
    os.exit(1)
  end
  return value, err_or_info
end

local tw = twitter.new{}                  -- credentials and identifier from the environment

-- 1. Make sure the user's X account is connected (Scalekit mode).
if tw.mode == "scalekit" then
  print(("Scalekit: %s (identifier %s)"):format(tw.env_url, tw.identifier))
  local account = check(tw:get_or_create_connected_account())
  if account.status ~= "ACTIVE" then
    local link = check(tw:get_authorization_link())
    print("Connect your X account first: open " .. link.link)
    print("then run this example again.")
    return
  end
else
  print(("X API: %s (direct mode)"):format(tw.api_base_url))
end

-- 2. Who am I?
local me = check(tw:user_me{ user_fields = "username,name" })
print(("Signed in as @%s (%s), id %s"):format(me.data.username, me.data.name, me.data.id))

-- 3. Post.
local text = arg[1] or ("Hello from scalekit.twitter " .. twitter._VERSION .. " at " .. os.date("!%H:%M:%S"))
local post, info = check(tw:post_create{ text = text })
print(("Posted %s%s: %s"):format(post.data.id,
  info.execution_id and (" (execution %s)"):format(info.execution_id) or "", post.data.text))

-- 4. Search for it (recent search needs at least 10 results per page).
local found = check(tw:recent_search{ query = text:match("^%S+"), max_results = 10 })
print(("Recent search for %q: %d result(s)"):format(text:match("^%S+"), found.meta.result_count))
for _, p in ipairs(found.data or {}) do
  print(("  %s  %s"):format(p.id, p.text))
end
