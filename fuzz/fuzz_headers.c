/* fuzz_headers.c - the response header parser (core.parse_headers, also what
 * session:request uses): any bytes give a table of lower-case names without
 * ':', spaces or control characters, and trimmed single-line values; with
 * prefixes, exactly the matching entries of the full table (nil when there
 * are none); nothing
 * crashes or reads out of bounds.  Failures found: fuzz/regressions/headers. */
#include "fuzz_lua.h"

static const char CODE[] =
  "local h = core.parse_headers(...)\n"
  "for k, v in pairs(h) do\n"
  "  assert(type(k) == 'string' and type(v) == 'string', 'strings only')\n"
  "  assert(#k > 0 and not k:find('[%c%s:%u]'), 'name: lower case, no colon, space or control')\n"
  "  assert(not v:find('\\n'), 'value: one line')\n"
  "  assert(not v:find('^[ \\t]') and not v:find('[ \\t\\r]$'), 'value: trimmed')\n"
  "end\n"
  "local only = core.parse_headers(..., { 'x-', 'a' })\n"
  "assert(only == nil or next(only) ~= nil, 'prefix filter: nil rather than empty')\n"
  "only = only or {}\n"
  "for k, v in pairs(h) do\n"
  "  local watched = k:sub(1, 2) == 'x-' or k:sub(1, 1) == 'a'\n"
  "  assert(only[k] == (watched and v or nil), 'prefix filter: the same values, watched names only')\n"
  "end\n"
  "for k in pairs(only) do assert(h[k], 'prefix filter: nothing else') end\n";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  fuzz_run("=headers", CODE, data, size);
  return 0;
}
