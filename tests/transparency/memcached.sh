#!/usr/bin/env bash
# memcached.sh - Debian's memcached on 127.0.0.1, started as root with -u nobody (it drops root),
# serving a few commands; prints the replies and its exit status after SIGTERM.
set -u
# TP_WRAP (tests/test_transparency.sh): a command the server is started under (the preload, the launcher).
. "$(dirname "$0")/driver.sh"
pick_port || exit 1
P=$PICKED
user=()
[ "$(id -u)" -eq 0 ] && user=(-u nobody)
${TP_WRAP:-} memcached "${user[@]}" -l 127.0.0.1 -p "$P" -U 0 -t 2 -m 64 </dev/null &
pid=$!
started "$pid"
wait_up "$pid" bash -c "exec 3<>/dev/tcp/127.0.0.1/$P"
# mc: send stdin and a quit on one connection, print the reply.
mc() {
    (exec 3<>"/dev/tcp/127.0.0.1/$P" && { cat; printf 'quit\r\n'; } >&3 && timeout 5 cat <&3) | tr -d '\r'
}
printf 'set greeting 0 0 5\r\nhello\r\nget greeting\r\nset n 0 0 2\r\n41\r\nincr n 1\r\n' | mc
# (values made by bash itself: the case times the server, not 100 short processes)
for ((i = 1; i <= 50; i++)); do
    printf -v v '%*s' $((i * 20)) ''
    printf 'set key%d 0 0 %d\r\n%s\r\n' "$i" $((i * 20)) "${v// /v}"
done | mc | sort | uniq -c
printf 'get key7 key50\r\ndelete greeting\r\nget greeting\r\n' | mc | cut -c 1-40
printf 'stats\r\n' | mc | grep -E '^STAT (curr_items|total_items|threads) '
rc=0
kill -TERM "$pid"
wait "$pid" || rc=$?
forget_pid "$pid"
echo "memcached exit $rc"
