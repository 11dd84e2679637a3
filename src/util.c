/*
 * util.c - small system helpers the Lua layer cannot write portably:
 * RFC 3986 percent-encoding, base64, SHA-256, the OS/arch for the
 * User-Agent, a CSPRNG, clocks, a sleep, atomic file replacement and a
 * bounded advisory file lock (for token files shared between processes),
 * and a one-shot loopback listener (OAuth redirects).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "util.h"
#include "class.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "lauxlib.h"

volatile sig_atomic_t scalekit_interrupted = 0;
int scalekit_interrupt_armed = 0;

#define UTIL_MAX_RANDOM 1024
#define UTIL_MAX_SLEEP 86400.0

int util_fail(lua_State *L, const char *kind, const char *fmt, ...) {
  va_list ap;
  luaL_pushfail(L);
  lua_pushstring(L, kind);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return 3;
}

/* RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~ */
static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* urlencode(s) -> s with every byte outside A-Z a-z 0-9 - . _ ~ as %XX
 * (s itself when it has none). */
static int util_urlencode(lua_State *L) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  for (i = 0; i < n && is_unreserved(s[i]); i++) {}
  if (i == n) {                       /* nothing to escape: s itself */
    lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)s, i);
  for (; i < n; i++) {
    unsigned char c = s[i];
    if (is_unreserved(c)) {
      luaL_addchar(&b, (char)c);
    } else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* platform() -> os, arch (lower-case os name, machine name), from uname(2). */
static int util_platform(lua_State *L) {
  struct utsname u;
  if (uname(&u) != 0) {
    lua_pushliteral(L, "unknown");
    lua_pushliteral(L, "unknown");
    return 2;
  }
  {
    char os[sizeof u.sysname];
    size_t i;
    for (i = 0; u.sysname[i] && i + 1 < sizeof os; i++)
      os[i] = (char)((u.sysname[i] >= 'A' && u.sysname[i] <= 'Z')
                     ? u.sysname[i] - 'A' + 'a' : u.sysname[i]);
    os[i] = '\0';
    lua_pushstring(L, os);
  }
  lua_pushstring(L, u.machine);
  return 2;
}

/* random_bytes(n) -> n bytes from OpenSSL's CSPRNG; raises if it fails. */
static int util_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  unsigned char buf[UTIL_MAX_RANDOM];
  luaL_argcheck(L, n >= 0 && n <= UTIL_MAX_RANDOM, 1, "must be 0..1024");
  if (n > 0 && RAND_bytes(buf, (int)n) != 1)
    return luaL_error(L, "OpenSSL RAND_bytes failed");
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

static lua_Number clock_seconds(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9;
}

/* now() -> seconds since the epoch, with fractions. */
static int util_now(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
  return 1;
}

/* monotonic() -> seconds on a clock that never jumps. */
static int util_monotonic(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* sleep(seconds) -> true | nil, "interrupted", message: at most one day;
 * ends early, failing so, when the host was asked to stop (Ctrl-C) before
 * or during the wait. */
static int util_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts, left;
  if (s > UTIL_MAX_SLEEP) s = UTIL_MAX_SLEEP;
  if (s > 0) {
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &left) != 0 && errno == EINTR && !scalekit_interrupted) ts = left;
  }
  if (scalekit_interrupted) return util_fail(L, "interrupted", "interrupted");
  lua_pushboolean(L, 1);
  return 1;
}

/* isatty(fd) -> true when the file descriptor is a terminal. */
static int util_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* read_fd(fd, max) -> up to max bytes read from fd in one read(2) ("" at
 * the end of the file), or nil, "io", message.  For a descriptor a loop said is
 * readable, so it does not wait; an interrupted read is tried again. */
