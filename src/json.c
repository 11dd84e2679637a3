/*
 * json.c - exact JSON <-> Lua conversion for the SDK.
 *
 * Design limits (why this exists instead of lua-cjson 2.1.0 under Lua 5.4):
 *  - Integers are exact both ways: a Lua integer is written with all its
 *    digits, and a JSON number without fraction or exponent that fits in 64
 *    bits comes back as a Lua integer.  Larger ones become floats.
 *  - Floats are written with the fewest digits (15..17) that read back to the
 *    same double; integral floats keep a ".0" so they read back as floats.
 *  - JSON null is the light userdata NULL (`core.null`).
 *  - Decoded arrays and objects carry marker metatables (`core.array_mt`,
 *    `core.object_mt`), so `[]` and `{}` survive a decode/encode round trip.
 *    Unmarked tables are arrays when their keys are exactly 1..n, objects when
 *    all keys are strings; an empty unmarked table is `{}`.
 *  - Object keys are written sorted, so the same table always gives the same
 *    bytes.
 *  - Encoding fails (it never raises for bad data) on NaN/inf, cycles,
 *    non-string keys, sparse arrays, depth > JSON_MAX_DEPTH, invalid UTF-8 and
 *    unsupported types; the message names the path (`params.poll_options[2]`).
 *  - Decoding is strict RFC 8259 with a depth cap (JSON_DECODE_DEPTH, or the
 *    caller's, at most JSON_MAX_DECODE_DEPTH: the decoder recurses on the C
 *    stack); numbers beyond double range are refused (they would be
 *    infinity); errors give the byte offset.
 *  - Numbers are written and read with '.' whatever the C locale says
 *    (LC_NUMERIC=de_DE would otherwise give "1,5").
 *
 * Scratch memory lives in one userdata (a "box") shared by both directions and
 * freed by its __gc, so an out-of-memory longjmp cannot leak.  A call made
 * while another is under way (from a __gc finalizer that runs during an
 * allocation, say) gets a box of its own, so the outer call's scratch is never
 * touched.
 */
#include "json.h"
#include "buf.h"
#include "class.h"
#include "util.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"

#define JSON_MAX_DEPTH 64
#define JSON_DECODE_DEPTH 128
#define JSON_MAX_DECODE_DEPTH 1000      /* C stack: a few hundred bytes a level */
#define JSON_NUMBER_MAX 64              /* longer number tokens are copied to the heap */
#define JSON_STR_(x) #x
#define JSON_STR(x) JSON_STR_(x)
#define JSON_MAX_OUTPUT ((size_t)1 << 30)  /* 1 GiB of encoded text */
#define JSON_ERRLEN 512

#define BOX_MT "scalekit.json.box"

typedef struct json_key {
  const char *s;
  size_t n;
  int value;          /* stack index of the value, 0: look it up */
} json_key;

/* Scratch memory shared by encoder and decoder.  `busy` is set while a call
 * uses it; a nested call then makes a box of its own (see box_acquire). */
typedef struct json_box {
  buf_t out;          /* encoder output / decoder string unescaping */
  json_key *keys;     /* stack of object keys being sorted */
  size_t nkeys, keycap;
  int busy;
} json_box;

/* Upvalues of json_encode / json_decode. */
#define UV_BOX 1
#define UV_ARRAY_MT 2
#define UV_OBJECT_MT 3

static int box_gc(lua_State *L) {
  json_box *box = luaL_checkudata(L, 1, BOX_MT);
  buf_free(&box->out);
  free(box->keys);
  box->keys = NULL;
  box->nkeys = box->keycap = 0;
  return 0;
}

/* Give back memory after an unusually large call, keep it otherwise. */
static void box_trim(json_box *box) {
  if (box->out.cap > (1u << 20)) buf_free(&box->out);
  buf_reset(&box->out);
  box->nkeys = 0;
}

/* The box for one call: the shared one (upvalue UV_BOX), or, when a call is
 * already using it, a new one pushed on the stack (freed by its __gc).  An
 * out-of-memory error inside a call leaves the shared box marked busy; later
 * calls then each get a fresh box, which is slower but still correct.
 * Release it with box_release. */
static json_box *box_acquire(lua_State *L) {
  json_box *box = lua_touserdata(L, lua_upvalueindex(UV_BOX));
  if (box->busy) {
    box = lua_newuserdatauv(L, sizeof *box, 0);
    memset(box, 0, sizeof *box);
    buf_init(&box->out, JSON_MAX_OUTPUT);
    luaL_setmetatable(L, BOX_MT);
  }
  box_trim(box);
  box->busy = 1;
  return box;
}

