--- The client methods that make many requests: the pages and items of a
-- paginating tool, concurrent batches, media uploads from files, and
-- (direct mode) streams.  Installed on the client method tables by
-- scalekit.twitter, which keeps the clients' private state.
-- @module scalekit.twitter.bulk

local errors = require "scalekit.twitter.errors"
local tools = require "scalekit.twitter.tools"
local options = require "scalekit.twitter.options"
local call = require "scalekit.twitter.call"
local invoke = require "scalekit.twitter.invoke"
local paging = require "scalekit.twitter.paging"
local media = require "scalekit.twitter.media"
local stream = require "scalekit.twitter.stream"

local M = {}

--- Put the methods on `Client` (every client) and `Direct` (direct-mode
-- clients only).  `env` gives `state` (client -> its state record),
-- `check_client(self, method, level)` and `check_table(v, what, level)`.
function M.install(Client, Direct, env)
  local state, check_client, check_table = env.state, env.check_client, env.check_table

  -- opts with the client's on_page hook filled in when the caller set none.
  local function with_page_hook(self, opts)
    local hook = state[self].hooks.on_page
    if hook == nil or (opts and opts.on_page ~= nil) then return opts end
    local o = { on_page = hook }
    for k, v in pairs(opts or {}) do o[k] = v end
    return o
  end

  -- The tool for a paging call; raises for tools that do not paginate.
  local function paging_tool(name)
    local tool = tools.get(name)
    if not tool then
      local _, err = tools.lookup(name)
      error("scalekit.twitter: " .. err.message, 3)
    end
    if not tool.paginate then
      error(("scalekit.twitter: %s does not paginate"):format(tool.name), 3)
    end
    return tool
  end

  local COUNT = { kind = "count", min = 1, max = math.maxinteger }
  local PAGES_OPTIONS = { limit = COUNT, on_page = { kind = "function" } }
  local ITEMS_OPTIONS = { limit = COUNT, pages = COUNT, expand = { kind = "boolean" }, on_page = { kind = "function" } }
  local BATCH_OPTIONS = { concurrency = { kind = "count", min = 1, max = 64 } }
  local BATCH_MAX_CALLS = 10000
  local STREAM_OPTIONS = { reconnect = { kind = "boolean" }, sleep = { kind = "function" } }
  local UPLOAD_OPTIONS = { file = { kind = "string" }, media_type = { kind = "string" },
                           media_category = { kind = "string" }, on_progress = { kind = "function" },
                           chunk_size = { kind = "count", min = 1, max = 5 * 1024 * 1024 },
                           on_wait = { kind = "function" } }

  -- Raise (blaming the caller's caller) unless opts is nil or a table of the
  -- per-call options plus `extra`.
  local function check_call_options(self, opts, what, extra)
    check_table(opts, what .. " options", 3)
    if opts ~= nil then options.check(opts, "scalekit.twitter: " .. what, 3, extra, true, self.mode) end
  end

  --- Iterate over the pages of a paginating tool.
  --
  -- `for page, err in tw:pages("twitter_followers_get", { id = "..." }, { limit = 10 }) do ... end`.
  -- A failure gives `false, err` once, then the loop ends.  `page.meta.next_token`
  -- can be saved and passed back in the input to resume.
  -- @tparam string name tool name
  -- @tparam table input the tool's parameters
  -- @tparam[opt] table opts `limit` (pages) and per-call options
  function Client:pages(name, input, opts)
    check_client(self, "pages")
    check_table(input, "pages input", 2)
    check_call_options(self, opts, "pages", PAGES_OPTIONS)
    return paging.pages(self, paging_tool(name), input, with_page_hook(self, opts))
  end

  --- Iterate over the items of every page (`data` entries).
  --
  -- `for item, err in tw:items("twitter_recent_search", { query = "lua" }, { limit = 500 }) do ... end`.
  -- @tparam string name tool name
  -- @tparam table input the tool's parameters
  -- @tparam[opt] table opts `limit` (items), `pages` (pages), `expand = true` joins
  --   `includes` onto each item (`author`, `media`, `referenced`, `pinned_tweet`),
  --   and per-call options
  function Client:items(name, input, opts)
    check_client(self, "items")
    check_table(input, "items input", 2)
    check_call_options(self, opts, "items", ITEMS_OPTIONS)
    return paging.items(self, paging_tool(name), input, with_page_hook(self, opts))
  end

  --- Run many tool calls concurrently over the client's connection pool.
  -- @tparam table calls array of `{ name, input [, opts] }`: an entry's own
  --   `opts` may name its account (`identifier`, ...; Scalekit mode)
  -- @tparam[opt] table opts `concurrency` (default 8, at most 64) and per-call options
  -- @return array of `{ data =, info =, err = }` in input order
  function Client:batch(calls, opts)
    check_client(self, "batch")
    if type(calls) ~= "table" then error("scalekit.twitter: batch expects an array of { name, input }", 2) end
    if #calls > BATCH_MAX_CALLS then
      error(("scalekit.twitter: batch takes at most %d calls"):format(BATCH_MAX_CALLS), 2)
    end
    check_call_options(self, opts, "batch", BATCH_OPTIONS)
    opts = opts or {}
    local st, results, jobs, slot = state[self], {}, {}, {}
    for i, c in ipairs(calls) do
      local name, input, own = c[1], c[2], c[3]
      if own ~= nil then
        check_table(own, "batch entry options", 2)
        options.check(own, "scalekit.twitter: batch entry " .. i, 2, nil, true, self.mode)
      end
      local tool, params, ctx, err
      if type(input) ~= "table" and input ~= nil then
        err = errors.new("invalid_input", tostring(name) .. ": input must be a table")
      else
        tool, err = tools.lookup(name)
        if tool then input, err = invoke.before(self, st, tool.name, input, own or opts) end
        if tool and input then
          params, ctx = invoke.prepare(self, st, tool, input, own or opts)
          if not params then err = ctx end
        end
      end
      if err then
        results[i] = { err = err }
      else
        jobs[#jobs + 1], slot[#jobs + 1] = { tool = tool, params = params, ctx = ctx }, i
      end
    end
    local out = call.batch(state[self].backend, jobs, options.call_options(opts, { concurrency = true }),
                           opts.concurrency or 8)
    for k, r in ipairs(out) do
      if r.data ~= nil then
        local data, info = invoke.after(st, jobs[k].tool.name, r.data, r.info)
        r = data ~= nil and { data = data, info = info } or { err = info }
      end
      results[slot[k]] = r
    end
    return results
  end

  --- Upload a media file; picks one-shot or chunked upload from the file.
  -- @tparam table opts `file` (required), `media_type`, `media_category`,
  --   `on_progress(sent, total)`, `chunk_size`, `on_wait`
  -- @return media_id, media or nil, err
  function Client:upload_media(opts)
    check_client(self, "upload_media")
    if type(opts) ~= "table" or type(opts.file) ~= "string" then
      error("scalekit.twitter: upload_media expects { file = path, ... }", 2)
    end
    options.check(opts, "scalekit.twitter: upload_media", 2, UPLOAD_OPTIONS, true, self.mode)
    local hook = state[self].hooks.on_progress
    if opts.on_progress == nil and hook then
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.on_progress = hook
      opts = o
    end
    return media.upload(self, opts)
  end

  --- Read a streaming tool (direct mode): `on_event(event)` is called for each
  -- event while it returns true; the stream reconnects with X's backoff.
  -- @tparam string name e.g. "twitter_tweet_label_stream"
  -- @tparam table input the tool's parameters
  -- @tparam function on_event
  -- @tparam[opt] table opts `reconnect` (default true), `sleep`, and per-call options
  -- @return the number of events delivered, or nil, err
  function Direct:stream(name, input, on_event, opts)
    check_client(self, "stream")
    check_table(input, "stream input", 2)
    if type(on_event) ~= "function" then error("scalekit.twitter: stream needs an on_event function", 2) end
    check_call_options(self, opts, "stream", STREAM_OPTIONS)
    local tool, err = tools.lookup(name)
    if not tool then return nil, err end
    local params
    params, err = tools.validate(tool, input or {})
    if not params then return nil, err end
    return stream.read(state[self].backend, tool, params, on_event, opts)
  end
end

return M
