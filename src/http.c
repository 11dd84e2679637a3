/*
 * http.c - the libcurl transport.
 *
 * A session is one CURL easy handle kept for the life of an SDK client, so
 * its connection cache keeps connections alive between calls (HTTP/2 over TLS
 * where the server offers it).  The Lua layer decides everything about a
 * request (method, URL, header lines, body, timeouts, whether it may go out
 * twice); this file only moves bytes, with these fixed policies, set in one
 * place (easy_setup) for sessions, batch slots and streams alike:
 *   - TLS peer and host verification always on; redirects never followed;
 *     only http:// and https:// URLs.
 *   - The response body and headers are capped; past the cap the transfer is
 *     aborted and reported as "too_large".
 *   - No Lua API is called from inside a libcurl callback, so a Lua error can
 *     never unwind through libcurl.
 * Failures are returned, never raised: nil, kind, message[, sent], where kind
 * is "timeout", "network", "tls", "too_large" or "interrupted" and `sent`
 * tells whether any request bytes left the machine (for retry decisions).
 * Programmer mistakes (a missing url or timeout, a bad header line) raise.
 */
#include "http.h"
#include "buf.h"
#include "class.h"
#include "util.h"

#include <ctype.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lauxlib.h"

#define HTTP_MT "scalekit.http"
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)    /* 64 MiB */
#define HTTP_MAX_HEADERS ((size_t)256 << 10)        /* 256 KiB of header lines */
#define HTTP_MAX_HEADER_LINES 512
#define HTTP_MAX_URL ((size_t)64 << 10)
#define HTTP_MAX_PREFIXES 8                           /* of parse_headers */
/* gzip only: what X and Scalekit compress with.  Set as CURLOPT_ACCEPT_ENCODING
 * (libcurl decodes what it names) and exported as `accept_encoding`: the
 * Lua side sends the header line itself, which libcurl then does not build
 * again for every request. */
#define HTTP_ACCEPT_ENCODING "gzip"

/* What one transfer collects, and its resend guard.  libcurl's callbacks get
 * a pointer to it and touch nothing else. */
typedef struct http_io {
  buf_t body;
  buf_t head;
  int too_large;                   /* 1: body over its cap, 2: headers */
  int attempts;                    /* how often libcurl began this request */
  int once;                        /* 1: never let libcurl send it again */
  char errbuf[CURL_ERROR_SIZE];
} http_io;

/* A set of request header lines ("Name: value"), checked and made into
 * libcurl's list once (core.http_lines).  It never changes, and its serial
 * number is never given to another set, so a handle that used it last can
 * tell by the number alone that its list is still right. */
#define LINES_MT "scalekit.http.lines"
typedef struct http_lines {
  struct curl_slist *list;         /* NULL: no lines */
  unsigned long long serial;
} http_lines;

/* One easy handle and what lets its next request skip work: the URL and
 * header lines it already holds (libcurl re-parses both on every set). */
typedef struct http_conn {
  CURL *easy;
  http_io io;
  struct curl_slist *req_headers;  /* kept until the next request or release */
  buf_t last_url;
  unsigned long long lines_serial; /* the set behind req_headers (0: none yet) */
  buf_t last_auth;                 /* and the auth_line after it */
} http_conn;

/* The settings every handle of a session is made with. */
typedef struct http_conf {
  CURLSH *share;                   /* connection pool, DNS and TLS sessions */
  char *ca_file, *proxy;           /* owned copies, or NULL */
  size_t max_body;
} http_conf;

#define HTTP_MAX_IDLE 8           /* loop handles a session keeps for reuse */

typedef struct http_session {
  http_conn conn;
  http_conf conf;
  http_conn *idle[HTTP_MAX_IDLE];  /* handles of finished loop transfers, set up for this session */
  int nidle;
} http_session;

/* Buffers --------------------------------------------------------------- */

static void io_init(http_io *io, size_t max_body) {
  buf_init(&io->body, max_body);
  buf_init(&io->head, HTTP_MAX_HEADERS);
  io->too_large = io->attempts = io->once = 0;
  io->errbuf[0] = '\0';
}

static void io_free(http_io *io) {
  buf_free(&io->body);
  buf_free(&io->head);
}

/* Readies io for a new transfer (keeps the memory). */
static void io_reset(http_io *io) {
  buf_reset(&io->body);
  buf_reset(&io->head);
  io->too_large = io->attempts = 0;
  io->errbuf[0] = '\0';
}

static void conn_init(http_conn *c, size_t max_body) {
  memset(c, 0, sizeof *c);
  io_init(&c->io, max_body);
  buf_init(&c->last_url, HTTP_MAX_URL);
  buf_init(&c->last_auth, HTTP_MAX_HEADERS);
}

/* Frees everything c holds; safe to call twice. */
static void conn_release(http_conn *c) {
  if (c->easy) curl_easy_cleanup(c->easy);
  c->easy = NULL;
  curl_slist_free_all(c->req_headers);
  c->req_headers = NULL;
  io_free(&c->io);
  buf_free(&c->last_url);
  buf_free(&c->last_auth);
}

/* A malloc'd copy of s (NULL stays NULL).  Returns 0 when out of memory. */
static int copy_string(char **out, const char *s) {
  size_t n;
  *out = NULL;
  if (s == NULL) return 1;
  n = strlen(s) + 1;
  *out = malloc(n);
  if (*out == NULL) return 0;
  memcpy(*out, s, n);
  return 1;
}

