/* fuzz_encoders.c - percent-encoding and base64: the output uses only the
 * allowed alphabet and decodes back to the input; base64 decoding of any
 * bytes never crashes. */
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
  "assert(core.urlencode(s) == u, 'urlencode is a function of its input')\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  fuzz_run("=encoders", CODE, data, size);
  return 0;
}
