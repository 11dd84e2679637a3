/* buf.c - growable byte buffer with a hard cap (see buf.h for the contract). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void buf_reset(buf_t *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

int buf_reserve(buf_t *b, size_t extra) {
  size_t need, ncap;
  char *p;
  if (extra > b->max || b->len > b->max - extra) return 0;
  need = b->len + extra + 1;                  /* +1 keeps room for a NUL */
  if (need <= b->cap) return 1;
  ncap = b->cap ? b->cap : 256;
  while (ncap < need) ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
  p = realloc(b->data, ncap);
  if (!p) return 0;
  b->data = p;
  b->cap = ncap;
  return 1;
}

int buf_puts(buf_t *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

const char *buf_cstr(buf_t *b) {
  return b->data ? b->data : "";
}
