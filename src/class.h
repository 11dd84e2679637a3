/* class.h - one way to declare a userdata type's metatable. */
#ifndef SCALEKIT_CLASS_H
#define SCALEKIT_CLASS_H

#include "lauxlib.h"

/* Registers metatable `name` (once): `methods` (may be NULL) as __index,
 * `release` as both __gc and __close.  Leaves the stack as it was. */
static inline void class_register(lua_State *L, const char *name, const luaL_Reg *methods,
                                  lua_CFunction release) {
  if (luaL_newmetatable(L, name)) {
    if (methods) {
      lua_newtable(L);
      luaL_setfuncs(L, methods, 0);
      lua_setfield(L, -2, "__index");
    }
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
}

#endif
