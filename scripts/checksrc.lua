-- checksrc.lua - a C style check in the spirit of curl's checksrc.pl:
--   lua5.4 scripts/checksrc.lua src/*.c src/*.h fuzz/*.c bench/*.c
-- It fails (exit 1, one "file:line: why" per problem) on a call of a banned
-- function (unbounded or not thread-safe: sprintf strcpy strcat strncpy
-- strtok strdup strerror) and on an assignment inside an if or while
-- condition.  Comments, strings and character literals are not looked at.

local BANNED = { "sprintf", "strcpy", "strcat", "strncpy", "strtok", "strdup", "strerror" }

-- The source with comments and literals blanked (newlines kept, so
-- positions keep their line numbers).
local function code_only(src)
  local out, i, n = {}, 1, #src
  local function blank(s) return (s:gsub("[^\n]", " ")) end
  while i <= n do
    local c, two = src:sub(i, i), src:sub(i, i + 1)
    local j
    if two == "/*" then
      j = (select(2, src:find("*/", i + 2, true))) or n
    elseif two == "//" then
      j = (src:find("\n", i, true) or n + 1) - 1
    elseif c == '"' or c == "'" then
      j = i + 1
      while j <= n and src:sub(j, j) ~= c do
        if src:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
    end
    if j then
      out[#out + 1] = c:match("[\"']") and (c .. blank(src:sub(i + 1, j - 1)) .. c) or blank(src:sub(i, j))
      i = j + 1
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

local function line_of(src, pos)
  local _, n = src:sub(1, pos):gsub("\n", "")
  return n + 1
end

-- The text between the parenthesis at `open` and its match.
local function inside(src, open)
  local depth = 0
  for k = open, #src do
    local c = src:sub(k, k)
    if c == "(" then depth = depth + 1
    elseif c == ")" then
      depth = depth - 1
      if depth == 0 then return src:sub(open + 1, k - 1) end
    end
  end
  return src:sub(open + 1)
end

local problems = 0
local function report(file, src, pos, why)
  io.stdout:write(("%s:%d: %s\n"):format(file, line_of(src, pos), why))
  problems = problems + 1
end

for _, file in ipairs(arg) do
  local f = assert(io.open(file, "rb"))
  local src = code_only(f:read("a"))
  f:close()
  for _, name in ipairs(BANNED) do
    for pos in src:gmatch("()%f[%w_]" .. name .. "%s*%(") do
      report(file, src, pos, "banned function " .. name .. "()")
    end
  end
  for _, kw in ipairs{ "if", "while" } do
    for pos, open in src:gmatch("()%f[%w_]" .. kw .. "%s*()%(") do
      local cond = " " .. inside(src, open) .. " "
      if cond:find("[^=!<>%+%-%*/%%&|%^]=[^=]") then
        report(file, src, pos, "assignment inside an " .. kw .. " condition")
      end
    end
  end
end
if problems > 0 then
  io.stdout:write(("%d problem(s)\n"):format(problems))
  os.exit(1)
end
