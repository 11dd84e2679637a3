-- The JSON codec of the C core: exact integers, IDs, null, [] vs {}, UTF-8,
-- and errors that name the path.

local twitter = require "scalekit.twitter"
local fake = require "support.fake"

local encode, decode = twitter.json.encode, twitter.json.decode

describe("JSON encoding", function()
  it("writes integers with every digit up to 2^63-1", function()
    assert.equals('{"big":9223372036854775807,"min":-9223372036854775808,"n":12345678901}',
      encode{ big = math.maxinteger, min = math.mininteger, n = 12345678901 })
  end)

  it("writes floats in the fewest digits that read back exactly, keeping them floats", function()
    assert.equals("[0.1,1.5,10.0,1e+300,0.3333333333333333,-0.0]",
      encode{ 0.1, 1.5, 10.0, 1e300, 1 / 3, -0.0 })
  end)

  it("sorts object keys so the same table always gives the same bytes", function()
    assert.equals('{"a":1,"b":2,"c":{"x":true,"y":false}}',
      encode{ c = { y = false, x = true }, b = 2, a = 1 })
  end)

  it("escapes quotes, backslashes and control characters and keeps UTF-8 as is", function()
    assert.equals([["q\"b\\n\nt\tc\u0001é😀"]], encode("q\"b\\n\nt\tc\1é😀"))
  end)

  it("writes marked empty tables as [] or {} and unmarked ones as {}", function()
    assert.equals('{"a":[],"o":{},"u":{}}',
      encode{ a = twitter.array(), o = twitter.object(), u = {} })
  end)

  it("writes twitter.null as null", function()
    assert.equals('[1,null,"x"]', encode{ 1, twitter.null, "x" })
  end)

  local failures = {
    { "NaN", { poll_options = { "a", 0 / 0 } }, "params.poll_options[2]: cannot encode NaN" },
    { "infinity", { x = { y = math.huge } }, "params.x.y: cannot encode infinity" },
    { "a cycle", (function() local t = { a = {} }; t.a.b = t; return t end)(),
      "params.a.b: table contains itself (cycle)" },
    { "a non-string key", { [true] = 1 }, "params: object key must be a string, got boolean" },
    { "a float key", { [1.5] = 1 }, "params: object key must be a string, got number" },
    { "a sparse array", { 1, nil, 3 }, "params: array has holes (2 items, highest index 3)" },
    { "mixed keys", { 1, x = 2 }, "params: table mixes array items and object keys" },
    { "invalid UTF-8", { text = "ok\xff" }, "params.text: invalid UTF-8 in string (byte 3)" },
    { "a function", { f = print }, "params.f: cannot encode a function" },
    { "an odd key", { ["a b"] = { 0 / 0 } }, 'params["a b"][1]: cannot encode NaN' },
  }
  for _, case in ipairs(failures) do
    it("refuses " .. case[1] .. " and names the path", function()
      local s, err = encode(case[2], "params")
      assert.is_nil(s)
      assert.equals(case[3], err:sub(1, #case[3]))
    end)
  end

  it("refuses nesting deeper than 64 levels", function()
    local t = {}
    local cur = t
    for _ = 1, 64 do cur.x = {}; cur = cur.x end
    local s, err = encode(t)
    assert.is_nil(s)
    assert.matches("nested deeper than 64 levels", err)
    local ok = {}
    cur = ok
    for _ = 1, 63 do cur.x = {}; cur = cur.x end
    assert.is_string(encode(ok))
  end)
end)

describe("JSON decoding", function()
  it("returns integers as Lua integers and keeps 64-bit values exact", function()
    local v = decode('{"n":10,"f":10.0,"e":1e2,"max":9223372036854775807,"min":-9223372036854775808}')
    assert.equals("integer", math.type(v.n))
    assert.equals("float", math.type(v.f))
    assert.equals("float", math.type(v.e))
    assert.equals(math.maxinteger, v.max)
    assert.equals(math.mininteger, v.min)
  end)

  it("turns integers beyond 64 bits into floats instead of wrapping", function()
    local v = decode("[18446744073709551616,-9223372036854775809]")
    assert.equals("float", math.type(v[1]))
    assert.equals(2.0 ^ 64, v[1])
    assert.is_true(v[2] < 0)
  end)

  it("keeps X's string IDs as strings", function()
    local v = decode('{"data":{"id":"1460323743973015556"}}')
    assert.equals("1460323743973015556", v.data.id)
  end)

  it("returns JSON null as twitter.null, distinct from a missing key", function()
    local v = decode('{"a":null,"b":[null]}')
    assert.equals(twitter.null, v.a)
    assert.equals(twitter.null, v.b[1])
    assert.is_nil(v.c)
  end)

  it("round-trips [] and {} and nested values byte for byte", function()
    local text = '{"a":[],"b":{},"c":[{"d":[]}],"e":null,"f":1.5,"g":-3,"h":"\\u0000x"}'
    assert.equals(text, encode(decode(text)))
  end)

  it("keeps every member of large and nested containers, in order", function()
    for _, n in ipairs{ 1, 31, 32, 33, 64, 65, 1000 } do
      local items, members = {}, {}
      for i = 1, n do
        items[i] = ('[%d,{"k":"v%d"}]'):format(i, i)
        members[i] = ('"k%05d":[%d]'):format(i, i)
      end
      local text = ('{"a":[%s],"o":{%s}}'):format(table.concat(items, ","), table.concat(members, ","))
      local v = decode(text)
      assert.equals(n, #v.a)
      assert.equals(n, v.a[n][1])
      assert.equals("v" .. n, v.a[n][2].k)
      assert.equals(n, v.o[("k%05d"):format(n)][1])
      assert.equals(text, encode(v))
    end
  end)

  it("keeps the last value of a repeated key, as before batching", function()
    local parts = {}
    for i = 1, 40 do parts[i] = ('"x":%d'):format(i) end
    assert.equals(40, decode("{" .. table.concat(parts, ",") .. "}").x)
    assert.equals(2, decode('{"x":1,"x":2}').x)
  end)

  it("decodes escapes, surrogate pairs, and replaces lone surrogates", function()
    local v = decode([["\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\ \ud800x"]])
    assert.equals("é😀/\b\f\n\r\t\"\\ \xEF\xBF\xBDx", v)
  end)

  local bad = {
    { "[1,2", "invalid JSON: expected ',' or ']' at end of input" },
    { '{"a" 1}', "invalid JSON: expected ':' at byte 6" },
    { "01", "invalid JSON: trailing characters after JSON value at byte 2" },
    { "[1,]", "invalid JSON: unexpected character at byte 4" },
    { '"\xff"', "invalid JSON: invalid UTF-8 at byte 2" },
    { '"a\nb"', "invalid JSON: control character in string at byte 3" },
    { "tru", "invalid JSON: invalid literal at byte 1" },
    { "-", "invalid JSON: invalid number at end of input" },
    { "1.e5", "invalid JSON: invalid number at byte 3" },
    { "", "invalid JSON: expected a value at end of input" },
    { '"\\x"', "invalid JSON: invalid escape at byte 3" },
  }
  for _, case in ipairs(bad) do
    it(("rejects %q with the position"):format(case[1]), function()
      local v, err = decode(case[1])
      assert.is_nil(v)
      assert.equals(case[2], err)
    end)
  end

  it("refuses numbers beyond double range instead of returning infinity", function()
    local v, err = decode("[1,1e2233720368547744]")
    assert.is_nil(v)
    assert.equals("invalid JSON: number out of range at byte 4", err)
    assert.equals(-1e308, decode("-1e308"))
  end)

  it("replays every input the fuzzers ever crashed on (fuzz/regressions)", function()
    local p = assert(io.popen("ls " .. fake.ROOT .. "/fuzz/regressions/json_decode"))
    local n = 0
    for name in p:lines() do
      local text = assert(io.open(fake.ROOT .. "/fuzz/regressions/json_decode/" .. name, "rb")):read("a")
      local v = decode(text)
      if v ~= nil then assert.equals(encode(v), encode(assert(decode(assert(encode(v)))))) end
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 1)
  end)

  it("caps nesting depth", function()
    local v, err = decode(string.rep("[", 129) .. string.rep("]", 129))
    assert.is_nil(v)
    assert.matches("nested too deeply", err)
    assert.is_table(decode(string.rep("[", 128) .. string.rep("]", 128)))
  end)

  it("takes a caller's depth up to 1000 and refuses more instead of overflowing the C stack", function()
    assert.is_table(decode(string.rep("[", 1000) .. string.rep("]", 1000), 1000))
    assert.matches("nested too deeply", select(2, decode(string.rep("[", 6) .. string.rep("]", 6), 5)))
    for _, depth in ipairs{ 0, 1001, 300000, -1 } do
      local ok, err = pcall(decode, string.rep("[", 300000), depth)
      assert.is_false(ok)
      assert.matches("bad argument #2 to '[%w._]+' %(max_depth must be from 1 to 1000%)", err)
    end
  end)

  it("survives a fuzz of random bytes and random mutations without crashing", function()
    local seed = '{"data":[{"id":"1","n":-12.5e3,"t":true,"x":null,"s":"\\u00e9"}],"meta":{}}'
    math.randomseed(12345)
    for _ = 1, 3000 do
      local s = {}
      for i = 1, #seed do s[i] = seed:sub(i, i) end
      for _ = 1, math.random(1, 4) do
        s[math.random(1, #s)] = string.char(math.random(0, 255))
      end
      local text = table.concat(s)
      local v, err = decode(text)
      assert.is_true(v ~= nil or type(err) == "string")
      if v ~= nil and type(v) == "table" then assert.is_string(encode(v) or "") end
    end
  end)
end)

describe("the JSON codec under hostile conditions", function()
  local ROOT = fake.ROOT

  -- Run `code` in a fresh lua5.4 with the module on its path; its output.
  local function run(code, env)
    local cmd = ("%s LUA_PATH='%s' LUA_CPATH='%s' lua5.4 -e %q 2>&1; echo \"rc=$?\""):format(
      env or "", package.path, package.cpath, code)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    return out
  end

  it("gives each call its own scratch when a __gc finalizer calls it in the middle of another", function()
    -- keys longer than 40 bytes are not interned, so writing them allocates
    -- and lets the collector run finalizers inside the outer call
    local doc = {}
    for i = 1, 1500 do doc[string.rep("k", 45) .. i] = { i, "v" .. i } end
    local want = encode(doc)
    local during, mid = 0, false
    local function arm()
      setmetatable({}, { __gc = function()
        if mid then during = during + 1 end
        local was = mid
        mid = false
        encode({ nested = string.rep("y", 3000) })
        decode('["' .. string.rep("z", 3000) .. '"]')
        mid = was
        arm()
      end })
    end
    collectgarbage("incremental", 10, 400)   -- collection steps on most allocations
    arm()
    local bad = 0
    for _ = 1, 4 do
      mid = true
      local s = encode(doc)
      local d = decode(want)
      mid = false
      if s ~= want then bad = bad + 1 end
      if encode(d) ~= want then bad = bad + 1 end
    end
    collectgarbage("incremental", 200, 100)
    collectgarbage()
    assert.is_true(during > 0, "no finalizer ran inside a call: the test proves nothing")
    assert.equals(0, bad)
  end)

  it("writes and reads numbers with '.' under a comma locale (LC_NUMERIC=de_DE.UTF-8)", function()
    -- the locale is built into build/locale when the system has none
    local dir = ROOT .. "/build/locale"
    if not io.open(dir .. "/de_DE.UTF-8/LC_NUMERIC") then
      assert(os.execute(("mkdir -p %s && localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 2>/dev/null"
        .. " || test -d %s/de_DE.UTF-8"):format(dir, dir, dir)))
    end
    local out = run([[
      assert(os.setlocale("de_DE.UTF-8", "numeric"), "no de_DE locale")
      assert(tostring(1.5) == "1,5", "the locale does not use a comma: the test proves nothing")
      local core = require "scalekit.core"
      io.write(core.json_encode{ 1.5, 2.0, 0.1, -3.25e-7, 1e300 }, " ")
      local v = core.json_decode("[2.5, 1e-3, 12345678901234567890.5, -0.75]")
      io.write(tostring(v[1] == 2.5 and v[2] == 1e-3 and v[3] == 12345678901234567890.5 and v[4] == -0.75))
    ]], "LOCPATH=" .. dir)
    assert.equals("[1.5,2.0,0.1,-3.25e-07,1e+300] truerc=0\n", out)
  end)

  it("encodes {} as the first value of a process without undefined behaviour (clean under UBSan)", function()
    assert.equals("{} [] {}rc=0\n", run([[
      local core = require "scalekit.core"
      io.write(core.json_encode({}), " ", core.json_encode(setmetatable({}, core.array_mt)), " ",
               core.json_encode(core.json_decode("{}")))
    ]]))
  end)
end)

describe("fake.same", function()
  it("tells integers from floats", function()
    assert.is_false((fake.same({ 1 }, { 1.0 })))
    assert.is_true((fake.same({ a = { 1, "x" } }, { a = { 1, "x" } })))
  end)

  it("tells a marked [] from a marked {}, at any depth, and lets an unmarked {} match either", function()
    assert.is_false((fake.same(twitter.array(), twitter.object())))
    assert.is_false((fake.same({ data = { list = twitter.array() } }, decode('{"data":{"list":{}}}'))))
    assert.is_true((fake.same({ data = { list = twitter.array() } }, decode('{"data":{"list":[]}}'))))
    assert.is_true((fake.same({ data = {} }, decode('{"data":[]}'))))
    assert.is_false((fake.same({ "a" }, decode('{"1":"a"}'))))
  end)
end)
