/*
 * http.c - the libcurl transport.
 *
 * A session is one CURL easy handle kept for the life of an SDK client, so
 * its connection cache keeps connections alive between calls (HTTP/2 over TLS
 * where the server offers it).  The Lua layer decides everything about a
 * request (method, URL, header lines, body, timeouts); this file only moves
 * bytes, with these fixed policies:
 *   - TLS peer and host verification always on; redirects never followed;
 *     only http:// and https:// URLs.
 *   - The response body and headers are capped; past the cap the transfer is
 *     aborted and reported as "too_large".
 *   - No Lua API is called from inside a libcurl callback, so a Lua error can
 *     never unwind through libcurl.
 * Failures are returned, never raised: nil, kind, message, sent, where kind is
 * "timeout", "network", "tls", "too_large" or "interrupted" and `sent` tells
 * whether any request bytes left the machine (for retry decisions).
 */
#define _POSIX_C_SOURCE 200809L  /* strdup */
#include "http.h"
#include "buf.h"
#include "class.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lauxlib.h"

#define HTTP_MT "scalekit.http"
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)    /* 64 MiB */
#define HTTP_MAX_HEADERS ((size_t)256 << 10)        /* 256 KiB of header lines */
#define HTTP_MAX_HEADER_LINES 512
#define HTTP_MAX_WATCHED 8                            /* header-name prefixes */
/* gzip only: what X and Scalekit compress with; libcurl does less work per
 * request than for its whole list (deflate, gzip, br, zstd). */
#define HTTP_ACCEPT_ENCODING "gzip"

typedef struct http_session {
  CURL *easy;
  CURLSH *share;                   /* the connection pool (sessions only) */
  buf_t last_url;                  /* what CURLOPT_URL holds (re-parsing costs) */
  buf_t last_headers;              /* the header lines behind req_headers */
  buf_t joined;                    /* scratch: this request's header lines */
  char *ca_file, *proxy;           /* copies, for batch handles (sessions only) */
  int attempts;                    /* how often libcurl began this request */
  int once;                        /* 1: never let libcurl send it again */
  struct curl_slist *req_headers;  /* kept until the next request or __gc */
  buf_t body;
  buf_t head;
  int too_large;                   /* 1: body over its cap, 2: headers */
  int raw_headers;                 /* 1: hand the header block over unparsed */
  char *watch[HTTP_MAX_WATCHED];   /* header-name prefixes to flag (sessions only) */
  int nwatch;
  int watched;                     /* the response has a watched header */
  char errbuf[CURL_ERROR_SIZE];
} http_session;

static http_session *session_check(lua_State *L) {
  http_session *s = luaL_checkudata(L, 1, HTTP_MT);
  if (s->easy == NULL) luaL_error(L, "HTTP session is closed");
  return s;
}

static void session_release(http_session *s) {
  if (s->easy) curl_easy_cleanup(s->easy);
  s->easy = NULL;
  if (s->share && curl_share_cleanup(s->share) == CURLSHE_OK) s->share = NULL;
  free(s->ca_file);
  free(s->proxy);
  s->ca_file = s->proxy = NULL;
  while (s->nwatch > 0) free(s->watch[--s->nwatch]);
  curl_slist_free_all(s->req_headers);
  s->req_headers = NULL;
  buf_free(&s->body);
  buf_free(&s->head);
  buf_free(&s->last_url);
  buf_free(&s->last_headers);
  buf_free(&s->joined);
}

static int session_gc(lua_State *L) {
  session_release(luaL_checkudata(L, 1, HTTP_MT));
  return 0;
}

