#!/usr/bin/env bash
# capture.sh - asks a running lab server for GET /capture: which lines allocated the memory that is still live.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: scripts/capture.sh [--port P] [QUERY]
Prints the tracker report of the server on 127.0.0.1:P (default: $PORT, else 5000).
The first call lists the top allocation sites; each later call shows the growth
since the previous one. QUERY is passed on as is, e.g.
  scripts/capture.sh 'top=5&key=traceback&frames=6'
  scripts/capture.sh --port 5001 format=json
EOF
    exit 2
}

port=${PORT:-5000}
query=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) [ $# -ge 2 ] || usage; port=$2; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "capture: unknown option '$1'" >&2; usage ;;
        *) [ -z "$query" ] || usage; query=${1#\?}; shift ;;
    esac
done
case "$port" in ''|*[!0-9]*|0*) echo "capture: --port must be a number, got '$port'" >&2; exit 2 ;; esac
command -v curl >/dev/null 2>&1 || { echo "capture: curl not found: run 'bash scripts/deps.sh demo'" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"   # http (body in $LAB_TMP/body), removed at exit
PORT=$port
code=$(http GET "/capture${query:+?$query}" --max-time 30) || code=000
case "$code" in
    200) cat "$LAB_TMP/body" ;;
    000) echo "capture: no server answers on 127.0.0.1:$port (start one: bin/server --port $port)" >&2; exit 1 ;;
    *)   echo "capture: $(url "/capture${query:+?$query}") answered HTTP $code: $(head -n 1 "$LAB_TMP/body")" >&2; exit 1 ;;
esac
