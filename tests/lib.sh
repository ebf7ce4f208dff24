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
pass() { TEST_PASS=$((TEST_PASS + 1)); echo "ok $((TEST_PASS + TEST_FAIL)) - $1"; }
fail() { TEST_FAIL=$((TEST_FAIL + 1)); echo "not ok $((TEST_PASS + TEST_FAIL)) - $1 (expected $2, got $3)"; }

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
    echo "1..$((TEST_PASS + TEST_FAIL))"
    echo "# $(basename "$0"): $TEST_PASS passed, $TEST_FAIL failed"
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