static void box_release(json_box *box) {
  box_trim(box);
  box->busy = 0;
}

/* The C library's decimal point (',' under some LC_NUMERIC locales). */
static char locale_point(void) {
  const char *p = localeconv()->decimal_point;
  return (p && p[0] && !p[1]) ? p[0] : '.';
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the bytes
 * there are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF are
 * rejected). */
static size_t utf8_seqlen(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;   /* overlong */
    if (c == 0xED && s[1] > 0x9F) return 0;   /* surrogate */
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;   /* overlong */
    if (c == 0xF4 && s[1] > 0x8F) return 0;   /* > U+10FFFF */
    return 4;
  }
  return 0;
}

/* Offset of the first invalid byte in s[0..n), or n when all of it is valid. */
static size_t utf8_check(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t k;
    if (u[i] < 0x80) { i++; continue; }
    k = utf8_seqlen(u + i, n - i);
    if (k == 0) return i;
    i += k;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                   */

typedef struct json_path {
  const char *key;    /* NULL for an array index */
  size_t klen;
  lua_Integer index;
} json_path;

typedef struct json_enc {
  lua_State *L;
  json_box *box;
  int array_mt, object_mt;      /* absolute stack indices */
  int depth;
  const void *seen[JSON_MAX_DEPTH + 1];
  json_path path[JSON_MAX_DEPTH + 1];
  const char *root;
  char err[JSON_ERRLEN];
} json_enc;

static int key_is_identifier(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  return 1;
}

/* Record an encoding failure as "<path>: <reason>" and return 0. */
static int enc_fail(json_enc *e, const char *fmt, ...) {
  size_t used;
  int i;
  va_list ap;
  used = (size_t)snprintf(e->err, sizeof e->err, "%s", e->root);
  for (i = 0; i < e->depth && used < sizeof e->err; i++) {
    const json_path *p = &e->path[i];
    if (p->key == NULL)
      used += (size_t)snprintf(e->err + used, sizeof e->err - used, "[%lld]",
                               (long long)p->index);
    else if (key_is_identifier(p->key, p->klen))
      used += (size_t)snprintf(e->err + used, sizeof e->err - used, ".%.*s",
                               (int)p->klen, p->key);
    else
      used += (size_t)snprintf(e->err + used, sizeof e->err - used, "[\"%.*s\"]",
                               (int)(p->klen > 40 ? 40 : p->klen), p->key);
  }
  if (used < sizeof e->err)
    used += (size_t)snprintf(e->err + used, sizeof e->err - used, ": ");
  if (used < sizeof e->err) {
    va_start(ap, fmt);
    vsnprintf(e->err + used, sizeof e->err - used, fmt, ap);
    va_end(ap);
  }
  return 0;
}

static int enc_out(json_enc *e, const char *s, size_t n) {
  if (!buf_append(&e->box->out, s, n))
    return enc_fail(e, "encoded JSON exceeds %lu bytes",
                    (unsigned long)e->box->out.max);
  return 1;
}

/* Length of the prefix of s[0..n) that is written as is: valid UTF-8 with no
 * quote, backslash or control character. */
static size_t plain_prefix(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = u[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { i++; continue; }
    if (c < 0x80) return i;
    {
      size_t k = utf8_seqlen(u + i, n - i);
      if (k == 0) return i;
      i += k;
    }
  }
  return n;
}

static int enc_string(json_enc *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_t *out = &e->box->out;
  size_t bad, i, run = 0;
  if (plain_prefix(s, n) == n) {            /* the usual case: one copy */
    if (!buf_reserve(out, n + 2))
      return enc_fail(e, "encoded JSON exceeds %lu bytes", (unsigned long)out->max);
    out->data[out->len] = '"';
    memcpy(out->data + out->len + 1, s, n);
    out->data[out->len + n + 1] = '"';
    out->len += n + 2;
    out->data[out->len] = '\0';
    return 1;
  }
  bad = utf8_check(s, n);
  if (bad < n)
    return enc_fail(e, "invalid UTF-8 in string (byte %lu)", (unsigned long)bad + 1);
  if (!buf_reserve(out, n + 2))
    return enc_fail(e, "encoded JSON exceeds %lu bytes", (unsigned long)out->max);
  buf_putc(out, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[6];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (!enc_out(e, s + run, i - run)) return 0;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        memcpy(u, "\\u00", 4);
        u[4] = hex[c >> 4];
        u[5] = hex[c & 15];
        if (!enc_out(e, u, 6)) return 0;
    }
    if (esc && !enc_out(e, esc, 2)) return 0;
    run = i + 1;
  }
  return enc_out(e, s + run, n - run) && enc_out(e, "\"", 1);
}

