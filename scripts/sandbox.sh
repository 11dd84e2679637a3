#!/bin/sh
# sandbox.sh - run an example (or any script) with scalekit-lua.  Without
# Scalekit credentials in the environment it starts the bundled sandbox (a
# local fake Scalekit on 127.0.0.1), and with --x a local fake X API v2 for
# direct mode, and points the script at them.
#   sh scripts/sandbox.sh [--x] examples/quickstart.lua [args]
set -eu
cd "$(dirname "$0")/.."
host="$PWD/bin/scalekit-lua"
want_x=0
if [ "${1:-}" = "--x" ]; then want_x=1; shift; fi
pids=""
fifos=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -f $fifos; }
trap cleanup EXIT INT TERM
# start_fake NAME [ARGS]: starts sandbox/NAME.py and sets $port
start_fake() {
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  fifos="$fifos $fifo"
  name=$1
  shift
  python3 "sandbox/$name.py" --port 0 "$@" >"$fifo" &
  pids="$pids $!"
  read -r _ port <"$fifo"
}
has_creds() {   # in the environment, or in ./.env (which scalekit-lua loads)
  [ -n "$(printenv "$1" || true)" ] || grep -qs "^[[:space:]]*\(export[[:space:]]\+\)\?$1=" .env
}
if ! has_creds SCALEKIT_CLIENT_SECRET && [ $want_x = 0 ]; then
  ident="${SCALEKIT_IDENTIFIER:-sandbox_user}"
  start_fake fake_scalekit --account "twitter:$ident"
  echo "(no SCALEKIT_CLIENT_SECRET set: using the local sandbox on 127.0.0.1:$port)" >&2
  export SCALEKIT_ENVIRONMENT_URL="http://127.0.0.1:$port" SCALEKIT_CLIENT_ID=sandbox-client \
         SCALEKIT_CLIENT_SECRET=sandbox-secret-s3kr1t SCALEKIT_IDENTIFIER="$ident"
fi
if [ $want_x = 1 ] && ! has_creds X_CLIENT_ID; then
  start_fake fake_x
  echo "(no X_CLIENT_ID set: using the local fake X API on 127.0.0.1:$port)" >&2
  export X_API_BASE_URL="http://127.0.0.1:$port" X_CLIENT_ID=sandbox-x-client X_CLIENT_SECRET=sandbox-x-secret-s3kr1t \
         X_AUTHORIZE_URL="http://127.0.0.1:$port/i/oauth2/authorize"
fi
"$host" "$@"