static int util_read_fd(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_Buffer b;
  ssize_t n;
  luaL_argcheck(L, max > 0 && max <= ((lua_Integer)1 << 24), 2, "max out of range");
  do {
    n = read(fd, luaL_buffinitsize(L, &b, (size_t)max), (size_t)max);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    char why[256];
    return util_fail(L, "io", "%s", util_errno_text(errno, why, sizeof why));
  }
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* base64(s [, url]) -> standard base64 with padding, or base64url without
 * padding when `url` is true (RFC 4648). */
static int util_base64(lua_State *L) {
  static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  int is_url = lua_toboolean(L, 2);
  const char *abc = is_url ? url : std;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = ((unsigned)s[i] << 16) | ((unsigned)s[i + 1] << 8) | s[i + 2];
    luaL_addchar(&b, abc[v >> 18]);
    luaL_addchar(&b, abc[(v >> 12) & 63]);
    luaL_addchar(&b, abc[(v >> 6) & 63]);
    luaL_addchar(&b, abc[v & 63]);
  }
  if (i < n) {
    unsigned v = (unsigned)s[i] << 16;
    if (i + 1 < n) v |= (unsigned)s[i + 1] << 8;
    luaL_addchar(&b, abc[v >> 18]);
    luaL_addchar(&b, abc[(v >> 12) & 63]);
    if (i + 1 < n) luaL_addchar(&b, abc[(v >> 6) & 63]);
    else if (!is_url) luaL_addchar(&b, '=');
    if (!is_url) luaL_addchar(&b, '=');
  }
  luaL_pushresult(&b);
  return 1;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* unbase64(s) -> bytes | nil, "invalid", message.  Accepts both alphabets, optional
 * padding, and ignores ASCII whitespace. */
static int util_unbase64(lua_State *L) {
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  unsigned acc = 0;
  int bits = 0, pad = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    int v;
    unsigned char c = s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') { pad++; continue; }
    v = b64_value(c);
    if (v < 0 || pad) return util_fail(L, "invalid", "invalid base64 at byte %d", (int)i + 1);
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, (char)((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6 || pad > 2) return util_fail(L, "invalid", "truncated base64");
  luaL_pushresult(&b);
  return 1;
}

/* sha256(s) -> the 32-byte digest. */
static int util_sha256(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(s, n, md);
  lua_pushlstring(L, (const char *)md, sizeof md);
  return 1;
}

/* hmac_sha1(key, data) -> the 20-byte HMAC-SHA1 of data (OAuth 1.0a
 * signatures), or nil, "crypto", message when OpenSSL fails. */
static int util_hmac_sha1(lua_State *L) {
  size_t klen, n;
  const char *key = luaL_checklstring(L, 1, &klen);
  const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 2, &n);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  luaL_argcheck(L, klen <= INT_MAX, 1, "key too long");
  if (HMAC(EVP_sha1(), key, (int)klen, data, n, md, &mdlen) == NULL)
    return util_fail(L, "crypto", "HMAC-SHA1 failed");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

/* The text of errno value e, in buf (strerror_r: unlike strerror, it
 * shares no static buffer). */
const char *util_errno_text(int e, char *buf, size_t n) {
  if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
  return buf;
}

/* The "io" failure "<what> <path>: <errno text>" (see util_fail). */
static int push_errno(lua_State *L, const char *what, const char *path) {
  char text[256];
  int e = errno;
  return util_fail(L, "io", "%s %s: %s", what, path, util_errno_text(e, text, sizeof text));
}

/* ------------------------------------------------------------------------ */
/* Atomic file replacement, in two steps so that a caller can learn that a
 * file cannot be written before it does something that cannot be undone
 * (refreshing a token that X rotates).                                       */

#define ATOMIC_MT "scalekit.atomic_file"
#define ATOMIC_MAX_LINKS 16
#define ATOMIC_PATH_MAX 4096

typedef struct atomic_file {
  int fd;                          /* the temporary file, -1 when done */
  char target[ATOMIC_PATH_MAX];    /* the file it will replace */
  char tmp[ATOMIC_PATH_MAX];
} atomic_file;

/* Follows symbolic links from `path` (at most ATOMIC_MAX_LINKS) and writes
 * the file they end at into out: replacing that file keeps the links.  A
 * path that does not exist yet is its own target.  Returns 0 (errno set) when
 * a link cannot be read or the result does not fit. */
static int resolve_links(const char *path, char *out, size_t size) {
  char link[ATOMIC_PATH_MAX];
  int hops;
  if (strlen(path) >= size) { errno = ENAMETOOLONG; return 0; }
  snprintf(out, size, "%s", path);
  for (hops = 0; hops < ATOMIC_MAX_LINKS; hops++) {
    struct stat st;
    ssize_t n;
    const char *slash;
    if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode)) return 1;
    n = readlink(out, link, sizeof link - 1);
    if (n < 0) return 0;
    link[n] = '\0';
    slash = strrchr(out, '/');
    if (link[0] == '/' || slash == NULL) {
      if ((size_t)n >= size) { errno = ENAMETOOLONG; return 0; }
      memcpy(out, link, (size_t)n + 1);
    } else {                               /* relative to the link's directory */
      size_t dlen = (size_t)(slash - out) + 1;
      if (dlen + (size_t)n >= size) { errno = ENAMETOOLONG; return 0; }
      memcpy(out + dlen, link, (size_t)n + 1);
    }
  }
  errno = ELOOP;
  return 0;
}

