/*
 * util.c - small system helpers the Lua layer cannot write portably:
 * RFC 3986 percent-encoding, the OS/arch for the User-Agent, a CSPRNG,
 * wall and monotonic clocks, and a sleep.
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <openssl/rand.h>

#include "lauxlib.h"

#define UTIL_MAX_RANDOM 1024
#define UTIL_MAX_SLEEP 86400.0

/* urlencode(s) -> s with every byte outside A-Z a-z 0-9 - . _ ~ as %XX. */
static int util_urlencode(lua_State *L) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    unsigned char c = s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
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

/* sleep(seconds): at most one day; returns early only on a signal. */
static int util_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0;
  if (s > UTIL_MAX_SLEEP) s = UTIL_MAX_SLEEP;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
  return 0;
}

void util_register(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"urlencode", util_urlencode},
    {"platform", util_platform},
    {"random_bytes", util_random_bytes},
    {"now", util_now},
    {"monotonic", util_monotonic},
    {"sleep", util_sleep},
    {NULL, NULL}
  };
  luaL_setfuncs(L, fns, 0);
}
