# lib.sh - tiny test helpers sourced by tests/test_*.sh: assertions, counting, server start/stop.
# shellcheck shell=bash
#
# Every assertion prints one line, `ok - NAME` or `FAIL - NAME (expected X, got Y)`;
# tests/run.sh counts those lines. End each test file with `done_testing`.
# Servers are started on a free random port and killed by PID only (trap on exit).

TEST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/leaklab-test.XXXXXX")
TEST_PASS=0
TEST_FAIL=0
STARTED_PIDS=""   # PIDs this test file started; the only ones it ever kills
PICKED_PORTS=""   # ports handed out in this file, never handed out twice

# The deliberate leak: its line is found in the server's source (never written
# here as a number); its size is the server's contract (40200 B per GET /).
LEAK_LINE=$(grep -n 'LEAK-SITE' "$TEST_ROOT/server/fetch_user_data.c" | head -n 1 | cut -d: -f1)
SITE="fetch_user_data.c:$LEAK_LINE"
LEAK_RECORD=40200

# ---------------------------------------------------------------- assertions
pass() { TEST_PASS=$((TEST_PASS + 1)); echo "ok - $1"; }
fail() { TEST_FAIL=$((TEST_FAIL + 1)); echo "FAIL - $1 (expected $2, got $3)"; }

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

# check_range NAME LO HI GOT: integer LO <= GOT <= HI.
check_range() {
    case "$4" in ''|*[!0-9-]*) fail "$1" "$2..$3" "'$4'"; return ;; esac
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

# done_testing: print this file's tally and exit non-zero if anything failed.
done_testing() {
    echo "# $(basename "$0"): $TEST_PASS passed, $TEST_FAIL failed"
    [ "$TEST_FAIL" -eq 0 ]
    exit
}

# ---------------------------------------------------------------- processes
# port_free P: 0 when nothing listens on 127.0.0.1:P.
port_free() {
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# pick_port: set PICKED to a free port in 20000..40000 (at most 100 tries), never the same twice.
pick_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
        case " $PICKED_PORTS " in *" $p "*) continue ;; esac
        if port_free "$p"; then PICKED_PORTS="$PICKED_PORTS $p"; PICKED=$p; return 0; fi
    done
    echo "lib.sh: no free port found in 100 tries" >&2
    return 1
}

# start_server [ARGS...]: start bin/server on a free port (unless ARGS has --port),
# wait up to 10 s for its ready line. Sets SERVER_PID, PORT, SERVER_OUT, SERVER_ERR.
# Returns 1 (with the server's stderr on ours) if it never became ready.
start_server() {
    case " $* " in *" --port "*) PORT=$(echo " $* " | sed 's/.* --port \([0-9]*\) .*/\1/') ;;
        *) pick_port || return 1; PORT=$PICKED; set -- --port "$PORT" "$@" ;; esac
    SERVER_OUT="$TEST_TMP/server.$PORT.$RANDOM.out"
    SERVER_ERR="${SERVER_OUT%.out}.err"
    "$TEST_ROOT/${TEST_SERVER_BIN:-bin/server}" "$@" >"$SERVER_OUT" 2>"$SERVER_ERR" </dev/null &
    SERVER_PID=$!
    STARTED_PIDS="$STARTED_PIDS $SERVER_PID"
    for _ in $(seq 1 100); do
        grep -q '^ready: ' "$SERVER_OUT" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "lib.sh: bin/server $* not ready; stderr: $(head -c 500 "$SERVER_ERR")" >&2
    stop_server "$SERVER_PID"
    return 1
}

# proc_gone PID: 0 when PID has exited (gone, or a zombie awaiting wait).
proc_gone() {
    [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# stop_server [PID]: SIGTERM (then SIGKILL after 5 s) a server this file started.
stop_server() {
    local pid=${1:-$SERVER_PID}
    case " $STARTED_PIDS " in *" $pid "*) ;; *) return 0 ;; esac
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do proc_gone "$pid" && break; sleep 0.1; done
    proc_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# forget_pid PID: PID has ended (reaped by the caller): never signal it again.
forget_pid() { STARTED_PIDS=$(echo " $STARTED_PIDS " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

# term_status PID SECONDS: SIGTERM a server this file started and wait up to
# SECONDS; TERM_RC = its exit status, or "still running" (then it is NOT
# killed here: the caller's check fails, and cleanup stops it at exit).
# Not in a $(...) subshell: only this shell can wait for PID.
term_status() {
    TERM_RC=0
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 1 $(($2 * 10))); do proc_gone "$1" && break; sleep 0.1; done
    proc_gone "$1" || { TERM_RC="still running after $2 s"; return; }
    wait "$1" || TERM_RC=$?
    forget_pid "$1"
}

export TEST_CLEANUP_HOOK=""   # a test file may name a function to run on exit, before servers are stopped
cleanup_tests() {
    local pid
    [ -z "$TEST_CLEANUP_HOOK" ] || "$TEST_CLEANUP_HOOK"
    for pid in $STARTED_PIDS; do stop_server "$pid"; done
    rm -rf "$TEST_TMP"
}
trap cleanup_tests EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- probes
# url PATH: the URL of PATH on the current server.
url() { echo "http://127.0.0.1:$PORT$1"; }

# cap [?QUERY]: GET /capture of the current server.
cap() { curl -s --max-time 10 "$(url "/capture$1")"; }

# stats_field NAME: one field of the /stats JSON of the current server (quotes stripped).
stats_field() {
    curl -s --max-time 5 "$(url /stats)" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# rss_kb PID: VmRSS of PID in kB, as /proc prints it.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
