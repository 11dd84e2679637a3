-- Installing: `luarocks make` into a tree and `make install PREFIX=...` both
-- give a module that loads from any directory.

local fake = require "support.fake"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function require_from(tree, lua_dir)
  return run(("cd / && env -u LUA_PATH -u LUA_CPATH LUA_PATH='%s/share/lua/5.4/?.lua;;' "
    .. "LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e 'local t = require(\"scalekit.twitter\"); "
    .. "print(t._VERSION, #t.tools(), package.searchpath(\"scalekit.twitter\", package.path))'"):format(
    tree, tree, lua_dir))
end

describe("installation", function()
  if os.getenv("SCALEKIT_SANITIZED") then
    pending("installs build without sanitizers; skipped in the ASan run")
    return
  end
  local tmp
  setup(function()
    tmp = fake.tempdir()
  end)
  teardown(function() fake.rmdir(tmp) end)

  it("luarocks --lua-version=5.4 --tree=DIR make installs a working module", function()
    local tree = tmp .. "/rocks"
    local ok, out = run(("cd %s && luarocks --lua-version=5.4 --tree=%s make scalekit-twitter-0.1.0-1.rockspec")
      :format(fake.ROOT, tree))
    assert.is_true(ok, out)
    local ok2, out2 = require_from(tree)
    assert.is_true(ok2, out2)
    assert.equals("0.1.0\t80\t" .. tree .. "/share/lua/5.4/scalekit/twitter.lua\n", out2)
    local ok3, out3 = run(("cd / && env -u LUA_PATH -u LUA_CPATH %s/bin/scalekit-lua --tools | wc -l"):format(tree))
    assert.is_true(ok3, out3)
    assert.equals("80", out3:match("%d+"))
  end)

  it("make install PREFIX=DIR installs a working module without LuaRocks", function()
    local prefix = tmp .. "/prefix"
    local ok, out = run(("make -s -C %s install PREFIX=%s"):format(fake.ROOT, prefix))
    assert.is_true(ok, out)
    local ok2, out2 = require_from(prefix)
    assert.is_true(ok2, out2)
    assert.equals("0.1.0\t80\t" .. prefix .. "/share/lua/5.4/scalekit/twitter.lua\n", out2)
    local ok3, out3 = run(("cd / && %s/bin/scalekit-lua -e 'print(require(\"scalekit.twitter\")._VERSION)'")
      :format(prefix))
    assert.is_true(ok3, out3)
    assert.equals("0.1.0\n", out3)
  end)
end)
