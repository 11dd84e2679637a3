#!/bin/sh
# doc.sh - build the LDoc reference (config.ld) into DIR (default build/doc)
# and fail when LDoc warns or cannot render markdown: LDoc itself exits 0
# on both, so its output is read.
#   sh scripts/doc.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build/doc}
rm -rf "$dir"
log=$(ldoc -d "$dir" . 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
# LDoc's own progress lines are the only ones allowed
warnings=$(printf '%s\n' "$log" | grep -v -e '^reading configuration from ' -e '^output written to ' || true)
if [ -n "$warnings" ]; then
  printf '%s\n' "$warnings" >&2
  echo "make doc: LDoc warned (above); fix the comments" >&2
  exit 1
fi
echo "API reference in $dir/index.html"
