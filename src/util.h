/* util.h - small system helpers for the Lua layer: encoding, clocks, randomness. */
#ifndef SCALEKIT_UTIL_H
#define SCALEKIT_UTIL_H

#include <signal.h>
#include <stddef.h>

#include "lua.h"

/* Set (by the scalekit-lua host's SIGINT handler) to ask long waits and
 * transfers to stop; they then fail with "interrupted". */
extern volatile sig_atomic_t scalekit_interrupted;
/* Set by the host at start-up: transfers then watch scalekit_interrupted. */
extern int scalekit_interrupt_armed;

/* Sets urlencode, base64, unbase64, sha256, platform, random_bytes,
 * now, monotonic, sleep, isatty, atomic_file, write_file_atomic, lock_file
 * and listen on the table at the top of the stack. */
void util_register(lua_State *L);

/* The one failure result of every C function in the core, lauxlib's
 * fileresult with the kind first: pushes nil, kind, message (formatted as
 * lua_pushfstring does) and returns 3.  Kinds: "io", "timeout",
 * "interrupted", "invalid" (malformed input), "crypto"; the transport adds
 * "network", "tls" and "too_large" (and a fourth value, `sent`). */
int util_fail(lua_State *L, const char *kind, const char *fmt, ...);

/* The text of errno value e, written into buf[0..n) (for the host too). */
const char *util_errno_text(int e, char *buf, size_t n);

#endif
