/*
 * host.c - scalekit-lua: a Lua 5.4 interpreter with scalekit.twitter built in.
 *
 * Behaves like lua5.4 for scripts (`scalekit-lua script.lua a b`, -e, -l, -i,
 * -v, -W, -, --; exit status 1 on an uncaught error, whose message uses the
 * error's __tostring and carries a traceback).  On top of that:
 *   - the C core and every Lua module of the SDK are preloaded (the sources
 *     are compiled in), so no LUA_PATH/LUA_CPATH is needed;
 *   - .env in the working directory (or --env-file F) is loaded first,
 *     without overriding variables already set and without printing values;
 *   - --token-file F sets X_TOKEN_FILE, so direct mode keeps the tokens X
 *     rotates on every refresh;
 *   - --tools, --schema, --call, --request and --upload run one command
 *     (implemented in scalekit.twitter.cli) for shell pipelines, and --mcp
 *     serves the tools to LLM agents over the Model Context Protocol;
 *   - Ctrl-C stops a running script, and a wait or transfer in progress.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "dotenv.h"
#include "embedded.h"
#include "core.h"
#include "util.h"

#include <dlfcn.h>

#define HOST_NAME "scalekit-lua"
#define HOST_MAX_ENV_FILE ((size_t)1 << 20)
#define HOST_MAX_LINE 65536

static lua_State *global_L = NULL;

/* ------------------------------------------------------------------------ */
/* Errors and interrupts                                                     */

static void host_stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* SIGINT: ask waits and transfers to stop and make the running Lua code
 * raise "interrupted!" at its next instruction. */
static void host_on_sigint(int sig) {
  signal(sig, SIG_DFL);               /* a second Ctrl-C kills the process */
  scalekit_interrupted = 1;
  if (global_L) lua_sethook(global_L, host_stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Message handler: the error's __tostring (or a description), plus a traceback. */
static int host_msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below its nargs arguments, protected, with Ctrl-C
 * armed.  Returns the lua_pcall status. */
static int host_docall(lua_State *L, int nargs, int nres) {
  int status, base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, host_msghandler);
  lua_insert(L, base);
  global_L = L;
  scalekit_interrupted = 0;
  signal(SIGINT, host_on_sigint);
  status = lua_pcall(L, nargs, nres, base);
  signal(SIGINT, SIG_DFL);
  scalekit_interrupted = 0;
  lua_remove(L, base);
  return status;
}

static int host_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", HOST_NAME, msg ? msg : "(error)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Built-in modules and .env                                                 */

/* Once the SDK is loaded, generational collection starts over with its
 * heap (the catalog, the modules) as the old generation.  Entered at
 * start-up, with an almost empty heap, the first major collection after
 * the SDK's load frees too little of that growth; Lua then takes it for a
 * bad collection and lets the heap double before the next, about 0.7 MB
 * of peak memory for nothing.  A no-op unless the collector is
 * generational (a script may have chosen another). */
static void host_restart_generations(lua_State *L) {
  int was_gen = lua_gc(L, LUA_GCINC, 0, 0, 0) == LUA_GCGEN;
  if (was_gen) lua_gc(L, LUA_GCGEN, 0, 0);   /* a full collection, then minor ones from here */
}

/* package.preload loader of embedded module number upvalue(1): runs its
 * precompiled form when this Lua is the release that made it (no parsing at
 * start-up), its source otherwise.  Raises when the chunk does not load. */
static int host_load_embedded(lua_State *L) {
  const embedded_module *m = &embedded_modules[lua_tointeger(L, lua_upvalueindex(1))];
  char chunkname[256];
  snprintf(chunkname, sizeof chunkname, "@[builtin]/%s.lua", m->name);
  if (strcmp(embedded_release, LUA_RELEASE) == 0) {        /* no parsing */
    if (luaL_loadbufferx(L, m->binary, m->binary_size, chunkname, "b") != LUA_OK) return lua_error(L);
  } else if (luaL_loadbufferx(L, m->source, m->size, chunkname, "t") != LUA_OK) {
    return lua_error(L);
  }
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  if (strcmp(m->name, "scalekit.twitter") == 0) host_restart_generations(L);
  return 1;
}

/* package.preload gets scalekit.core and every embedded Lua module.  A
 * module found on package.path still loses to the built-in one, so the
 * host always runs the SDK it was built with. */
static void host_preload(lua_State *L) {
  lua_Integer i;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_scalekit_core);
  lua_setfield(L, -2, "scalekit.core");
  for (i = 0; embedded_modules[i].name; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, host_load_embedded, 1);
    lua_setfield(L, -2, embedded_modules[i].name);
  }
  lua_pop(L, 1);
  /* Progress on stderr when it is a terminal: the SDK, once loaded, gets
   * the progress hooks as its clients' defaults. */
  if (isatty(STDERR_FILENO)) {
    static const char WITH_PROGRESS[] =
      "local load = package.preload['scalekit.twitter']\n"
      "package.preload['scalekit.twitter'] = function(...)\n"
      "  local twitter = load(...)\n"
      "  twitter.set_defaults(require 'scalekit.twitter.progress')\n"
      "  return twitter\n"
      "end\n";
    if (luaL_dostring(L, WITH_PROGRESS) != LUA_OK) lua_pop(L, 1);   /* cannot fail but for memory */
  }
}

