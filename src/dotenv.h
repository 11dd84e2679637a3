/* dotenv.h - parse .env files (see dotenv.c for the accepted syntax). */
#ifndef SCALEKIT_DOTENV_H
#define SCALEKIT_DOTENV_H

#include <stddef.h>

/* Called per assignment with its key and value, or with key == value == NULL
 * for a malformed line (`line` is 1-based).  The strings are only valid
 * during the call. */
typedef void (*dotenv_fn)(void *ud, const char *key, const char *value, int line);

/* Parses `len` bytes of .env text; returns the number of malformed lines.
 * Not re-entrant (uses static scratch buffers). */
int dotenv_parse(const char *text, size_t len, dotenv_fn fn, void *ud);

#endif
