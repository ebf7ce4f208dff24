#!/usr/bin/env bash
# test_exercises.sh - the workshop's exercises (bin/server --exercise N|random): the lab's tools find each one.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# Which file is exercise N comes from server/exercises/exercise.h ("/* N: exercise_x.c */"),
# the line to find from its EXERCISE-SITE comment: never a literal here.
ex_file() { sed -n "s|.*/\* $1: \(exercise_[a-z_]*\.c\) \*/.*|exercises/\1|p" server/exercises/exercise.h; }
ex_line() { grep -n 'EXERCISE-SITE' "server/$1" | head -n 1 | cut -d: -f1; }

# load N URLPATH: ab -n N -c 8 on the current server; prints ab's complete and non-2xx counts.
# (LOAD_C=N: N at a time instead of 8.)
load() {
    ab -q -n "$1" -c "${LOAD_C:-8}" "$(url "$2")" >"$TEST_TMP/ab.txt" 2>&1
    echo "$(ab_field "$TEST_TMP/ab.txt" 'Complete requests') $(ab_field "$TEST_TMP/ab.txt" 'Non-2xx responses')"
}

# spread N: N loads of 1000 on /, each followed by one history sample (the
# sampler's 500 ms): a load the server answers between two samples shows
# /leaks no shape, where anyone watching a real server would see one.
spread() { for _ in $(seq 1 "$1"); do load 1000 / >/dev/null; sleep 0.6; done; }

# line_of SITE CAPTURE_FILE: the first line of a capture that starts with SITE (file:line).
line_of() { grep -m 1 -F "server/$1:" "$2" | grep -F "server/$1: " || true; }


for n in 1 2 3 4 5 6 7 8 9; do
    f=$(ex_file "$n")
    check "exercise $n has a file ($f) with an EXERCISE-SITE line" test -n "$f" -a -n "$(ex_line "${f:-none}")"
done

# ---------------------------------------------------------------- 1: realloc grows forever
f=$(ex_file 1); site="$f:$(ex_line "$f")"
start_server --exercise 1 || exit 1
grep -q '^ready: .* mode=exercise tracker=on$' "$SERVER_OUT"; check_eq "exercise 1: ready line says mode=exercise only" 0 $?
cap "" >/dev/null
rss0=$(rss_kb "$SERVER_PID")
# The first 4000 in steps of 1000, a sample after each: the series must begin
# before the buffer's early doublings (2, 4, 8 MiB by ~3800 requests), or a
# fast machine's first sample sees 8 MiB already and the window holds a single
# rise (a CI run: "steady ... +8.0 MiB in 6.0 s", R^2 0.6).
for _ in 1 2 3 4; do load 1000 / >/dev/null; sleep 0.6; done
cap "" >"$TEST_TMP/c1a"
load 4000 / >/dev/null; cap "" >"$TEST_TMP/c1b"
top=$(head -n 1 "$TEST_TMP/c1b")
case "$top" in "server/$site: "*) pass "exercise 1: the top growth is $site (the EXERCISE-SITE line)" ;;
    *) fail "exercise 1: the top growth is the EXERCISE-SITE line" "server/$site: ..." "$top" ;; esac
case "$top" in *"size="*" (+"[1-9]*"), count=1 (+0),"*) pass "exercise 1: one block, count=1 (+0), whose size grew: $top" ;;
    *) fail "exercise 1: one block whose size grew" "size=... (+N...), count=1 (+0)" "$top" ;; esac
cap "?key=traceback&frames=6&top=1" >"$TEST_TMP/c1t"
grep -q "^    #[0-9]* server/$site in " "$TEST_TMP/c1t"
check_eq "exercise 1: the traceback step's top stack has the EXERCISE-SITE line" 0 $?
check_range "exercise 1: RSS grew with the load (kB over 8000 requests)" 2000 999999 $(($(rss_kb "$SERVER_PID") - rss0))
# The buffer doubles: between two enlargements it is as flat as a full cache,
# and only a rise after a flat stretch tells them apart (docs/leaks.md). The
# sampler (every 500 ms) must see that stretch: at -c 8 the server answers
# 8000 requests in well under a second, so one whole load could fall between
# two samples (once in a CI run: "steady"). 8 loads of 1000, each followed by
# a sample, show the flat stretch from ~8000 requests to the doubling at
# ~14500 as it would look to anyone watching a real server.
spread 8
sleep 0.5
got=$(curl -s --max-time 10 "$(url /leaks)" | grep -F " server/$site " | head -n 1)
case "$got" in leak*) pass "exercise 1: GET /leaks calls the doubling buffer a leak, not a plateau: $got" ;;
    *) fail "exercise 1: GET /leaks calls the doubling buffer a leak" "leak server/$site ..." "$got" ;; esac
