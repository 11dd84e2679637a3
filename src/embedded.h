/* embedded.h - the Lua modules compiled into the scalekit-lua host. */
#ifndef SCALEKIT_EMBEDDED_H
#define SCALEKIT_EMBEDDED_H

#include <stddef.h>

typedef struct embedded_module {
  const char *name;      /* module name, e.g. "scalekit.twitter" */
  const char *source;
  size_t size;
  const char *binary;    /* the source precompiled by the embedding Lua */
  size_t binary_size;
} embedded_module;

/* Terminated by an entry whose name is NULL. */
extern const embedded_module embedded_modules[];

/* The release of the Lua that precompiled the modules ("Lua 5.4.4"), or ""
 * when unknown: the binaries are loaded only by a Lua of the same release. */
extern const char embedded_release[];

#endif
