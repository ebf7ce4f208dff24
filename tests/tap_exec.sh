#!/usr/bin/env bash
# tap_exec.sh - runs one test (a tests/*.sh file or a unit test binary) for prove, its stderr in the TAP stream (the unit tests print there: it never allocates).
case "${1:-}" in
    *.sh) exec bash "$1" 2>&1 ;;
    '') echo "usage: $0 TEST" >&2; exit 2 ;;
    *) exec "$1" 2>&1 ;;
esac