static int session_close(lua_State *L) {
  session_release(luaL_checkudata(L, 1, HTTP_MT));
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  http_session *s = ud;
  size_t len = size * n;
  if (!buf_append(&s->body, p, len)) {
    s->too_large = 1;
    return 0;                       /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  return len;
}

/* True when the header line p[0..len) starts with one of the n prefixes
 * (the session's watched ones, given by the Lua side), whatever its case. */
static int has_prefix(const char *const *prefix, int n, const char *p, size_t len) {
  int i;
  for (i = 0; i < n; i++) {
    size_t k = strlen(prefix[i]);
    if (len > k && strncasecmp(p, prefix[i], k) == 0) return 1;
  }
  return 0;
}

static int is_watched(const http_session *s, const char *p, size_t len) {
  return has_prefix((const char *const *)s->watch, s->nwatch, p, len);
}

/* Keeps the header lines of the last response only (1xx responses and any
 * earlier status line reset the buffer), noting watched headers. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  http_session *s = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    buf_reset(&s->head);
    s->watched = 0;
  } else if (!s->watched && is_watched(s, p, len)) {
    s->watched = 1;
  }
  if (!buf_append(&s->head, p, len)) {
    s->too_large = 2;
    return 0;
  }
  return len;
}

/* libcurl sends a request again by itself when a reused connection dies
 * before any response byte arrives, but the server may already have acted on
 * it.  Called before each attempt: refuses a second attempt of a request that
 * must go out at most once (POST, PATCH), which then fails as "network" with
 * `sent` true. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port) {
  http_session *s = ud;
  (void)ip; (void)local_ip; (void)port; (void)local_port;
  return (++s->attempts > 1 && s->once) ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* Aborts a transfer when the host was asked to stop (Ctrl-C). */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
  return scalekit_interrupted ? 1 : 0;
}

static int is_idempotent(const char *method) {
  return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
         strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0 ||
         strcmp(method, "OPTIONS") == 0;
}

/* Field `name` (seconds) of the options table at `idx`, in milliseconds;
 * `dflt` when absent.  Raises unless it is a positive number. */
static long opt_millis(lua_State *L, int idx, const char *name, long dflt) {
  lua_Number v;
  long ms;
  lua_getfield(L, idx, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return dflt; }
  v = luaL_checknumber(L, -1);
  lua_pop(L, 1);
  if (!(v > 0)) luaL_error(L, "'%s' must be a positive number of seconds", name);
  ms = v > 2147483.0 ? 2147483647L : (long)(v * 1000.0 + 0.5);
  return ms > 0 ? ms : 1;
}

/* Sets the method and the body.  The body (anchored by the caller) goes out
 * in the same write as the headers when it is small. */
static void set_method(http_session *s, const char *method, const char *body, size_t blen) {
  CURL *e = s->easy;
  int idempotent = is_idempotent(method);
  s->once = !idempotent;
  curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
  if (body != NULL || !idempotent) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? blen : 0));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
}

/* Builds the request header list from the array of "Name: value" strings in
 * field `headers` of the options table at `idx`.  Returns 0 if libcurl ran
 * out of memory; raises for a malformed header line. */
static int set_headers(lua_State *L, int idx, http_session *s) {
  lua_Integer i, n = 0;
  struct curl_slist *list = NULL, *next;
  buf_t *joined = &s->joined, swap;
  lua_getfield(L, idx, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, -1);
  }
  /* Same lines as last time: keep the list (and libcurl's parsed state). */
  buf_reset(joined);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *line;
    lua_rawgeti(L, -1, i);
    line = lua_tolstring(L, -1, &len);
    if (line == NULL || memchr(line, '\r', len) || memchr(line, '\n', len))
      luaL_error(L, "header %d must be a single-line string", (int)i);
    if (!buf_append(joined, line, len + 1)) { lua_pop(L, 2); return 0; }
    lua_pop(L, 1);
  }
  if (s->req_headers && joined->len == s->last_headers.len &&
      (joined->len == 0 || memcmp(joined->data, s->last_headers.data, joined->len) == 0)) {
    lua_pop(L, 1);
    return 1;
  }
  curl_slist_free_all(s->req_headers);
  s->req_headers = NULL;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    next = curl_slist_append(list, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!next) { curl_slist_free_all(list); lua_pop(L, 1); return 0; }
    list = next;
  }
  lua_pop(L, 1);
  /* Never wait for "100 Continue". */
  next = curl_slist_append(list, "Expect:");
  if (!next) { curl_slist_free_all(list); return 0; }
  s->req_headers = next;
  swap = s->last_headers;             /* keep this request's lines */
  s->last_headers = *joined;
  *joined = swap;
  curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->req_headers);
  return 1;
}