/* strtod over s[0..n) (a grammatical JSON number) with '.' as the decimal
 * point whatever the locale: the point is swapped for the locale's, as Lua's
 * own l_str2d does. */
static double json_strtod(const char *s, size_t n) {
  char local[JSON_NUMBER_MAX], *copy = local, *dot;
  char point = locale_point();
  double v;
  if (point == '.') return strtod(s, NULL);
  if (n >= sizeof local) {
    copy = malloc(n + 1);
    if (copy == NULL) return strtod(s, NULL);
  }
  memcpy(copy, s, n);
  copy[n] = '\0';
  dot = strchr(copy, '.');
  if (dot != NULL) *dot = point;
  v = strtod(copy, NULL);
  if (copy != local) free(copy);
  return v;
}

/* Shortest of %.15g..%.17g that reads back as the same double, with '.' as
 * the decimal point whatever the locale. */
static size_t format_double(char *out, size_t size, double d) {
  int prec;
  size_t n = 0;
  char point = locale_point(), *p;
  for (prec = 15; prec <= 17; prec++) {
    n = (size_t)snprintf(out, size, "%.*g", prec, d);
    if (n >= size) n = size - 1;
    p = point != '.' ? strchr(out, point) : NULL;
    if (p != NULL) *p = '.';
    if (json_strtod(out, n) == d) break;
  }
  if (!strpbrk(out, ".eE") && n + 2 < size) {   /* keep it a float */
    memcpy(out + n, ".0", 3);
    n += 2;
  }
  return n;
}

static int enc_number(json_enc *e, int idx) {
  char num[48];
  size_t n;
  if (lua_isinteger(e->L, idx)) {
    n = (size_t)snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(e->L, idx));
  } else {
    double d = (double)lua_tonumber(e->L, idx);
    if (isnan(d) || isinf(d))
      return enc_fail(e, "cannot encode %s (JSON has no NaN or infinity)",
                      isnan(d) ? "NaN" : "infinity");
    n = format_double(num, sizeof num, d);
  }
  return enc_out(e, num, n);
}

static int enc_value(json_enc *e, int idx);