static void conf_release(http_conf *f) {
  if (f->share && curl_share_cleanup(f->share) == CURLSHE_OK) f->share = NULL;
  free(f->ca_file);
  free(f->proxy);
  f->ca_file = f->proxy = NULL;
}

/* libcurl callbacks ------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  http_io *io = ud;
  size_t len = size * n;
  if (!buf_append(&io->body, p, len)) {
    io->too_large = 1;
    return 0;                       /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  return len;
}

/* Keeps the header lines of the last response only (1xx responses and any
 * earlier status line reset the buffer). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  http_io *io = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) buf_reset(&io->head);
  if (!buf_append(&io->head, p, len)) {
    io->too_large = 2;
    return 0;
  }
  return len;
}

/* libcurl sends a request again by itself when a reused connection dies
 * before any response byte arrives, but the server may already have acted on
 * it.  Called before each attempt: refuses a second attempt of a request the
 * Lua side marked `once`, which then fails as "network" with `sent` true. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port) {
  http_io *io = ud;
  (void)ip; (void)local_ip; (void)port; (void)local_port;
  io->attempts++;
  return (io->attempts > 1 && io->once) ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* Aborts a transfer when the host was asked to stop (Ctrl-C). */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
  return scalekit_interrupted ? 1 : 0;
}

/* The fixed policies every transfer handle gets (see the file comment):
 * callbacks writing into io, and the session's pool, CA file and proxy
 * (`share` may be NULL: a handle with its own connections). */
static void easy_setup(CURL *e, http_io *io, const http_conf *f, CURLSH *share) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, io->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, io);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, io);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, io);
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
  if (f->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
  if (f->proxy) curl_easy_setopt(e, CURLOPT_PROXY, f->proxy);
}

/* conn_init, then a handle set up by easy_setup.  Returns 0 when libcurl
 * cannot make one (c is then safe to release). */
static int conn_open(http_conn *c, const http_conf *f, CURLSH *share) {
  conn_init(c, f->max_body);
  c->easy = curl_easy_init();
  if (c->easy == NULL) return 0;
  easy_setup(c->easy, &c->io, f, share);
  return 1;
}

/* Requests --------------------------------------------------------------- */

/* Field `name` (seconds, required) of the request table at `idx`, in
 * milliseconds.  Raises unless it is a positive number: the Lua side owns
 * every default. */
static long opt_millis(lua_State *L, int idx, const char *name) {
  lua_Number v;
  long ms;
  lua_getfield(L, idx, name);
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "request field '%s' (seconds) is required", name);
  v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(v > 0)) luaL_error(L, "'%s' must be a positive number of seconds", name);
  ms = v > 2147483.0 ? 2147483647L : (long)(v * 1000.0 + 0.5);
  return ms > 0 ? ms : 1;
}

/* Sets the method and the body: a request with a body (anchored by the
 * caller; "" is a body) is sent with it, one without as a GET-style request.
 * The body goes out in the same write as the headers when it is small. */
static void set_method(CURL *e, const char *method, const char *body, size_t blen) {
  curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
  if (body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
}

/* Appends the line s[0..n) (a NUL-terminated string) to *list.  Returns 0
 * when libcurl ran out of memory (*list is then freed). */
static int lines_append(struct curl_slist **list, const char *s) {
  struct curl_slist *next = curl_slist_append(*list, s);
  if (!next) { curl_slist_free_all(*list); *list = NULL; return 0; }
  *list = next;
  return 1;
}

/* Raises unless the string at stack index `idx` is one header line. */
static const char *check_line(lua_State *L, int idx, const char *what, size_t *len) {
  const char *line = lua_tolstring(L, idx, len);
  if (line == NULL || memchr(line, '\r', *len) || memchr(line, '\n', *len) || strlen(line) != *len)
    luaL_error(L, "%s must be a single-line string", what);
  return line;
}

static int lines_gc(lua_State *L) {
  http_lines *hl = luaL_checkudata(L, 1, LINES_MT);
  curl_slist_free_all(hl->list);
  hl->list = NULL;
  return 0;
}

/* http_lines(array) -> a header set: the "Name: value" strings of the
 * array (at most HTTP_MAX_HEADER_LINES, HTTP_MAX_HEADERS bytes), checked
 * and made into libcurl's list, for the `lines` field of a request.
 * Raises for a line that is not a single-line string, past the caps, or
 * when libcurl runs out of memory (the set's __gc frees what was made). */
static int http_lines_new(lua_State *L) {
  static unsigned long long next_serial = 0;
  http_lines *hl;
  lua_Integer i, n;
  size_t total = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n <= HTTP_MAX_HEADER_LINES, 1, "too many header lines");
  hl = lua_newuserdatauv(L, sizeof *hl, 0);
  hl->list = NULL;
  hl->serial = ++next_serial;
  luaL_setmetatable(L, LINES_MT);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *line;
    lua_rawgeti(L, 1, i);
    line = check_line(L, -1, "a header line", &len);
    total += len;
    if (total > HTTP_MAX_HEADERS) return luaL_error(L, "header lines over %d bytes", (int)HTTP_MAX_HEADERS);
    if (!lines_append(&hl->list, line)) return luaL_error(L, "out of memory");
    lua_pop(L, 1);
  }
  return 1;
}