/* Sets CURLOPT_URL unless it already holds `url` (libcurl parses it anew
 * on every set).  Returns 0 when out of memory. */
static int set_url(http_session *s, const char *url) {
  size_t n = strlen(url);
  if (s->last_url.len == n && n > 0 && memcmp(s->last_url.data, url, n) == 0) return 1;
  buf_reset(&s->last_url);
  if (!buf_append(&s->last_url, url, n)) return 0;
  curl_easy_setopt(s->easy, CURLOPT_URL, url);
  return 1;
}

/* Pushes a table of the header lines in block[0..len): lower-case names,
 * values trimmed, repeated headers joined with ", ".  Lines whose name is
 * empty, longer than HTTP_MAX_NAME or holds spaces or control characters
 * (status lines, folded lines) are skipped, and so are lines that start
 * with none of the `nonly` prefixes in `only` (when `only` is not NULL). */
#define HTTP_MAX_NAME 128
static void push_header_block(lua_State *L, const char *block, size_t len,
                              const char *const *only, int nonly) {
  const char *p = block, *end = block + len;
  char name[HTTP_MAX_NAME];
  int lines = 0;
  lua_createtable(L, 0, only ? 4 : 8);
  while (p < end && lines++ < HTTP_MAX_HEADER_LINES) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *colon, *v, *ve;
    size_t i, nlen;
    if (!eol) eol = end;
    if (only && !has_prefix(only, nonly, p, (size_t)(eol - p))) { p = eol + 1; continue; }
    colon = memchr(p, ':', (size_t)(eol - p));
    nlen = colon ? (size_t)(colon - p) : 0;
    if (nlen > 0 && nlen <= HTTP_MAX_NAME) {
      v = colon + 1;
      ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      for (i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c == 0x7f) break;         /* not a header name */
        name[i] = (char)tolower(c);
      }
      if (i < nlen) { p = eol + 1; continue; }
      lua_pushlstring(L, name, nlen);
      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (lua_isnil(L, -1)) {                            /* first of its name */
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      } else if (ve == v) {                              /* empty items add nothing */
      } else if (lua_rawlen(L, -1) == 0) {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      } else {                                           /* repeated: join */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      }
      lua_rawset(L, -3);
    }
    p = eol + 1;
  }
}

static void push_headers(lua_State *L, http_session *s) {
  push_header_block(L, buf_cstr(&s->head), s->head.len, NULL, 0);
}

/* Pushes the header lines of the response as one string, without the status
 * line: parsed by core.parse_headers only if someone looks at them. */
static void push_raw_headers(lua_State *L, http_session *s) {
  const char *p = buf_cstr(&s->head), *nl = memchr(p, '\n', s->head.len);
  size_t skip = nl ? (size_t)(nl - p) + 1 : 0;
  lua_pushlstring(L, p + skip, s->head.len - skip);
}

/* parse_headers(block [, prefixes]) -> table, as session:request gives
 * headers; with the array `prefixes` (at most HTTP_MAX_WATCHED strings), only
 * the headers whose names start with one of them, as a session watching
 * them gives its fifth value. */
static int http_parse_headers(lua_State *L) {
  size_t len;
  const char *block = luaL_checklstring(L, 1, &len);
  const char *prefix[HTTP_MAX_WATCHED];
  int i, n = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n >= 0 && n <= HTTP_MAX_WATCHED, 2, "too many prefixes");
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);        /* anchored by the table at 2 */
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "prefixes must be strings");
      prefix[i] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  push_header_block(L, block, len, lua_isnoneornil(L, 2) ? NULL : prefix, n);
  return 1;
}

static const char *error_kind(CURLcode rc, int too_large) {
  if (too_large) return "too_large";
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_ABORTED_BY_CALLBACK: return "interrupted";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
      return "tls";
    default:
      return "network";
  }
}

