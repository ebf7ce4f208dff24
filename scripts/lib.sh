# lib.sh - the lab's shell library: start/wait/stop a server, free ports, /stats fields, ab report fields.
# shellcheck shell=bash disable=SC2034 # what it sets is read by the scripts that source it
#
# Sourced by scripts/*.sh, loadgen/run_load.sh, tests/bench.sh and (through
# tests/lib.sh) every test. Sourcing it creates LAB_TMP (a private scratch
# directory) and sets EXIT/INT/TERM traps: at exit, CLEANUP_HOOK (a function
# name, if set) runs, then every process this shell started through
# launch_server or `started` is stopped by PID (SIGTERM, SIGKILL after
# STOP_SECONDS, default 5), then LAB_TMP is removed. Nothing else is ever
# signalled. A script that needs its own INT message sets its own INT trap.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/leaklab.XXXXXX")
STARTED_PIDS=""   # PIDs this shell started; the only ones it ever signals
PICKED_PORTS=""   # ports handed out by pick_port, never handed out twice
CLEANUP_HOOK=""

# The deliberate leak: its line is found in the server's source (never written
# as a number anywhere); its size is the server's contract (40200 B per GET /).
LEAK_LINE=$(grep -n 'LEAK-SITE' "$LAB_ROOT/server/fetch_user_data.c" | head -n 1 | cut -d: -f1)
SITE="fetch_user_data.c:$LEAK_LINE"
LEAK_RECORD=40200

# ---------------------------------------------------------------- ports
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

# ---------------------------------------------------------------- processes
# started PID: PID was started by this shell: stopped at exit unless forgotten first.
started() { STARTED_PIDS="$STARTED_PIDS $1"; }

# forget_pid PID: PID has ended (reaped by the caller): never signal it again.
forget_pid() { STARTED_PIDS=$(echo " $STARTED_PIDS " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

# proc_gone PID: 0 when PID has exited (gone, or a zombie awaiting wait). Works
# for processes that are not our children too (a server behind a wrapper).
proc_gone() {
    [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# wait_gone PID SECONDS: 0 as soon as PID has exited, 1 if it still runs after SECONDS.
wait_gone() {
    for _ in $(seq 1 $(($2 * 10))); do proc_gone "$1" && return 0; sleep 0.1; done
    proc_gone "$1"
}

# stop_pid PID [SECONDS]: SIGTERM a process this shell started, wait up to
# SECONDS (default STOP_SECONDS, 5) for it, then SIGKILL with a one-line note on
# stderr; reaps it (if it is our child) and forgets it. Other PIDs are left alone.
stop_pid() {
    local pid=$1 secs=${2:-${STOP_SECONDS:-5}}
    case " $STARTED_PIDS " in *" $pid "*) ;; *) return 0 ;; esac
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$secs"; then
        echo "${0##*/}: pid $pid ignored SIGTERM for $secs s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# term_status PID SECONDS: SIGTERM a process this shell started and wait up to
# SECONDS; TERM_RC = its exit status, or "still running after S s" (then it is
# NOT killed here: the caller's check fails, and the exit cleanup stops it).
# Not in a $(...) subshell: only this shell can wait for PID.
term_status() {
    TERM_RC=0
    kill -TERM "$1" 2>/dev/null
    wait_gone "$1" "$2" || { TERM_RC="still running after $2 s"; return; }
    wait "$1" || TERM_RC=$?
    forget_pid "$1"
}

# launch_server SECONDS OUT ERR CMD...: start CMD (a server, maybe behind a tool
# such as valgrind or heaptrack) in the background, stdin /dev/null, stdout to
# OUT, stderr to ERR (ERR = OUT: one log), and wait up to SECONDS for the
# server's line "ready: URL pid=N ...". Sets LAUNCH_PID (the process started),
# SERVER_PID (the server's own pid, from the ready line: it differs behind a
# wrapper). Returns 1 if it exits first or stays silent, with LAUNCH_ERROR one
# line saying why (status, last stderr line); it is stopped then.
launch_server() {
    local secs=$1 out=$2 err=$3 rc=0; shift 3
    : >"$out"
    if [ "$err" = "$out" ]; then "$@" >>"$out" 2>&1 </dev/null &
    else "$@" >"$out" 2>"$err" </dev/null &
    fi
    LAUNCH_PID=$!
    started "$LAUNCH_PID"
    for _ in $(seq 1 $((secs * 10))); do
        SERVER_PID=$(sed -n 's/^ready: .* pid=\([0-9]*\).*/\1/p' "$out" | head -n 1)
        if [ -n "$SERVER_PID" ]; then
            [ "$SERVER_PID" = "$LAUNCH_PID" ] || started "$SERVER_PID"
            return 0
        fi
        if proc_gone "$LAUNCH_PID"; then
            wait "$LAUNCH_PID" || rc=$?
            forget_pid "$LAUNCH_PID"
            LAUNCH_ERROR="exited before it was ready (status $rc): $(tail -n 1 "$err" | head -c 300)"
            return 1
        fi
        sleep 0.1
    done
    LAUNCH_ERROR="printed no ready line within $secs s: $(tail -n 1 "$err" | head -c 300)"
    stop_pid "$LAUNCH_PID"
    return 1
}

# start_on_port SECONDS CMD...: launch_server CMD --port P, P a free port
# (unless CMD already has --port P), with its output in LAB_TMP. Sets PORT,
# SERVER_OUT, SERVER_ERR besides launch_server's variables. A picked port
# that another program took meanwhile (other tests run beside these on a
# shared machine) is replaced by another, up to 3 times.
start_on_port() {
    local secs=$1 try; shift
    for try in 1 2 3; do
        case " $* " in
            *" --port "*) PORT=$(echo " $* " | sed 's/.* --port \([0-9]*\) .*/\1/'); try=last ;;
            *) pick_port || { LAUNCH_ERROR="no free port"; return 1; }
               PORT=$PICKED ;;
        esac
        SERVER_OUT="$LAB_TMP/server.$PORT.$RANDOM.out"
        SERVER_ERR="${SERVER_OUT%.out}.err"
        if [ "$try" = last ]; then launch_server "$secs" "$SERVER_OUT" "$SERVER_ERR" "$@"; return; fi
        launch_server "$secs" "$SERVER_OUT" "$SERVER_ERR" "$@" --port "$PORT" && return 0
        case "$LAUNCH_ERROR" in *"Address already in use"*) ;; *) return 1 ;; esac
    done
    return 1
}

