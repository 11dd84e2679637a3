-- LuaRocks package for scalekit-twitter: the C core plus the Lua modules.
package = "scalekit-twitter"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/scalekit-twitter/scalekit-twitter-lua.git",
  tag = "v0.1.0",
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
build = {
  type = "builtin",
  modules = {
    ["scalekit.core"] = {
      sources = { "src/core.c", "src/json.c", "src/http.c", "src/util.c", "src/buf.c" },
      libraries = { "curl", "crypto" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    ["scalekit.twitter"] = "lua/scalekit/twitter.lua",
    ["scalekit.twitter.batch"] = "lua/scalekit/twitter/batch.lua",
    ["scalekit.twitter.catalog"] = "lua/scalekit/twitter/catalog.lua",
    ["scalekit.twitter.cli"] = "lua/scalekit/twitter/cli.lua",
    ["scalekit.twitter.direct"] = "lua/scalekit/twitter/direct.lua",
    ["scalekit.twitter.errors"] = "lua/scalekit/twitter/errors.lua",
    ["scalekit.twitter.media"] = "lua/scalekit/twitter/media.lua",
    ["scalekit.twitter.oauth2"] = "lua/scalekit/twitter/oauth2.lua",
    ["scalekit.twitter.paging"] = "lua/scalekit/twitter/paging.lua",
    ["scalekit.twitter.policy"] = "lua/scalekit/twitter/policy.lua",
    ["scalekit.twitter.progress"] = "lua/scalekit/twitter/progress.lua",
    ["scalekit.twitter.scalekit"] = "lua/scalekit/twitter/scalekit.lua",
    ["scalekit.twitter.tools"] = "lua/scalekit/twitter/tools.lua",
    ["scalekit.twitter.transport"] = "lua/scalekit/twitter/transport.lua",
  },
}
