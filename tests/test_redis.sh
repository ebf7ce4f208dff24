#!/usr/bin/env bash
# test_redis.sh - Debian's redis-server under the tracker: bin/leak-report serves redis-benchmark to the end and writes its report, INFO memory still names jemalloc and moves with the data, and redis's own tcl test suite (Debian's source package) passes with the preload exactly as plain.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

LIB=$TEST_ROOT/bin/libtracker.so
LR=$TEST_ROOT/bin/leak-report
# The units of redis's suite that exercise the allocator most (every data
# type, expiry, INFO's memory figures, memory efficiency and jemalloc's active
# defragmentation); REDIS_UNITS="unit/info unit/expire" runs fewer.
UNITS=${REDIS_UNITS:-"unit/type/hash unit/type/incr unit/type/list-2 unit/type/list-3 unit/type/list-common unit/type/list unit/type/set unit/type/stream-cgroups unit/type/stream unit/type/string unit/type/zset unit/expire unit/info unit/memefficiency"}
# Left out to stay within tests/run.sh's 600 s on 2 busy cores (both runs at
# once): the longest stress and fuzz tests (10-35 s each plain, 150 s of the
# suite's 316): three of the five active-defrag tests ("Active defrag" and "...
# big keys" still run), the ziplist/XRANGE fuzzers, the #3343 stress testers.
# REDIS_SKIP="" runs them all.
SKIP=${REDIS_SKIP-"Active defrag big list
Active defrag edge case
Active defrag eval scripts
XRANGE fuzzing
ziplist implementation: encoding stress testing
ziplist implementation: value encoding and backlink
/^Stress tester for #3343-alike bugs
SRANDMEMBER with a dict containing long chain"}
SUITE_SECONDS=${REDIS_SUITE_SECONDS:-420} # each run of the suite (both run at once)
MIN_OK=500 MIN_SERVERS=10 # what the default units give at least (1065 ok, ~100 servers started)
[ -z "${REDIS_UNITS:-}" ] || MIN_OK=1 MIN_SERVERS=1

if ! make -s bin/libtracker.so bin/leak-report >"$TEST_TMP/make.log" 2>&1; then
    fail "make builds the library and the launcher" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log")"
    done_testing
fi
for c in redis-server redis-cli redis-benchmark; do
    if ! command -v "$c" >/dev/null 2>&1; then
        skip "redis" "$c not installed (Debian packages redis-server, redis-tools: scripts/deps.sh test)"
        done_testing
    fi
done

# mem PORT FIELD: a field of INFO memory.
mem() { redis-cli -p "$1" info memory | tr -d '\r' | sed -n "s/^$2://p"; }

# ---------------------------------------------------------------- redis-benchmark through bin/leak-report
pick_port || { fail "a free port" "one" "none"; done_testing; }
P=$PICKED
mkdir -p "$TEST_TMP/data"
"$LR" -o "$TEST_TMP/lr" redis-server --port "$P" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TEST_TMP/data" --logfile "$TEST_TMP/redis.log" >"$TEST_TMP/lr.out" 2>"$TEST_TMP/lr.err" </dev/null &
LR_PID=$!
started "$LR_PID"
up=0
for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$P" ping 2>/dev/null)" = PONG ] && { up=1; break; }
    proc_gone "$LR_PID" && break
    sleep 0.1
done
check_eq "bin/leak-report redis-server: answers PING" 1 "$up"
if [ "$up" -eq 1 ]; then
    check_eq "... INFO memory: mem_allocator is still jemalloc" jemalloc "$(mem "$P" mem_allocator | cut -d- -f1)"
    u0=$(mem "$P" used_memory)
    rc=0
    timeout 300 redis-benchmark -h 127.0.0.1 -p "$P" -q -n 100000 >"$TEST_TMP/bench.out" 2>&1 || rc=$?
    tr '\r' '\n' <"$TEST_TMP/bench.out" | grep 'requests per second' >"$TEST_TMP/bench.rps"
    check_eq "... redis-benchmark -q -n 100000 runs to the end (exit status)" 0 "$rc"
    check_range "... every test of redis-benchmark reports its requests per second" 15 100 "$(wc -l <"$TEST_TMP/bench.rps")"
    echo "# redis-benchmark under bin/leak-report: $(awk -F: '{ split($2, a, " "); printf "%s%s %d", (NR > 1 ? "," : ""), $1, a[1] }' "$TEST_TMP/bench.rps") req/s"
    # data that stays: 100000 SETs of 100 bytes on random keys (~63000 keys)
    redis-benchmark -h 127.0.0.1 -p "$P" -q -t set -n 100000 -r 100000 -d 100 >/dev/null 2>&1
    u1=$(mem "$P" used_memory)
    redis-cli -p "$P" flushall >/dev/null
    u2=$(mem "$P" used_memory)
    check_range "... used_memory grew with 100000 SETs on random keys (kB)" 5000 10000000 $(((${u1:-0} - ${u0:-0}) / 1000))
    check_range "... and fell by as much after FLUSHALL (kB)" 5000 10000000 $(((${u1:-0} - ${u2:-0}) / 1000))
    redis-cli -p "$P" shutdown nosave >/dev/null 2>&1