static void host_env_entry(void *ud, const char *key, const char *value, int line) {
  const char *file = ud;
  if (key == NULL) {
    fprintf(stderr, "%s: %s:%d: ignored a malformed line\n", HOST_NAME, file, line);
    return;
  }
  if (getenv(key) == NULL) setenv(key, value, 0);
}

/* Loads `path` if it exists (quietly when `optional`).  Returns 0 on a
 * missing required file or a read error. */
static int host_load_env(const char *path, int optional) {
  FILE *f = fopen(path, "rb");
  char *text;
  size_t n;
  if (!f) {
    if (optional && errno == ENOENT) return 1;
    char why[256];
    fprintf(stderr, "%s: cannot open %s: %s\n", HOST_NAME, path, util_errno_text(errno, why, sizeof why));
    return 0;
  }
  text = malloc(HOST_MAX_ENV_FILE);
  if (!text) { fclose(f); return 0; }
  n = fread(text, 1, HOST_MAX_ENV_FILE, f);
  fclose(f);
  if (n == HOST_MAX_ENV_FILE) {
    fprintf(stderr, "%s: %s is larger than 1 MiB; not loaded\n", HOST_NAME, path);
    free(text);
    return 0;
  }
  dotenv_parse(text, n, host_env_entry, (void *)path);
  free(text);
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Running things                                                            */

static int host_dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = host_docall(L, 0, 0);
  return host_report(L, status);
}

static int host_dostring(lua_State *L, const char *s, const char *name) {
  return host_dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod or -l name=mod: require(mod) and set the global name. */
static int host_dolibrary(lua_State *L, char *spec) {
  char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  status = host_docall(L, 1, 1);
  if (status == LUA_OK) {
    if (eq) *eq = '\0';
    lua_setglobal(L, spec);
  }
  return host_report(L, status);
}

/* Runs the script at argv[script] (NULL name or "-": stdin) with its args. */
static int host_doscript(lua_State *L, char **argv, int script) {
  const char *fname = argv[script];
  int status, n = 0, i;
  if (strcmp(fname, "-") == 0 && (script == 0 || strcmp(argv[script - 1], "--") != 0)) fname = NULL;
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    for (i = script + 1; argv[i]; i++, n++) lua_pushstring(L, argv[i]);
    status = host_docall(L, n, LUA_MULTRET);
  }
  return host_report(L, status);
}

/* The `arg` table, as lua.c builds it: arg[0] is the script. */
static void host_createargtable(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Runs scalekit.twitter.cli.main(command, args...) and returns its exit code. */
static int host_command(lua_State *L, char **argv, int first, int argc) {
  int i, status, code = 1;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "scalekit.twitter.cli");
  if (host_report(L, host_docall(L, 1, 1)) != LUA_OK) return 1;
  lua_getfield(L, -1, "main");
  for (i = first; i < argc; i++) lua_pushstring(L, argv[i]);
  status = host_docall(L, argc - first, 1);
  if (host_report(L, status) == LUA_OK) code = (int)luaL_optinteger(L, -1, 0);
  return code;
}

/* The line editor (libedit's readline and add_history), loaded the first
 * time an interactive prompt needs it: scripts never map libedit and the
 * terminal libraries it pulls in (about 0.3 MB).  False when there is none;
 * the prompt then reads plain lines. */
typedef char *(*readline_fn)(const char *);
typedef int (*add_history_fn)(const char *);
static int host_editline(readline_fn *readline_p, add_history_fn *add_history_p) {
  static const char *const names[] = { "libedit.so.2", "libedit.so", "libedit.3.dylib", "libedit.dylib", NULL };
  static int tried = 0;
  static readline_fn rl = NULL;
  static add_history_fn ah = NULL;
  int i;
  for (i = 0; !tried && names[i]; i++) {
    void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    /* POSIX: a function's address from dlsym goes through a data pointer */
    *(void **)&rl = dlsym(lib, "readline");
    *(void **)&ah = dlsym(lib, "add_history");
    if (rl && ah) break;
    rl = NULL, ah = NULL;
    dlclose(lib);
  }
  tried = 1;
  *readline_p = rl;
  *add_history_p = ah;
  return rl != NULL;
}

