-- scripts/deps.sh: installs what a target needs, and without root or sudo
-- says exactly what is missing and how to install it.
local fake = require "support.fake"

local SCRIPT = fake.ROOT .. "/scripts/deps.sh"

-- Run deps.sh with `args` on a PATH holding only `bin`; returns exit code, stderr.
local function deps(bin, args)
  local errf = os.tmpname()
  local rc = select(3, os.execute(("PATH=%s /bin/sh %s %s 2>%s >/dev/null"):format(bin, SCRIPT, args, errf)))
  local err = assert(io.open(errf)):read("a")
  os.remove(errf)
  return rc, err
end

describe("deps.sh", function()
  local bin
  setup(function()
    -- a user without root and without sudo: `id -u` says 1000; apt-get is
    -- there but must never be run
    bin = fake.tempdir()
    for _, tool in ipairs{ "dpkg-query", "grep" } do
      local path = io.popen("command -v " .. tool):read("l")
      assert(os.execute(("ln -s %s %s/%s"):format(path, bin, tool)))
    end
    local function script(name, body)
      local f = assert(io.open(bin .. "/" .. name, "w"))
      f:write("#!/bin/sh\n", body, "\n")
      f:close()
      assert(os.execute("chmod +x " .. bin .. "/" .. name))
    end
    script("id", "echo 1000")
    script("apt-get", "echo 'apt-get was run' >&2; exit 99")
  end)
  teardown(function() fake.rmdir(bin) end)

  it("does nothing when every package is there", function()
    assert.same({ 0, "" }, { deps(bin, "dpkg") })
  end)

  it("names what is missing and the exact command, and fails, without root or sudo", function()
    local rc, err = deps(bin, "dpkg scalekit-no-such-package")
    assert.equals(1, rc)
    assert.equals("deps: missing packages: scalekit-no-such-package (not root, and there is no sudo)\n"
      .. "deps: install them with: su -c 'apt-get update && apt-get install -y --no-install-recommends "
      .. "scalekit-no-such-package'\n", err)
  end)

  it("goes on without optional packages it cannot install", function()
    local rc, err = deps(bin, "--optional scalekit-no-such-package")
    assert.equals(0, rc)
    assert.matches("deps: they are optional here: going on without them\n$", err)
    assert.is_nil(err:find("apt-get was run", 1, true))
  end)

  it("checks nothing on a system without dpkg (macOS), and goes on", function()
    local bare = fake.tempdir()
    local rc, err = deps(bare, "lua5.4 libcurl4-openssl-dev")
    fake.rmdir(bare)
    assert.equals(0, rc)
    assert.equals("deps: not a Debian system: not checking for lua5.4 libcurl4-openssl-dev\n", err)
  end)
end)

