#!/usr/bin/env bash
# test_leak_kinds.sh - the --leak kinds: /capture names the cache leak that LeakSanitizer cannot see; drop is seen by both; none stays flat.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# LEAK_LINE, SITE, LEAK_RECORD, cap: scripts/lib.sh (the line is found in the source).
REQUESTS=${LEAK_KINDS_REQUESTS:-3000}
LSAN_REQUESTS=500

# stop_with_status: SIGTERM the current server, wait up to 20 s; sets RC to its
# exit status (or "still running ...", then it is stopped).
stop_with_status() {
    term_status "$SERVER_PID" 20
    RC=$TERM_RC
    stop_server "$SERVER_PID"
}

# ---- the option itself
for args in "--leak=bogus" "--leak" "--fixed --leak=cache" "--leak=drop --fixed"; do
    rc=0
    # shellcheck disable=SC2086
    timeout 10 bin/server --port 1 $args >"$TEST_TMP/o" 2>"$TEST_TMP/e" </dev/null || rc=$?
    if [ "$rc" = 2 ] && [ "$(wc -l <"$TEST_TMP/e")" = 1 ] && [ ! -s "$TEST_TMP/o" ]; then
        pass "bin/server $args: exit 2 and one line: $(cat "$TEST_TMP/e")"
    else
        fail "bin/server $args" "exit 2 and one stderr line" "exit $rc, $(wc -l <"$TEST_TMP/e") lines"
    fi
done

# ---- drop (the default): the seed's ready line, unchanged; /stats names the kind
if start_server --leak=drop; then
    check_eq "--leak=drop: the seed's ready line" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=leaky tracker=on" "$(head -n 1 "$SERVER_OUT")"
    check_eq "--leak=drop: /stats leak" drop "$(stats_field leak)"
    stop_server
fi

# ---- cache: RSS grows, /capture names the LEAK-SITE line with one block per request
if start_server --leak=cache; then
    check_eq "--leak=cache: ready line adds leak=cache" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=leaky tracker=on leak=cache" "$(head -n 1 "$SERVER_OUT")"
    check_eq "--leak=cache: /stats mode stays leaky" leaky "$(stats_field mode)"
    check_eq "--leak=cache: /stats leak" cache "$(stats_field leak)"
    cap "" >/dev/null
    rss0=$(rss_kb "$SERVER_PID")
    ab -q -n "$REQUESTS" -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    first=$(cap "" | head -1)
    rss1=$(rss_kb "$SERVER_PID")
    check_eq "--leak=cache: first line of the /capture diff is the LEAK-SITE line" \
        "server/$SITE" "${first%%: size=*}"
    check_eq "--leak=cache: its count equals the requests sent" \
        "count=$REQUESTS (+$REQUESTS)" "$(echo "$first" | grep -o 'count=[0-9]* ([+-][0-9]*)')"
    check_eq "--leak=cache: /stats leaked_blocks = requests" "$REQUESTS" "$(stats_field leaked_blocks)"
    check_growth "--leak=cache: RSS grew by at least 80% of $LEAK_RECORD B per request (kB)" \
        $((REQUESTS * LEAK_RECORD * 8 / 10 / 1024)) 99999999 "$rss0" "$rss1"
    stop_server
fi

# ---- none: the fixed server under the same load stays flat
if start_server --leak=none; then
    check_eq "--leak=none: ready line says mode=fixed" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=fixed tracker=on" "$(head -n 1 "$SERVER_OUT")"
    check_eq "--leak=none: /stats leak" none "$(stats_field leak)"
    curl -s --max-time 5 "$(url /)" >/dev/null
    rss0=$(rss_kb "$SERVER_PID")
    ab -q -n 10000 -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    rss1=$(rss_kb "$SERVER_PID")
    check "--leak=none: ab -n 10000: 10000 complete, 0 failed, all 2xx" ab_ok "$TEST_TMP/ab.txt" 10000
    check_growth "--leak=none: 10000 requests grow RSS by less than 5 MB, shrink it by at most 1 MB (kB)" \
        -1000 4999 "$rss0" "$rss1"
    check_eq "--leak=none: /stats leaked_blocks" 0 "$(stats_field leaked_blocks)"
    stop_server
fi

# ---- LeakSanitizer: sees the dropped records at exit, not the cached ones
if make -s bin/server-lsan >"$TEST_TMP/make.txt" 2>&1; then
    for kind in drop cache; do
        TEST_SERVER_BIN=bin/server-lsan start_server --leak="$kind" || continue
        ab -q -n "$LSAN_REQUESTS" -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
        stop_with_status
        check "LSan --leak=$kind: the server left through exit() after SIGTERM" \
            grep -q '^server: SIGTERM received, stopping' "$SERVER_ERR"
        if [ "$kind" = drop ]; then
            check_eq "LSan --leak=drop: exit status 23 (leaks found)" 23 "$RC"
            check "LSan --leak=drop: report names $SITE" grep -q "in fetch_user_data .*$SITE\$" "$SERVER_ERR"
            check "LSan --leak=drop: a direct leak of one record per request" \
                grep -q "^Direct leak of $((LSAN_REQUESTS * LEAK_RECORD)) byte(s) in $LSAN_REQUESTS object(s)" "$SERVER_ERR"
        else
            check_eq "LSan --leak=cache: exit status 0 (nothing found)" 0 "$RC"
            hits=$(grep -c "fetch_user_data.c" "$SERVER_ERR" || true)
            check_eq "LSan --leak=cache: no report names fetch_user_data.c" 0 "$hits"
        fi
    done
else
    fail "make bin/server-lsan" "a build" "$(head -c 300 "$TEST_TMP/make.txt")"
fi

done_testing