static int key_cmp(const void *a, const void *b) {
  const json_key *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int push_key(json_enc *e, const char *s, size_t n, int value) {
  json_box *box = e->box;
  if (box->nkeys == box->keycap) {
    size_t ncap = box->keycap ? box->keycap * 2 : 64;
    json_key *k = realloc(box->keys, ncap * sizeof *k);
    if (!k) return enc_fail(e, "out of memory");
    box->keys = k;
    box->keycap = ncap;
  }
  box->keys[box->nkeys].s = s;
  box->keys[box->nkeys].n = n;
  box->keys[box->nkeys].value = value;
  box->nkeys++;
  return 1;
}

static int enc_array(json_enc *e, int idx, lua_Integer n) {
  lua_Integer i;
  if (!enc_out(e, "[", 1)) return 0;
  for (i = 1; i <= n; i++) {
    if (i > 1 && !enc_out(e, ",", 1)) return 0;
    e->path[e->depth - 1].key = NULL;
    e->path[e->depth - 1].index = i;
    lua_rawgeti(e->L, idx, i);
    if (!enc_value(e, lua_gettop(e->L))) return 0;
    lua_pop(e->L, 1);
  }
  return enc_out(e, "]", 1);
}

/* Sorts keys[0..n): insertion sort for the usual handful, qsort beyond. */
static void sort_keys(json_key *keys, size_t n) {
  size_t i, j;
  if (n > 16) { qsort(keys, n, sizeof(json_key), key_cmp); return; }
  for (i = 1; i < n; i++) {
    json_key k = keys[i];
    for (j = i; j > 0 && key_cmp(&keys[j - 1], &k) > 0; j--) keys[j] = keys[j - 1];
    keys[j] = k;
  }
}

/* Writes the object whose keys are box->keys[base..nkeys), sorted. */
static int enc_object(json_enc *e, int idx, size_t base) {
  size_t i, count = e->box->nkeys - base;
  if (count > 1) sort_keys(e->box->keys + base, count);   /* keys may still be NULL */
  if (!enc_out(e, "{", 1)) return 0;
  for (i = 0; i < count; i++) {
    json_key k = e->box->keys[base + i];   /* copy: keys may be reallocated */
    if (i > 0 && !enc_out(e, ",", 1)) return 0;
    e->path[e->depth - 1].key = k.s;
    e->path[e->depth - 1].klen = k.n;
    if (!enc_string(e, k.s, k.n) || !enc_out(e, ":", 1)) return 0;
    if (k.value) {
      if (!enc_value(e, k.value)) return 0;
    } else {
      lua_pushlstring(e->L, k.s, k.n);
      lua_rawget(e->L, idx);
      if (!enc_value(e, lua_gettop(e->L))) return 0;
      lua_pop(e->L, 1);
    }
  }
  e->box->nkeys = base;
  return enc_out(e, "}", 1);
}

/* Descend into a container: its children's paths go in path[depth]. */
static int enc_enter(json_enc *e, const void *self) {
  e->seen[e->depth] = self;
  e->path[e->depth].key = NULL;
  e->path[e->depth].index = 0;
  e->depth++;
  return 1;
}

static int enc_leave(json_enc *e) {
  e->depth--;
  return 1;
}

/* Decide whether the table at idx is an array or an object and write it. */
static int enc_table(json_enc *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  int i, marked_array = 0, marked_object = 0, ok;

  size_t base = e->box->nkeys, nstr = 0;
  lua_Integer nint = 0, maxi = 0;
  int top = lua_gettop(L);

  if (e->depth >= JSON_MAX_DEPTH)
    return enc_fail(e, "nested deeper than %d levels", JSON_MAX_DEPTH);
  for (i = 0; i < e->depth; i++)
    if (e->seen[i] == self) return enc_fail(e, "table contains itself (cycle)");
  if (!lua_checkstack(L, 4)) return enc_fail(e, "Lua stack exhausted");

  if (lua_getmetatable(L, idx)) {
    marked_array = lua_rawequal(L, -1, e->array_mt);
    marked_object = lua_rawequal(L, -1, e->object_mt);
    lua_pop(L, 1);
  }
  if (marked_array)
    return enc_enter(e, self) && enc_array(e, idx, (lua_Integer)lua_rawlen(L, idx)) &&
           enc_leave(e);
  /* String keys keep their value on the stack (no second lookup when
   * writing), while the stack has room; integer keys only count. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      int keep = nstr < 1024 && lua_checkstack(L, 3);   /* bounded stack use */
      if (!push_key(e, k, kl, keep ? lua_gettop(L) : 0)) { lua_settop(L, top); return 0; }
      if (keep) lua_pushvalue(L, -2); else lua_pop(L, 1);
      nstr++;
    } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) &&
               lua_tointeger(L, -2) > 0 && !marked_object) {
      lua_Integer k = lua_tointeger(L, -2);
      lua_pop(L, 1);
      nint++;
      if (k > maxi) maxi = k;
    } else {
      const char *what = lua_typename(L, kt);
      lua_settop(L, top);
      e->box->nkeys = base;
      return enc_fail(e, "object key must be a string, got %s%s", what,
                      kt == LUA_TNUMBER ? " (not a positive integer index)" : "");
    }
  }
  if (nint > 0 && nstr > 0) {
    lua_settop(L, top);
    e->box->nkeys = base;
    return enc_fail(e, "table mixes array items and object keys");
  }
  if (nint > 0 && maxi != nint)
    return enc_fail(e, "array has holes (%lld items, highest index %lld)",
                    (long long)nint, (long long)maxi);
  if (!enc_enter(e, self)) return 0;
  ok = nint > 0 ? enc_array(e, idx, maxi) : enc_object(e, idx, base);
  lua_settop(L, top);
  return ok && enc_leave(e);
}

static int enc_value(json_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return enc_out(e, "null", 4);
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? enc_out(e, "true", 4) : enc_out(e, "false", 5);
    case LUA_TNUMBER:
      return enc_number(e, idx);
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return enc_string(e, s, n);
    }
    case LUA_TTABLE:
      return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return enc_out(e, "null", 4);
      /* fall through */
    default:
      return enc_fail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* json_encode(value [, root]) -> string | nil, "invalid", message
 * `root` names the value in error paths (default "value"). */
