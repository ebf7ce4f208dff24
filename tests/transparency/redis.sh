#!/usr/bin/env bash
# redis.sh - Debian's redis-server on 127.0.0.1: real commands through redis-cli, INFO memory's
# allocator and figures as the data grows and goes; prints what a user sees, the exit status last.
set -u
# TP_WRAP (tests/test_transparency.sh): a command the server is started under (the preload, the launcher).
. "$(dirname "$0")/driver.sh"
pick_port || exit 1
P=$PICKED
${TP_WRAP:-} redis-server --port "$P" --bind 127.0.0.1 --save '' --appendonly no --dir "$LAB_TMP" \
    --logfile "$LAB_TMP/redis.log" --enable-debug-command yes </dev/null &
pid=$!
started "$pid"
cli() { redis-cli -p "$P" "$@"; }
wait_up "$pid" cli ping
cli set greeting hello
cli get greeting
cli incrby counter 41
cli incr counter
cli rpush list a b c
cli lrange list 0 -1
cli hset h f1 v1 f2 v2
cli hgetall h
cli sadd s x y z
cli smembers s | sort
cli zadd z 1 one 2 two
cli zrange z 0 -1 withscores
cli expire greeting 100
cli ttl greeting
# mem FIELD: a field of INFO memory.
mem() { cli info memory | tr -d '\r' | sed -n "s/^$1://p"; }
echo "mem_allocator: $(mem mem_allocator)"
sleep 0.3
u0=$(mem used_memory) a0=$(mem allocator_allocated)
cli debug populate 100000 key 100
sleep 0.3 # the allocator_* fields are refreshed by the server's cron, every 100 ms
u1=$(mem used_memory) a1=$(mem allocator_allocated)
cli flushall
sleep 0.3
u2=$(mem used_memory) a2=$(mem allocator_allocated)
# yes_if TEST: "yes" when the arithmetic TEST holds (an empty figure makes it "no").
yes_if() { (( $1 )) 2>/dev/null && echo yes || echo no; }
echo "used_memory grew by >= 10 MB with 100000 keys: $(yes_if "${u1:-0} - ${u0:-0} >= 10000000")"
echo "allocator_allocated grew by >= 10 MB: $(yes_if "${a1:-0} - ${a0:-0} >= 10000000")"
echo "used_memory back within 2 MB after FLUSHALL: $(yes_if "${u2:-0} > 0 && ${u2:-0} - ${u0:-0} < 2000000")"
# (allocator_allocated is not asked to come back: jemalloc keeps freed pages
# in its caches for a while, in plain runs too)
echo "allocator_allocated still known after FLUSHALL: $(yes_if "${a2:-0} > 0")"
echo "MEMORY MALLOC-STATS is jemalloc's: $(cli memory malloc-stats | grep -q '^Allocated:' && echo yes || echo no)"
cli shutdown nosave
rc=0
wait "$pid" || rc=$?
forget_pid "$pid"
echo "redis-server exit $rc"