static char *host_readline(const char *prompt) {
  readline_fn readline_p;
  add_history_fn add_history_p;
  if (isatty(STDIN_FILENO) && host_editline(&readline_p, &add_history_p)) {
    char *line = readline_p(prompt);
    if (line && *line) add_history_p(line);
    return line;
  }
  {
    char *buf = malloc(HOST_MAX_LINE);
    size_t n;
    if (!buf) return NULL;
    if (isatty(STDIN_FILENO)) { fputs(prompt, stdout); fflush(stdout); }
    if (!fgets(buf, HOST_MAX_LINE, stdin)) { free(buf); return NULL; }
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = '\0';
    return buf;
  }
}

/* Interactive loop: each line is tried as `return <line>` first, so
 * expressions print their values. */
static void host_repl(lua_State *L) {
  for (;;) {
    char *line = host_readline("> ");
    const char *ret;
    int status;
    if (line == NULL) break;
    ret = lua_pushfstring(L, "return %s", line);
    status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (status != LUA_OK) {
      lua_pop(L, 2);
      status = luaL_loadbuffer(L, line, strlen(line), "=stdin");
    } else {
      lua_remove(L, -2);
    }
    free(line);
    if (status == LUA_OK) {
      int base = lua_gettop(L);
      status = host_docall(L, 0, LUA_MULTRET);
      if (status == LUA_OK && lua_gettop(L) >= base) {
        int n = lua_gettop(L) - base + 1;
        lua_getglobal(L, "print");
        lua_insert(L, base);
        if (lua_pcall(L, n, 0, 0) != LUA_OK) host_report(L, LUA_ERRRUN);
      }
    }
    host_report(L, status);
    lua_settop(L, 0);
  }
  fputc('\n', stdout);
}

/* The commands scalekit.twitter.cli runs; everything after one is its own. */
static const char *const HOST_COMMANDS[] = { "--tools", "--schema", "--call", "--request", "--upload", "--mcp",
                                             NULL };

static int host_is_command(const char *a) {
  int i;
  for (i = 0; HOST_COMMANDS[i]; i++) {
    if (strcmp(a, HOST_COMMANDS[i]) == 0) return 1;
  }
  return 0;
}

/* The --help text (on stdout for --help, on stderr after a bad option).
 * docs/scalekit-lua.1 says the same at length; a spec keeps them in step. */
static void host_usage(FILE *out) {
  fputs(
    "usage: " HOST_NAME " [options] [script [args]]\n"
    "       " HOST_NAME " [options] COMMAND ...\n"
    "\n"
    "Options:\n"
    "  -e stat         run the string 'stat'\n"
    "  -i              interactive mode after running the script\n"
    "  -l mod          require 'mod' into global 'mod' (-l g=mod: into 'g')\n"
    "  -v              show the SDK and Lua versions\n"
    "  -W              turn warnings on\n"
    "  -h, --help      show this help and exit\n"
    "  --env-file F    load environment variables from F (default: ./.env if present)\n"
    "  --no-env        do not load ./.env\n"
    "  --token-file F  direct mode: keep X's rotated tokens in F (sets X_TOKEN_FILE)\n"
    "  --              stop handling options\n"
    "  -               run stdin as a script\n"
    "\n"
    "Commands (results on stdout as JSON, failures on stderr as JSON):\n"
    "  --tools                     list every tool: name, description and OAuth 2.0\n"
    "                              scopes, tab-separated\n"
    "  --schema TOOL               print the JSON Schema of a tool's input\n"
    "  --call TOOL [JSON|-]        run one tool with JSON input (- or a pipe: stdin)\n"
    "      --all                   page through every result, one JSON item per line\n"
    "      --limit N               with --all: stop after N items\n"
    "  --request [METHOD] PATH     one request to the provider API (Scalekit's proxy, or X)\n"
    "      --param NAME=VALUE      a query parameter; repeated, its values are joined by commas\n"
    "      --body JSON|-           a JSON body (-: stdin)\n"
    "  --upload FILE               upload a media file and print its media id\n"
    "      --media-type TYPE       e.g. image/png (default: from the file)\n"
    "      --media-category CAT    e.g. tweet_image, tweet_video\n"
    "  --identifier ID             with --call, --request, --upload: the Scalekit account\n"
    "                              (identifier) of this call\n"
    "  --mcp [script.lua]          serve the tools over MCP on stdio (JSON-RPC, one per line);\n"
    "                              a script can add or wrap tools\n"
    "      --read-only             serve only the tools that read\n"
    "      --tools PATTERN,...     serve only these tools (names or globs: twitter_list_*)\n"
    "      --confirm-writes        ask the user (MCP elicitation) before every write\n"
    "\n"
    "Environment:\n"
    "  SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET\n"
    "                  Scalekit mode (SCALEKIT_ENV_URL is read as well)\n"
    "  SCALEKIT_IDENTIFIER  the account the calls act for\n"
    "  X_ACCESS_TOKEN, X_REFRESH_TOKEN, X_BEARER_TOKEN, X_CLIENT_ID, X_CLIENT_SECRET\n"
    "                  direct mode (X API v2 with your own OAuth 2.0 tokens)\n"
    "  X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN_SECRET (with X_ACCESS_TOKEN)\n"
    "                  direct mode signed with OAuth 1.0a\n"
    "  X_TOKEN_FILE    where direct mode keeps the tokens X rotates\n"
    "  X_API_BASE_URL  X's API root (default https://api.x.com)\n"
    "  SSL_CERT_FILE, CURL_CA_BUNDLE  CA certificates for TLS\n"
    "  SCALEKIT_DEBUG  trace requests and answers on stderr, secrets redacted\n"
    "\n"
    "Exit status: 0 ok; 1 a bad option, an uncaught error in a script or any other\n"
    "failure; for commands also 2 invalid input or usage, 3 auth (including missing\n"
    "credentials), 4 rate limited.\n",
    out);
}

