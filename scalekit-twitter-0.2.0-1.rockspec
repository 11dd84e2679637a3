-- LuaRocks package for scalekit-twitter: the C core plus the Lua modules.
rockspec_format = "3.0"
package = "scalekit-twitter"
version = "0.2.0-1"
source = {
  url = "git+https://github.com/scalekit-twitter/scalekit-twitter-lua.git",
  tag = "v0.2.0",
}
description = {
  summary = "Call every tool of Scalekit's Twitter / X connector from Lua 5.4",
  detailed = [[
    80 Twitter / X tools (posts, search, users, follows, lists, DMs, bookmarks,
    mutes, media, Spaces, compliance, usage) through Scalekit's REST API, with
    exact JSON (64-bit integers, string IDs, null, [] vs {}), input validation
    before any request, and typed errors.  C core on libcurl and OpenSSL.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  -- Only the library is probed: Debian keeps curl/curl.h in a multiarch
  -- include directory that the compiler searches but LuaRocks does not.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/rand.h", library = "crypto" },
}
-- The Makefile builds the C core and the scalekit-lua host (which embeds the
-- Lua modules), and installs both plus the Lua modules where LuaRocks says.
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA = "$(LUA)",
    LUA_INC = "-I$(LUA_INCDIR)",
    -- where LuaRocks found libcurl and OpenSSL (the compiler's own search
    -- path still finds Debian's multiarch headers)
    CURL_INC = "-I$(CURL_INCDIR)",
    OPENSSL_INC = "-I$(OPENSSL_INCDIR)",
    LDFLAGS = "-L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR)",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
  },
}
-- `luarocks test`: the busted suite against the freshly built module.
test = {
  type = "command",
  command = "make test",
}
