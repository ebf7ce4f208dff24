#!/usr/bin/env bash
# bench_servers.sh - `make bench`, third part: the tracker's cost on real servers with their own load generators (redis + redis-benchmark, memcached + memaslap), plain vs preloaded vs heaptrack, as medians of interleaved runs.
set -eu

usage() {
    echo "usage: $0" >&2
    echo "Appends to results/bench.md: throughput of redis 7.0.15 (built with MALLOC=libc by" >&2
    echo "tests/realcode/build.sh, so every allocation goes through malloc) under redis-benchmark" >&2
    echo "-t set,get,lpush,hset at -P 1 and -P 16, and of Debian's memcached under memaslap, each" >&2
    echo "plain, with bin/libtracker.so preloaded (defaults) and under heaptrack; the ratio to plain" >&2
    echo "is the median over ROUNDS rounds (default 5), each round running the three one after" >&2
    echo "the other, so that a spell of a busy machine hits all three alike." >&2
    echo "Env: ROUNDS, REQUESTS (redis-benchmark -n, default 100000), SECONDS_EACH (memaslap -t," >&2
    echo "default 5), TOOLS (default 'plain ours heaptrack'), SERVERS (default 'redis redis-debian" >&2
    echo "memcached'; redis-debian: Debian's redis-server, which keeps its jemalloc under the tracker)." >&2
    exit 2
}
[ $# -eq 0 ] || usage

cd "$(dirname "$0")/.."
. scripts/lib.sh
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
SECONDS_EACH=${SECONDS_EACH:-5}
TOOLS=${TOOLS:-plain ours heaptrack}
SERVERS=${SERVERS:-redis redis-debian memcached}
OUT=results/bench.md
B="$LAB_TMP/bench_servers"
mkdir -p results "$B"
[ -f bin/libtracker.so ] || { echo "bench_servers: bin/libtracker.so missing (make all)" >&2; exit 1; }
for t in $TOOLS; do
    case "$t" in
        plain|ours) ;;
        heaptrack) command -v heaptrack >/dev/null || { echo "bench_servers: heaptrack not installed (scripts/deps.sh bench)" >&2; exit 1; } ;;
        *) usage ;;
    esac
done
REDIS=$(bash tests/realcode/build.sh redis default) || { echo "bench_servers: redis did not build" >&2; exit 1; }
REDIS_SERVER=$REDIS/src/redis-server REDIS_BENCH=$REDIS/src/redis-benchmark
DEBIAN_REDIS=$(command -v redis-server || true)
MEMCACHED=$(command -v memcached || true)
MEMASLAP=$(command -v memcaslap || command -v memaslap || true)

say() { echo "$*" | tee -a "$OUT"; }

# start TOOL PORT CMD...: CMD started as TOOL runs it (SERVER_PID: the process to stop;
# under heaptrack, heaptrack's script). Its output goes to $B/server.log, shown when
# it does not listen.
start() {
    local tool=$1 port=$2; shift 2
    case "$tool" in
        plain) "$@" >"$B/server.log" 2>&1 </dev/null & ;;
        ours) LD_PRELOAD="$PWD/bin/libtracker.so" TRACKER_OUT="$B/ours.%p.txt" "$@" >"$B/server.log" 2>&1 </dev/null & ;;
        heaptrack) heaptrack -o "$B/heaptrack.$port" "$@" >"$B/server.log" 2>&1 </dev/null & ;;
    esac
    SERVER_PID=$!
    started "$SERVER_PID"
    local i
    # heaptrack starts slowly on a busy machine (a CI run waited more than 30 s)
    for i in $(seq 1 1200); do
        port_free "$port" || return 0
        proc_gone "$SERVER_PID" && break
        sleep 0.1
    done
    echo "bench_servers: $* ($tool) did not listen on $port$(proc_gone "$SERVER_PID" && echo ': it ended'); its output:" >&2
    tail -n 5 "$B/server.log" >&2
    stop_pid "$SERVER_PID"
    return 1
}
# children_of PID: the processes whose parent is PID (started by it, so by us).
children_of() { ps -o pid= --ppid "$1" 2>/dev/null; }
# Debian's heaptrack script exits on SIGTERM without passing it on: the server it
# started (and heaptrack_interpret) went on running, six of them after one run.
# So its children are asked first, by their PIDs.
stop() {
    local c
    for c in $(children_of "$SERVER_PID"); do kill -TERM "$c" 2>/dev/null || true; done
    STOP_SECONDS=60 stop_pid "$SERVER_PID"
    rm -f "$B"/heaptrack.* "$B"/ours.*
}