stop_server

# ---------------------------------------------------------------- 2: a leak through asprintf
f=$(ex_file 2); site="$f:$(ex_line "$f")"
start_server --exercise 2 || exit 1
cap "" >/dev/null
load 2000 / >/dev/null
cap "?top=1" >"$TEST_TMP/c2l"
top=$(head -n 1 "$TEST_TMP/c2l")
case "$top" in "server/$site (via "*"): "*"count=2000 (+2000)"*) pass "exercise 2: the top growth is the program's own line, through the library: $top" ;;
    *) fail "exercise 2: the top growth is the EXERCISE-SITE line, via the library call" "server/$site (via ...): ... count=2000 (+2000)" "$top" ;; esac
# The sheet's next step on the same server: the traceback, compared to the same
# capture as the one before, shows libc's frames too (stacks come from the CFI).
cap "?key=traceback&frames=6&top=1" >"$TEST_TMP/c2"
grep -q "^    #[0-9] server/$site in " "$TEST_TMP/c2"
check_eq "exercise 2: its stack (key=traceback) has the EXERCISE-SITE line $site as a frame" 0 $?
grep -q '^    #[0-9] \[libc' "$TEST_TMP/c2"
check_eq "exercise 2: ... below libc's frames" 0 $?
stop_server

# ---------------------------------------------------------------- 3: a leak on the error path only
f=$(ex_file 3); site="$f:$(ex_line "$f")"
start_server --exercise 3 || exit 1
cap "" >/dev/null
load 2000 "/?user=12345" >/dev/null
cap "" >"$TEST_TMP/c3a"
got=$(line_of "$site" "$TEST_TMP/c3a")
case "$got" in ''|*"(+0)"*) pass "exercise 3: good requests leave nothing at $site" ;;
    *) fail "exercise 3: good requests leave nothing at $site" "no line or (+0)" "$got" ;; esac
read -r done non2xx < <(load 2000 "/?user=bob")
check_eq "exercise 3: 2000 bad requests answered 400 (non-2xx)" "2000 2000" "$done $non2xx"
cap "" >"$TEST_TMP/c3b"
top=$(head -n 1 "$TEST_TMP/c3b")
case "$top" in "server/$site: "*"count=2000 (+2000)"*) pass "exercise 3: after bad requests the top growth is $site, +2000" ;;
    *) fail "exercise 3: after bad requests the top growth is the EXERCISE-SITE line" "server/$site: ... count=2000 (+2000)" "$top" ;; esac
cap "?key=traceback&frames=6&top=1" >"$TEST_TMP/c3t"
grep -q "^    #[0-9]* server/$site in " "$TEST_TMP/c3t"
check_eq "exercise 3: the traceback step's top stack has the EXERCISE-SITE line" 0 $?
stop_server

# ---------------------------------------------------------------- 4: a bounded cache: not a leak
f=$(ex_file 4); site="$f:$(ex_line "$f")"
slots=$(sed -n 's/^#define BADGE_CACHE_SLOTS \([0-9]*\).*/\1/p' "server/$f")
start_server --exercise 4 || exit 1
cap "" >/dev/null
# Every load is spread, as in exercise 1: the sampler must see the cache
# fill and then stay flat. One load of 8000 fell between four samples ("too
# few to tell"), and a cache seen only once full reads "steady".
spread 2; cap "" >"$TEST_TMP/c4a"
got=$(line_of "$site" "$TEST_TMP/c4a")
case "$got" in *"count=2000 (+2000)"*) pass "exercise 4: a short load looks like a leak: $site +2000" ;;
    *) fail "exercise 4: a short load looks like a leak" "server/$site: ... count=2000 (+2000)" "$got" ;; esac