/* Makes the request's header list: the header set in field `lines` of the
 * request table at `idx` (nil: none), then its `auth_line`, then "Expect:"
 * (never wait for "100 Continue") -- unless it is the same set and auth
 * line as last time, when libcurl keeps the list it has.  Returns 0 if
 * libcurl ran out of memory; raises for a malformed auth line.  Leaves the
 * stack as it was. */
static int set_headers(lua_State *L, int idx, http_conn *c) {
  struct curl_slist *list = NULL, *p;
  const http_lines *hl = NULL;
  const char *auth = NULL;
  size_t alen = 0;
  unsigned long long serial = 0;
  lua_getfield(L, idx, "lines");                     /* +1 */
  if (!lua_isnil(L, -1)) {
    hl = luaL_checkudata(L, -1, LINES_MT);
    serial = hl->serial;
  }
  lua_getfield(L, idx, "auth_line");                 /* +2 */
  if (!lua_isnil(L, -1)) auth = check_line(L, -1, "auth_line", &alen);
  if (c->req_headers && serial == c->lines_serial && alen == c->last_auth.len &&
      (alen == 0 || memcmp(auth, c->last_auth.data, alen) == 0)) {
    lua_pop(L, 2);                                   /* the same: done */
    return 1;
  }
  for (p = hl ? hl->list : NULL; p; p = p->next)
    if (!lines_append(&list, p->data)) { lua_pop(L, 2); return 0; }
  if ((auth && !lines_append(&list, auth)) || !lines_append(&list, "Expect:")) { lua_pop(L, 2); return 0; }
  buf_reset(&c->last_auth);
  if (alen > 0 && !buf_append(&c->last_auth, auth, alen)) { curl_slist_free_all(list); lua_pop(L, 2); return 0; }
  lua_pop(L, 2);
  curl_slist_free_all(c->req_headers);
  c->req_headers = list;
  c->lines_serial = serial;
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->req_headers);
  return 1;
}

/* Sets CURLOPT_URL unless it already holds `url`.  Returns 0 when out of
 * memory (or the URL is longer than HTTP_MAX_URL). */
static int set_url(http_conn *c, const char *url) {
  size_t n = strlen(url);
  if (c->last_url.len == n && n > 0 && memcmp(c->last_url.data, url, n) == 0) return 1;
  buf_reset(&c->last_url);
  if (!buf_append(&c->last_url, url, n)) return 0;
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  return 1;
}

/* Configures c for the request table at `idx`: url, method, lines (and auth_line), body,
 * once, and the timeouts (seconds, all required: timeout,
 * connect_timeout, stall_timeout; a stream takes no total timeout).  The
 * strings stay anchored in that table during the transfer.  Returns 0 when
 * libcurl runs out of memory; raises for programmer mistakes.  Leaves the
 * stack as it was. */
static int conn_prepare(lua_State *L, int idx, http_conn *c, int streaming) {
  const char *url, *method, *body = NULL;
  size_t blen = 0;
  long timeout = 0, connect_timeout, stall;
  int top = lua_gettop(L);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "url");
  url = luaL_checkstring(L, -1);
  lua_getfield(L, idx, "method");
  method = luaL_checkstring(L, -1);
  lua_getfield(L, idx, "body");
  if (!lua_isnil(L, -1)) body = luaL_checklstring(L, -1, &blen);
  lua_getfield(L, idx, "once");
  c->io.once = lua_toboolean(L, -1);
  if (!streaming) timeout = opt_millis(L, idx, "timeout");
  connect_timeout = opt_millis(L, idx, "connect_timeout");
  stall = opt_millis(L, idx, "stall_timeout");
  io_reset(&c->io);
  if (!set_headers(L, idx, c) || !set_url(c, url)) return 0;
  set_method(c->easy, method, body, blen);
  curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout);        /* 0: none */
  curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
  curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, (stall + 999) / 1000);
  lua_settop(L, top);                                /* the url, method, body... */
  return 1;
}

/* Responses -------------------------------------------------------------- */

/* True when the header line p[0..len) starts with one of the n (non-empty)
 * prefixes, whatever the case.  The first byte decides most lines before
 * any comparison. */
static int has_prefix(const char *const *prefix, int n, const char *p, size_t len) {
  int i, first;
  if (len == 0) return 0;
  first = tolower((unsigned char)p[0]);
  for (i = 0; i < n; i++) {
    size_t k;
    if (first != tolower((unsigned char)prefix[i][0])) continue;
    k = strlen(prefix[i]);
    if (len > k && strncasecmp(p, prefix[i], k) == 0) return 1;
  }
  return 0;
}

/* Pushes a table of the header lines in block[0..len): lower-case names,
 * values trimmed, repeated headers joined with ", ".  Lines whose name is
 * empty, longer than HTTP_MAX_NAME or holds spaces or control characters
 * (status lines, folded lines) are skipped, and so are lines that start
 * with none of the `nonly` prefixes in `only` (when `only` is not NULL).
 * `lines` lines of the whole block come before this one: with them, no
 * more than HTTP_MAX_HEADER_LINES are read, wherever the reading starts. */
