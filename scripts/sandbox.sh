#!/bin/sh
# sandbox.sh - run an example (or any script) with scalekit-lua.  Without
# Scalekit credentials in the environment it starts the bundled sandbox (a
# local fake Scalekit on 127.0.0.1) and points the script at it.  With --x
# it runs the script in direct mode instead: a local fake X API v2 with a
# user token seeded in a throw-away token file (X_TOKEN_FILE), unless X
# credentials are set.
#   sh scripts/sandbox.sh [--x] SCRIPT [args]
# SCRIPT and its arguments are taken from the caller's directory, and
# whatever the script writes lands there.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
host="$root/bin/scalekit-lua"
want_x=0
if [ "${1:-}" = "--x" ]; then want_x=1; shift; fi
if [ $# -eq 0 ]; then echo "usage: sh scripts/sandbox.sh [--x] SCRIPT [args]" >&2; exit 2; fi
pids=""
tmp=$(mktemp -d)
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# start_fake NAME [ARGS]: starts sandbox/NAME.py and sets $port
start_fake() {
  fifo="$tmp/$1.port"
  mkfifo "$fifo"
  name=$1
  shift
  python3 "$root/sandbox/$name.py" --port 0 "$@" >"$fifo" &
  pids="$pids $!"
  read -r _ port <"$fifo"
}
has_creds() {   # in the environment, or in ./.env (which scalekit-lua loads)
  [ -n "$(printenv "$1" || true)" ] || grep -qs "^[[:space:]]*\(export[[:space:]]\+\)\?$1=" .env
}
if [ $want_x = 0 ] && ! has_creds SCALEKIT_CLIENT_SECRET; then
  ident="${SCALEKIT_IDENTIFIER:-sandbox_user}"
  start_fake fake_scalekit --account "twitter:$ident"
  echo "(no SCALEKIT_CLIENT_SECRET set: using the local sandbox on 127.0.0.1:$port)" >&2
  export SCALEKIT_ENVIRONMENT_URL="http://127.0.0.1:$port" SCALEKIT_CLIENT_ID=sandbox-client \
         SCALEKIT_CLIENT_SECRET=sandbox-secret-s3kr1t SCALEKIT_IDENTIFIER="$ident"
fi
if [ $want_x = 1 ] && ! has_creds X_CLIENT_ID; then
  start_fake fake_x --user-token sandbox-x-access-s3kr1t:sandbox-x-refresh-s3kr1t
  echo "(no X_CLIENT_ID set: using the local fake X API on 127.0.0.1:$port, direct mode)" >&2
  # direct mode, with the tokens in a file as X rotates them on refresh
  printf '{"access_token":"sandbox-x-access-s3kr1t","refresh_token":"sandbox-x-refresh-s3kr1t"}\n' \
    >"$tmp/tokens.json"
  export X_API_BASE_URL="http://127.0.0.1:$port" X_CLIENT_ID=sandbox-x-client X_CLIENT_SECRET=sandbox-x-secret-s3kr1t \
         X_AUTHORIZE_URL="http://127.0.0.1:$port/i/oauth2/authorize" X_TOKEN_FILE="$tmp/tokens.json"
  # a Scalekit environment from ./.env or the caller would win over the token file
  unset SCALEKIT_CLIENT_SECRET SCALEKIT_ENVIRONMENT_URL SCALEKIT_ENV_URL
  set -- --no-env "$@"
fi
"$host" "$@"
