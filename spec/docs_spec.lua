-- The docs tell the truth: the tool reference matches the catalog, the README
-- names every public function, and the LDoc reference builds.

local twitter = require "scalekit.twitter"
local tools = require "scalekit.twitter.tools"
local fake = require "support.fake"

local function read(path) return assert(io.open(fake.ROOT .. "/" .. path)):read("a") end

describe("documentation", function()
  it("docs/TOOLS.md is what the catalog generates (make tools-doc)", function()
    local p = assert(io.popen(("cd %s && bin/scalekit-lua --no-env scripts/gen_tools_md.lua"):format(fake.ROOT)))
    local generated = p:read("a")
    assert.is_true(p:close())
    assert.equals(generated, read("docs/TOOLS.md"))
    local rows = select(2, generated:gsub("\n| `", ""))
    assert.equals(80, rows)
  end)

  it("the README shows every public method and module function", function()
    local readme = read("README.md")
    local missing = {}
    -- the methods of each mode's clients (their metatables' method tables)
    local clients = { twitter.new{ env_url = "http://127.0.0.1:1", client_id = "c", client_secret = "s" },
                      twitter.new{ mode = "direct", access_token = "a" } }
    local seen = {}
    for _, tw in ipairs(clients) do
      for name, v in pairs(getmetatable(tw).__index) do
        if type(v) == "function" and not tools.get(name) and not seen[name]
           and not readme:find("tw:" .. name, 1, true) then
          seen[name] = true
          missing[#missing + 1] = "tw:" .. name
        end
      end
      tw:close()
    end
    for name, v in pairs(twitter) do
      if type(v) == "function" and not tools.get(name) and not readme:find("twitter." .. name, 1, true) then
        missing[#missing + 1] = "twitter." .. name
      end
    end
    for name, v in pairs(twitter.oauth2) do
      if type(v) == "function" and not readme:find("twitter.oauth2." .. name, 1, true)
         and name ~= "pkce" and name ~= "same_secret" then
        missing[#missing + 1] = "twitter.oauth2." .. name
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("the LDoc reference builds without a warning, in markdown, for the public modules only", function()
    local dir = fake.tempdir()
    local p = assert(io.popen(("cd %s && sh scripts/doc.sh %s 2>&1"):format(fake.ROOT, dir)))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.equals("API reference in " .. dir .. "/index.html\n", out)
    local modules = {}
    for name in io.popen("ls " .. dir .. "/modules"):lines() do modules[#modules + 1] = name end
    assert.same({ "scalekit.twitter.accounts.html", "scalekit.twitter.bulk.html", "scalekit.twitter.errors.html",
                  "scalekit.twitter.html", "scalekit.twitter.oauth2.html", "scalekit.twitter.progress.html" }, modules)
    local html = fake.read(dir .. "/modules/scalekit.twitter.html")
    assert.matches("Client:execute", html, 1, true)
    assert.is_nil(html:find("`", 1, true))
    local bulk = fake.read(dir .. "/modules/scalekit.twitter.bulk.html")
    assert.matches("Client:upload_media", bulk, 1, true)
    assert.matches("<code>limit</code>", bulk, 1, true)          -- markdown rendered, not raw backticks
    assert.is_nil(bulk:find("`", 1, true))
    local readme = fake.read(dir .. "/topics/README.md.html")
    assert.matches("<pre>\nmake run ", readme, 1, true)      -- README's code blocks are blocks
    assert.matches("<td> <code>post_create</code> </td>", fake.read(dir .. "/topics/TOOLS.md.html"), 1, true)
    fake.rmdir(dir)
  end)

  it("scripts/doc.sh fails on an LDoc warning and prints it", function()
    local dir = fake.tempdir()
    local copy = dir .. "/src"
    local parts = {}
    for i, name in ipairs{ "config.ld", "lua", "scripts", "docs", "README.md", "BENCHMARKS.md", "CHANGELOG.md" } do
      parts[i] = fake.ROOT .. "/" .. name
    end
    assert(os.execute(("mkdir -p %s && cp -r %s %s/"):format(copy, table.concat(parts, " "), copy)))
    local f = assert(io.open(copy .. "/lua/scalekit/twitter/progress.lua", "a"))
    f:write("\n--- A function with a wrong parameter name.\n-- @param nope what\nlocal function _bad(x) return x end\n")
    f:close()
    local p = assert(io.popen(("sh %s/scripts/doc.sh %s/out 2>&1"):format(copy, dir)))
    local out = p:read("a")
    local ok = p:close()
    fake.rmdir(dir)
    assert.is_falsy(ok)
    assert.matches("progress.lua:%d+: .*mismatch: 'nope' 'x'", out)
    local last = "make doc: LDoc warned (above); fix the comments\n"
    assert.equals(last, out:sub(-#last))
  end)
end)

describe("the release", function()
  it("has one version: the module, the rockspec, its tag, the CHANGELOG and the man page", function()
    local v = assert(read("src/core.h"):match('#define SCALEKIT_VERSION "([%d%.]+)"'))
    assert.equals(v, twitter._VERSION)
    local rockspec = read(("scalekit-twitter-%s-1.rockspec"):format(v))
    assert.equals(v .. "-1", rockspec:match('\nversion = "([^"]+)"'))
    assert.equals("v" .. v, rockspec:match('tag = "([^"]+)"'))
    -- the newest entry is this release, dated
    assert.equals(v, read("CHANGELOG.md"):match("\n## (%d+%.%d+%.%d+) %(%d%d%d%d%-%d%d%-%d%d%)\n"))
    assert.equals(v, read("docs/scalekit-lua.1"):match('\n%.TH [^\n]* "scalekit%-twitter ([%d%.]+)"'))
    local p = assert(io.popen("ls " .. fake.ROOT .. "/*.rockspec"))
    local all = p:read("a")
    p:close()
    assert.equals(fake.ROOT .. ("/scalekit-twitter-%s-1.rockspec\n"):format(v), all)
  end)
end)
