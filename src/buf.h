/*
 * buf.h - a growable byte buffer with a hard maximum size.
 *
 * Every buffer in the C core has a cap: appending past `max` fails instead of
 * growing without bound.  Memory is plain malloc/realloc; the owner frees it
 * with buf_free().  Buffers that must survive a Lua error (longjmp) live inside
 * a userdata whose __gc calls buf_free(), so nothing leaks on any path.
 */
#ifndef SCALEKIT_BUF_H
#define SCALEKIT_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct buf {
  char *data;     /* NUL-terminated when len > 0 or after buf_cstr() */
  size_t len;
  size_t cap;
  size_t max;     /* appending beyond this many bytes fails */
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);                     /* len = 0, keeps the memory */

/* Make room for `extra` more bytes.  Returns 1, or 0 if that would exceed
 * b->max or memory ran out (the buffer is left unchanged). */
int buf_reserve(buf_t *b, size_t extra);

/* Append bytes / a C string / one char.  Same return contract as
 * buf_reserve.  Inline, as they sit on every hot path: when there is room
 * (the usual case) appending is a copy. */
static inline int buf_append(buf_t *b, const void *p, size_t n) {
  if (!(n < b->cap - b->len && b->len + n <= b->max) && !buf_reserve(b, n)) return 0;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

static inline int buf_putc(buf_t *b, char c) {
  return buf_append(b, &c, 1);
}

int buf_puts(buf_t *b, const char *s);

/* A NUL-terminated view of the contents ("" when empty, never NULL). */
const char *buf_cstr(buf_t *b);

#endif
