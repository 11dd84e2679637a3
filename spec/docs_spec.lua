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

  it("the LDoc reference builds (make doc)", function()
    local dir = os.tmpname()
    os.remove(dir)
    local ok = os.execute(("cd %s && ldoc -q -d %s . >/dev/null 2>&1"):format(fake.ROOT, dir))
    assert.is_true(ok)
    local f = io.open(dir .. "/modules/scalekit.twitter.html")
    assert.is_not_nil(f)
    local html = f:read("a")
    f:close()
    fake.rmdir(dir)
    assert.matches("upload_media", html)
  end)
end)
