/* core.h - the entry point of scalekit.core, for the module and the host. */
#ifndef SCALEKIT_CORE_H
#define SCALEKIT_CORE_H

#include "lua.h"

/* The release: the module's _VERSION, the host's -v, the rockspec's
 * version and the CHANGELOG's latest entry (a spec checks they agree). */
#define SCALEKIT_VERSION "0.2.0"

/* The one symbol core.so exports (the build hides the rest). */
#if defined(__GNUC__)
#define CORE_EXPORT __attribute__((visibility("default")))
#else
#define CORE_EXPORT
#endif

/* Pushes the module table: the JSON codec, the transport, the helpers. */
CORE_EXPORT int luaopen_scalekit_core(lua_State *L);

#endif