spread 8; cap "" >"$TEST_TMP/c4b"
rss1=$(rss_kb "$SERVER_PID")
spread 8; cap "" >"$TEST_TMP/c4c"
rss2=$(rss_kb "$SERVER_PID")
got=$(line_of "$site" "$TEST_TMP/c4c")
case "$got" in *"count=$slots (+0)"*) pass "exercise 4: a longer one plateaus at the cache's $slots slots: $got" ;;
    *) fail "exercise 4: the cache plateaus" "server/$site: ... count=$slots (+0)" "$got" ;; esac
total=$(total_growth "$TEST_TMP/c4c")
check_range "exercise 4: tracked live bytes flat over the last 8000 requests (bytes)" -262144 262144 "${total:-x}"
got=$(curl -s --max-time 10 "$(url /leaks)" | grep -F " server/$site " | head -n 1)
case "$got" in plateau*) pass "exercise 4: GET /leaks calls the line a plateau: $got" ;;
    *) fail "exercise 4: GET /leaks calls the line a plateau" "plateau server/$site ..." "$got" ;; esac
# A leak of one badge per request would be 8000 x 8 KiB = 64 MiB: RSS stays far below
# (the malloc arenas' slack still settles by a few MB on a busy machine).
check_range "exercise 4: RSS over the last 8000 requests under a quarter of a leak's 64000 kB" -99999 16000 $((rss2 - rss1))
stop_server

# ---------------------------------------------------------------- 5: fragmentation: RSS grows, live heap flat
# rss_growth: RSS growth (kB) of a fresh exercise-5 server over 2 x 1000 requests (one at
# a time: each lands on one of the 8 worker threads, so 8 arenas fill; concurrency
# would add the transient peak of overlapping requests to the one arena of the check), and
# the tracked live bytes' change between the first and the last capture, and the growth
# of the free memory malloc holds (/stats rss.heap_free, kB): sets G5, L5 and F5.
# The caller's environment (MALLOC_ARENA_MAX=1 rss_growth) reaches the server.
rss_growth() {
    start_server --exercise 5 || return 1
    cap "" >/dev/null
    local r0 f0; r0=$(rss_kb "$SERVER_PID"); f0=$(stats_field heap_free)
    LOAD_C=1 load 1000 / >/dev/null; LOAD_C=1 load 1000 / >/dev/null
    G5=$(($(rss_kb "$SERVER_PID") - r0))
    F5=$((($(stats_field heap_free) - f0) / 1024))
    cap "" >"$TEST_TMP/c5"
    L5=$(total_growth "$TEST_TMP/c5")
    stop_server
}
rss_growth || exit 1
check_range "exercise 5: RSS grows under the load (kB)" 8000 999999 "$G5"
check_range "exercise 5: while the tracked live bytes stay flat (bytes)" -1048576 1048576 "${L5:-x}"
check_range "exercise 5: /stats explains it: malloc's free memory (heap_free) grew by at least half the RSS growth ($F5 of $G5 kB)" $((G5 / 2)) 999999 "$F5"
g_default=$G5
MALLOC_ARENA_MAX=1 rss_growth || exit 1
check_range "exercise 5: MALLOC_ARENA_MAX=1 cuts that growth to under half ($G5 kB vs $g_default kB)" -99999 $((g_default / 2)) "$G5"

# ---------------------------------------------------------------- the harder four, as their sheets run them
# tb_has SITE FILE: the top stack of a key=traceback capture has SITE as a frame.
tb_has() { grep -q "^    #[0-9]* server/$1 in " "$2"; }

# 6: a leak through xmalloc, a wrapper with many callers: the growth is at the
# wrapper's line (or, where the tracker skips wrappers, at a caller's), and the
# top stack by growth goes through the EXERCISE-SITE line.
f=$(ex_file 6); site="$f:$(ex_line "$f")"
start_server --exercise 6 || exit 1
cap "" >/dev/null
load 20000 / >/dev/null
cap "?top=3" >"$TEST_TMP/c6"
top=$(head -n 1 "$TEST_TMP/c6")
case "$top" in server/exercises/xalloc.c:*" (+"[1-9]*"), count="*" (+"[1-9]*|"server/$site"*" (+"[1-9]*) pass "exercise 6: the top growth is at the wrapper (or its caller): $top" ;;
    *) fail "exercise 6: the top growth is at the wrapper" "server/exercises/xalloc.c:N: ... (+N)" "$top" ;; esac