#define HTTP_MAX_NAME 128
static void push_header_block(lua_State *L, const char *block, size_t len,
                              const char *const *only, int nonly, int lines) {
  const char *p = block, *end = block + len;
  char name[HTTP_MAX_NAME];
  lua_createtable(L, 0, only ? 4 : 8);               /* +1: the table */
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
        unsigned char ch = (unsigned char)p[i];
        if (ch <= ' ' || ch == 0x7f) break;          /* not a header name */
        name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);   /* ASCII: no locale */
      }
      if (i < nlen) { p = eol + 1; continue; }
      lua_pushlstring(L, name, nlen);                /* +2: name */
      lua_pushvalue(L, -1);                          /* +3: name again, for the lookup */
      lua_rawget(L, -3);                             /* +3: value so far, or nil */
      if (lua_isnil(L, -1)) {                        /* first of its name */
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      } else if (ve == v) {                          /* empty items add nothing */
      } else if (lua_rawlen(L, -1) == 0) {           /* only empty items so far */
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      } else {                                       /* repeated: join */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      }
      lua_rawset(L, -3);                             /* t[name] = value; +1 */
    }
    p = eol + 1;
  }
}

/* Pushes the header lines of the response as one string, without the status
 * line: parsed by core.parse_headers only if someone looks at them. */
static void push_raw_headers(lua_State *L, http_io *io) {
  const char *p = buf_cstr(&io->head), *nl = memchr(p, '\n', io->head.len);
  size_t skip = nl ? (size_t)(nl - p) + 1 : 0;
  lua_pushlstring(L, p + skip, io->head.len - skip);
}

/* The offset of the first line of block[0..len) that starts with one of
 * the n prefixes, and in *skipped the number of lines before it; len when
 * none of the first HTTP_MAX_HEADER_LINES lines does. */
static size_t block_find_prefix(const char *block, size_t len, const char *const *prefix, int n,
                                int *skipped) {
  const char *p = block, *end = block + len;
  int lines;
  for (lines = 0; p < end && lines < HTTP_MAX_HEADER_LINES; lines++) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if (has_prefix(prefix, n, p, (size_t)(eol - p))) {
      *skipped = lines;
      return (size_t)(p - block);
    }
    p = eol + 1;
  }
  return len;
}

/* parse_headers(block [, prefixes]) -> table, as session:request gives
 * headers; with the array `prefixes` (at most HTTP_MAX_PREFIXES strings),
 * only the headers whose names start with one of them, or nil when there
 * are none (what the rate-limit bookkeeping reads: most answers make no
 * table at all). */
static int http_parse_headers(lua_State *L) {
  size_t len, first;
  const char *block = luaL_checklstring(L, 1, &len);
  const char *prefix[HTTP_MAX_PREFIXES];
  int i, n = 0, skipped = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n >= 0 && n <= HTTP_MAX_PREFIXES, 2, "too many prefixes");
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);                      /* anchored by the table at 2 */
      luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0, 2,
                    "prefixes must be non-empty strings");
      prefix[i] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  if (lua_isnoneornil(L, 2)) {
    push_header_block(L, block, len, NULL, 0, 0);
    return 1;
  }
  first = block_find_prefix(block, len, prefix, n, &skipped);
  if (first == len) {                                /* the usual answer: no table */
    lua_pushnil(L);
    return 1;
  }
  push_header_block(L, block + first, len - first, prefix, n, skipped);   /* +1: the table, from there */
  lua_pushnil(L);
  if (lua_next(L, -2)) {                             /* +3: a key and its value */
    lua_pop(L, 2);                                   /* not empty: the table */
  } else {
    lua_pop(L, 1);                                   /* only malformed lines matched */
    lua_pushnil(L);
  }
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

/* Pushes the message of a failed transfer: the cap that was hit, libcurl's
 * error buffer, or the text of rc. */
static void push_failure(lua_State *L, http_io *io, CURLcode rc) {
  if (io->too_large)
    lua_pushfstring(L, "response %s exceed the limit of %I bytes",
                    io->too_large == 1 ? "body would" : "headers would",
                    (lua_Integer)(io->too_large == 1 ? io->body.max : io->head.max));
  else
    lua_pushstring(L, io->errbuf[0] ? io->errbuf : curl_easy_strerror(rc));
}

/* Pushes the outcome of a finished transfer: status, headers, body, seconds
 * or nil, kind, message, sent.  Returns the number of values (always 4). */
static int conn_result(lua_State *L, http_conn *c, CURLcode rc) {
  http_io *io = &c->io;
  long status = 0, sent = 0;
  double seconds = 0;
  curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent);
  if (rc == CURLE_ABORTED_BY_CALLBACK && io->once && io->attempts > 1 && !scalekit_interrupted) {
    lua_pushnil(L);
    lua_pushliteral(L, "network");
    lua_pushliteral(L, "the connection closed before any answer; not sent again");
    lua_pushboolean(L, 1);
    buf_reset(&io->body);
    return 4;
  }
  if (rc != CURLE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, error_kind(rc, io->too_large));
    push_failure(L, io, rc);
    lua_pushboolean(L, sent > 0);
    buf_reset(&io->body);
    return 4;
  }
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME, &seconds);
  lua_pushinteger(L, status);
  push_raw_headers(L, io);
  lua_pushlstring(L, buf_cstr(&io->body), io->body.len);
  lua_pushnumber(L, seconds);
  if (io->body.cap > ((size_t)4 << 20)) {      /* don't hoard a huge buffer */
    size_t max = io->body.max;
    buf_free(&io->body);
    buf_init(&io->body, max);
  }
  return 4;
}

/* Sessions --------------------------------------------------------------- */

