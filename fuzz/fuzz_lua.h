/* fuzz_lua.h - one Lua state with scalekit.core loaded, shared by a fuzz target. */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

int luaopen_scalekit_core(lua_State *L);

/* The state, with `core` as a global; made on first use, kept for the run. */
static lua_State *fuzz_state(void) {
  static lua_State *L = NULL;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "scalekit.core", luaopen_scalekit_core, 0);
    lua_setglobal(L, "core");
  }
  return L;
}

/* Run `code` (a chunk taking the input string as ...) on the input; a Lua
 * error means a broken property: abort so libFuzzer keeps the input. */
static void fuzz_run(const char *name, const char *code, const unsigned char *data, size_t size) {
  static int ref = LUA_NOREF;
  lua_State *L = fuzz_state();
  if (ref == LUA_NOREF) {
    if (luaL_loadbuffer(L, code, __builtin_strlen(code), name) != LUA_OK) abort();
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    __builtin_printf("property failed: %s\n", msg ? msg : "?");
    abort();
  }
  lua_settop(L, 0);
}

#endif
