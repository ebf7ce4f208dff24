#!/usr/bin/env bash
# test_sanitizers.sh - the server under ASan+UBSan and valgrind memcheck, the tracker's unit test under valgrind drd: the deliberate leak is the only finding.
#
# 1. bin/server-asan (ASan+UBSan, tracker hooks left out) serves the lab's key
#    end-to-end checks; stopped by SIGTERM it exits clean with
#    tests/lsan-leak-site.supp, and without it LeakSanitizer's report names
#    fetch_user_data and nothing else, with the exact bytes leaked.
# 2. valgrind memcheck on bin/server-plain (no hooks): --fixed loses 0 bytes
#    after 200 requests; the leaky server loses exactly 40200 B per request.
# 3. The tracker's unit test (TEST_QUICK build) under valgrind drd: 0 errors.
#    ThreadSanitizer cannot run it: TSan owns malloc, and a program defining
#    malloc itself (tracker/record/hooks.c) crashes TSan at start-up (SIGSEGV, seen
#    with clang 14 and gcc 12). SANITIZER_HELGRIND=1 adds a helgrind run (~2 min).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

SUPP=tests/lsan-leak-site.supp

if ! make -s bin/server-asan bin/server-plain build/tools/test_tracker_quick build/tools/many_conns \
        >"$TEST_TMP/build.log" 2>&1; then
    fail "make bin/server-asan bin/server-plain build/tools/test_tracker_quick" "exit 0" \
        "$(tail -n 3 "$TEST_TMP/build.log" | tr '\n' ' ')"
    done_testing
fi

# http, ab_ok: scripts/lib.sh.
# term_rc PID: term_status with 60 s (valgrind and LSan take a while at exit).
term_rc() { term_status "$1" 60; }
# no_sanitizer_errors FILE: no ASan/UBSan/LSan report in FILE.
no_sanitizer_errors() { ! grep -Eq 'runtime error|ERROR: (Address|Leak)Sanitizer|SUMMARY: .*Sanitizer' "$1"; }

# start_slow CMD ARGS...: start_wrapped with 60 s, for servers that take long
# to start (ASan, valgrind, on a busy machine).
start_slow() { start_wrapped 60 "$@"; }

# ================================================================ 1. ASan + UBSan
export UBSAN_OPTIONS=print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
if LSAN_OPTIONS="suppressions=$TEST_ROOT/$SUPP" start_slow bin/server-asan; then
    own=0
    check_eq "asan: ready line (tracker off: ASan owns malloc)" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=leaky tracker=off" "$(head -n 1 "$SERVER_OUT")"
    check_eq "asan: GET /?user=1 -> 200 hello user1" "200 hello user1" "$(http GET '/?user=1') $(cat "$TEST_TMP/body")"
    own=$((own + 1))
    check_eq "asan: HEAD / -> 200" 200 "$(http HEAD /)"; own=$((own + 1))
    ab -q -n 2000 -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    check "asan: ab -n 2000 -c 8: 2000 complete, 0 failed" ab_ok "$TEST_TMP/ab.txt" 2000
    check_eq "asan: /stats requests = 2000 + $own" $((2000 + own)) "$(stats_field requests)"
    check_eq "asan: /stats leaked_bytes" $(((2000 + own) * LEAK_RECORD)) "$(stats_field leaked_bytes)"
    check_eq "asan: unknown path -> 404" 404 "$(http GET /no/such)"
    check_eq "asan: POST / -> 405" 405 "$(http POST /)"
    check "asan: 405 has Allow: GET, HEAD" grep -Eiq '^Allow: GET, HEAD' "$TEST_TMP/headers"
    check_eq "asan: GET /?user=abc -> 400" 400 "$(http GET '/?user=abc')"
    check_eq "asan: GET /?user=1%00 -> 400" 400 "$(http GET '/?user=1%00')"
    check_eq "asan: GET /capture -> 503 (no hooks in this build)" 503 "$(http GET /capture)"
    check "asan: ... with a one-line reason naming the build" grep -q 'no allocation hooks' "$TEST_TMP/body"
    check_eq "asan: GET /dashboard -> 200" 200 "$(http GET /dashboard)"
    long=$(head -c 65536 /dev/zero | tr '\0' a)
    check_eq "asan: 64 KB URL -> 414" 414 "$(http GET "/?x=$long")"
    check_eq "asan: 64 KB header -> 431" 431 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Big: $long" "$(url /)")"
    res=$(build/tools/many_conns "$PORT" 300 60 500)
    check "asan: 300 connections at once all answered ($res)" grep -q 'answered=300 ' <<<"$res"
    check "asan: stderr has no sanitizer report while serving" no_sanitizer_errors "$SERVER_ERR"
    term_rc "$SERVER_PID"; rc=$TERM_RC
    check_eq "asan: SIGTERM with $SUPP: exit status 0 (the deliberate leak suppressed, nothing else)" 0 "$rc"
    check "asan: ... and no sanitizer report on stderr" no_sanitizer_errors "$SERVER_ERR"
    echo "# LeakSanitizer suppressed (count bytes template): $(grep -E '^ *[0-9]+ +[0-9]+ +fetch_user_data$' "$SERVER_ERR" | tr -s ' ')"
    [ "$rc" = 0 ] || sed 's/^/#   /' "$SERVER_ERR" | head -n 30
