/*
 * core.c - luaopen_scalekit_core: the C half of scalekit.twitter.
 *
 * Gathers the JSON codec (json.c), the libcurl transport (http.c) and the
 * system helpers (util.c) into one module.  Everything about the tools
 * themselves is Lua (scalekit.twitter and its catalog).
 */
#include "core.h"
#include "http.h"
#include "json.h"
#include "util.h"

#include "lauxlib.h"
#include "lua.h"

int luaopen_scalekit_core(lua_State *L) {
  lua_newtable(L);                      /* the module */
  lua_pushliteral(L, SCALEKIT_VERSION);
  lua_setfield(L, -2, "_VERSION");
  json_register(L);                     /* each sets its functions on the module */
  http_register(L);
  util_register(L);
  return 1;
}
