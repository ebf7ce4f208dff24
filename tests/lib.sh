# lib.sh - the tests' assertions (ok/FAIL lines, counting); servers, ports and probes come from scripts/lib.sh.
# shellcheck shell=bash
#
# Every assertion prints one TAP line, `ok N - NAME` or `not ok N - NAME (expected X,
# got Y)`; done_testing prints the plan (`1..N`), so `prove tests/test_x.sh` runs a
# file, and tests/run.sh counts the lines. End each test file with `done_testing`.
# From scripts/lib.sh: LEAK_LINE SITE LEAK_RECORD, pick_port (PICKED), port_free,
# started/forget_pid/proc_gone/wait_gone/stop_pid/term_status, launch_server,
# start_on_port, url, cap, stats_field, rss_kb, mb, ab_field, ab_ok, CLEANUP_HOOK.

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
TEST_ROOT=$LAB_ROOT
TEST_TMP=$LAB_TMP
TEST_PASS=0
TEST_FAIL=0

# ---------------------------------------------------------------- assertions
# TEST_TODO=REASON around checks of a known, documented shortcoming: they still run
# and say what they see, as TAP TODO lines (`not ok N - NAME ... # TODO REASON`),
# which prove and tests/run.sh do not count as failures (run.sh lists them).
TEST_TODO=""
TEST_TODOS=0
pass() { TEST_PASS=$((TEST_PASS + 1)); echo "ok $((TEST_PASS + TEST_FAIL + TEST_TODOS)) - $1${TEST_TODO:+ # TODO $TEST_TODO}"; }
fail() {
    if [ -n "$TEST_TODO" ]; then
        TEST_TODOS=$((TEST_TODOS + 1))
        echo "not ok $((TEST_PASS + TEST_FAIL + TEST_TODOS)) - $1 (expected $2, got $3) # TODO $TEST_TODO"
        return
    fi
    TEST_FAIL=$((TEST_FAIL + 1)); echo "not ok $((TEST_PASS + TEST_FAIL + TEST_TODOS)) - $1 (expected $2, got $3)"
}

# check NAME CMD...: passes when CMD exits 0.
check() {
    local name=$1 rc=0; shift
    "$@" >/dev/null 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name" "exit 0 from: $*" "exit $rc"; fi
}

# check_eq NAME EXPECTED GOT: string equality.
check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "'$2'" "'$3'"; fi
}

# fds_to PID TARGET: how many of PID's open fds point to TARGET (a find -lname pattern:
# 'socket:*', 'anon_inode:\[perf_event\]').
fds_to() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname "$2" 2>/dev/null | wc -l; }
# procs_with N VALUE: the PIDs whose /proc/PID/stat field N, counted after the
# command name (1 state, 2 parent, 3 group, 4 session), is VALUE; zombies left
# out. One file at a time with bash's own read: a process that ends during the
# scan is skipped (awk over the whole /proc glob stops at the first file gone,
# and printed only the PIDs before it).
procs_with() {
    local f line pid
    local -a x
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        read -r -a x <<<"${line##*) }"
        [ "${x[0]}" != Z ] && [ "${x[$1 - 1]}" = "$2" ] || continue
        pid=${f#/proc/}
        echo "${pid%/stat}"
    done
}
# session_pids SID: the live processes of session SID.
session_pids() { procs_with 4 "$1"; }

# check_range NAME LO HI GOT: integer LO <= GOT <= HI (an empty or non-integer GOT fails).
check_range() {
    case "$4" in ''|-|*[!0-9-]*|?*-*) fail "$1" "$2..$3" "'$4'"; return ;; esac
    if [ "$4" -ge "$2" ] && [ "$4" -le "$3" ]; then pass "$1"; else fail "$1" "$2..$3" "$4"; fi
}

# check_kb_pct NAME CENTER_KB PCT GOT_KB: GOT within CENTER +-PCT%, shown in MB = kB/1000.
check_kb_pct() {
    local name=$1 c=$2 p=$3 g=$4 mb
    case "$g" in ''|*[!0-9]*) fail "$name" "a number of kB" "'$g'"; return ;; esac
    mb=$(awk -v c="$c" -v p="$p" -v g="$g" 'BEGIN { printf "%.2f..%.2f MB|%.2f MB", c*(100-p)/100000, c*(100+p)/100000, g/1000 }')
    if [ $((g * 100)) -ge $((c * (100 - p))) ] && [ $((g * 100)) -le $((c * (100 + p))) ]; then
        pass "$name (${mb#*|})"
    else
        fail "$name" "${mb%|*}" "${mb#*|}"
    fi
}

