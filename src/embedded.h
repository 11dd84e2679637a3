/* embedded.h - the Lua modules compiled into the scalekit-lua host. */
#ifndef SCALEKIT_EMBEDDED_H
#define SCALEKIT_EMBEDDED_H

#include <stddef.h>

typedef struct embedded_module {
  const char *name;      /* module name, e.g. "scalekit.twitter" */
  const char *source;
  size_t size;
} embedded_module;

/* Terminated by an entry whose name is NULL. */
extern const embedded_module embedded_modules[];

#endif