/* Configures s->easy for the request described by the table at `idx` (url,
 * method, headers, body, timeouts).  The strings stay anchored in that table
 * during the transfer.  Returns 0 when libcurl runs out of memory; raises for
 * programmer mistakes (missing url, bad header lines, bad timeouts). */
static int request_prepare(lua_State *L, int idx, http_session *s) {
  const char *url, *method, *body = NULL;
  size_t blen = 0;
  long timeout, connect_timeout, stall;
  int top = lua_gettop(L);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "url");
  url = luaL_checkstring(L, -1);
  lua_getfield(L, idx, "method");
  method = luaL_optstring(L, -1, "GET");
  lua_getfield(L, idx, "body");
  if (!lua_isnil(L, -1)) body = luaL_checklstring(L, -1, &blen);
  lua_getfield(L, idx, "raw_headers");
  s->raw_headers = lua_toboolean(L, -1);
  timeout = opt_millis(L, idx, "timeout", 60000L);
  connect_timeout = opt_millis(L, idx, "connect_timeout", 10000L);
  stall = opt_millis(L, idx, "stall_timeout", 30000L);
  buf_reset(&s->body);
  buf_reset(&s->head);
  s->too_large = 0;
  s->watched = 0;
  s->errbuf[0] = '\0';
  if (!set_headers(L, idx, s) || !set_url(s, url)) return 0;
  s->attempts = 0;
  set_method(s, method, body, blen);
  curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
  curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_TIME, (stall + 999) / 1000);
  lua_settop(L, top);
  return 1;
}

/* Pushes the outcome of a finished transfer: status, headers, body, seconds
 * or nil, kind, message, sent.  Returns the number of values (always 4). */
static int request_result(lua_State *L, http_session *s, CURLcode rc) {
  long status = 0, sent = 0;
  double seconds = 0;
  curl_easy_getinfo(s->easy, CURLINFO_REQUEST_SIZE, &sent);
  if (rc == CURLE_ABORTED_BY_CALLBACK && s->once && s->attempts > 1 && !scalekit_interrupted) {
    lua_pushnil(L);
    lua_pushliteral(L, "network");
    lua_pushliteral(L, "the connection closed before any answer; not sent again");
    lua_pushboolean(L, 1);
    buf_reset(&s->body);
    return 4;
  }
  if (rc != CURLE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, error_kind(rc, s->too_large));
    if (s->too_large)
      lua_pushfstring(L, "response %s exceed the limit of %I bytes",
                      s->too_large == 1 ? "body would" : "headers would",
                      (lua_Integer)(s->too_large == 1 ? s->body.max : s->head.max));
    else
      lua_pushstring(L, s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    lua_pushboolean(L, sent > 0);
    buf_reset(&s->body);
    return 4;
  }
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &seconds);
  lua_pushinteger(L, status);
  if (s->raw_headers) push_raw_headers(L, s);
  else push_headers(L, s);
  lua_pushlstring(L, buf_cstr(&s->body), s->body.len);
  lua_pushnumber(L, seconds);
  if (s->body.cap > ((size_t)4 << 20)) {      /* don't hoard a huge buffer */
    size_t max = s->body.max;
    buf_free(&s->body);
    buf_init(&s->body, max);
  }
  return 4;
}

/* session:request{ method=, url=, headers={"Name: value",...}, body=,
 *                  timeout=, connect_timeout=, stall_timeout=, raw_headers= }
 * -> status, headers, body, seconds  |  nil, kind, message, sent
 * With raw_headers true, `headers` is the header block as one string (see
 * core.parse_headers) and, when the session watches header prefixes, a fifth
 * value holds the watched headers alone, as a table like parse_headers
 * gives, or false when there are none.  Raises only for programmer mistakes
 * (missing url, bad header lines). */