static void atomic_discard(atomic_file *a) {
  if (a->fd >= 0) {
    close(a->fd);
    unlink(a->tmp);
    a->fd = -1;
  }
}

static int atomic_gc(lua_State *L) {
  atomic_discard(luaL_checkudata(L, 1, ATOMIC_MT));
  return 0;
}

/* atomic_file(path [, mode]) -> writer | nil, "io", message
 * Creates the temporary file (mode, default 0600) next to the file `path`
 * ends at after following symbolic links, so the write itself can no longer
 * fail for want of a writable directory.  writer:commit(data) replaces the
 * file; writer:discard() (or __gc/__close) removes the temporary file. */
static int util_atomic_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = (mode_t)luaL_optinteger(L, 2, 0600);
  atomic_file *a = lua_newuserdatauv(L, sizeof *a, 0);
  a->fd = -1;
  a->tmp[0] = '\0';
  luaL_setmetatable(L, ATOMIC_MT);
  if (!resolve_links(path, a->target, sizeof a->target)) return push_errno(L, "cannot resolve", path);
  if (strlen(a->target) + 16 >= sizeof a->tmp) return luaL_error(L, "path too long");
  snprintf(a->tmp, sizeof a->tmp, "%s.tmpXXXXXX", a->target);
  a->fd = mkstemp(a->tmp);
  if (a->fd < 0) return push_errno(L, "cannot create a temporary file for", path);
  if (fchmod(a->fd, mode) != 0) {
    int e = errno;
    atomic_discard(a);
    errno = e;
    return push_errno(L, "cannot set the mode of a temporary file for", path);
  }
  return 1;
}

/* Writes data, fsyncs, renames over the target and fsyncs its directory: a
 * crash leaves the old file or the new one, never a partial one.  Returns 1,
 * or 0 with errno set (the temporary file is then removed).  Either way the
 * writer is done. */
static int atomic_write(atomic_file *a, const char *data, size_t n) {
  char dir[ATOMIC_PATH_MAX];
  const char *slash;
  size_t off = 0;
  int fd;
  while (off < n) {
    ssize_t w = write(a->fd, data + off, n - off);
    if (w < 0) { if (errno == EINTR) continue; goto fail; }
    off += (size_t)w;
  }
  if (fsync(a->fd) != 0) goto fail;
  fd = a->fd;
  a->fd = -1;
  if (close(fd) != 0 || rename(a->tmp, a->target) != 0) {
    int e = errno;
    unlink(a->tmp);
    errno = e;
    return 0;
  }
  slash = strrchr(a->target, '/');
  if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - a->target) + (slash == a->target), a->target);
  else snprintf(dir, sizeof dir, ".");
  fd = open(dir, O_RDONLY);
  if (fd >= 0) { fsync(fd); close(fd); }
  return 1;
fail:
  {
    int e = errno;
    atomic_discard(a);
    errno = e;
  }
  return 0;
}

