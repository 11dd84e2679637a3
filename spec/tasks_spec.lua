-- scalekit.twitter.tasks: SDK calls side by side in one Lua state, on
-- libcurl's multi interface (core.http_loop), and the same calls blocking
-- as before outside a task.

local fake = require "support.fake"
local tasks = require "scalekit.twitter.tasks"
local core = require "scalekit.core"

describe("tasks", function()
  local f, tw
  fake.per_block(function(a, b) f, tw = a, b end, nil, function(fk)
    fake.connect(fk)
    local c = fake.client(fk)
    assert(c:user_me{})                                    -- the token, fetched once
    return c
  end)

  it("runs calls side by side: five calls that each take 0.6 s finish together", function()
    f:control("config", { latency = 0.6 })
    finally(function() f:control("config", { latency = 0 }) end)
    local sched = tasks.new()
    local ts = {}
    for i = 1, 5 do ts[i] = sched:spawn(function(n) return tw:user_lookup{ id = tostring(2244994945 + n) } end, i) end
    local t0 = core.monotonic()
    sched:run()
    local took = core.monotonic() - t0
    sched:close()
    for i = 1, 5 do
      assert.is_true(ts[i].done)
      assert.is_table(ts[i].results[1], tostring(ts[i].error))
    end
    local calls = f:requests("/api/v1/execute_tool")
    assert.equals(5, #calls)
    assert.is_true(took < 2.4, "five 0.6 s calls took " .. took .. " s: not side by side")
  end)

  it("gives each task its own answer, in its own order", function()
    f:script{ path = "/api/v1/execute_tool", match = '"query":"slow"', delay = 0.5,
              json = { data = { which = "slow" }, execution_id = "e1" } }
    f:script{ path = "/api/v1/execute_tool", match = '"query":"fast"',
              json = { data = { which = "fast" }, execution_id = "e2" } }
    local sched = tasks.new()
    local finished = {}
    local function search(q)
      local d = tw:recent_search{ query = q }
      finished[#finished + 1] = q
      return d
    end
    local slow = sched:spawn(search, "slow")
    local fast = sched:spawn(search, "fast")
    sched:run()
    sched:close()
    assert.same({ "fast", "slow" }, finished)
    assert.same({ which = "slow" }, slow.results[1])
    assert.same({ which = "fast" }, fast.results[1])
  end)

  it("a wait inside a task (retry backoff) lets the others run", function()
    f:script{ path = "/api/v1/execute_tool", match = '"query":"retry"', status = 503,
              json = { code = 14, message = "down" } }
    local sched = tasks.new()
    local order = {}
    sched:spawn(function() assert(tw:recent_search{ query = "retry" }); order[#order + 1] = "retried" end)
    sched:spawn(function() assert(tw:recent_search{ query = "other" }); order[#order + 1] = "other" end)
    sched:run()
    sched:close()
    assert.same({ "other", "retried" }, order)
    assert.equals(3, #f:requests("/api/v1/execute_tool"))
  end)

  it("cancel aborts a transfer in flight at once, and the task never resumes", function()
    f:script{ path = "/api/v1/execute_tool", delay = 3, json = { data = {} } }
    local sched = tasks.new()
    local resumed = false
    local t = sched:spawn(function() tw:user_me{}; resumed = true end)
    local t0 = core.monotonic()
    while #f:requests("/api/v1/execute_tool") == 0 and core.monotonic() - t0 < 2 do sched:step(0.05) end
    sched:cancel(t)
    sched:run()
    sched:close()
    assert.is_true(t.done and t.cancelled)
    assert.equals("cancelled", t.error)
    assert.is_false(resumed)
    assert.is_true(core.monotonic() - t0 < 2)
  end)

  it("a task that raises ends with its error; the others go on", function()
    local sched = tasks.new()
    local bad = sched:spawn(function() error("boom", 0) end)
    local good = sched:spawn(function() return tw:user_me{} end)
    sched:run()
    sched:close()
    assert.equals("boom", bad.error)
    assert.is_table(good.results[1])
  end)

  it("park and wake hand a value to a waiting task; sleep waits without blocking the loop", function()
    local sched = tasks.new()
    local got
    local waiter = sched:spawn(function() got = tasks.park() end)
    local sleeper = sched:spawn(function() tasks.sleep(0.2); return "slept" end)
    sched:step(0)
    sched:wake(waiter, "hello")
    sched:run()
    sched:close()
    assert.equals("hello", got)
    assert.equals("slept", sleeper.results[1])
    assert.has_error(function() tasks.park() end, "scalekit.twitter.tasks.park: not in a task")
  end)

  it("outside a task the same calls block as before, and a scheduler left open changes nothing", function()
    local sched = tasks.new()
    local data = assert(tw:user_me{})
    assert.is_table(data.data)
    sched:close()
    assert.equals(0, tasks.active)
  end)
end)
