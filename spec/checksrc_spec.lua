-- The C style check of `make lint` (scripts/checksrc.lua): what it refuses,
-- and that the sources pass it.
local fake = require "support.fake"

local function check(files)
  local p = io.popen("lua5.4 " .. fake.ROOT .. "/scripts/checksrc.lua " .. files .. " 2>&1")
  local out = p:read("a")
  return p:close(), out
end

describe("checksrc", function()
  local dir
  setup(function() dir = fake.tempdir() end)
  teardown(function() fake.rmdir(dir) end)

  local function source(name, text) return fake.write(dir, name, text) end

  it("refuses banned functions and assignments in conditions, naming the line", function()
    local file = source("bad.c", table.concat({
      "static void f(char *d, const char *s, int x) {",
      "  strcpy(d, s);",
      "  if ((x = g()) != 0) return;",
      "  while ((d = next(d))) {}",
      "  d = strdup(s);",
      "}", "" }, "\n"))
    local ok, out = check(file)
    assert.is_falsy(ok)
    assert.equals(table.concat({
      file .. ":2: banned function strcpy()",
      file .. ":5: banned function strdup()",
      file .. ":3: assignment inside an if condition",
      file .. ":4: assignment inside an while condition",
      "4 problem(s)", "" }, "\n"), out)
  end)

  it("does not look inside comments and strings, nor at comparisons", function()
    local file = source("good.c", table.concat({
      "/* strcpy(a, b) in a comment; if (a = b) too */",
      "static const char *s = \"sprintf(x) if (a = b)\";",
      "static int f(int a, int b) { if (a == b || a <= b || a != b) return 1; return a >= b; }",
      "// strtok(x)", "" }, "\n"))
    local ok, out = check(file)
    assert.is_true(ok)
    assert.equals("", out)
  end)

  it("passes over the project's C", function()
    local ok, out = check(fake.ROOT .. "/src/*.c " .. fake.ROOT .. "/src/*.h " .. fake.ROOT .. "/fuzz/*.c "
                          .. fake.ROOT .. "/bench/*.c")
    assert.equals("", out)
    assert.is_true(ok)
  end)
end)