/* writer:commit(data) -> true | nil, "io", message */
static int atomic_commit(lua_State *L) {
  atomic_file *a = luaL_checkudata(L, 1, ATOMIC_MT);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  if (a->fd < 0) return luaL_error(L, "atomic file already committed or discarded");
  if (!atomic_write(a, data, n)) return push_errno(L, "cannot write", a->target);
  lua_pushboolean(L, 1);
  return 1;
}

/* writer:target() -> the path the writer replaces (symbolic links followed) */
static int atomic_target(lua_State *L) {
  atomic_file *a = luaL_checkudata(L, 1, ATOMIC_MT);
  lua_pushstring(L, a->target);
  return 1;
}

/* write_file_atomic(path, data [, mode]) -> true | nil, "io", message
 * atomic_file(path, mode) and commit(data) in one call. */
static int util_write_file_atomic(lua_State *L) {
  size_t n;
  luaL_checkstring(L, 1);
  luaL_checklstring(L, 2, &n);
  lua_settop(L, 3);
  lua_pushcfunction(L, util_atomic_file);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 3);
  lua_call(L, 2, 3);                               /* 4: writer | nil, 5: kind, 6: message */
  if (lua_isnil(L, 4)) return 3;
  {
    atomic_file *a = lua_touserdata(L, 4);
    if (!atomic_write(a, lua_tostring(L, 2), n)) return push_errno(L, "cannot write", a->target);
  }
  lua_pushboolean(L, 1);
  return 1;
}

#define LOCK_MT "scalekit.lock"
#define LOCK_POLL_MS 20

static void lock_drop(int *fd) {
  if (*fd >= 0) {
    flock(*fd, LOCK_UN);
    close(*fd);
    *fd = -1;
  }
}

static int lock_release(lua_State *L) {
  lock_drop(luaL_checkudata(L, 1, LOCK_MT));
  return 0;
}

/* lock_file(path [, timeout]) -> lock | nil, kind, message
 * Takes an exclusive advisory lock (flock) on `path`, creating it (0600) if
 * needed.  Waits at most `timeout` seconds (default 60), polling, and gives
 * up early on Ctrl-C in the host: kind is then "timeout" or "interrupted"
 * ("io" for any other failure).  lock:unlock() (or __close/__gc) releases
 * it. */
static int util_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Number timeout = luaL_optnumber(L, 2, 60.0);
  lua_Number deadline = clock_seconds(CLOCK_MONOTONIC) + (timeout > 0 ? timeout : 0);
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  *fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0) return push_errno(L, "cannot open lock file", path);
  for (;;) {
    struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return 1;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      lock_drop(fd);
      errno = e;
      return push_errno(L, "cannot lock", path);
    }
    if (scalekit_interrupted || clock_seconds(CLOCK_MONOTONIC) >= deadline) {
      int interrupted = scalekit_interrupted != 0;
      lock_drop(fd);
      return util_fail(L, interrupted ? "interrupted" : "timeout", "%s waiting for the lock on %s",
                       interrupted ? "interrupted" : "timed out", path);
    }
    nanosleep(&ts, NULL);
  }
}

/* ------------------------------------------------------------------------ */
/* A one-shot loopback listener, for OAuth redirects to http://127.0.0.1:PORT */

#define LISTEN_MT "scalekit.listener"
#define LISTEN_MAX_REQUEST 8192

static int listener_close(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LISTEN_MT);
  if (*fd >= 0) close(*fd);
  *fd = -1;
  return 0;
}

/* listener:port() -> the port it listens on */
static int listener_port(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LISTEN_MT);
  struct sockaddr_in a;
  socklen_t n = sizeof a;
  if (*fd < 0 || getsockname(*fd, (struct sockaddr *)&a, &n) != 0) return 0;
  lua_pushinteger(L, ntohs(a.sin_port));
  return 1;
}

/* listener:accept(timeout, body) -> request target (e.g. "/cb?code=..") |
 * nil, kind, message.  Answers the one request with 200 and `body`
 * (text/html), reads at most 8 KiB of it, waits at most `timeout` seconds
 * ("timeout"), and fails early as "interrupted" on Ctrl-C in the host;
 * anything but a GET is "invalid". */