cleanup_started() {
    local pid
    [ -z "$CLEANUP_HOOK" ] || "$CLEANUP_HOOK"
    for pid in $STARTED_PIDS; do stop_pid "$pid"; done
    rm -rf "$LAB_TMP"
}
trap cleanup_started EXIT
# `exit` in these runs the EXIT trap once; a second signal meanwhile is ignored,
# so the cleanup cannot be cut short and leave a server behind.
trap 'trap "" INT TERM; exit 130' INT
trap 'trap "" INT TERM; exit 143' TERM

# ---------------------------------------------------------------- the server's answers
# url PATH: the URL of PATH on the current server (PORT).
url() { echo "http://127.0.0.1:$PORT$1"; }

# cap [?QUERY]: GET /capture of the current server.
cap() { curl -s --max-time 30 "$(url "/capture$1")"; }

# json_field JSON NAME: the value of the first "NAME": in JSON (a number, true/false,
# or a string without its quotes); fails (nothing printed) when there is none.
# Parsed by bash itself: loadgen/run_load.sh reads /stats ten times a second.
json_field() {
    local re="\"$2\":\"?([^,\"}]+)"
    [[ $1 =~ $re ]] || return 1
    echo "${BASH_REMATCH[1]}"
}

# stats_field NAME: json_field of the current server's /stats; fails when the server does not answer.
stats_field() {
    local body
    body=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/stats") || return 1
    json_field "$body" "$1"
}

# rss_kb PID: VmRSS of PID in kB, as /proc prints it (nothing once PID is gone:
# a zombie has no VmRSS line). Read by bash itself, no awk: see stats_field.
rss_kb() {
    local k v _
    while read -r k v _; do
        [ "$k" = VmRSS: ] && { echo "$v"; return; }
    done 2>/dev/null <"/proc/$1/status"
}

# mib KB: KB as "N.N MiB": the unit of every screen of the lab (/capture, /leaks,
# the dashboard print 1024-based sizes, as tracemalloc and /proc count).
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

# bytes_of "N UNIT": a size as the tracker's report prints it (a sign, decimals,
# B KiB MiB GiB) in bytes, rounded; nothing when the text is not of that form.
bytes_of() {
    awk -v v="$1" 'BEGIN { if (v !~ /^[-+]?[0-9.]+ (B|KiB|MiB|GiB)$/) exit
        n = v + 0; u = v; sub(/^[^ ]* /, "", u)
        m = (u == "KiB") ? 1024 : (u == "MiB") ? 1048576 : (u == "GiB") ? 1073741824 : 1
        printf "%.0f\n", n * m }'
}

# total_growth FILE: the growth "(+X)" of a /capture diff's "# total: size=..." line, in bytes.
total_growth() { bytes_of "$(sed -n 's/^# total: size=[^(]*(\([^)]*\)), count=.*/\1/p' "$1")"; }

# ---------------------------------------------------------------- ab reports
# ab_field FILE LABEL: the first word after "LABEL:" in ab's report FILE, 0
# when the line is absent (ab leaves out "Non-2xx responses" when there are none).
ab_field() {
    [ -r "$1" ] || { echo 0; return; }
    awk -v l="${2%:}:" 'index($0, l) == 1 { $0 = substr($0, length(l) + 1); print $1; f = 1; exit }
                        END { if (!f) print 0 }' "$1"
}

