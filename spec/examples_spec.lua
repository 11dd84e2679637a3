-- The examples run against the bundled sandbox, as `make run` does.

local fake = require "support.fake"

describe("examples/quickstart.lua", function()
  it("runs against the sandbox: who am I, post, search", function()
    local p = assert(io.popen(("cd %s && env -u SCALEKIT_CLIENT_SECRET sh scripts/run-quickstart.sh "
      .. "'sandbox hello' 2>&1"):format(fake.ROOT)))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.matches("Signed in as @sandbox_user %(Sandbox User%), id 1720000000000000001", out)
    assert.matches("Posted 1720000000000000101 %(execution exec_%d+%): sandbox hello", out)
    assert.matches('Recent search for "sandbox": 1 result%(s%)\n  1720000000000000101  sandbox hello', out)
  end)
end)
