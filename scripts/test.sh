#!/bin/sh
# test.sh - run the busted suite under Lua 5.4 against the freshly built
# module, and end with one plain line: "N passed, N failed".
# Extra arguments go to busted (e.g. a single spec file); BUSTED_LUA picks
# the interpreter (make valgrind runs it under valgrind).
set -u
cd "$(dirname "$0")/.."
out=$(mktemp)
rcfile=$(mktemp)
trap 'rm -f "$out" "$rcfile"' EXIT
{ busted --lua="${BUSTED_LUA:-lua5.4}" -o TAP "$@" 2>&1; echo $? >"$rcfile"; } | tee "$out"
rc=$(cat "$rcfile")
skipped=$(grep -c '^ok .*# SKIP' "$out")
passed=$(( $(grep -c '^ok ' "$out") - skipped ))
failed=$(grep -c '^not ok ' "$out")
planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
if [ -z "$planned" ]; then
  echo "busted did not finish (no TAP plan line)" >&2
  failed=$((failed + 1))
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "busted exited with status $rc (valgrind or sanitizer errors?)" >&2
  failed=$((failed + 1))
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
