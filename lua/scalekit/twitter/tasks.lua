--- Tasks: SDK calls that run side by side in one Lua state.
--
-- A scheduler runs tasks (coroutines).  Inside a task, every HTTP transfer
-- and every wait of the SDK (retry backoff, rate-limit waits, media
-- processing) suspends the task instead of blocking: the scheduler's loop
-- (libcurl's multi interface, `core.http_loop`) moves all transfers on at
-- once, and can watch one more descriptor (stdin, for the MCP server).
-- Outside a task nothing changes: the same calls block as before.
--
--     local sched = tasks.new()
--     local a = sched:spawn(function() return tw:user_me{} end)
--     local b = sched:spawn(function() return tw:recent_search{ query = "lua" } end)
--     sched:run()                          -- until every task is done
--     print(a.results[1], b.results[1])
--
-- A task can be cancelled (`sched:cancel(task)`): its transfer is aborted
-- at once and it never resumes.  A task that raises ends with `task.error`.
-- @module scalekit.twitter.tasks

local core = require "scalekit.core"

local M = {}

-- The task of each task coroutine (weak: a finished task goes); a task
-- knows its scheduler.
local owner = setmetatable({}, { __mode = "k" })

--- How many schedulers exist that may own the running coroutine (0: the
-- fast path of `perform` and `sleep` needs no lookup).
M.active = 0

M.MAX_TASKS = 256           -- tasks in flight at once (the loop's transfer cap)

local Sched = {}
Sched.__index = Sched

--- A scheduler.
-- @treturn table
function M.new()
  M.active = M.active + 1
  return setmetatable({
    loop = core.http_loop(), tasks = {}, by_transfer = {}, sleepers = {}, ready = {}, n = 0,
  }, Sched)
end

--- Start `fn(...)` as a task; it runs at the scheduler's next step.
-- @return the task `{ done =, results =, error = }` (results: table.pack of what fn returned)
function Sched:spawn(fn, ...)
  if self.n >= M.MAX_TASKS then error("scalekit.twitter.tasks: too many tasks in flight", 2) end
  local args = table.pack(...)
  local task = { co = coroutine.create(function() return fn(table.unpack(args, 1, args.n)) end), done = false,
                 sched = self }
  owner[task.co] = task
  self.tasks[task] = true
  self.n = self.n + 1
  self.ready[#self.ready + 1] = { task, table.pack() }
  return task
end

-- Ends `task` (its results or its error).
local function finish(self, task, ok, ...)
  task.done = true
  if ok then task.results = table.pack(...) else task.error = ... end
  self.tasks[task] = nil
  self.n = self.n - 1
  if task.on_done then task.on_done(task) end
end

-- Resumes `task` with the values in `args` (a table.pack), and files what
-- it waits for next.
local function resume(self, task, args)
  if task.done then return end
  local r = table.pack(coroutine.resume(task.co, table.unpack(args, 1, args.n)))
  if coroutine.status(task.co) == "dead" then
    return finish(self, task, table.unpack(r, 1, r.n))
  end
  local what = r[2]
  if what == "transfer" then
    task.transfer = r[3]
    self.by_transfer[r[3]] = task
  elseif what == "sleep" then
    task.wake = core.monotonic() + r[3]
    self.sleepers[task] = true
  elseif what == "park" then
    task.parked = true                         -- until `wake`
  else                                         -- a yield that is not ours: resume it at once
    self.ready[#self.ready + 1] = { task, table.pack() }
  end
end

--- Resume a parked task (see `park`) with the values given.
function Sched:wake(task, ...)
  if task.done or not task.parked then return end
  task.parked = nil
  self.ready[#self.ready + 1] = { task, table.pack(...) }
end

--- Cancel `task`: its transfer is aborted and it never resumes (a task
-- that is done is left as it is).
function Sched:cancel(task)
  if task.done then return end
  if task.transfer then
    self.loop:cancel(task.transfer)
    self.by_transfer[task.transfer] = nil
  end
  self.sleepers[task] = nil
  coroutine.close(task.co)
  task.cancelled = true
  finish(self, task, false, "cancelled")
end

--- Run what is ready, then wait at most `timeout` seconds for a transfer to
-- end, a sleeper to wake or (with `fd`) that descriptor to become readable.
-- @return true when fd is readable
function Sched:step(timeout, fd)
  while #self.ready > 0 do
    local ready = self.ready
    self.ready = {}
    for _, r in ipairs(ready) do resume(self, r[1], r[2]) end
  end
  local now = core.monotonic()
  local wait = timeout or 1
  for task in pairs(self.sleepers) do
    if task.wake - now < wait then wait = math.max(task.wake - now, 0) end
  end
  local done, readable = self.loop:wait(wait, fd)
  for _, d in ipairs(done) do
    local task = self.by_transfer[d.id]
    if task then
      self.by_transfer[d.id], task.transfer = nil, nil
      if d.status then
        resume(self, task, table.pack(d.status, d.headers, d.body, d.seconds))
      else
        resume(self, task, table.pack(nil, d.error, d.message, d.sent))
      end
    end
  end
  now = core.monotonic()
  for task in pairs(self.sleepers) do
    if task.wake <= now then
      self.sleepers[task] = nil
      resume(self, task, table.pack(true))
    end
  end
  return readable
end

--- Run until every task is done (each step waits at most a second).
function Sched:run()
  while self.n > 0 or #self.ready > 0 do self:step(1) end
end

--- Tasks in flight.
function Sched:count() return self.n end

--- Close the scheduler: every task still in flight is cancelled.
function Sched:close()
  for task in pairs(self.tasks) do self:cancel(task) end
  if self.loop then
    self.loop:close()
    self.loop = nil
    M.active = M.active - 1
  end
end

-- The running task and its scheduler, when the running coroutine is one.
local function running_task()
  if M.active == 0 then return nil end
  local co, main = coroutine.running()
  if main then return nil end
  local task = owner[co]
  if task and not task.done then return task, task.sched end
  return nil
end

-- The scheduler of the running coroutine, when it is a task.
local function current()
  local _, sched = running_task()
  return sched
end
M.current = current

--- One HTTP request on `session` (see core.http_new): inside a task it
-- suspends the task until the transfer ends, elsewhere it blocks.
-- @return status, headers, body, seconds or nil, kind, message, sent
function M.perform(session, creq)
  local sched = current()
  if not sched then return session:request(creq) end
  local id = sched.loop:start(session, creq)
  return coroutine.yield("transfer", id)
end

--- Suspend the running task until someone calls `sched:wake(task, ...)`;
-- returns what wake passed.  Raises outside a task.
function M.park()
  if not current() then error("scalekit.twitter.tasks.park: not in a task", 2) end
  return coroutine.yield("park")
end

--- The running task's record and its scheduler (nil outside a task).
M.running = running_task

--- Wait `seconds`: inside a task it suspends the task, elsewhere it sleeps
-- (core.sleep: true, or nil, "interrupted").
function M.sleep(seconds)
  local sched = current()
  if not sched then return core.sleep(seconds) end
  return coroutine.yield("sleep", seconds)
end

return M