# check_growth NAME LO HI BEFORE_KB AFTER_KB: AFTER - BEFORE within LO..HI kB,
# and both are real readings (a server that died gives an empty RSS: FAIL).
check_growth() {
    case "$4:$5" in *[!0-9:]*|:*|*:) fail "$1" "two RSS readings in kB" "'$4' -> '$5'"; return ;; esac
    check_range "$1" "$2" "$3" $(($5 - $4))
}

# done_testing: print this file's tally and exit non-zero if anything failed.
done_testing() {
    echo "1..$((TEST_PASS + TEST_FAIL + TEST_TODOS))"
    echo "# $(basename "$0"): $TEST_PASS passed, $TEST_FAIL failed${TEST_TODOS:+$([ "$TEST_TODOS" -gt 0 ] && echo ", $TEST_TODOS known (TODO)")}"
    [ "$TEST_FAIL" -eq 0 ]
    exit
}

# ---------------------------------------------------------------- servers
# start_server [ARGS...]: bin/server (or $TEST_SERVER_BIN) ARGS on a free port
# (unless ARGS has --port), ready within SERVER_READY_SECONDS (10). Sets
# SERVER_PID, PORT, SERVER_OUT, SERVER_ERR. A server that does not start is a
# FAIL line (never a silent skip); the caller then skips what needed it.
start_server() { start_wrapped "${SERVER_READY_SECONDS:-10}" "$TEST_ROOT/${TEST_SERVER_BIN:-bin/server}" "$@"; }

# start_wrapped SECONDS CMD...: the same for any command line (a tool in front
# of a server, e.g. valgrind ... bin/server-plain), --port P appended.
start_wrapped() {
    local secs=$1; shift
    start_on_port "$secs" "$@" && return 0
    fail "${*#"$TEST_ROOT"/} starts" "a ready line within $secs s" "$LAUNCH_ERROR"
    return 1
}

# stop_server [PID]: stop_pid of the current server (or PID).
stop_server() { stop_pid "${1:-$SERVER_PID}"; }

# sample_now [N]: the current server (started with --test-hooks) takes N
# (default 1) per-site history samples now, through POST /history/sample, so
# a test waits for no sampler period. maps_now: one sample after a walk of
# /proc/self/smaps (RSS explained; the sampler walks every 10 s). Each returns
# 1, after a FAIL line, when the server refuses.
sample_now() { sample_post "" "${1:-1}"; }
maps_now() { sample_post "?maps=1" 1; }
sample_post() { # sample_post QUERY N
    local got
    for _ in $(seq 1 "$2"); do
        got=$(curl -s --max-time 30 -X POST "$(url "/history/sample$1")")
        case "$got" in
        "sample "[0-9]*) ;;
        *) fail "POST /history/sample$1 takes a history sample" "sample N" "${got:-no answer}"; return 1 ;;
        esac
    done
}

# skip NAME REASON: a check that cannot run here (not counted as passed).
skip() { echo "# skip - $1: $2"; }

# ---------------------------------------------------------------- plain vs preloaded
# run_pair DIR NAME CMD...: CMD twice, plain and with the tracker preloaded
# (LD_PRELOAD=$PAIR_LIB, TRACKER_OUT=DIR/NAME.%p.txt), each in $PAIR_CWD (default
# DIR) with stdin /dev/null, output to DIR/NAME.out0 .err0 (plain) and .out1 .err1.
# The plain run is bounded by $PAIR_TIMEOUT s (60); the preloaded one by twice
# the plain time + $PAIR_SLACK s (10): past 2x + 1 s it differs anyway, and a hang
# costs seconds, not minutes. Sets PAIR_RC0 PAIR_RC1 (124: timed out),
# PAIR_MS0 PAIR_MS1 (wall time in ms) and PAIR_LIMIT (the second bound, s).
# PAIR_LAUNCHER=PATH: the second run is `PATH -o DIR/NAME.lr CMD...` instead (bin/leak-report),
# its own lines ("leak-report: ...") moved from .err1 to DIR/NAME.lr.err.
# PAIR_SERVER=1: CMD is a driver script that starts a server as `$TP_WRAP server ...`:
# the preload (or the launcher) goes through TP_WRAP to the server only, the
# driver and its clients run plain both times.
run_pair() {
    local dir=$1 name=$2 t0 t1; shift 2
    local cwd=${PAIR_CWD:-$dir}
    PAIR_RC0=0 PAIR_RC1=0
    # (bash's own "Segmentation fault" notes for a child killed by a signal are
    # not the program's output: the braces send them to /dev/null)
    t0=$(date +%s%N)
    { (cd "$cwd" && exec timeout -k 5 "${PAIR_TIMEOUT:-60}" env -u TP_WRAP "$@" >"$dir/$name.out0" 2>"$dir/$name.err0" </dev/null) || PAIR_RC0=$?; } 2>/dev/null
    t1=$(date +%s%N)
    PAIR_MS0=$(((t1 - t0) / 1000000))
    PAIR_LIMIT=$((2 * PAIR_MS0 / 1000 + ${PAIR_SLACK:-10}))
    local -a second=(env LD_PRELOAD="$PAIR_LIB" TRACKER_OUT="$dir/$name.%p.txt")
    [ -z "${PAIR_LAUNCHER:-}" ] || second=("$PAIR_LAUNCHER" -o "$dir/$name.lr")
    [ "${PAIR_SERVER:-0}" = 0 ] || second=(env TP_WRAP="${second[*]}")
    t0=$(date +%s%N)
    { (cd "$cwd" && exec timeout -k 5 "$PAIR_LIMIT" "${second[@]}" "$@" \
        >"$dir/$name.out1" 2>"$dir/$name.err1" </dev/null) || PAIR_RC1=$?; } 2>/dev/null
    t1=$(date +%s%N)
    if [ -n "${PAIR_LAUNCHER:-}" ]; then
        grep '^leak-report: ' "$dir/$name.err1" >"$dir/$name.lr.err"
        grep -v '^leak-report: ' "$dir/$name.err1" >"$dir/$name.err1.tmp"
        mv "$dir/$name.err1.tmp" "$dir/$name.err1"
    fi
    PAIR_MS1=$(((t1 - t0) / 1000000))
}

