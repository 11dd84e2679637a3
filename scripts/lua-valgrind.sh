#!/bin/sh
# lua-valgrind.sh - lua5.4 under valgrind, for `make valgrind` (busted --lua=...).
exec ${VALGRIND:-valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite} lua5.4 "$@"
