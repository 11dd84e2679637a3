# Makefile - build, test and install scalekit-twitter (Lua 5.4 + C core).
#
#   make deps     install every Debian package any target needs that is missing (root or sudo);
#                 each target installs only what it needs itself
#   make          build scalekit/core.so and bin/scalekit-lua
#   make run      the main job: examples/quickstart.lua (local sandbox without credentials)
#   make test     build and run the busted suite under Lua 5.4
#   make lint     luacheck, and scripts/checksrc.lua over the C
#   make asan     run the suite against an AddressSanitizer + UBSan build
#   make valgrind run the suite under valgrind (leaks and invalid accesses are errors)
#   make fuzz     build the libFuzzer targets and run each for FUZZ_SECONDS
#   make bench    benchmarks as ratios against references (BENCH_N=50 for a smoke run)
#   make x-constraints  regenerate what X accepts per parameter from its OpenAPI document
#   make install  install under PREFIX without LuaRocks

LUA       ?= lua5.4
LUA_VER   ?= 5.4
PREFIX    ?= /usr/local
LUA_INC   ?= $(shell pkg-config --cflags lua$(LUA_VER) 2>/dev/null || echo -I/usr/include/lua$(LUA_VER))
CURL_INC  ?= $(shell pkg-config --cflags libcurl 2>/dev/null)
OPENSSL_INC ?= $(shell pkg-config --cflags libcrypto 2>/dev/null)
OPENSSL_LIB ?= $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
CC        ?= cc
CFLAGS    ?= -O2 -g
WARN       = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror=implicit-function-declaration
ALL_CFLAGS = $(CFLAGS) $(WARN) -std=c99 -fPIC -fvisibility=hidden $(LUA_INC) $(CURL_INC) $(OPENSSL_INC)
LIBS       = -lcurl $(OPENSSL_LIB)
LDFLAGS   ?=
# A Lua module is a shared object on Linux and a bundle whose Lua symbols
# the interpreter supplies on macOS (no Mac was at hand to test this).
UNAME_S ?= $(shell uname -s)
ifeq ($(UNAME_S),Darwin)
MODULE_LDFLAGS = -bundle -undefined dynamic_lookup
HOST_SYSLIBS   = -lm
else
MODULE_LDFLAGS = -shared
HOST_SYSLIBS   = -lm -ldl
endif

LIBDIR     = $(PREFIX)/lib/lua/$(LUA_VER)
LUADIR     = $(PREFIX)/share/lua/$(LUA_VER)
MANDIR     = $(PREFIX)/share/man/man1
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions

SRCS = src/core.c src/json.c src/http.c src/util.c src/buf.c
OBJS = $(SRCS:src/%.c=build/%.o)
HOST_OBJS = build/host.o build/dotenv.o build/embedded.o
LUA_LIB   ?= $(shell pkg-config --libs lua$(LUA_VER) 2>/dev/null || echo -llua$(LUA_VER))
# The host embeds Lua the way lua.c does: the static library when there is
# one (every Lua API call then skips the shared library's PLT: 2.4% fewer
# instructions per tool call), its symbols exported for the C modules that
# scripts load.  HOST_LUA_LIB=$(LUA_LIB) links the shared library instead.
LUA_LIBDIR ?= $(shell pkg-config --variable=libdir lua$(LUA_VER) 2>/dev/null)
LUA_STATIC  = $(wildcard $(LUA_LIBDIR)/liblua$(LUA_VER).a)
ifeq ($(UNAME_S),Darwin)
EXPORT_LUA =
else
EXPORT_LUA = -Wl,-E
endif
HOST_LUA_LIB ?= $(if $(LUA_STATIC),$(EXPORT_LUA) $(LUA_STATIC),$(LUA_LIB))
BINDIR     = $(PREFIX)/bin
LUA_SRCS = $(shell find lua -name '*.lua' | sort)