# redis_round TOOL PIPELINE: "SET GET LPUSH HSET" requests/s, one line.
redis_round() {
    local tool=$1 p=$2 port
    pick_port
    port=$PICKED
    if ! start "$tool" "$port" "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no; then
        pick_port # once more, on another port: a start that failed is said above
        port=$PICKED
        start "$tool" "$port" "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no
    fi
    "$REDIS_BENCH" -p "$port" -t set,get,lpush,hset -n "$REQUESTS" -P "$p" -r 100000 --csv 2>/dev/null |
        awk -F'"' '$2 ~ /^(SET|GET|LPUSH|HSET)$/ { v[$2] = $4 } END { print v["SET"], v["GET"], v["LPUSH"], v["HSET"] }'
    stop
}

# memcached_round TOOL: memaslap's TPS (90% get, 10% set, 2 threads x 32 connections).
memcached_round() {
    local tool=$1 port
    pick_port
    port=$PICKED
    start "$tool" "$port" "$MEMCACHED" -l 127.0.0.1 -p "$port" -U 0 -t 2 -m 256 -u "$(id -un)" # -u: root needs it
    "$MEMASLAP" -s "127.0.0.1:$port" -T 2 -c 32 -t "${SECONDS_EACH}s" 2>/dev/null |
        awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") t = $(i + 1) } END { print t + 0 }'
    stop
}

# row LABEL COL: "| LABEL | plain | ours/plain | heaptrack/plain |" from the files $B/R.TOOL.
row() {
    local label=$1 col=$2 cells="" t
    for t in $TOOLS; do
        [ "$t" = plain ] && continue
        cells="$cells $(pair_ratio "$B/R.$t" "$B/R.plain" "$col" | awk '{ printf "%.2f", $1 }') ($(pair_spread "$B/R.$t" "$B/R.plain" "$col")) |"
    done
    say "| $label | $(cut -d' ' -f"$col" "$B/R.plain" | median | awk '{ printf "%.0f", $1 }') |$cells"
}

header() {
    local h="| load | plain |" s="|---|---:|" t
    for t in $TOOLS; do [ "$t" = plain ] || { h="$h $t/plain (Q1-Q3) |"; s="$s---:|"; }; done
    say "$h"
    say "$s"
}

say ""
say "## Real servers: tracker on vs off ($(date -u +%Y-%m-%d), $(nproc) cores, $ROUNDS interleaved rounds)"
# redis_rows LABEL: the four commands at -P 1 and -P 16, REDIS_SERVER under each tool.
redis_rows() {
    local label=$1 p t c op
    header
    for p in 1 16; do
        for t in $TOOLS; do : >"$B/R.$t"; done
        for _ in $(seq 1 "$ROUNDS"); do
            for t in $TOOLS; do redis_round "$t" "$p" >>"$B/R.$t"; done
        done
        c=1
        for op in SET GET LPUSH HSET; do row "$label $op -P $p" "$c"; c=$((c + 1)); done
    done
}
if [[ " $SERVERS " == *" redis "* ]]; then
    say ""
    say "redis 7.0.15 (MALLOC=libc, -O2 -g) under redis-benchmark -n $REQUESTS -r 100000, requests/s;"
    say "ratios: median of the rounds' ratios to plain, Q1-Q3 beside."
    say ""
    redis_rows redis
fi
if [[ " $SERVERS " == *" redis-debian "* ]] && [ -n "$DEBIAN_REDIS" ]; then
    # Debian's build links libjemalloc.so.2: the tracker forwards to jemalloc and
    # keeps its records in the address table (docs/preload.md).
    REDIS_SERVER=$DEBIAN_REDIS
    say ""
    say "Debian's redis-server $("$DEBIAN_REDIS" --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') (jemalloc kept under the tracker), same load, requests/s:"
    say ""
    redis_rows "Debian redis"
fi
if [[ " $SERVERS " != *" memcached "* ]]; then
    :
elif [ -n "$MEMCACHED" ] && [ -n "$MEMASLAP" ]; then
    say ""
    say "memcached $("$MEMCACHED" -V | cut -d' ' -f2) (Debian's) under memaslap -T 2 -c 32 -t ${SECONDS_EACH}s, operations/s:"
    say ""
    header
    for t in $TOOLS; do : >"$B/R.$t"; done
    for _ in $(seq 1 "$ROUNDS"); do
        for t in $TOOLS; do memcached_round "$t" >>"$B/R.$t"; done
    done
    row "memcached get/set 9:1" 1
else
    say ""
    say "memcached: not measured (memcached and memaslap from libmemcached-tools: scripts/deps.sh bench)"
fi