static int session_request(lua_State *L) {
  http_session *s = session_check(L);
  int n;
  lua_settop(L, 2);
  if (!request_prepare(L, 2, s)) return luaL_error(L, "out of memory");
  n = request_result(L, s, curl_easy_perform(s->easy));
  if (s->raw_headers && s->nwatch > 0 && !lua_isnil(L, -4)) {
    if (s->watched)
      push_header_block(L, buf_cstr(&s->head), s->head.len, (const char *const *)s->watch, s->nwatch);
    else lua_pushboolean(L, 0);
    n++;
  }
  return n;
}

/* Batches: up to `concurrency` transfers at once on the multi interface,
 * sharing the session's connection pool. */
#define BATCH_MT "scalekit.http.batch"
#define BATCH_MAX_CONCURRENCY 64

typedef struct http_batch {
  CURLM *multi;
  int nslots;
  http_session slot[BATCH_MAX_CONCURRENCY];
  lua_Integer index[BATCH_MAX_CONCURRENCY];   /* request number, 0 = free */
} http_batch;

static int batch_gc(lua_State *L) {
  http_batch *b = luaL_checkudata(L, 1, BATCH_MT);
  int i;
  for (i = 0; i < b->nslots; i++) {
    if (b->multi && b->slot[i].easy && b->index[i]) curl_multi_remove_handle(b->multi, b->slot[i].easy);
    b->index[i] = 0;
    session_release(&b->slot[i]);
  }
  if (b->multi) curl_multi_cleanup(b->multi);
  b->multi = NULL;
  b->nslots = 0;
  return 0;
}

static void easy_setup(CURL *e, http_session *s, const char *ca_file, const char *proxy, CURLSH *share);

/* Stores the result of the transfer in slot k as results[index]. */
static void batch_store(lua_State *L, int results, http_batch *b, int k, CURLcode rc) {
  lua_createtable(L, 0, 4);
  request_result(L, &b->slot[k], rc);
  if (lua_isnil(L, -4)) {
    lua_setfield(L, -5, "sent");
    lua_setfield(L, -4, "message");
    lua_setfield(L, -3, "error");
    lua_pop(L, 1);
  } else {
    lua_setfield(L, -5, "seconds");
    lua_setfield(L, -4, "body");
    lua_setfield(L, -3, "headers");
    lua_setfield(L, -2, "status");
  }
  lua_rawseti(L, results, b->index[k]);
  curl_multi_remove_handle(b->multi, b->slot[k].easy);
  b->index[k] = 0;
}

/* session:request_many(requests [, concurrency]) -> results
 * Runs every request table of the array `requests` (same fields as
 * session:request), at most `concurrency` (default 8, at most 64) at a time.
 * results[i] is { status=, headers=, body=, seconds= } or
 * { error = kind, message =, sent = }. */