static int json_encode(lua_State *L) {
  json_enc e;
  int ok;
  luaL_checkany(L, 1);
  e.root = luaL_optstring(L, 2, "value");
  lua_settop(L, 2);
  e.L = L;
  e.box = box_acquire(L);                              /* [3: own box] */
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT));
  e.array_mt = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(UV_OBJECT_MT));
  e.object_mt = lua_gettop(L);
  e.depth = 0;
  e.err[0] = '\0';
  e.box->out.max = JSON_MAX_OUTPUT;
  ok = enc_value(&e, 1);
  if (!ok) {
    box_release(e.box);
    return util_fail(L, "invalid", "%s", e.err);
  }
  lua_pushlstring(L, buf_cstr(&e.box->out), e.box->out.len);
  box_release(e.box);
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                   */

typedef struct json_dec {
  lua_State *L;
  json_box *box;
  const char *start, *p, *end;
  int depth, max_depth;
  int array_mt, object_mt;
  char err[JSON_ERRLEN];
} json_dec;

static int dec_fail(json_dec *d, const char *what) {
  if (d->p >= d->end)
    snprintf(d->err, sizeof d->err, "%s at end of input", what);
  else
    snprintf(d->err, sizeof d->err, "%s at byte %lu", what,
             (unsigned long)(d->p - d->start) + 1);
  return 0;
}

static void dec_space(json_dec *d) {
  const char *p = d->p, *end = d->end;     /* locals: no reload per byte */
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  d->p = p;
}

static int dec_literal(json_dec *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
    return dec_fail(d, "invalid literal");
  d->p += n;
  return 1;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static int put_utf8(buf_t *b, unsigned cp) {
  char s[4];
  size_t n;
  if (cp < 0x80) { s[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    s[0] = (char)(0xE0 | (cp >> 12)); s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    s[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    s[0] = (char)(0xF0 | (cp >> 18)); s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return buf_append(b, s, n);
}

/* \uXXXX (with surrogate pairs); a lone surrogate becomes U+FFFD. */
static int dec_unicode_escape(json_dec *d, buf_t *b) {
  unsigned cp, lo;
  if (d->end - d->p < 5 || !hex4(d->p + 1, &cp))
    return dec_fail(d, "invalid \\u escape");
  d->p += 5;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u' &&
        hex4(d->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      d->p += 6;
    } else {
      cp = 0xFFFD;
    }
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    cp = 0xFFFD;
  }
  return put_utf8(b, cp) ? 1 : dec_fail(d, "string too long");
}

/* Pushes the string starting after the opening quote at d->p. */
static int dec_string(json_dec *d) {
  const char *s = ++d->p;
  buf_t *b = &d->box->out;
  size_t bad, run = plain_prefix(s, (size_t)(d->end - s));
  if (s + run < d->end && s[run] == '"') {     /* fast path: no escapes */
    lua_pushlstring(d->L, s, run);
    d->p = s + run + 1;
    return 1;
  }
  buf_reset(b);
  for (;;) {
    while (d->p < d->end && *d->p != '"' && *d->p != '\\' &&
           (unsigned char)*d->p >= 0x20)
      d->p++;
    bad = utf8_check(s, (size_t)(d->p - s));
    if (bad < (size_t)(d->p - s)) { d->p = s + bad; return dec_fail(d, "invalid UTF-8"); }
    if (!buf_append(b, s, (size_t)(d->p - s))) return dec_fail(d, "string too long");
    if (d->p >= d->end) return dec_fail(d, "unterminated string");
    if (*d->p == '"') break;
    if ((unsigned char)*d->p < 0x20) return dec_fail(d, "control character in string");
    /* backslash */
    if (d->end - d->p < 2) { d->p = d->end; return dec_fail(d, "unterminated string"); }
    {
      char c = d->p[1], out = 0;
      switch (c) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u':
          d->p++;
          if (!dec_unicode_escape(d, b)) return 0;
          s = d->p;
          continue;
        default:
          d->p++;
          return dec_fail(d, "invalid escape");
      }
      if (!buf_putc(b, out)) return dec_fail(d, "string too long");
      d->p += 2;
      s = d->p;
    }
  }
  lua_pushlstring(d->L, buf_cstr(b), b->len);
  d->p++;
  return 1;
}

/* Integers without fraction/exponent that fit int64 stay integers. */
static int dec_number(json_dec *d) {
  const char *s = d->p;
  int neg = 0, is_float = 0;
  unsigned long long mag = 0;
  int overflow = 0;
  if (*d->p == '-') { neg = 1; d->p++; }
  if (d->p < d->end && *d->p == '0') {
    d->p++;
  } else if (d->p < d->end && *d->p >= '1' && *d->p <= '9') {
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') {
      unsigned dig = (unsigned)(*d->p - '0');
      if (mag > (ULLONG_MAX - dig) / 10) overflow = 1;
      else mag = mag * 10 + dig;
      d->p++;
    }
  } else {
    return dec_fail(d, "invalid number");
  }
  if (d->p < d->end && *d->p == '.') {
    is_float = 1;
    d->p++;
    if (d->p >= d->end || *d->p < '0' || *d->p > '9') return dec_fail(d, "invalid number");
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  }
  if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
    is_float = 1;
    d->p++;
    if (d->p < d->end && (*d->p == '+' || *d->p == '-')) d->p++;
    if (d->p >= d->end || *d->p < '0' || *d->p > '9') return dec_fail(d, "invalid number");
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  }
  if (!is_float && !overflow &&
      mag <= (neg ? (unsigned long long)LLONG_MAX + 1ULL : (unsigned long long)LLONG_MAX)) {
    lua_Integer v = neg ? (lua_Integer)(0 - mag) : (lua_Integer)mag;
    lua_pushinteger(d->L, v);
  } else {
    /* The input is NUL-terminated and the token is grammatical, so strtod
     * stops exactly at its end.  A number beyond double range would come back
     * as infinity, which no JSON can carry: refuse it (found by fuzzing). */
    double v = json_strtod(s, (size_t)(d->p - s));
    if (isinf(v)) { d->p = s; return dec_fail(d, "number out of range"); }
    lua_pushnumber(d->L, (lua_Number)v);
  }
  return 1;
}

