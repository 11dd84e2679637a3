/*
 * core.c - luaopen_scalekit_core: the C half of scalekit.twitter.
 *
 * Gathers the JSON codec (json.c), the libcurl transport (http.c) and the
 * system helpers (util.c) into one module, and turns the tool catalog into
 * functions: bind_tools() makes one C closure per tool that forwards to a
 * Lua dispatcher, so the 80 tools exist only as data in the catalog.
 */
#include "http.h"
#include "json.h"
#include "util.h"

#include "lauxlib.h"
#include "lua.h"

#define CORE_VERSION "0.1.0"

LUAMOD_API int luaopen_scalekit_core(lua_State *L);

/* The closure made for each tool.  Upvalues: dispatcher, the tool's entry,
 * whether the first argument is `self`.  Calls
 *   dispatcher(self, entry, ...)   or   dispatcher(entry, ...)
 * and returns whatever it returns; errors propagate to the caller. */
static int tool_trampoline(lua_State *L) {
  int nargs = lua_gettop(L);
  int has_self = lua_toboolean(L, lua_upvalueindex(3));
  luaL_checkstack(L, 3, NULL);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, has_self && nargs >= 1 ? 3 : 2);
  if (has_self && nargs == 0) {          /* keep the (self, name) positions */
    lua_pushnil(L);
    lua_insert(L, 2);
    nargs = 1;
  }
  lua_call(L, nargs + 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* bind_tools(target, tools, dispatcher, has_self)
 * For each entry { name = "twitter_x", short = "x", ... } of the array
 * `tools`, sets target[name] and target[short] to one closure calling
 * `dispatcher` with that entry (so the dispatcher needs no lookup). */
static int core_bind_tools(lua_State *L) {
  lua_Integer i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  n = (lua_Integer)lua_rawlen(L, 2);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    luaL_argcheck(L, lua_istable(L, -1), 2, "entries must be tables");
    lua_getfield(L, -1, "name");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "entry without a name");
    lua_pop(L, 1);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, lua_toboolean(L, 4));
    lua_pushcclosure(L, tool_trampoline, 3);
    lua_getfield(L, -2, "name");
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    lua_getfield(L, -2, "short");
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return 0;
}

int luaopen_scalekit_core(lua_State *L) {
  lua_newtable(L);
  lua_pushliteral(L, CORE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushcfunction(L, core_bind_tools);
  lua_setfield(L, -2, "bind_tools");
  json_register(L);
  http_register(L);
  util_register(L);
  return 1;
}