# status_name RC: an exit status in words (124 timeout's, 128+N a signal).
status_name() {
    local sig
    if [ "$1" -gt 128 ] && sig=$(kill -l $(($1 - 128)) 2>/dev/null); then echo "$1 (SIG$sig)"; else echo "$1"; fi
}

# first_diff A B: the first line where files A and B differ, as one short line.
first_diff() {
    local n c
    c=$(cmp "$1" "$2" 2>&1)
    n=$(echo "$c" | sed -n 's/.*line \([0-9]*\).*/\1/p')
    [ -n "$n" ] || n=0
    case "$c" in *EOF*) n=$((n + 1)) ;; esac # one is a prefix of the other: the first line past it
    [ "$n" -ge 1 ] || n=1
    printf 'line %d: "%s" vs "%s"' "$n" "$(sed -n "${n}p" "$1" | tr -d '\0' | head -c 70)" "$(sed -n "${n}p" "$2" | tr -d '\0' | head -c 70)"
}

# pair_diff DIR NAME: why the two runs of run_pair differ, in one line (empty:
# they do not): a hang, the exit status, stdout, stderr, time over 2x + 1 s.
pair_diff() {
    local dir=$1 name=$2 said
    # what the preloaded run said last: its stderr, else its first different stdout line
    if [ -s "$dir/$name.err1" ]; then said="stderr: $(tail -n 1 "$dir/$name.err1" | tr -d '\0' | head -c 100)"
    elif cmp -s "$dir/$name.out0" "$dir/$name.out1"; then said="nothing on stderr"
    else said="stdout $(first_diff "$dir/$name.out0" "$dir/$name.out1")"
    fi
    if { [ "$PAIR_RC1" -eq 124 ] || [ "$PAIR_RC1" -eq 137 ]; } && [ "$PAIR_RC0" -ne "$PAIR_RC1" ] &&
        [ "$PAIR_MS1" -ge $((PAIR_LIMIT * 1000)) ]; then
        echo "hang > $PAIR_LIMIT s (killed; plain took $((PAIR_MS0 / 1000)).$((PAIR_MS0 % 1000 / 100)) s); $said"
    elif [ "$PAIR_RC0" -ne "$PAIR_RC1" ]; then
        echo "exit $(status_name "$PAIR_RC0") vs $(status_name "$PAIR_RC1"); $said"
    elif ! cmp -s "$dir/$name.out0" "$dir/$name.out1"; then
        echo "stdout differs: $(first_diff "$dir/$name.out0" "$dir/$name.out1")"
    elif ! cmp -s "$dir/$name.err0" "$dir/$name.err1"; then
        echo "stderr differs: $(first_diff "$dir/$name.err0" "$dir/$name.err1")"
    elif [ "$PAIR_MS1" -gt $((2 * PAIR_MS0 + 1000)) ]; then
        echo "slow: $((PAIR_MS1 / 1000)).$((PAIR_MS1 % 1000 / 100)) s vs $((PAIR_MS0 / 1000)).$((PAIR_MS0 % 1000 / 100)) s plain (over 2x + 1 s)"
    fi
}
