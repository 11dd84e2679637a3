/* fuzz_json_decode.c - any bytes: decode never crashes; what decodes
 * re-encodes, and the re-encoding is a fixed point. */
#include "fuzz_lua.h"

static const char CODE[] =
  "local s = ...\n"
  "local v = core.json_decode(s)\n"
  "if v == nil then return end\n"
  "local e1 = assert(core.json_encode(v))\n"
  "local v2, _, err = core.json_decode(e1)\n"
  "assert(v2 ~= nil, err)\n"
  "local e2 = assert(core.json_encode(v2))\n"
  "assert(e1 == e2, 'encoding is not stable')\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  fuzz_run("=json_decode", CODE, data, size);
  return 0;
}