static int session_request_many(lua_State *L) {
  http_session *s = session_check(L);
  lua_Integer n, next = 1;
  int conc, active = 0, k, results;
  http_batch *b;
  luaL_checktype(L, 2, LUA_TTABLE);
  conc = (int)luaL_optinteger(L, 3, 8);
  luaL_argcheck(L, conc >= 1, 3, "concurrency must be at least 1");
  if (conc > BATCH_MAX_CONCURRENCY) conc = BATCH_MAX_CONCURRENCY;
  lua_settop(L, 3);
  n = (lua_Integer)lua_rawlen(L, 2);
  if (n < conc) conc = n > 0 ? (int)n : 1;
  b = lua_newuserdatauv(L, sizeof *b, 0);              /* 4 */
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BATCH_MT);
  lua_createtable(L, (int)n, 0);                       /* 5: results */
  results = lua_gettop(L);
  b->multi = curl_multi_init();
  if (!b->multi) return luaL_error(L, "libcurl could not create a multi handle");
  for (k = 0; k < conc; k++) {
    buf_init(&b->slot[k].body, s->body.max);
    buf_init(&b->slot[k].head, HTTP_MAX_HEADERS);
    buf_init(&b->slot[k].last_url, 65536);
    buf_init(&b->slot[k].last_headers, HTTP_MAX_HEADERS);
    buf_init(&b->slot[k].joined, HTTP_MAX_HEADERS);
    b->slot[k].easy = curl_easy_init();
    b->nslots = k + 1;
    if (!b->slot[k].easy) return luaL_error(L, "libcurl could not create a handle");
    easy_setup(b->slot[k].easy, &b->slot[k], s->ca_file, s->proxy, s->share);
    curl_easy_setopt(b->slot[k].easy, CURLOPT_PRIVATE, (void *)&b->slot[k]);
  }
  for (;;) {
    int running = 0, left = 0;
    CURLMsg *msg;
    for (k = 0; k < conc && next <= n; k++) {
      if (b->index[k]) continue;
      lua_rawgeti(L, 2, next);
      if (!request_prepare(L, lua_gettop(L), &b->slot[k])) return luaL_error(L, "out of memory");
      lua_pop(L, 1);
      b->index[k] = next++;
      curl_multi_add_handle(b->multi, b->slot[k].easy);
      active++;
    }
    if (active == 0) break;
    curl_multi_perform(b->multi, &running);
    while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
      http_session *slot = NULL;                         /* set by CURLOPT_PRIVATE */
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
      k = (int)(slot - b->slot);
      batch_store(L, results, b, k, msg->data.result);
      active--;
    }
    /* Refill freed slots before waiting, or they idle for a whole poll. */
    if (next <= n && active < conc) continue;
    if (active > 0 && running > 0) curl_multi_poll(b->multi, NULL, 0, 1000, NULL);
  }
  lua_pushvalue(L, results);
  lua_pushcfunction(L, batch_gc);
  lua_pushvalue(L, 4);
  lua_call(L, 1, 0);                                   /* free the handles now */
  return 1;
}

static int session_tostring(lua_State *L) {
  http_session *s = luaL_checkudata(L, 1, HTTP_MT);
  lua_pushfstring(L, "scalekit.http session (%s)", s->easy ? "open" : "closed");
  return 1;
}

/* Copies the strings of the array `watch_headers` of the options at index 1
 * (header-name prefixes, at most HTTP_MAX_WATCHED) into the session, which
 * owns them from then on.  Raises for a bad list or when out of memory. */
static void session_watch(lua_State *L, http_session *s) {
  lua_Integer i, n;
  lua_getfield(L, 1, "watch_headers");
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  luaL_argcheck(L, lua_istable(L, -1), 1, "watch_headers must be an array of strings");
  n = (lua_Integer)lua_rawlen(L, -1);
  luaL_argcheck(L, n <= HTTP_MAX_WATCHED, 1, "too many watch_headers");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "watch_headers must be an array of strings");
    if (!(s->watch[s->nwatch] = strdup(lua_tostring(L, -1)))) luaL_error(L, "out of memory");
    s->nwatch++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* http_new{ ca_file=, proxy=, max_response=, watch_headers= } -> session
 * `watch_headers`: header-name prefixes whose presence a raw_headers request
 * reports (see session:request).  Raises if libcurl cannot create a handle. */
static int http_new(lua_State *L) {
  http_session *s;
  const char *ca_file = NULL, *proxy = NULL;
  lua_Integer max_body = (lua_Integer)HTTP_DEFAULT_MAX_BODY;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "ca_file");
    ca_file = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "proxy");
    proxy = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "max_response");
    max_body = luaL_optinteger(L, -1, max_body);
    luaL_argcheck(L, max_body > 0, 1, "max_response must be positive");
  }
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  buf_init(&s->body, (size_t)max_body);
  buf_init(&s->head, HTTP_MAX_HEADERS);
  buf_init(&s->last_url, 65536);
  buf_init(&s->last_headers, HTTP_MAX_HEADERS);
  buf_init(&s->joined, HTTP_MAX_HEADERS);
  luaL_setmetatable(L, HTTP_MT);
  s->share = curl_share_init();
  s->easy = curl_easy_init();
  if (!s->easy || !s->share) return luaL_error(L, "libcurl could not create a handle");
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (!lua_isnoneornil(L, 1)) session_watch(L, s);
  if (ca_file && !(s->ca_file = strdup(ca_file))) return luaL_error(L, "out of memory");
  if (proxy && !(s->proxy = strdup(proxy))) return luaL_error(L, "out of memory");
  easy_setup(s->easy, s, s->ca_file, s->proxy, s->share);
  return 1;
}