fi
rc=0
wait_gone "$LR_PID" 20 && { wait "$LR_PID" || rc=$?; forget_pid "$LR_PID"; }
check_eq "... redis-server (and the launcher) exit 0 after SHUTDOWN" 0 "$rc"
check "... its report was written at exit" grep -qs '^== tracker report [0-9]* (pid [0-9]*, at exit' "$TEST_TMP"/lr/*.txt
check "... the launcher's last line says so" grep -q '^leak-report: 1 report(s) in .* (redis-server: pid [0-9]*, exit status 0)' "$TEST_TMP/lr.err"

# ---------------------------------------------------------------- redis's own test suite, plain and preloaded
# Debian's source package of the installed redis-server, unpacked once into build/redis-src.
ver=$(dpkg-query -W -f='${source:Version}' redis-server 2>/dev/null)
SRCDIR=$TEST_ROOT/build/redis-src
tree=$(ls -d "$SRCDIR"/redis-*/ 2>/dev/null | head -n 1)
if [ -z "$tree" ] || [ "$(cat "$SRCDIR/version" 2>/dev/null)" != "$ver" ]; then
    rm -rf "$SRCDIR"
    mkdir -p "$SRCDIR"
    (cd "$SRCDIR" && timeout 300 apt-get source -q "redis=$ver") >"$TEST_TMP/apt-source.log" 2>&1 && echo "$ver" >"$SRCDIR/version"
    tree=$(ls -d "$SRCDIR"/redis-*/ 2>/dev/null | head -n 1)
fi
if [ -z "$tree" ] || [ ! -x "$tree/runtest" ]; then
    skip "redis's own test suite" "apt-get source redis=$ver failed (a deb-src entry: scripts/deps.sh test adds one): $(tail -n 1 "$TEST_TMP/apt-source.log")"
    done_testing
fi
if ! command -v tclsh >/dev/null 2>&1; then
    skip "redis's own test suite" "tclsh not installed (Debian package tcl: scripts/deps.sh test)"
    done_testing
fi

# suite_copy DIR: a copy of the tree whose src/redis-* run Debian's binaries
# under $REDIS_WRAP (each run of runtest cleans its tests/tmp: one copy each).
suite_copy() {
    mkdir -p "$1"
    cp -r "$tree/tests" "$tree/runtest" "$1/"
    mkdir -p "$1/src"
    for b in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
        printf '#!/bin/sh\nexec ${REDIS_WRAP:-} /usr/bin/%s "$@"\n' "$b" >"$1/src/$b"
        chmod +x "$1/src/$b"
    done
}
# results LOG: the suite's verdicts, one "ok NAME" / "err NAME" line each, sorted (timings cut).
results() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | sed -n 's/^\[\(ok\|err\|exception\|skip\|ignore\)\]: \(.*\)$/\1 \2/p' |
        sed 's/ ([0-9]* ms)$//; s/ in tests\/.*$//' | sort
}
args=()
for u in $UNITS; do args+=(--single "$u"); done
while IFS= read -r t; do [ -z "$t" ] || args+=(--skiptest "$t"); done <<<"$SKIP"
suite_copy "$TEST_TMP/plain"
suite_copy "$TEST_TMP/tracked"
mkdir -p "$TEST_TMP/suite-reports"
start=$SECONDS
# The two runs at once (each on its own ports), to stay within the test's time.
(cd "$TEST_TMP/plain" && exec timeout -k 10 "$SUITE_SECONDS" ./runtest --clients 3 --baseport 21111 --portcount 2000 \
    "${args[@]}" >"$TEST_TMP/suite-plain.log" 2>&1 </dev/null) &
p_plain=$!
(cd "$TEST_TMP/tracked" && REDIS_WRAP="env LD_PRELOAD=$LIB TRACKER_OUT=$TEST_TMP/suite-reports/%p.txt" \
    exec timeout -k 10 "$SUITE_SECONDS" ./runtest --clients 3 --baseport 24111 --portcount 2000 \
    "${args[@]}" >"$TEST_TMP/suite-tracked.log" 2>&1 </dev/null) &
p_tracked=$!
rc_plain=0 rc_tracked=0
wait "$p_plain" || rc_plain=$?
wait "$p_tracked" || rc_tracked=$?
results "$TEST_TMP/suite-plain.log" >"$TEST_TMP/plain.set"
results "$TEST_TMP/suite-tracked.log" >"$TEST_TMP/tracked.set"
echo "# redis's suite ($(echo "$UNITS" | wc -w) units): $((SECONDS - start)) s; plain: $(grep -c '^ok' "$TEST_TMP/plain.set") ok, $(grep -vc '^ok' "$TEST_TMP/plain.set") other; preloaded: $(grep -c '^ok' "$TEST_TMP/tracked.set") ok, $(grep -vc '^ok' "$TEST_TMP/tracked.set") other"
if [ "$rc_plain" -eq 124 ] || [ "$rc_plain" -eq 137 ]; then
    fail "redis's suite ran plain to the end" "within $SUITE_SECONDS s" "timed out (REDIS_SUITE_SECONDS)"
else
    check_range "redis's suite ran plain to the end (ok verdicts; runtest exit $rc_plain)" "$MIN_OK" 100000 "$(grep -c '^ok' "$TEST_TMP/plain.set")"
fi
check_eq "... under the preload: the same runtest exit status" "$rc_plain" "$rc_tracked"
d=$(diff "$TEST_TMP/plain.set" "$TEST_TMP/tracked.set" | grep '^[<>]' | head -n 3 | tr '\n' ';')
check_eq "... the same pass/fail set, test by test ($(wc -l <"$TEST_TMP/plain.set") verdicts)" "" "$d"
check_range "... the servers it started under the preload wrote reports at exit" "$MIN_SERVERS" 100000 \
    "$(grep -l '^== tracker report [0-9]* (pid [0-9]*, at exit' "$TEST_TMP"/suite-reports/*.txt 2>/dev/null | wc -l)"

done_testing