cap "?key=traceback&frames=6&top=1" >"$TEST_TMP/c6t"
tb_has "$site" "$TEST_TMP/c6t"
check_eq "exercise 6: the sheet's traceback step: the top stack goes through $site" 0 $?
per=$(echo "$top" | sed -n 's/.*count=[0-9]* (+\([0-9]*\)).*/\1/p')
check_range "exercise 6: 1 to 6 blocks lost per request (of 20000 requests; got ${per:-?} blocks)" 20000 120000 "${per:-0}"
stop_server

# 7: reachable growth: the generic list_push line grows, the traceback names
# the call that adds to the list that holds it.
f=$(ex_file 7); site="$f:$(ex_line "$f")"
holder=$(grep -n 'list_push(&watch.watchers' "server/$f" | head -n 1 | cut -d: -f1)
start_server --exercise 7 || exit 1
cap "" >/dev/null
load 20000 / >/dev/null
cap "?top=1" >"$TEST_TMP/c7"
top=$(head -n 1 "$TEST_TMP/c7")
case "$top" in "server/$site: "*"count="*" (+"2[0-9][0-9][0-9][0-9]")"*) pass "exercise 7: the top growth is $site, one node per request: $top" ;;
    *) fail "exercise 7: the top growth is the EXERCISE-SITE line" "server/$site: ... (+2xxxx)" "$top" ;; esac
cap "?key=traceback&frames=4&top=1" >"$TEST_TMP/c7t"
tb_has "$f:$holder" "$TEST_TMP/c7t"
check_eq "exercise 7: the top stack's caller is the push onto the watchers list ($f:$holder)" 0 $?
# Who holds it: /retention names the global the lists live in (its name read from the source).
global=$(sed -n 's/^} \([a-z_]*\) = { \.lock.*/\1/p' "server/$f" | head -n 1)
verdict=$(curl -s --max-time 60 "$(url "/retention?top=20")" | grep -A1 -F "server/$site: " | sed -n 's/^ *verdict: //p')
case "$verdict" in "held by global $global "*) pass "exercise 7: /retention: the line's nodes are held by the global '$global' ($verdict)" ;;
    *) fail "exercise 7: /retention names the holder" "held by global $global ..." "${verdict:-no verdict}" ;; esac
stop_server

# 8: a leak only under concurrency: at -c 1 the line holds the writer's 16
# batches and the current one, and stays there; at -c 8 it keeps growing.
f=$(ex_file 8); site="$f:$(ex_line "$f")"
keep=$(sed -n 's/^#define WRITTEN_KEEP \([0-9]*\).*/\1/p' "server/$f")
count8() { sed -n "s|^server/$site: .*count=\([0-9]*\) .*|\1|p" "$1" | head -n 1; }
start_server --exercise 8 || exit 1
cap "" >/dev/null
LOAD_C=1 load 20000 / >/dev/null
cap "" >"$TEST_TMP/c8a"
check_eq "exercise 8: at -c 1 the batches are bounded (the writer's $keep and the current one)" $((keep + 1)) "$(count8 "$TEST_TMP/c8a")"
stop_server
start_server --exercise 8 || exit 1
cap "" >/dev/null
load 20000 / >/dev/null
cap "" >"$TEST_TMP/c8b"
n8=$(count8 "$TEST_TMP/c8b")
check_range "exercise 8: at -c 8 more batches live than the bound allows (raced ones lost; got ${n8:-?})" $((keep + 4)) 99999 "${n8:-0}"
top=$(head -n 1 "$TEST_TMP/c8b")
case "$top" in "server/$site: "*) pass "exercise 8: ... the top growth: $top" ;;
    *) fail "exercise 8: the top growth is the EXERCISE-SITE line" "server/$site: ..." "$top" ;; esac
stop_server