/* The fixed policies every transfer handle gets (see the file comment). */
static void easy_setup(CURL *e, http_session *s, const char *ca_file, const char *proxy, CURLSH *share) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, s);
  if (scalekit_interrupt_armed) {       /* only the host can be interrupted */
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  }
  /* Reuse a connection only while it is unlikely to have been closed idle. */
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 30L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, HTTP_ACCEPT_ENCODING);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, NULL);
  if (share) curl_easy_setopt(e, CURLOPT_SHARE, share);
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  if (proxy) curl_easy_setopt(e, CURLOPT_PROXY, proxy);
}

/* ------------------------------------------------------------------------ */
/* Streams: a long-lived GET read in pieces (newline-delimited JSON).        */

#define STREAM_MT "scalekit.http.stream"
#define STREAM_MAX_PENDING ((size_t)16 << 20)   /* unread bytes held at most */

typedef struct http_stream {
  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;
  http_session io;       /* reuses the session's buffers and callbacks */
  int done;
  CURLcode result;
} http_stream;

static void stream_release(http_stream *st) {
  if (st->multi && st->easy) curl_multi_remove_handle(st->multi, st->easy);
  if (st->easy) curl_easy_cleanup(st->easy);
  if (st->multi) curl_multi_cleanup(st->multi);
  st->easy = NULL;
  st->multi = NULL;
  curl_slist_free_all(st->headers);
  st->headers = NULL;
  buf_free(&st->io.body);
  buf_free(&st->io.head);
  buf_free(&st->io.last_headers);
  buf_free(&st->io.last_url);
  buf_free(&st->io.joined);
}

static int stream_gc(lua_State *L) {
  stream_release(luaL_checkudata(L, 1, STREAM_MT));
  return 0;
}

/* stream:read([wait]) -> bytes | "" (nothing within `wait` seconds, default 1)
 *                      | nil, kind, message (transfer failed) | nil (ended)
 * Never calls Lua from libcurl: data is buffered, then handed over here. */
static int stream_read(lua_State *L) {
  http_stream *st = luaL_checkudata(L, 1, STREAM_MT);
  lua_Number wait = luaL_optnumber(L, 2, 1.0);
  int waited = 0;
  for (;;) {
    int running = 0, left = 0;
    CURLMsg *msg;
    if (st->io.body.len > 0) {
      lua_pushlstring(L, buf_cstr(&st->io.body), st->io.body.len);
      buf_reset(&st->io.body);
      return 1;
    }
    if (st->done || st->multi == NULL) {
      if (st->result == CURLE_OK || st->multi == NULL) { lua_pushnil(L); return 1; }
      lua_pushnil(L);
      lua_pushstring(L, error_kind(st->result, st->io.too_large));
      lua_pushstring(L, st->io.errbuf[0] ? st->io.errbuf : curl_easy_strerror(st->result));
      return 3;
    }
    if (waited) { lua_pushliteral(L, ""); return 1; }
    curl_multi_perform(st->multi, &running);
    while ((msg = curl_multi_info_read(st->multi, &left)) != NULL) {
      if (msg->msg == CURLMSG_DONE) { st->done = 1; st->result = msg->data.result; }
    }
    if (!st->done && st->io.body.len == 0) {
      curl_multi_poll(st->multi, NULL, 0, (int)(wait * 1000), NULL);
      curl_multi_perform(st->multi, &running);
      while ((msg = curl_multi_info_read(st->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) { st->done = 1; st->result = msg->data.result; }
      }
      waited = 1;
    }
  }
}

/* stream:response() -> status, headers (status 0 before the headers arrive) */
static int stream_response(lua_State *L) {
  http_stream *st = luaL_checkudata(L, 1, STREAM_MT);
  long status = 0;
  if (st->easy) curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, status);
  push_headers(L, &st->io);
  return 2;
}

