#!/bin/sh
# run-quickstart.sh - run examples/quickstart.lua.  Without Scalekit
# credentials in the environment it starts the bundled sandbox (a local fake
# Scalekit on 127.0.0.1) and points the example at it.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH="$PWD/lua/?.lua;;" LUA_CPATH="$PWD/build/?.so;;"
if [ -n "${SCALEKIT_CLIENT_SECRET:-}" ]; then
  exec lua5.4 examples/quickstart.lua "$@"
fi
fifo=$(mktemp -u)
mkfifo "$fifo"
python3 sandbox/fake_scalekit.py --port 0 >"$fifo" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$fifo"' EXIT INT TERM
read -r _ port <"$fifo"
echo "(no SCALEKIT_CLIENT_SECRET set: using the local sandbox on 127.0.0.1:$port)" >&2
SCALEKIT_ENVIRONMENT_URL="http://127.0.0.1:$port" SCALEKIT_CLIENT_ID=sandbox-client \
SCALEKIT_CLIENT_SECRET=sandbox-secret SCALEKIT_IDENTIFIER="${SCALEKIT_IDENTIFIER:-sandbox_user}" \
  lua5.4 examples/quickstart.lua "$@"
