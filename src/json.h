/* json.h - exact JSON <-> Lua conversion (see json.c for the design limits). */
#ifndef SCALEKIT_JSON_H
#define SCALEKIT_JSON_H

#include "lua.h"

/* Sets json_encode, json_decode, array_mt, object_mt and null on the table at
 * the top of the stack. */
void json_register(lua_State *L);

#endif