static int stream_close(lua_State *L) {
  stream_release(luaL_checkudata(L, 1, STREAM_MT));
  return 0;
}

/* stream_open{ url=, headers={"Name: value",...}, ca_file=, proxy=,
 *              connect_timeout=, stall_timeout= } -> stream
 * Starts a GET whose body is read with stream:read().  Raises only for
 * programmer mistakes or when libcurl cannot allocate. */
static int http_stream_open(lua_State *L) {
  http_stream *st;
  const char *url, *ca_file, *proxy;
  long connect_timeout, stall;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);     /* keep the options table at index 2 for the helpers */
  lua_insert(L, 1);
  lua_getfield(L, 2, "url");
  url = luaL_checkstring(L, -1);
  lua_getfield(L, 2, "ca_file");
  ca_file = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 2, "proxy");
  proxy = luaL_optstring(L, -1, NULL);
  connect_timeout = opt_millis(L, 2, "connect_timeout", 10000L);
  stall = opt_millis(L, 2, "stall_timeout", 60000L);
  st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  buf_init(&st->io.body, STREAM_MAX_PENDING);
  buf_init(&st->io.head, HTTP_MAX_HEADERS);
  buf_init(&st->io.last_url, 65536);
  buf_init(&st->io.last_headers, HTTP_MAX_HEADERS);
  buf_init(&st->io.joined, HTTP_MAX_HEADERS);
  luaL_setmetatable(L, STREAM_MT);
  st->multi = curl_multi_init();
  st->easy = curl_easy_init();
  st->io.easy = st->easy;
  if (!st->multi || !st->easy) return luaL_error(L, "libcurl could not create a handle");
  if (!set_headers(L, 2, &st->io)) return luaL_error(L, "out of memory");
  st->headers = st->io.req_headers;
  st->io.req_headers = NULL;
  curl_easy_setopt(st->easy, CURLOPT_HTTPHEADER, st->headers);
  curl_easy_setopt(st->easy, CURLOPT_URL, url);
  curl_easy_setopt(st->easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(st->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(st->easy, CURLOPT_ERRORBUFFER, st->io.errbuf);
  curl_easy_setopt(st->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(st->easy, CURLOPT_WRITEDATA, &st->io);
  curl_easy_setopt(st->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(st->easy, CURLOPT_HEADERDATA, &st->io);
  curl_easy_setopt(st->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(st->easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(st->easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(st->easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(st->easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(st->easy, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(st->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
  curl_easy_setopt(st->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(st->easy, CURLOPT_LOW_SPEED_TIME, (stall + 999) / 1000);
  if (ca_file) curl_easy_setopt(st->easy, CURLOPT_CAINFO, ca_file);
  if (proxy) curl_easy_setopt(st->easy, CURLOPT_PROXY, proxy);
  curl_multi_add_handle(st->multi, st->easy);
  return 1;
}

void http_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"request", session_request},
    {"request_many", session_request_many},
    {"close", session_close},
    {NULL, NULL}
  };
  static const luaL_Reg smethods[] = {
    {"read", stream_read},
    {"response", stream_response},
    {"close", stream_close},
    {NULL, NULL}
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  class_register(L, HTTP_MT, methods, session_gc);
  luaL_getmetatable(L, HTTP_MT);
  lua_pushcfunction(L, session_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  class_register(L, BATCH_MT, NULL, batch_gc);
  class_register(L, STREAM_MT, smethods, stream_gc);
  lua_pushcfunction(L, http_new);
  lua_setfield(L, -2, "http_new");
  lua_pushcfunction(L, http_parse_headers);
  lua_setfield(L, -2, "parse_headers");
  lua_pushliteral(L, HTTP_ACCEPT_ENCODING);
  lua_setfield(L, -2, "accept_encoding");
  lua_pushcfunction(L, http_stream_open);
  lua_setfield(L, -2, "stream_open");
}
