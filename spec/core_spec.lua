-- core_spec.lua - the C core's one failure result: every function of
-- scalekit.core that can fail at run time gives nil, kind, message (the
-- transport adds `sent`), the way lauxlib's fileresult does with the kind
-- first; programmer mistakes raise.

local core = require "scalekit.core"
local fake = require "support.fake"

-- All the values a call returned, with their count.
local function results(f, ...)
  return table.pack(f(...))
end

describe("the C core's failures", function()
  local dir
  before_each(function() dir = fake.tempdir() end)
  after_each(function() fake.rmdir(dir) end)

  local cases = {
    { "json_encode of NaN", function() return core.json_encode({ x = 0 / 0 }, "params") end,
      "invalid", "params.x: cannot encode NaN (JSON has no NaN or infinity)" },
    { "json_decode of a cut document", function() return core.json_decode('{"a":') end,
      "invalid", "invalid JSON: expected a value at end of input" },
    { "unbase64 of a bad byte", function() return core.unbase64("ab!d") end,
      "invalid", "invalid base64 at byte 3" },
    { "atomic_file in a missing directory", function() return core.atomic_file(dir .. "/no/such/t.json") end,
      "io", "cannot create a temporary file for %s/no/such/t.json: No such file or directory" },
    { "write_file_atomic in a missing directory",
      function() return core.write_file_atomic(dir .. "/no/such/t.json", "x") end,
      "io", "cannot create a temporary file for %s/no/such/t.json: No such file or directory" },
    { "lock_file held elsewhere", function()
        local held = assert(core.lock_file(dir .. "/t.lock"))
        local r = table.pack(core.lock_file(dir .. "/t.lock", 0.05))
        held:unlock()
        return table.unpack(r, 1, r.n)
      end, "timeout", "timed out waiting for the lock on %s/t.lock" },
    { "lock_file in a missing directory", function() return core.lock_file(dir .. "/no/t.lock", 0) end,
      "io", "cannot open lock file %s/no/t.lock: No such file or directory" },
    { "read_fd of a closed descriptor", function() return core.read_fd(987, 16) end,
      "io", "Bad file descriptor" },
    { "listener:accept with nobody calling", function()
        local l = assert(core.listen(0))
        local r = table.pack(l:accept(0.2))
        l:close()
        return table.unpack(r, 1, r.n)
      end, "timeout", "timed out waiting for the redirect" },
    { "listen on a port in use", function()
        local l = assert(core.listen(0))
        local r = table.pack(core.listen(l:port()))
        l:close()
        return table.unpack(r, 1, r.n)
      end, "io", "cannot listen on 127.0.0.1: Address already in use" },
  }
  for _, case in ipairs(cases) do
    it("gives nil, kind, message for " .. case[1], function()
      local r = results(case[2])
      assert.equals(3, r.n)
      assert.is_nil(r[1])
      assert.equals(case[3], r[2])
      assert.equals((case[4]:gsub("%%s", dir)), r[3])
    end)
  end

  -- (a request without any header line once failed here as "out of memory")
  it("gives nil, kind, message, sent for a transfer that failed", function()
    local l = assert(core.listen(0))
    local port = l:port()
    l:close()                                          -- nobody listens there now
    local s = core.http_new()
    local r = results(s.request, s, { url = ("http://127.0.0.1:%d/"):format(port), method = "GET",
                                      timeout = 2, connect_timeout = 2, stall_timeout = 2 })
    s:close()
    assert.equals(4, r.n)
    assert.is_nil(r[1])
    assert.equals("network", r[2])
    assert.matches("^Failed to connect to 127%.0%.0%.1 port " .. port, r[3])
    assert.is_false(r[4])
  end)

  it("raises for programmer mistakes instead", function()
    assert.has_error(function() core.json_decode("{}", 0) end)
    assert.has_error(function() core.read_fd(0, 0) end)
    assert.has_error(function() core.listen(70000) end)
    local one_line = "a header line must be a single-line string"
    assert.has_error(function() core.http_lines{ "A: b\r\nEvil: 1" } end, one_line)
    assert.has_error(function() core.http_lines{ "A: b\0c" } end, one_line)
    local s = core.http_new()
    assert.has_error(function()
      s:request{ url = "http://127.0.0.1:1/", method = "GET", auth_line = "Authorization: x\nEvil: 1",
                 timeout = 1, connect_timeout = 1, stall_timeout = 1 }
    end, "auth_line must be a single-line string")
    s:close()
  end)
end)

describe("header sets", function()
  local f
  setup(function() f = fake.start() end)
  teardown(function() f:stop() end)

  -- the header lines of each request the fake got, without those libcurl adds
  local LIBCURL_ADDS = { host = true, accept = true, ["accept-encoding"] = true }
  local function sent_lines()
    local out = {}
    for i, r in ipairs(f:requests("/any")) do
      out[i] = {}
      for _, kv in ipairs(r.headers) do
        local name = kv[1]:lower()
        if not LIBCURL_ADDS[name] then out[i][#out[i] + 1] = kv[1] .. ": " .. kv[2] end
      end
    end
    return out
  end

  it("send their lines in order, the auth line after them, and follow a change of either", function()
    f:clear()
    local s = core.http_new()
    local one, two = core.http_lines{ "X-A: 1", "X-B: 2" }, core.http_lines{ "X-C: 3" }
    local function get(lines, auth)
      assert(s:request{ url = f.url .. "/any", method = "GET", lines = lines, auth_line = auth,
                        timeout = 5, connect_timeout = 5, stall_timeout = 5 })
    end
    get(one, "Authorization: Bearer t1")
    get(one, "Authorization: Bearer t1")               -- the same list again
    get(one, "Authorization: Bearer t2")               -- a new token
    get(two, "Authorization: Bearer t2")               -- another set
    get(two, nil)
    get(nil, nil)
    s:close()
    assert.same({
      { "X-A: 1", "X-B: 2", "Authorization: Bearer t1" },
      { "X-A: 1", "X-B: 2", "Authorization: Bearer t1" },
      { "X-A: 1", "X-B: 2", "Authorization: Bearer t2" },
      { "X-C: 3", "Authorization: Bearer t2" },
      { "X-C: 3" },
      {},
    }, sent_lines())
  end)
end)
