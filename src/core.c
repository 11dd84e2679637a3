/*
 * core.c - luaopen_scalekit_core: the C half of scalekit.twitter.
 *
 * Gathers the JSON codec (json.c), the libcurl transport (http.c) and the
 * system helpers (util.c) into one module.  Everything about the tools
 * themselves is Lua (scalekit.twitter and its catalog).
 */
#include "http.h"
#include "json.h"
#include "util.h"

#include "lauxlib.h"
#include "lua.h"

#define CORE_VERSION "0.1.0"

LUAMOD_API int luaopen_scalekit_core(lua_State *L);

int luaopen_scalekit_core(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, CORE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  json_register(L);
  http_register(L);
  util_register(L);
  return 1;
}