static int host_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i, script = 0, interactive = 0, version = 0, load_env = 1, status = LUA_OK;
  const char *env_file = NULL;
  luaL_checkversion(L);
  /* first pass: options that must act before anything runs */
  for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--env-file") == 0 && i + 1 < argc) env_file = argv[++i];
    else if (strcmp(a, "--token-file") == 0 && i + 1 < argc) setenv("X_TOKEN_FILE", argv[++i], 1);
    else if (strcmp(a, "--no-env") == 0) load_env = 0;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { host_usage(stdout); lua_pushinteger(L, 0); return 1; }
    else if (host_is_command(a)) break;
    else if ((strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) && i + 1 < argc) i++;
    else if (strcmp(a, "-i") == 0) interactive = 1;
    else if (strcmp(a, "-v") == 0) version = 1;
    else if (strcmp(a, "-W") == 0 || strcmp(a, "-E") == 0) continue;
    else if (a[0] == '-' && a[1] == 'e' && a[2]) continue;
    else if (a[0] == '-' && a[1] == 'l' && a[2]) continue;
    else { fprintf(stderr, "%s: unrecognized option '%s'\n", HOST_NAME, a); host_usage(stderr); lua_pushinteger(L, 1); return 1; }
  }
  script = i < argc ? i : 0;
  if (env_file ? !host_load_env(env_file, 0) : (load_env && !host_load_env(".env", 1))) {
    lua_pushinteger(L, 1);
    return 1;
  }
  luaL_openlibs(L);
  /* Like lua.c: generational GC.  Scripts make many short-lived tables and
   * strings (responses) next to a long-lived SDK heap (the catalog), which
   * generational collection then leaves alone. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  host_preload(L);
  if (version) printf("%s %s (scalekit.twitter) on %s\n", HOST_NAME, SCALEKIT_VERSION, LUA_RELEASE);
  /* commands */
  if (script && host_is_command(argv[script])) {
    lua_pushinteger(L, host_command(L, argv, script, argc));
    return 1;
  }
  host_createargtable(L, argv, argc, script);
  /* second pass: -e, -l and -W in order */
  for (i = 1; i < (script ? script : argc) && status == LUA_OK; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) break;
    if (strcmp(a, "--env-file") == 0 || strcmp(a, "--token-file") == 0) { i++; continue; }
    if (strcmp(a, "-W") == 0) { lua_warning(L, "@on", 0); continue; }
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      char *extra = a[2] ? argv[i] + 2 : argv[++i];
      status = a[1] == 'e' ? host_dostring(L, extra, "=(command line)") : host_dolibrary(L, extra);
    }
  }
  if (status == LUA_OK && script) status = host_doscript(L, argv, script);
  if (status == LUA_OK && (interactive || (!script && !version && argc <= 1 && isatty(STDIN_FILENO)))) {
    host_repl(L);
  } else if (status == LUA_OK && !script && argc <= 1) {
    status = host_doscript(L, (char *[]){ "-", NULL }, 0);
  }
  lua_pushinteger(L, status == LUA_OK ? 0 : 1);
  return 1;
}

int main(int argc, char **argv) {
  int code = 1;
  lua_State *L;
  scalekit_interrupt_armed = 1;
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", HOST_NAME);
    return 1;
  }
  lua_pushcfunction(L, host_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK) code = (int)lua_tointeger(L, -1);
  else fprintf(stderr, "%s: %s\n", HOST_NAME, lua_tostring(L, -1));
  lua_close(L);
  return code;
}
