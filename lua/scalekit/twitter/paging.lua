--- Pagination: `tw:pages(name, input, opts)` and `tw:items(name, input, opts)`.
--
-- Both are generic-for iterators.  On a failure they produce `false, err`
-- once and then stop (a nil first value would end the loop silently).  Every
-- argument is kept on every page; the page token goes in the tool's own token
-- parameter (`pagination_token` or `next_token`); a saved token can be given
-- in the input to resume; a page that repeats one of the last SEEN_TOKENS
-- tokens ends the loop (remembering them all would grow with the pages).
-- @module scalekit.twitter.paging

local M = {}

M.MAX_PAGES = 100000     -- no loop runs forever, whatever the server says
M.SEEN_TOKENS = 64       -- a token repeated within this many pages ends the loop

local options = require "scalekit.twitter.options"

-- The options of the iterators themselves; the others are per-call options.
local OWN = { limit = true, on_page = true, expand = true, pages = true }
local function call_options(opts) return options.call_options(opts, OWN) end

--- An iterator over the pages of a paginating tool.
-- @tparam table client
-- @tparam table tool the tool record (must paginate)
-- @tparam table input the tool's parameters (may hold a saved token)
-- @tparam[opt] table opts `limit` (pages), `on_page(count)` after each page,
--   and per-call options passed to execute
function M.pages(client, tool, input, opts)
  opts = opts or {}
  local call = call_options(opts)
  local args = {}
  for k, v in pairs(input or {}) do args[k] = v end
  local seen, ring, slot, count, done = {}, {}, 0, 0, false
  local function remember(token)       -- the last SEEN_TOKENS tokens, in a ring
    slot = slot % M.SEEN_TOKENS + 1
    if ring[slot] then seen[ring[slot]] = nil end
    ring[slot], seen[token] = token, true
  end
  if args[tool.paginate] then remember(args[tool.paginate]) end
  return function()
    if done or count >= (opts.limit or M.MAX_PAGES) then return nil end
    local page, err = client:execute(tool.name, args, call)
    if not page then
      done = true
      return false, err
    end
    count = count + 1
    if opts.on_page then opts.on_page(count) end
    local meta = type(page.meta) == "table" and page.meta or {}
    local token = meta.next_token
    if type(token) ~= "string" or token == "" or seen[token] then
      done = true
    else
      remember(token)
      args[tool.paginate] = token
    end
    return page
  end
end

-- Index a page's includes by the keys items refer to them with.
local function index_includes(page)
  local inc = type(page.includes) == "table" and page.includes or {}
  local by = { users = {}, tweets = {}, media = {} }
  for _, u in ipairs(inc.users or {}) do by.users[u.id] = u end
  for _, t in ipairs(inc.tweets or {}) do by.tweets[t.id] = t end
  for _, m in ipairs(inc.media or {}) do by.media[m.media_key] = m end
  return by
end

--- Join a page's `includes` onto an item: `author` (from author_id),
-- `media` (from attachments.media_keys), `referenced` (referenced_tweets),
-- `pinned_tweet` (pinned_tweet_id).  Returns the item.
function M.expand(item, by)
  if type(item) ~= "table" then return item end
  if item.author_id then item.author = by.users[item.author_id] end
  local att = type(item.attachments) == "table" and item.attachments or nil
  if att and type(att.media_keys) == "table" then
    item.media = {}
    for i, k in ipairs(att.media_keys) do item.media[i] = by.media[k] end
  end
  if type(item.referenced_tweets) == "table" then
    item.referenced = {}
    for i, r in ipairs(item.referenced_tweets) do item.referenced[i] = by.tweets[r.id] end
  end
  if item.pinned_tweet_id then item.pinned_tweet = by.tweets[item.pinned_tweet_id] end
  return item
end

--- An iterator over the items (`data` entries) of every page.
-- @tparam[opt] table opts `limit` (items), `expand` (join includes), and the
--   options of `pages`
function M.items(client, tool, input, opts)
  opts = opts or {}
  local page_opts = call_options(opts) or {}
  page_opts.limit, page_opts.on_page = opts.pages, opts.on_page
  local next_page = M.pages(client, tool, input, page_opts)
  local list, pos, by, count = {}, 1, nil, 0
  return function()
    if count >= (opts.limit or math.huge) then return nil end
    while pos > #list do
      local page, err = next_page()
      if page == nil then return nil end
      if page == false then
        count = math.huge
        return false, err
      end
      list, pos = type(page.data) == "table" and page.data or {}, 1
      by = opts.expand and index_includes(page) or nil
    end
    local item = list[pos]
    pos, count = pos + 1, count + 1
    return by and M.expand(item, by) or item
  end
end

return M