static http_session *session_check(lua_State *L) {
  http_session *s = luaL_checkudata(L, 1, HTTP_MT);
  if (s->conn.easy == NULL) luaL_error(L, "HTTP session is closed");
  return s;
}

/* __gc and __close: frees the handle, then the pool (kept while a batch
 * still holds handles in it). */
static int session_close(lua_State *L) {
  http_session *s = luaL_checkudata(L, 1, HTTP_MT);
  while (s->nidle > 0) {
    http_conn *c = s->idle[--s->nidle];
    conn_release(c);
    free(c);
  }
  conn_release(&s->conn);
  conf_release(&s->conf);
  return 0;
}

/* session:request{ method=, url=, lines={"Name: value",...}, auth_line=, body=, once=,
 *                  timeout=, connect_timeout=, stall_timeout= }
 * -> status, headers, body, seconds  |  nil, kind, message, sent
 * `headers` is the header block as one string, without the status line
 * (parsed by core.parse_headers only if someone looks).  `once`: libcurl
 * must never send it a second time. */
static int session_request(lua_State *L) {
  http_session *s = session_check(L);
  lua_settop(L, 2);
  if (!conn_prepare(L, 2, &s->conn, 0)) return luaL_error(L, "out of memory");
  return conn_result(L, &s->conn, curl_easy_perform(s->conn.easy));
}

/* Batches: up to `concurrency` transfers at once on the multi interface,
 * sharing the session's connection pool. */
#define BATCH_MT "scalekit.http.batch"
#define BATCH_MAX_CONCURRENCY 64

typedef struct http_batch {
  CURLM *multi;
  int nslots;
  http_conn slot[BATCH_MAX_CONCURRENCY];
  lua_Integer index[BATCH_MAX_CONCURRENCY];   /* request number, 0 = free */
} http_batch;

static int batch_gc(lua_State *L) {
  http_batch *b = luaL_checkudata(L, 1, BATCH_MT);
  int i;
  for (i = 0; i < b->nslots; i++) {
    if (b->multi && b->slot[i].easy && b->index[i]) curl_multi_remove_handle(b->multi, b->slot[i].easy);
    b->index[i] = 0;
    conn_release(&b->slot[i]);
  }
  if (b->multi) curl_multi_cleanup(b->multi);
  b->multi = NULL;
  b->nslots = 0;
  return 0;
}

/* Stores the result of the transfer in slot k as results[index], the table
 * at stack index `results`, and frees the slot. */
static void batch_store(lua_State *L, int results, http_batch *b, int k, CURLcode rc) {
  lua_createtable(L, 0, 4);                          /* +1: r */
  conn_result(L, &b->slot[k], rc);                   /* +5: four values */
  if (lua_isnil(L, -4)) {                            /* r, nil, kind, message, sent */
    lua_setfield(L, -5, "sent");
    lua_setfield(L, -4, "message");
    lua_setfield(L, -3, "error");
    lua_pop(L, 1);                                   /* the nil */
  } else {                                           /* r, status, headers, body, seconds */
    lua_setfield(L, -5, "seconds");
    lua_setfield(L, -4, "body");
    lua_setfield(L, -3, "headers");
    lua_setfield(L, -2, "status");
  }
  lua_rawseti(L, results, b->index[k]);              /* results[index] = r */
  curl_multi_remove_handle(b->multi, b->slot[k].easy);
  b->index[k] = 0;
}

/* Starts request number `next` of the array at stack index 2 in slot k.
 * Raises when out of memory. */
static void batch_start(lua_State *L, http_batch *b, int k, lua_Integer next) {
  lua_rawgeti(L, 2, next);                           /* +1: the request */
  if (!conn_prepare(L, lua_gettop(L), &b->slot[k], 0)) luaL_error(L, "out of memory");
  lua_pop(L, 1);
  b->index[k] = next;
  curl_multi_add_handle(b->multi, b->slot[k].easy);
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
  b = lua_newuserdatauv(L, sizeof *b, 0);              /* 4: the slots, freed by __gc on any error */
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BATCH_MT);
  lua_createtable(L, (int)n, 0);                       /* 5: results */
  results = lua_gettop(L);
  b->multi = curl_multi_init();
  if (!b->multi) return luaL_error(L, "libcurl could not create a multi handle");
  for (k = 0; k < conc; k++) {
    b->nslots = k + 1;
    if (!conn_open(&b->slot[k], &s->conf, s->conf.share)) return luaL_error(L, "libcurl could not create a handle");
    curl_easy_setopt(b->slot[k].easy, CURLOPT_PRIVATE, (void *)&b->slot[k]);
  }
  for (;;) {
    int running = 0, left = 0;
    CURLMsg *msg;
    for (k = 0; k < conc && next <= n; k++) {
      if (b->index[k]) continue;
      batch_start(L, b, k, next++);
      active++;
    }
    if (active == 0) break;
    curl_multi_perform(b->multi, &running);
    for (;;) {
      http_conn *slot = NULL;                          /* set by CURLOPT_PRIVATE */
      msg = curl_multi_info_read(b->multi, &left);
      if (msg == NULL) break;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
      batch_store(L, results, b, (int)(slot - b->slot), msg->data.result);
      active--;
    }
    /* Refill freed slots before waiting, or they idle for a whole poll. */
    if (next <= n && active < conc) continue;
    if (active > 0 && running > 0) curl_multi_poll(b->multi, NULL, 0, 1000, NULL);
  }
  lua_pushvalue(L, results);                           /* 6: the answer */
  lua_pushcfunction(L, batch_gc);
  lua_pushvalue(L, 4);
  lua_call(L, 1, 0);                                   /* free the handles now */
  return 1;
}

