/* fuzz_json_encode.c - bytes drive a small builder that makes arbitrary Lua
 * values (nested tables, odd keys, NaN, huge integers, invalid UTF-8, marked
 * empty tables, cycles); encoding either fails with a message or gives JSON
 * that decodes and re-encodes to the same text. */
#include "fuzz_lua.h"

static const char CODE[] =
  "local s = ...\n"
  "local pos = 1\n"
  "local function byte() local b = s:byte(pos) or 0; pos = pos + 1; return b end\n"
  "local function str() local n = byte() % 12; local t = s:sub(pos, pos + n - 1); pos = pos + n; return t end\n"
  "local depth = 0\n"
  "local root\n"
  "local function value()\n"
  "  local k = byte() % 11\n"
  "  if k == 0 then return str() end\n"
  "  if k == 1 then return (byte() << 56) | (byte() << 24) | byte() end\n"
  "  if k == 2 then return (byte() - 128) / 7 end\n"
  "  if k == 3 then return byte() % 2 == 0 end\n"
  "  if k == 4 then return core.null end\n"
  "  if k == 5 then return ({0/0, math.huge, -math.huge, math.maxinteger, math.mininteger})[byte() % 5 + 1] end\n"
  "  if k == 6 then return setmetatable({}, byte() % 2 == 0 and core.array_mt or core.object_mt) end\n"
  "  if k == 7 then return root end\n"
  "  depth = depth + 1\n"
  "  local t = {}\n"
  "  if depth < 70 and pos <= #s then\n"
  "    for i = 1, byte() % 5 do\n"
  "      local kk = byte() % 4\n"
  "      local key = kk == 0 and i or kk == 1 and str() or kk == 2 and (byte() + 0.5) or str()\n"
  "      t[key] = value()\n"
  "    end\n"
  "  end\n"
  "  depth = depth - 1\n"
  "  return t\n"
  "end\n"
  "root = {}\n"
  "root.v = value()\n"
  "local out, kind, err = core.json_encode(root, 'params')\n"
  "if not out then assert(kind == 'invalid' and type(err) == 'string' and err:find('^params')); return end\n"
  "local back, _, derr = core.json_decode(out)\n"
  "assert(back ~= nil, derr)\n"
  "assert(core.json_encode(back) == out, 'round trip changed the text')\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  fuzz_run("=json_encode", CODE, data, size);
  return 0;
}