fi

# Without the suppressions: LeakSanitizer reports the leak, and only it.
if start_slow bin/server-asan; then
    ab -q -n 50 -c 2 "$(url /)" >"$TEST_TMP/ab50.txt" 2>&1
    check "asan (no suppressions): ab -n 50: 0 failed" ab_ok "$TEST_TMP/ab50.txt" 50
    term_rc "$SERVER_PID"; rc=$TERM_RC
    check "asan (no suppressions): SIGTERM: non-zero exit status from LeakSanitizer (got $rc)" test "$rc" != 0 -a "${rc#still running}" = "$rc"
    check "asan (no suppressions): the report says 'detected memory leaks'" grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$SERVER_ERR"
    check "asan (no suppressions): Direct leak of $((50 * LEAK_RECORD)) byte(s) in 50 object(s)" \
        grep -q "Direct leak of $((50 * LEAK_RECORD)) byte(s) in 50 object(s)" "$SERVER_ERR"
    check "asan (no suppressions): its stack names fetch_user_data at server/fetch_user_data.c:$LEAK_LINE" \
        grep -Eq "in fetch_user_data .*server/fetch_user_data.c:$LEAK_LINE\$" "$SERVER_ERR"
    # Each leak record starts "Direct/Indirect leak of"; every one must be the lab's.
    records=$(grep -Ec '^(Direct|Indirect) leak of' "$SERVER_ERR")
    ours=$(awk '/^(Direct|Indirect) leak of/ { inrec = 1; hit = 0; next }
                inrec && /in fetch_user_data / { hit = 1 }
                inrec && /^$/ { if (hit) n++; inrec = 0 }
                END { print n + 0 }' "$SERVER_ERR")
    check_eq "asan (no suppressions): leak records that are not fetch_user_data's" 0 $((records - ours))
    check_eq "asan (no suppressions): SUMMARY line" \
        "SUMMARY: AddressSanitizer: $((50 * LEAK_RECORD)) byte(s) leaked in 50 allocation(s)." \
        "$(grep '^SUMMARY: AddressSanitizer' "$SERVER_ERR")"
    check "asan (no suppressions): no UBSan runtime error" test "$(grep -c 'runtime error' "$SERVER_ERR")" = 0
fi

# ================================================================ 2. valgrind memcheck
# vg_start LOG ARGS...: bin/server-plain ARGS under memcheck (log in LOG), via start_slow.
vg_start() {
    local log=$1; shift
    start_slow valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --error-exitcode=99 --log-file="$log" bin/server-plain "$@"
}
# definitely_lost LOG: "B blocks" definitely lost according to memcheck's LOG ("0 0" when all freed).
definitely_lost() {
    if grep -q 'All heap blocks were freed' "$1"; then echo "0 0"; return; fi
    sed -n 's/.*definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' "$1" | tr -d , | head -n 1
}

if ! command -v valgrind >/dev/null 2>&1; then
    fail "valgrind is installed" "valgrind (bash scripts/deps.sh test)" "none"
elif vg_start "$TEST_TMP/memcheck-fixed.log" --fixed; then
    ab -q -n 200 -c 4 "$(url /)" >"$TEST_TMP/ab-vg.txt" 2>&1
    check "memcheck --fixed: ab -n 200 -c 4: 0 failed" ab_ok "$TEST_TMP/ab-vg.txt" 200
    term_rc "$SERVER_PID"; rc=$TERM_RC
    check_eq "memcheck --fixed: SIGTERM, exit status 0 (99 = memcheck found errors)" 0 "$rc"
    check_eq "memcheck --fixed: definitely lost (bytes blocks)" "0 0" "$(definitely_lost "$TEST_TMP/memcheck-fixed.log")"
    check "memcheck --fixed: ERROR SUMMARY: 0 errors ($(sed -n 's/.*in use at exit: \(.*\)/\1/p' "$TEST_TMP/memcheck-fixed.log") in use at exit)" \
        grep -q 'ERROR SUMMARY: 0 errors' "$TEST_TMP/memcheck-fixed.log"
fi
# The same harness on the leaky server, so the 0 above is a measurement: it finds 40200 B per request.
if command -v valgrind >/dev/null 2>&1 && vg_start "$TEST_TMP/memcheck-leaky.log"; then
    ab -q -n 50 -c 2 "$(url /)" >/dev/null 2>&1
    term_rc "$SERVER_PID"
    # memcheck scans memory conservatively: a record whose address still sits in
    # a dead stack slot counts as reachable, not lost (seen: 49 of 50).
    read -r bytes blocks <<<"$(definitely_lost "$TEST_TMP/memcheck-leaky.log")"
    check "memcheck leaky: definitely lost $bytes B in $blocks blocks: 45..50 records of exactly $LEAK_RECORD B" \
        test "${blocks:-0}" -ge 45 -a "${blocks:-0}" -le 50 -a "${bytes:-0}" = $((${blocks:-0} * LEAK_RECORD))
    check "memcheck leaky: the loss record names fetch_user_data (server/fetch_user_data.c:$LEAK_LINE)" \
        grep -q "fetch_user_data (fetch_user_data.c:$LEAK_LINE)" "$TEST_TMP/memcheck-leaky.log"
fi

# ================================================================ 3. threads: valgrind drd (and helgrind)
# --soname-synonyms=somalloc=nouserintercepts: leave the test's own malloc (tracker/record/hooks.c) in place.
# --fair-sched=yes: valgrind runs one thread at a time, and its default lock lets a thread that
# spins (the fork test's 3 threads in free(malloc(48))) take it back before a thread woken from a
# syscall gets it: with the tracker's faster hooks the fork test's main thread, back from waitpid,
# waited minutes (the whole 600 s, 2 runs of 2); with the fair lock the test takes ~17 s.
# timeout 300: below run.sh's 600 s for the file, so a hang is reported here, with the log.
thread_tool() {
    local tool=$1 log="$TEST_TMP/$1.log" rc=0 t0 secs
    t0=$(date +%s)
    timeout 300 valgrind --tool="$tool" --fair-sched=yes --child-silent-after-fork=yes \
        --soname-synonyms=somalloc=nouserintercepts --error-exitcode=99 \
        build/tools/test_tracker_quick >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - t0))
    check_eq "$tool: tracker unit test (8 threads x 2000 rounds, fork, OOM) exits 0 in ${secs} s" 0 "$rc"
    check_eq "$tool: unit test result" "0 failed" "$(sed -n 's/^[0-9]* passed, \([0-9]* failed\)$/\1/p' "$log")"
    check "$tool: ERROR SUMMARY: 0 errors ($(grep -o 'suppressed: [0-9]* from [0-9]*' "$log" | tail -n 1), default glibc/ld.so suppressions)" \
        grep -q "ERROR SUMMARY: 0 errors" "$log"
    [ "$rc" = 0 ] || grep -v '^ok ' "$log" | tail -n 30 | sed 's/^/#   /'
}
if command -v valgrind >/dev/null 2>&1; then
    thread_tool drd
    [ "${SANITIZER_HELGRIND:-0}" = 1 ] && thread_tool helgrind
fi
done_testing