# 9: threads never joined: RSS grows, the heap hardly; the RSS explanation puts it in the stacks.
f=$(ex_file 9); site="$f:$(ex_line "$f")"
start_server --exercise 9 || exit 1
cap "" >/dev/null
r0=$(rss_kb "$SERVER_PID")
load 5000 / >/dev/null
g9=$(($(rss_kb "$SERVER_PID") - r0))
cap "" >"$TEST_TMP/c9"
heap9=$(total_growth "$TEST_TMP/c9")
check_range "exercise 9: RSS grew by >= 40 MB over 5000 requests (kB)" 40000 9999999 "$g9"
check_range "exercise 9: ... while the tracked heap grew by under a tenth of it (bytes)" -1048576 $((g9 * 1024 / 10)) "${heap9:-x}"
top=$(head -n 1 "$TEST_TMP/c9")
case "$top" in "server/$site (via pthread_create): "*) pass "exercise 9: the capture's small growth is at the EXERCISE-SITE line, via pthread_create: $top" ;;
    *) fail "exercise 9: the capture's growth is at the EXERCISE-SITE line" "server/$site (via pthread_create): ..." "$top" ;; esac
# the RSS explanation: a fresh smaps walk is made every 10 s
for _ in $(seq 1 24); do
    rss=$(curl -s --max-time 10 "$(url /stats)" | grep -o '"rss":{[^}]*}')
    awk -v a="$(json_field "$rss" maps_age_s)" 'BEGIN { exit !(a != "" && a < 1.0) }' && \
        [ "$(json_field "$rss" thread_stacks)" -gt $((g9 * 1024 / 2)) ] 2>/dev/null && break
    sleep 0.5
done
stk=$(json_field "$rss" thread_stacks) thr=$(json_field "$rss" threads)
check_range "exercise 9: the RSS explanation puts at least half the growth in thread stacks ($stk bytes, for $thr running threads)" \
    $((g9 * 1024 / 2)) 99999999999 "${stk:-0}"
check_range "... unexplained within 2% (%)" -2 2 "$(json_field "$rss" unexplained_pct | cut -d. -f1)"
check_range "... while only the pool's threads run" 2 20 "${thr:-0}"
stop_server

# ---------------------------------------------------------------- random: one of them, not told which
# GET / answers the same whichever exercise runs; a capture after a load
# names the exercise's file. Eight starts: with a uniform pick all eight
# alike has a chance of 5 * (1/5)^8, about 1 in 78000.
seen="" bodies=""
for _ in 1 2 3 4 5 6 7 8; do
    start_server --exercise random || exit 1
    ready=$(grep '^ready: ' "$SERVER_OUT")
    cap "" >/dev/null
    body=$(curl -s --max-time 5 "$(url /)" | head -n 1)
    load 300 / >/dev/null; load 100 "/?user=bob" >/dev/null
    file=$(cap "?top=5" | grep -E '\(\+[1-9][0-9]*\), average' | grep -o -m 1 'exercise_[a-z]*\.c' | head -n 1)
    leak=$(stats_field leak)
    mode=$(stats_field mode)
    stop_server
    case "$ready" in *[1-5]" tracker"*|*exercise=*|*journal*|*card*|*lookup*|*badge*|*report*)
        fail "--exercise random: the ready line does not say which" "no exercise named" "$ready" ;; esac
    [ "$leak $mode" = "exercise exercise" ] || fail "--exercise random: /stats says only exercise" "exercise exercise" "$leak $mode"
    seen="$seen|${file:-none}" bodies="$bodies|$body"
done
check_eq "--exercise random: GET / answers the same line on every start, whichever runs" "ok" \
    "$(echo "$bodies" | tr '|' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ' | sed 's/ $//')"
distinct=$(echo "$seen" | tr '|' '\n' | sed '/^$/d' | sort -u | wc -l)
check_range "--exercise random: 8 starts ran more than one exercise (the file a capture names:$(echo "$seen" | tr '|' ' '))" 2 5 "$distinct"
help=$(bin/server --help)
case "$help" in *exercise_*|*journal*|*asprintf*|*lookup*|*badge*|*fragment*|*realloc*|*cache\ slot*) fail "--help names no exercise" "none" "$help" ;;
    *) pass "--help names no exercise" ;; esac
bin/server --exercise 10 >/dev/null 2>"$TEST_TMP/e10"; rc=$?
check_eq "--exercise 10: exit 2 and one line ($(head -c 80 "$TEST_TMP/e10"))" "2 1" "$rc $(wc -l <"$TEST_TMP/e10")"

done_testing
