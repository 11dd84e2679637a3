/* fuzz_encoders.c - percent-encoding and base64: the output uses only the
 * allowed alphabet and decodes back to the input; base64 decoding of any
 * bytes never crashes; the format check core.all_in agrees with a Lua
 * pattern. */
#include "fuzz_lua.h"

static const char CODE[] =
  "local s = ...\n"
  "local u = core.urlencode(s)\n"
  "assert(not u:find('[^%w%-%._~%%]'), 'unreserved alphabet')\n"
  "local back = u:gsub('%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end)\n"
  "assert(back == s, 'percent-decoding gives the input back')\n"
  "for _, url in ipairs{ false, true } do\n"
  "  local b = core.base64(s, url)\n"
  "  assert(core.unbase64(b) == s, 'base64 round trip')\n"
  "end\n"
  "core.unbase64(s)\n"
  "local digits = #s > 0 and #s <= 19 and not s:find('[^0-9]')\n"
  "assert(core.all_in(s, '0123456789', 19) == digits, 'all_in agrees with a pattern')\n"
  "assert(core.urlencode(s) == u, 'urlencode is a function of its input')\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  fuzz_run("=encoders", CODE, data, size);
  return 0;
}