# ab_ok FILE N: ab's report FILE says N complete requests, none failed, none non-2xx.
ab_ok() {
    [ "$(ab_field "$1" 'Complete requests')" = "$2" ] && [ "$(ab_field "$1" 'Failed requests')" = 0 ] &&
        [ "$(ab_field "$1" 'Non-2xx responses')" = 0 ]
}

# ---------------------------------------------------------------- small probes
# http METHOD PATH [CURL-ARGS...]: the status code of one request to the current
# server; its body in $LAB_TMP/body, its headers in $LAB_TMP/headers.
http() {
    local how=(-X "$1")
    [ "$1" = HEAD ] && how=(-I)
    curl -s --max-time 10 "${how[@]}" -o "$LAB_TMP/body" -D "$LAB_TMP/headers" \
        -w '%{http_code}' "${@:3}" "$(url "$2")" 2>/dev/null
}

# lines FILE: number of lines in FILE (a last line without newline counts).
lines() { awk 'END { print NR }' "$1"; }

# cpu_ticks PID...: CPU time (user + system, clock ticks) used so far by the PIDs, summed.
cpu_ticks() {
    local p
    for p in "$@"; do
        awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true
    done | awk '{ s += $1 } END { print s + 0 }'
}

# ---------------------------------------------------------------- benchmarks (tests/bench*.sh)
# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# pair_ratios A B [COL]: A's field COL (default 1) over B's on the same line, one ratio a
# line, for the lines both files have and where B's is > 0. Runs alternated in pairs (line i
# of A beside line i of B) share a spell of the shared machine; the medians of each side may
# come from different ones.
pair_ratios() {
    awk -v c="${3:-1}" 'NR == FNR { a[FNR] = $c; next } (FNR in a) && $c > 0 { print a[FNR] / $c }' "$1" "$2"
}
# pair_ratio A B [COL]: the median of pair_ratios.
pair_ratio() { pair_ratios "$@" | median; }
# pair_spread A B [COL]: how far the pairs' ratios spread: "Q1-Q3 of N" (the middle half of
# them, nearest ranks), the noise a single median hides.
pair_spread() {
    pair_ratios "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.2f-%.2f of %d\n", a[int((NR + 3) / 4)], a[int((3 * NR + 3) / 4)], NR }'
}

# start_or_exit CMD...: start_on_port 60 CMD, or stop the script with one line saying why.
start_or_exit() { start_on_port 60 "$@" || { echo "${0##*/}: $* did not start: $LAUNCH_ERROR" >&2; exit 1; }; }

# ab_cost N ABARGS CMD...: a fresh server CMD (start_or_exit), 1000 requests of
# warm-up, then `ab -n N ABARGS`; prints "REQ/S CPU-US-PER-REQUEST" of the server.
ab_cost() {
    local n=$1 args=$2 t0 t1; shift 2
    start_or_exit "$@"
    # shellcheck disable=SC2086 # ABARGS is a list of ab options
    ab -q -n 1000 $args "$(url /)" >/dev/null 2>&1
    t0=$(cpu_ticks "$SERVER_PID")
    # shellcheck disable=SC2086
    ab -q -n "$n" $args "$(url /)" >"$LAB_TMP/ab.txt" 2>&1
    t1=$(cpu_ticks "$SERVER_PID")
    stop_pid "$SERVER_PID"
    awk -v r="$(ab_field "$LAB_TMP/ab.txt" 'Requests per second')" -v c=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        -v n="$n" 'BEGIN { printf "%s %.1f\n", r, c / hz / n * 1e6 }'
}

# onoff_rows RUN: for `ab -c 1` and `ab -c 8 -k`, ROUNDS (3) interleaved pairs of
# `RUN off ABARGS` and `RUN on ABARGS` (each prints an ab_cost line, so drift
# hits both alike); per load, a markdown row of their medians, and as on/off
# the pair_ratio of on and off:
# "| ab ABARGS | req/s off | on | on/off | CPU us/req off | on | on/off |".
onoff_rows() {
    local load off="$LAB_TMP/onoff.off" on="$LAB_TMP/onoff.on"
    for load in "-c 1" "-c 8 -k"; do
        : >"$on"; : >"$off"
        for _ in $(seq 1 "${ROUNDS:-3}"); do
            "$1" off "$load" >>"$off"
            "$1" on "$load" >>"$on"
        done
        awk -v l="ab $load" -v a="$(cut -d' ' -f1 "$off" | median)" -v b="$(cut -d' ' -f1 "$on" | median)" \
            -v c="$(cut -d' ' -f2 "$off" | median)" -v d="$(cut -d' ' -f2 "$on" | median)" \
            -v r="$(pair_ratio "$on" "$off" 1)" -v q="$(pair_ratio "$on" "$off" 2)" \
            'BEGIN { printf "| %s | %.0f | %.0f | %.3f | %.1f | %.1f | %.3f |\n", l, a, b, r, c, d, q }'
    done
}
