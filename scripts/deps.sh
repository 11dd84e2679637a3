#!/bin/sh
# deps.sh - install the Debian packages given as arguments that are missing.
#   sh scripts/deps.sh [--optional] PACKAGE...
# Installs nothing when everything is there, and shows apt's progress when
# it does.  As root it installs; otherwise through sudo when there is one.
# On a system without dpkg it checks nothing and goes on.
# When it cannot install (no root and no sudo, or no apt-get) it names the
# missing packages and the exact command to run, and fails -- unless
# --optional is given: then the target goes on without them.
set -eu
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi
# Not Debian (macOS, say): the names below mean nothing there; say so and go on.
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian system: not checking for$(printf ' %s' "$@")" >&2
  exit 0
fi
missing=""
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $pkg"
  fi
done
[ -z "$missing" ] && exit 0
# Say what is missing and how to install it; exit 0 for optional packages.
cannot() {
  echo "deps: missing packages:$missing ($1)" >&2
  echo "deps: install them with: $2" >&2
  if [ "$optional" -eq 1 ]; then
    echo "deps: they are optional here: going on without them" >&2
    exit 0
  fi
  exit 1
}
line="apt-get install -y --no-install-recommends$missing"
command -v apt-get >/dev/null 2>&1 || cannot "not a Debian system" "your system's package manager"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || cannot "not root, and there is no sudo" "su -c 'apt-get update && $line'"
  SUDO="sudo"
fi
echo "deps: installing$missing" >&2
$SUDO apt-get update -q || cannot "apt-get update failed" "$SUDO apt-get update && $SUDO $line"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing \
  || cannot "apt-get install failed" "$SUDO $line"