static int session_tostring(lua_State *L) {
  http_session *s = luaL_checkudata(L, 1, HTTP_MT);
  lua_pushfstring(L, "scalekit.http session (%s)", s->conn.easy ? "open" : "closed");
  return 1;
}

/* http_new{ ca_file=, proxy=, max_response= } -> session
 * Raises if libcurl cannot create a handle or memory runs out. */
static int http_new(lua_State *L) {
  http_session *s;
  const char *ca_file = NULL, *proxy = NULL;
  lua_Integer max_body = (lua_Integer)HTTP_DEFAULT_MAX_BODY;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "ca_file");                     /* the strings stay on the stack */
    ca_file = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "proxy");
    proxy = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "max_response");
    max_body = luaL_optinteger(L, -1, max_body);
    luaL_argcheck(L, max_body > 0, 1, "max_response must be positive");
  }
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, HTTP_MT);                       /* from here __gc frees what is made */
  s->conf.max_body = (size_t)max_body;
  if (!copy_string(&s->conf.ca_file, ca_file) || !copy_string(&s->conf.proxy, proxy))
    return luaL_error(L, "out of memory");
  s->conf.share = curl_share_init();
  if (!s->conf.share) return luaL_error(L, "libcurl could not create a handle");
  curl_share_setopt(s->conf.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(s->conf.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(s->conf.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (!conn_open(&s->conn, &s->conf, s->conf.share)) return luaL_error(L, "libcurl could not create a handle");
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Loops: transfers that run while Lua does other things.  A loop is one     */
/* multi handle; each transfer gets its own handle, sharing its session's    */
/* pool, and its session is kept alive (the loop's user value) until it ends. */

#define LOOP_MT "scalekit.http.loop"
#define LOOP_MAX_TRANSFERS 256

typedef struct http_transfer {
  http_conn *conn;                 /* from the session's idle handles, or new */
  http_session *session;           /* kept alive by the loop while in flight */
  lua_Integer id;
  struct http_transfer *next;
} http_transfer;

typedef struct http_loop {
  CURLM *multi;
  http_transfer *head;             /* transfers in flight */
  http_transfer *starting;         /* one being set up: freed by close if that raised */
  int count;
  lua_Integer last_id;
} http_loop;

static http_loop *loop_check(lua_State *L) {
  http_loop *lp = luaL_checkudata(L, 1, LOOP_MT);
  if (lp->multi == NULL) luaL_error(L, "HTTP loop is closed");
  return lp;
}

/* Unlinks transfer t (prev: the one before it, or NULL), frees it and
 * drops its session from the loop's user value table at stack index `keep`. */
static void loop_drop(lua_State *L, http_loop *lp, http_transfer *prev, http_transfer *t, int keep) {
  http_session *s = t->session;
  if (prev) prev->next = t->next; else lp->head = t->next;
  curl_multi_remove_handle(lp->multi, t->conn->easy);
  if (s->conn.easy != NULL && s->nidle < HTTP_MAX_IDLE) {
    s->idle[s->nidle++] = t->conn;                   /* the session's again, for its next transfer */
  } else {
    conn_release(t->conn);
    free(t->conn);
  }
  if (keep) {                                        /* after the handle went back: s may go now */
    lua_pushnil(L);
    lua_rawseti(L, keep, t->id);                     /* keep[id] = nil */
  }
  free(t);
  lp->count--;
}

/* __gc and close: aborts every transfer, then the multi handle. */
/* Frees the transfer a start that raised half-way left (if any). */
static void loop_forget_start(http_loop *lp) {
  if (lp->starting) {
    conn_release(lp->starting->conn);
    free(lp->starting->conn);
    free(lp->starting);
    lp->starting = NULL;
  }
}

static int loop_close(lua_State *L) {
  http_loop *lp = luaL_checkudata(L, 1, LOOP_MT);
  loop_forget_start(lp);
  while (lp->head) loop_drop(L, lp, NULL, lp->head, 0);
  if (lp->multi) curl_multi_cleanup(lp->multi);
  lp->multi = NULL;
  return 0;
}

/* loop:start(session, request) -> id
 * Starts the request (the fields of session:request) on a handle of its
 * own.  Raises when the loop is full (LOOP_MAX_TRANSFERS), the session is
 * closed or memory runs out. */
static int loop_start(lua_State *L) {
  http_loop *lp = loop_check(L);
  http_session *s = luaL_checkudata(L, 2, HTTP_MT);
  http_transfer *t;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (s->conn.easy == NULL) return luaL_error(L, "HTTP session is closed");
  if (lp->count >= LOOP_MAX_TRANSFERS) return luaL_error(L, "too many transfers in flight (%d)", LOOP_MAX_TRANSFERS);
  lua_settop(L, 3);
  loop_forget_start(lp);
  t = calloc(1, sizeof *t);
  if (t == NULL) return luaL_error(L, "out of memory");
  t->session = s;
  if (s->nidle > 0) {
    t->conn = s->idle[--s->nidle];
  } else {
    t->conn = malloc(sizeof *t->conn);
    if (t->conn == NULL || !conn_open(t->conn, &s->conf, s->conf.share)) {
      if (t->conn) conn_release(t->conn);
      free(t->conn);
      free(t);
      return luaL_error(L, "libcurl could not create a handle");
    }
  }
  lp->starting = t;                                  /* conn_prepare raises for a bad request */
  if (!conn_prepare(L, 3, t->conn, 0)) return luaL_error(L, "out of memory");
  lp->starting = NULL;
  t->id = ++lp->last_id;
  curl_easy_setopt(t->conn->easy, CURLOPT_PRIVATE, (void *)t);
  t->next = lp->head;
  lp->head = t;
  lp->count++;
  curl_multi_add_handle(lp->multi, t->conn->easy);
  lua_getiuservalue(L, 1, 1);                          /* 4: the sessions kept, by id */
  lua_pushvalue(L, 2);
  lua_rawseti(L, 4, t->id);
  lua_pushinteger(L, t->id);
  return 1;
}

/* loop:cancel(id) -> true if it was in flight.  Its result is never given. */
static int loop_cancel(lua_State *L) {
  http_loop *lp = loop_check(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  http_transfer *t, *prev = NULL;
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);                          /* 3 */
  for (t = lp->head; t; prev = t, t = t->next) {
    if (t->id == id) {
      loop_drop(L, lp, prev, t, 3);
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* Whether a read of fd would not block: data, end of file (POLLHUP, which
 * libcurl does not report for extra descriptors) or an error. */
static int fd_readable(int fd) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

/* Appends to the table at stack index `done` a result table for every
 * transfer that has ended, and frees them (their sessions dropped from the
 * table at `keep`).  Returns how many there were. */
static int loop_collect(lua_State *L, http_loop *lp, int keep, int done) {
  int n = (int)lua_rawlen(L, done), left = 0, found = 0;
  for (;;) {
    CURLMsg *msg = curl_multi_info_read(lp->multi, &left);
    http_transfer *t = NULL, *p, *prev = NULL;
    if (msg == NULL) break;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    for (p = lp->head; p && p != t; prev = p, p = p->next) {}
    if (p == NULL) continue;                           /* not ours (cannot happen) */
    lua_createtable(L, 0, 5);                          /* +1: r */
    lua_pushinteger(L, t->id);
    lua_setfield(L, -2, "id");
    conn_result(L, t->conn, msg->data.result);        /* +4: four values */
    if (lua_isnil(L, -4)) {                            /* r, nil, kind, message, sent */
      lua_setfield(L, -5, "sent");
      lua_setfield(L, -4, "message");
      lua_setfield(L, -3, "error");
      lua_pop(L, 1);
    } else {                                           /* r, status, headers, body, seconds */
      lua_setfield(L, -5, "seconds");
      lua_setfield(L, -4, "body");
      lua_setfield(L, -3, "headers");
      lua_setfield(L, -2, "status");
    }
    lua_rawseti(L, done, ++n);
    loop_drop(L, lp, prev, t, keep);                   /* msg is not used after this */
    found++;
  }
  return found;
}

/* loop:wait(seconds [, fd]) -> done, readable
 * Moves the transfers on and, when none has ended yet, waits at most
 * `seconds` (0: just look) for one to end or, with `fd`, for that
 * descriptor to become readable (with no transfer and no fd it is a
 * sleep).  `done` is an array of { id =, status =, headers =, body =,
 * seconds = } or { id =, error = kind, message =, sent = } for the
 * transfers that ended; `readable` says whether fd is (false without one). */
static int loop_wait(lua_State *L) {
  http_loop *lp = loop_check(L);
  lua_Number secs = luaL_checknumber(L, 2);
  int fd = (int)luaL_optinteger(L, 3, -1), running = 0, numfds = 0;
  int ms = secs <= 0 ? 0 : secs > 3600 ? 3600000 : (int)(secs * 1000.0 + 0.5);
  struct curl_waitfd extra;
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, 1);                          /* 4: sessions kept */
  lua_newtable(L);                                     /* 5: done */
  extra.fd = fd;
  extra.events = CURL_WAIT_POLLIN;
  extra.revents = 0;
  curl_multi_perform(lp->multi, &running);
  if (loop_collect(L, lp, 4, 5) == 0 && ms > 0) {
    curl_multi_poll(lp->multi, fd >= 0 ? &extra : NULL, fd >= 0 ? 1u : 0u, ms, &numfds);
    curl_multi_perform(lp->multi, &running);
    loop_collect(L, lp, 4, 5);
  }
  lua_pushboolean(L, fd >= 0 && fd_readable(fd));
  return 2;
}

/* loop:count() -> transfers in flight */
static int loop_count(lua_State *L) {
  http_loop *lp = luaL_checkudata(L, 1, LOOP_MT);
  lua_pushinteger(L, lp->count);
  return 1;
}

/* http_loop() -> a loop.  Raises if libcurl cannot make a multi handle. */
static int http_loop_new(lua_State *L) {
  http_loop *lp = lua_newuserdatauv(L, sizeof *lp, 1);
  memset(lp, 0, sizeof *lp);
  luaL_setmetatable(L, LOOP_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);                         /* the sessions its transfers use */
  lp->multi = curl_multi_init();
  if (lp->multi == NULL) return luaL_error(L, "libcurl could not create a multi handle");
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Streams: a long-lived GET read in pieces (newline-delimited JSON).        */

#define STREAM_MT "scalekit.http.stream"
#define STREAM_MAX_PENDING ((size_t)16 << 20)   /* unread bytes held at most */

typedef struct http_stream {
  CURLM *multi;
  http_conn conn;        /* its own connection: a stream holds it for long */
  int done;
  CURLcode result;
} http_stream;

static int stream_close(lua_State *L) {
  http_stream *st = luaL_checkudata(L, 1, STREAM_MT);
  if (st->multi && st->conn.easy) curl_multi_remove_handle(st->multi, st->conn.easy);
  conn_release(&st->conn);
  if (st->multi) curl_multi_cleanup(st->multi);
  st->multi = NULL;
  return 0;
}

/* Runs the transfer without blocking and notes when it has finished. */
static void stream_pump(http_stream *st) {
  int running = 0, left = 0;
  CURLMsg *msg;
  curl_multi_perform(st->multi, &running);
  for (;;) {
    msg = curl_multi_info_read(st->multi, &left);
    if (msg == NULL) break;
    if (msg->msg == CURLMSG_DONE) { st->done = 1; st->result = msg->data.result; }
  }
}

/* stream:read([wait]) -> bytes | "" (nothing within `wait` seconds, default 1)
 *                      | nil (ended) | nil, kind, message (transfer failed)
 * Never calls Lua from libcurl: data is buffered, then handed over here. */
static int stream_read(lua_State *L) {
  http_stream *st = luaL_checkudata(L, 1, STREAM_MT);
  lua_Number wait = luaL_optnumber(L, 2, 1.0);
  int waited = 0;
  for (;;) {
    http_io *io = &st->conn.io;
    if (io->body.len > 0) {
      lua_pushlstring(L, buf_cstr(&io->body), io->body.len);
      buf_reset(&io->body);
      return 1;
    }
    if (st->done || st->multi == NULL) {
      lua_pushnil(L);
      if (st->multi == NULL || st->result == CURLE_OK) return 1;
      lua_pushstring(L, error_kind(st->result, io->too_large));
      push_failure(L, io, st->result);
      return 3;
    }
    if (waited) { lua_pushliteral(L, ""); return 1; }
    stream_pump(st);
    if (!st->done && io->body.len == 0) {
      curl_multi_poll(st->multi, NULL, 0, (int)(wait * 1000), NULL);
      stream_pump(st);
      waited = 1;
    }
  }
}

/* stream:response() -> status, headers (status 0 before the headers arrive) */
static int stream_response(lua_State *L) {
  http_stream *st = luaL_checkudata(L, 1, STREAM_MT);
  long status = 0;
  if (st->conn.easy) curl_easy_getinfo(st->conn.easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, status);
  push_header_block(L, buf_cstr(&st->conn.io.head), st->conn.io.head.len, NULL, 0, 0);
  return 2;
}

/* session:stream{ url=, method=, lines=, connect_timeout=, stall_timeout= }
 * -> stream.  Starts a request (as for session:request, without a total
 * timeout) whose body is read with stream:read(), on a handle of its own
 * with the session's settings.  Raises only for programmer mistakes or when
 * libcurl cannot allocate. */
static int session_stream(lua_State *L) {
  http_session *s = session_check(L);
  http_stream *st;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  st = lua_newuserdatauv(L, sizeof *st, 0);            /* 3: the stream */
  memset(st, 0, sizeof *st);
  luaL_setmetatable(L, STREAM_MT);
  st->multi = curl_multi_init();
  if (!st->multi || !conn_open(&st->conn, &s->conf, NULL))
    return luaL_error(L, "libcurl could not create a handle");
  st->conn.io.body.max = STREAM_MAX_PENDING;
  if (!conn_prepare(L, 2, &st->conn, 1)) return luaL_error(L, "out of memory");
  curl_multi_add_handle(st->multi, st->conn.easy);
  return 1;
}

void http_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"request", session_request},
    {"request_many", session_request_many},
    {"stream", session_stream},
    {"close", session_close},
    {NULL, NULL}
  };
  static const luaL_Reg smethods[] = {
    {"read", stream_read},
    {"response", stream_response},
    {"close", stream_close},
    {NULL, NULL}
  };
  static const luaL_Reg lmethods[] = {
    {"start", loop_start},
    {"cancel", loop_cancel},
    {"wait", loop_wait},
    {"count", loop_count},
    {"close", loop_close},
    {NULL, NULL}
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  class_register(L, HTTP_MT, methods, session_close);
  luaL_getmetatable(L, HTTP_MT);                       /* +1 */
  lua_pushcfunction(L, session_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  class_register(L, BATCH_MT, NULL, batch_gc);
  class_register(L, STREAM_MT, smethods, stream_close);
  class_register(L, LOOP_MT, lmethods, loop_close);
  class_register(L, LINES_MT, NULL, lines_gc);
  lua_pushcfunction(L, http_lines_new);
  lua_setfield(L, -2, "http_lines");
  lua_pushcfunction(L, http_loop_new);
  lua_setfield(L, -2, "http_loop");
  lua_pushcfunction(L, http_new);                      /* on the module table at -1 */
  lua_setfield(L, -2, "http_new");
  lua_pushcfunction(L, http_parse_headers);
  lua_setfield(L, -2, "parse_headers");
  lua_pushliteral(L, HTTP_ACCEPT_ENCODING);
  lua_setfield(L, -2, "accept_encoding");
}
