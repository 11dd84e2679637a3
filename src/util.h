/* util.h - small system helpers for the Lua layer: encoding, clocks, randomness. */
#ifndef SCALEKIT_UTIL_H
#define SCALEKIT_UTIL_H

#include "lua.h"

/* Sets urlencode, platform, random_bytes, now, monotonic and sleep on the table
 * at the top of the stack. */
void util_register(lua_State *L);

#endif