static int dec_value(json_dec *d);

/* Containers collect up to DEC_BATCH members on the Lua stack and then make
 * (or fill) their table in one go, so a table is created at its final size
 * instead of growing member by member. */
#define DEC_BATCH 32

static int dec_enter(json_dec *d) {
  if (++d->depth > d->max_depth) return dec_fail(d, "nested too deeply");
  if (!lua_checkstack(d->L, 2 * DEC_BATCH + 4)) return dec_fail(d, "Lua stack exhausted");
  return 1;
}

/* Moves the `n` members (values, or key/value pairs when `pairs`) at the top
 * of the stack into the container at *t, creating it first when *t is 0.
 * Members go in source order, so a repeated key keeps its last value. */
static void dec_flush(json_dec *d, int *t, int n, int pairs, lua_Integer *count) {
  lua_State *L = d->L;
  int i, first, width = pairs ? 2 : 1;
  if (*t == 0) {
    lua_createtable(L, pairs ? 0 : n, pairs ? n : 0);
    lua_pushvalue(L, pairs ? d->object_mt : d->array_mt);
    lua_setmetatable(L, -2);
    lua_insert(L, -(n * width) - 1);
    *t = lua_gettop(L) - n * width;
  }
  first = *t + 1;
  for (i = 0; i < n; i++) {
    if (pairs) {
      lua_pushvalue(L, first + 2 * i);
      lua_pushvalue(L, first + 2 * i + 1);
      lua_rawset(L, *t);
    } else {
      lua_pushvalue(L, first + i);
      lua_rawseti(L, *t, ++*count);
    }
  }
  lua_settop(L, *t);
}

static int dec_array(json_dec *d) {
  int t = 0, n = 0;
  lua_Integer count = 0;
  if (!dec_enter(d)) return 0;
  d->p++;
  dec_space(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    dec_flush(d, &t, 0, 0, &count);
    d->depth--;
    return 1;
  }
  for (;;) {
    if (!dec_value(d)) return 0;
    if (++n == DEC_BATCH) { dec_flush(d, &t, n, 0, &count); n = 0; }
    dec_space(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == ']') { d->p++; break; }
    return dec_fail(d, "expected ',' or ']'");
  }
  if (n > 0 || t == 0) dec_flush(d, &t, n, 0, &count);
  d->depth--;
  return 1;
}