# The packages each target needs, installed when missing (Debian 12 names):
# building and running the SDK; the API reference (LDoc and its markdown
# renderer); the test suite on top of both; then what only the
# CI targets use (clang for ASan and fuzzing, valgrind, nginx and lua-cjson
# for the benchmarks).  `make deps` installs them all.
DEBS_RUN   = lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev libedit-dev pkg-config gcc make \
             python3 ca-certificates openssl
DEBS_DOC   = lua-ldoc lua-discount
DEBS_TEST  = $(DEBS_RUN) $(DEBS_DOC) lua-busted lua-check luarocks locales
DEBS_CLANG = clang libclang-rt-14-dev
DEBS_BENCH = valgrind nginx-light lua-cjson
DEBS       = $(DEBS_TEST) $(DEBS_CLANG) $(DEBS_BENCH)

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/build/?.so;;

.PHONY: all deps deps-run deps-test run test lint asan valgrind fuzz bench clean install doc tools-doc x-constraints
all: build/scalekit/core.so bin/scalekit-lua

build/%.o: src/%.c $(wildcard src/*.h) | build
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/scalekit/core.so: $(OBJS)
	@mkdir -p build/scalekit
	$(CC) $(MODULE_LDFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

build/embedded.c: $(LUA_SRCS) scripts/embed.lua | build
	$(LUA) scripts/embed.lua lua $@

build/embedded.o: build/embedded.c src/embedded.h
	$(CC) $(ALL_CFLAGS) -Isrc -c $< -o $@

build/host.o: src/host.c $(wildcard src/*.h) | build
	$(CC) $(ALL_CFLAGS) -c $< -o $@

bin/scalekit-lua: $(OBJS) $(HOST_OBJS)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(HOST_OBJS) $(HOST_LUA_LIB) $(LIBS) $(HOST_SYSLIBS)

build:
	@mkdir -p build

deps:
	@sh scripts/deps.sh $(DEBS)

deps-run:
	@sh scripts/deps.sh $(DEBS_RUN)

deps-test:
	@sh scripts/deps.sh $(DEBS_TEST)

run: deps-run all
	@sh scripts/sandbox.sh examples/quickstart.lua

# The official MCP TypeScript SDK, the client spec/mcp_spec.lua drives the
# MCP server with (pinned in spec/mcp/package-lock.json; from npm).
MCP_CLIENT = spec/mcp/node_modules/@modelcontextprotocol/sdk/package.json
$(MCP_CLIENT): spec/mcp/package.json spec/mcp/package-lock.json
	@command -v npm >/dev/null || sh scripts/deps.sh nodejs npm
	npm ci --prefix spec/mcp --no-audit --no-fund
	@touch $@

test: deps-test all $(MCP_CLIENT)
	@sh scripts/test.sh $(SPECS)

lint:
	luacheck --no-color lua spec examples scripts/*.lua bench/*.lua
	$(LUA) scripts/checksrc.lua src/*.c src/*.h fuzz/*.c bench/*.c

# ASan/UBSan: the module is loaded into lua5.4, so the runtime is preloaded.
asan: clean $(MCP_CLIENT)
	@sh scripts/deps.sh $(DEBS_TEST) $(DEBS_CLANG)
	$(MAKE) all CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" LDFLAGS="-fsanitize=address,undefined -shared-libasan"
	@# the sanitized build is removed whatever the suite says, then its status is the target's
	LD_PRELOAD="$$(clang -print-file-name=libclang_rt.asan-x86_64.so)" SCALEKIT_SANITIZED=1 \
	ASAN_OPTIONS=detect_leaks=0 sh scripts/test.sh $(SPECS); rc=$$?; $(MAKE) clean; exit $$rc

# The suite under valgrind: every lua5.4 process is checked (not the Python fakes).
valgrind: all $(MCP_CLIENT)
	@sh scripts/deps.sh $(DEBS_TEST) valgrind
	BUSTED_LUA="$(CURDIR)/scripts/lua-valgrind.sh" sh scripts/test.sh $(SPECS)

# libFuzzer targets (clang from Debian's libclang-rt-14-dev), each run for
# FUZZ_SECONDS on a copy of its seed corpus; crashes land in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = json_decode json_encode encoders dotenv headers
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(LUA_INC) $(CURL_INC) -Isrc -Ifuzz
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
.PRECIOUS: build/fuzz/%

build/fuzz/%: fuzz/fuzz_%.c $(SRCS) src/dotenv.c $(wildcard src/*.h) fuzz/fuzz_lua.h
	@sh scripts/deps.sh $(DEBS_RUN) $(DEBS_CLANG)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) $< $(SRCS) src/dotenv.c -o $@ $(LUA_LIB) $(LIBS) -lm

fuzz-%: build/fuzz/%
	@rm -rf build/fuzz/corpus-$* && mkdir -p build/fuzz/corpus-$* && cp fuzz/corpus/$*/* build/fuzz/corpus-$*/
	@build/fuzz/$* -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	  -artifact_prefix=build/fuzz/crash-$*- build/fuzz/corpus-$* > build/fuzz/$*.log 2>&1; \
	  rc=$$?; grep -E "^(Done|stat::number_of_executed_units|SUMMARY)" build/fuzz/$*.log | sed "s/^/fuzz $*: /"; exit $$rc

BENCH_N ?= 5000
build/bench/c_loop: bench/c_loop.c
	@mkdir -p build/bench
	$(CC) -O2 -Wall -Wextra $(CURL_INC) $< -o $@ -lcurl

bench: all build/bench/c_loop
	@sh scripts/deps.sh $(DEBS_BENCH)
	bin/scalekit-lua --no-env bench/run.lua $(BENCH_N)

# The peers the direct-mode benchmark compares against (tweepy, twitter-api-v2).
bench-peers: bench
bench: | peers-installed
.PHONY: peers-installed bench-peers
peers-installed:
	@sh scripts/deps.sh --optional python3-tweepy
	@command -v npm >/dev/null || sh scripts/deps.sh --optional nodejs npm
	@test -d bench/peers/node_modules/twitter-api-v2 || npm install --silent --prefix bench/peers >/dev/null 2>&1 \
	  || echo "twitter-api-v2 not installed: that peer is skipped"

install: all
	install -d $(DESTDIR)$(LIBDIR)/scalekit $(DESTDIR)$(LUADIR)/scalekit/twitter $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPLETIONDIR)
	install -m 0755 build/scalekit/core.so $(DESTDIR)$(LIBDIR)/scalekit/core.so
	install -m 0755 bin/scalekit-lua $(DESTDIR)$(BINDIR)/scalekit-lua
	install -m 0644 lua/scalekit/twitter.lua $(DESTDIR)$(LUADIR)/scalekit/twitter.lua
	install -m 0644 lua/scalekit/twitter/*.lua $(DESTDIR)$(LUADIR)/scalekit/twitter/
	install -m 0644 docs/scalekit-lua.1 $(DESTDIR)$(MANDIR)/scalekit-lua.1
	install -m 0644 docs/scalekit-lua.bash $(DESTDIR)$(COMPLETIONDIR)/scalekit-lua

# The API reference; LDoc warnings fail the build (scripts/doc.sh).
doc:
	@sh scripts/deps.sh $(DEBS_DOC)
	@sh scripts/doc.sh

tools-doc: bin/scalekit-lua
	bin/scalekit-lua --no-env scripts/gen_tools_md.lua > docs/TOOLS.md

# X's constraints from its OpenAPI document (OPENAPI=path/to/openapi.json):
# parameter schemas into sandbox/x_routes.json, then the SDK's data module.
OPENAPI ?= ../shared/reference/x-api/openapi.json
x-constraints: all
	python3 scripts/x_params.py $(OPENAPI)
	$(LUA) scripts/x_constraints.lua > lua/scalekit/twitter/x_constraints.lua

clean:
	rm -rf build bin
