-- Installing: `luarocks make` into a tree and `make install PREFIX=...` both
-- give a module that loads from any directory.

local fake = require "support.fake"
local V = require("scalekit.twitter")._VERSION
local ROCKSPEC = ("scalekit-twitter-%s-1.rockspec"):format(V)

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
    local ok, out = run(("cd %s && luarocks --lua-version=5.4 --tree=%s make " .. ROCKSPEC)
      :format(fake.ROOT, tree))
    assert.is_true(ok, out)
    local ok2, out2 = require_from(tree)
    assert.is_true(ok2, out2)
    assert.equals(V .. "\t80\t" .. tree .. "/share/lua/5.4/scalekit/twitter.lua\n", out2)
    local ok3, out3 = run(("cd / && env -u LUA_PATH -u LUA_CPATH %s/bin/scalekit-lua --tools | wc -l"):format(tree))
    assert.is_true(ok3, out3)
    assert.equals("80", out3:match("%d+"))
  end)

  -- The rockspec's source is the release tag on GitHub, which cannot be
  -- fetched here: the one change is pointing it at a tarball of this tree.
  it("luarocks pack, install of the packed rock and luarocks test work", function()
    local src = tmp .. "/scalekit-twitter-" .. V
    local ok, out = run(("cd %s && mkdir -p %s && git ls-files -co --exclude-standard -z "
      .. "| xargs -0 sh -c 'for f; do [ -e \"$f\" ] && printf \"%%s\\n\" \"$f\"; done' _ "
      .. "| tar -cf - -T - | tar -xf - -C %s && tar -czf %s.tar.gz -C %s scalekit-twitter-" .. V)
      :format(fake.ROOT, src, src, src, tmp))
    assert.is_true(ok, out)
    local spec = fake.read(fake.ROOT .. "/" .. ROCKSPEC)
    local tag = 'url = "git%+https://[^"]+",\n%s*tag = "v' .. (V:gsub("%.", "%%.")) .. '",'
    local here, n = spec:gsub(tag, ('url = "file://%s.tar.gz",'):format(src))
    assert.equals(1, n)
    fake.write(tmp, ROCKSPEC, here)
    ok, out = run(("cd %s && luarocks --lua-version=5.4 pack " .. ROCKSPEC):format(tmp))
    assert.is_true(ok, out)
    local rock = tmp .. "/scalekit-twitter-" .. V .. "-1.src.rock"
    ok, out = run("unzip -l " .. rock)
    assert.is_true(ok, out)
    assert.is_nil(out:find("__pycache__", 1, true))
    assert.is_nil(out:find("%.so\n"))
    local tree = tmp .. "/packed"
    ok, out = run(("cd %s && luarocks --lua-version=5.4 --tree=%s install %s"):format(tmp, tree, rock))
    assert.is_true(ok, out)
    local ok2, out2 = require_from(tree)
    assert.is_true(ok2, out2)
    assert.equals(V .. "\t80\t" .. tree .. "/share/lua/5.4/scalekit/twitter.lua\n", out2)
    -- LuaRocks deploys bin/, lua/ and lib/; the manual page stays in the rock's directory
    local rock_dir = ("%s/lib/luarocks/rocks-5.4/scalekit-twitter/%s-1"):format(tree, V)
    assert.is_not_nil(io.open(rock_dir .. "/share/man/man1/scalekit-lua.1"))
    -- luarocks test in the unpacked rock runs `make test` (one spec file
    -- here: make takes SPECS from the environment)
    ok, out = run(("cd %s && luarocks --lua-version=5.4 unpack %s && cd scalekit-twitter-%s-1/scalekit-twitter-%s "
      .. "&& SPECS=spec/tools_spec.lua luarocks --lua-version=5.4 test ../%s"):format(tmp, rock, V, V, ROCKSPEC))
    assert.is_true(ok, out)
    assert.matches("\n%d+ passed, 0 failed\n", out)
  end)

  it("make install PREFIX=DIR installs a working module without LuaRocks", function()
    local prefix = tmp .. "/prefix"
    local ok, out = run(("make -s -C %s install PREFIX=%s"):format(fake.ROOT, prefix))
    assert.is_true(ok, out)
    local ok2, out2 = require_from(prefix)
    assert.is_true(ok2, out2)
    assert.equals(V .. "\t80\t" .. prefix .. "/share/lua/5.4/scalekit/twitter.lua\n", out2)
    local ok3, out3 = run(("cd / && %s/bin/scalekit-lua -e 'print(require(\"scalekit.twitter\")._VERSION)'")
      :format(prefix))
    assert.is_true(ok3, out3)
    assert.equals(V .. "\n", out3)
    -- the manual page and the bash completion
    local ok4, out4 = run(("MANWIDTH=80 man -l %s/share/man/man1/scalekit-lua.1 | head -4"):format(prefix))
    assert.is_true(ok4, out4)
    assert.matches("scalekit%-lua%s+%- Lua 5%.4 with the Scalekit Twitter / X SDK", out4)
    assert.equals(fake.read(fake.ROOT .. "/docs/scalekit-lua.bash"),
                  fake.read(prefix .. "/share/bash-completion/completions/scalekit-lua"))
  end)

  it("the Makefile links the module as a bundle on macOS and as a shared object on Linux", function()
    local function dry(uname)
      return select(2, run(("make -s -C %s -n -B UNAME_S=%s build/scalekit/core.so bin/scalekit-lua")
        :format(fake.ROOT, uname)))
    end
    local mac, linux = dry("Darwin"), dry("Linux")
    assert.matches("\n[^\n]*%-bundle %-undefined dynamic_lookup [^\n]*%-o build/scalekit/core%.so ", mac)
    assert.is_nil(mac:find("-ldl", 1, true))
    assert.matches("\n[^\n]*%-shared [^\n]*%-o build/scalekit/core%.so ", linux)
    assert.matches("%-o bin/scalekit%-lua [^\n]*%-ldl", linux)
  end)
end)