static int dec_object(json_dec *d) {
  int t = 0, n = 0;
  if (!dec_enter(d)) return 0;
  d->p++;
  dec_space(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    dec_flush(d, &t, 0, 1, NULL);
    d->depth--;
    return 1;
  }
  for (;;) {
    dec_space(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, "expected a string key");
    if (!dec_string(d)) return 0;
    dec_space(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, "expected ':'");
    d->p++;
    if (!dec_value(d)) return 0;
    if (++n == DEC_BATCH) { dec_flush(d, &t, n, 1, NULL); n = 0; }
    dec_space(d);
    if (d->p < d->end && *d->p == ',') { d->p++; continue; }
    if (d->p < d->end && *d->p == '}') { d->p++; break; }
    return dec_fail(d, "expected ',' or '}'");
  }
  if (n > 0 || t == 0) dec_flush(d, &t, n, 1, NULL);
  d->depth--;
  return 1;
}

static int dec_value(json_dec *d) {
  dec_space(d);
  if (d->p >= d->end) return dec_fail(d, "expected a value");
  switch (*d->p) {
    case '{': return dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't':
      if (!dec_literal(d, "true", 4)) return 0;
      lua_pushboolean(d->L, 1);
      return 1;
    case 'f':
      if (!dec_literal(d, "false", 5)) return 0;
      lua_pushboolean(d->L, 0);
      return 1;
    case 'n':
      if (!dec_literal(d, "null", 4)) return 0;
      lua_pushlightuserdata(d->L, NULL);
      return 1;
    default:
      if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return dec_number(d);
      return dec_fail(d, "unexpected character");
  }
}

/* json_decode(text [, max_depth]) -> value | nil, "invalid", message
 * Raises when max_depth is not an integer from 1 to JSON_MAX_DECODE_DEPTH. */
static int json_decode(lua_State *L) {
  json_dec d;
  size_t n;
  int ok;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer depth = luaL_optinteger(L, 2, JSON_DECODE_DEPTH);
  luaL_argcheck(L, depth >= 1 && depth <= JSON_MAX_DECODE_DEPTH, 2,
                "max_depth must be from 1 to " JSON_STR(JSON_MAX_DECODE_DEPTH));
  d.max_depth = (int)depth;
  lua_settop(L, 1);
  d.L = L;
  d.box = box_acquire(L);                              /* [2: own box] */
  lua_pushvalue(L, lua_upvalueindex(UV_ARRAY_MT));
  d.array_mt = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(UV_OBJECT_MT));
  d.object_mt = lua_gettop(L);
  d.start = d.p = s;
  d.end = s + n;
  d.depth = 0;
  d.err[0] = '\0';
  d.box->out.max = n + 16;          /* an unescaped string is never longer */
  ok = dec_value(&d);
  if (ok) {
    dec_space(&d);
    if (d.p < d.end) ok = dec_fail(&d, "trailing characters after JSON value");
  }
  box_release(d.box);
  if (!ok) return util_fail(L, "invalid", "invalid JSON: %s", d.err);
  return 1;
}

/* ------------------------------------------------------------------------ */

/* Sets json_encode, json_decode, array_mt, object_mt and null on the table at
 * the top of the stack. */
void json_register(lua_State *L) {
  json_box *box;
  int t = lua_gettop(L);
  box = lua_newuserdatauv(L, sizeof *box, 0);
  memset(box, 0, sizeof *box);
  buf_init(&box->out, JSON_MAX_OUTPUT);
  class_register(L, BOX_MT, NULL, box_gc);
  luaL_setmetatable(L, BOX_MT);                        /* box */
  lua_newtable(L);                                     /* array_mt */
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_newtable(L);                                     /* object_mt */
  lua_pushliteral(L, "object");
  lua_setfield(L, -2, "__jsontype");

  /* stack: box, array_mt, object_mt */
  lua_pushvalue(L, -2);                                /* array_mt */
  lua_setfield(L, t, "array_mt");
  lua_pushvalue(L, -1);                                /* object_mt */
  lua_setfield(L, t, "object_mt");

  lua_pushvalue(L, -3);                                /* copies of box, array_mt, object_mt */
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, json_encode, 3);                 /* takes the copies as its upvalues */
  lua_setfield(L, t, "json_encode");
  lua_pushcclosure(L, json_decode, 3);                 /* takes the originals: stack back to t */
  lua_setfield(L, t, "json_decode");

  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, t, "null");
}