static int listener_accept(lua_State *L) {
  int *fd = luaL_checkudata(L, 1, LISTEN_MT);
  lua_Number timeout = luaL_optnumber(L, 2, 300);
  size_t blen;
  const char *body = luaL_optlstring(L, 3, "You can close this window.", &blen);
  char req[LISTEN_MAX_REQUEST + 1], head[256];
  size_t got = 0;
  int c, waited = 0;
  struct pollfd p;
  p.fd = *fd;
  p.events = POLLIN;
  while (poll(&p, 1, 200) == 0 || (p.revents & POLLIN) == 0) {
    waited += 200;
    if (scalekit_interrupted) return util_fail(L, "interrupted", "interrupted");
    if (waited >= (int)(timeout * 1000)) return util_fail(L, "timeout", "timed out waiting for the redirect");
  }
  c = accept(*fd, NULL, NULL);
  if (c < 0) return push_errno(L, "accept on", "listener");
  while (got < LISTEN_MAX_REQUEST) {
    ssize_t r;
    p.fd = c;
    if (poll(&p, 1, 5000) <= 0) break;
    r = read(c, req + got, LISTEN_MAX_REQUEST - got);
    if (r <= 0) break;
    got += (size_t)r;
    req[got] = '\0';
    if (strstr(req, "\r\n\r\n")) break;
  }
  req[got] = '\0';
  snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
           "Content-Length: %lu\r\nConnection: close\r\n\r\n", (unsigned long)blen);
  if (write(c, head, strlen(head)) < 0 || write(c, body, blen) < 0) { /* the browser left */ }
  close(c);
  {
    char *sp1 = strchr(req, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(req, "GET ", 4) != 0) return util_fail(L, "invalid", "not an HTTP GET request");
    lua_pushlstring(L, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    return 1;
  }
}

/* listen(port) -> listener | nil, "io", message.  Binds 127.0.0.1 only; port 0
 * picks a free one. */
static int util_listen(lua_State *L) {
  lua_Integer port = luaL_optinteger(L, 1, 0);
  int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
  int one = 1;
  struct sockaddr_in a;
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
  *fd = -1;
  luaL_setmetatable(L, LISTEN_MT);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
#ifdef SOCK_CLOEXEC
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else                                   /* macOS: no SOCK_CLOEXEC flag */
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  if (*fd >= 0) fcntl(*fd, F_SETFD, FD_CLOEXEC);
#endif
  if (*fd < 0) return push_errno(L, "socket for", "listener");
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(*fd, 4) != 0) {
    int e = errno;
    close(*fd);
    *fd = -1;
    errno = e;
    return push_errno(L, "cannot listen on", "127.0.0.1");
  }
  return 1;
}

void util_register(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"urlencode", util_urlencode},
    {"platform", util_platform},
    {"random_bytes", util_random_bytes},
    {"now", util_now},
    {"monotonic", util_monotonic},
    {"sleep", util_sleep},
    {"isatty", util_isatty},
    {"read_fd", util_read_fd},
    {"base64", util_base64},
    {"unbase64", util_unbase64},
    {"sha256", util_sha256},
    {"hmac_sha1", util_hmac_sha1},
    {"write_file_atomic", util_write_file_atomic},
    {"atomic_file", util_atomic_file},
    {"lock_file", util_lock_file},
    {"listen", util_listen},
    {NULL, NULL}
  };
  static const luaL_Reg lmethods[] = {
    {"accept", listener_accept},
    {"port", listener_port},
    {"close", listener_close},
    {NULL, NULL}
  };
  static const luaL_Reg lockmethods[] = {
    {"unlock", lock_release},
    {NULL, NULL}
  };
  static const luaL_Reg atomicmethods[] = {
    {"commit", atomic_commit},
    {"discard", atomic_gc},
    {"target", atomic_target},
    {NULL, NULL}
  };
  class_register(L, LISTEN_MT, lmethods, listener_close);
  class_register(L, LOCK_MT, lockmethods, lock_release);
  class_register(L, ATOMIC_MT, atomicmethods, atomic_gc);
  luaL_setfuncs(L, fns, 0);
}
