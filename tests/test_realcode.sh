#!/usr/bin/env bash
# test_realcode.sh - real servers nobody here wrote (redis, mosquitto, lighttpd, nginx, from Debian's sources), a leak planted through each project's own allocation wrapper: named at the planted line (by function without debug info), two callers never merged; redis with its bundled jemalloc: the report says what it cannot see.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

# Each program is fetched with apt-get source (upstream version pinned),
# patched with tests/realcode/NAME.patch and built by tests/realcode/build.sh
# (kept under build/realcode/). A patch drops a block on two request paths,
# each through the project's own wrapper, on a line marked
# "PLANTED-A in FUNCTION" / "PLANTED-B in FUNCTION" (lines found here from
# the markers, never by number). The server runs under bin/leak-report on
# 127.0.0.1, serves a known number of requests, is stopped with SIGTERM,
# and its exit report must show each planted line as its own site, with
# the wrapper as "(via ...)" and the count of requests:
#   with debug info:    FILE:LINE (via WRAPPER): ..., count=N
#   without (mosquitto's cmake default build): [mosquitto] FUNCTION+0x.. (via WRAPPER)
# FILE is printed relative to the program's source root (never absolute,
# never "../"). The table at the end is the battery's summary.

unset TRACKER_SYSTEM TRACKER_DEBUGINFO TRACKER_KEY TRACKER_FORMAT TRACKER_TOP TRACKER_FRAMES TRACKER_OUT TRACKER_WRAPPERS

if ! make -s bin/libtracker.so bin/leak-report >"$TEST_TMP/make.log" 2>&1; then
    fail "the tracker builds" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log" | tr '\n' ' ')"
    done_testing
fi
LR=$TEST_ROOT/bin/leak-report
R=$TEST_TMP/realcode
mkdir -p "$R"
TABLE=""
CLEANUP_HOOK=realcode_cleanup
LR_PIDS=""
realcode_cleanup() { for p in $LR_PIDS; do kill -TERM "$p" 2>/dev/null || true; done; }

# build NAME VARIANT: sets DIR, or fails the case and returns 1.
build() {
    local out
    if ! out=$(nice bash tests/realcode/build.sh "$1" "$2" 2>&1); then
        fail "$1 ($2) builds" "a build" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    DIR=$(echo "$out" | tail -n 1)
}

# wait_port PORT SECONDS: 0 once something listens on 127.0.0.1:PORT.
wait_port() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        port_free "$1" || return 0
        sleep 0.1
    done
    return 1
}

# run_under NAME OUTDIR ARGS...: starts leak-report -o OUTDIR ARGS... in the
# background (LR_PID), its stderr in OUTDIR.err.
run_under() {
    local name=$1 out=$2; shift 2
    rm -rf "$out"
    "$LR" -o "$out" -n 200 "$@" >"$out.log" 2>"$out.err" </dev/null &
    LR_PID=$!
    LR_PIDS="$LR_PIDS $LR_PID"
}

# stop_under: SIGTERM to leak-report (it passes it on), then wait for it (20 s at most).
stop_under() {
    kill -TERM "$LR_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do kill -0 "$LR_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$LR_PID" 2>/dev/null && { kill -KILL "$LR_PID" 2>/dev/null; echo "# $LR_PID still running after 20 s" >&2; }
    wait "$LR_PID" 2>/dev/null || true
}

# The program's own report (the file of leak-report's child).
report_of() {
    local f
    for f in "$1"/*.txt; do
        grep -q '^== tracker report' "$f" 2>/dev/null && { echo "$f"; return; }
    done
}

# check_planted PROG VARIANT REPORT SRCDIR MARK WRAPPER COUNT DEBUG
# The report's site line for the planted line MARK of SRCDIR.
check_planted() {
    local prog=$1 variant=$2 rep=$3 src=$4 mark=$5 wrapper=$6 count=$7 debug=$8
    local hit file line fn want got verdict=missed
    hit=$(grep -rn --include='*.c' "$mark in " "$src" | head -n 1)
    file=${hit%%:*}
    line=$(echo "$hit" | cut -d: -f2)
    fn=$(echo "$hit" | sed -n "s/.*$mark in \([A-Za-z0-9_]*\).*/\1/p")
    if [ -z "$hit" ] || [ -z "$fn" ]; then
        fail "$prog ($variant): marker $mark found in the patched source" "a line" "none"
        return
    fi
    if [ "$debug" = yes ]; then
        # FILE:LINE, FILE a tail of the marker's path: relative to the source root.
        got=$(grep -E "^[^ #/][^ ]*:$line \\(via $wrapper\\): " "$rep" | while IFS= read -r l; do
            f=${l%%:*}
            case "$file" in */"$f") echo "$l" ;; esac
        done | head -n 1)
        want="${file#"$src"/}:$line (via $wrapper): ..., count=$count"
    else
        got=$(grep -E "^\\[[^]]*\\] $fn\\+0x[0-9a-f]+ \\(via $wrapper\\): " "$rep" | head -n 1)
        want="[$prog] $fn+0x.. (via $wrapper): ..., count=$count"
    fi
    if [ -n "$got" ] && echo "$got" | grep -q "count=$count,"; then
        pass "$prog ($variant): $mark named at its line, $want"
        verdict=named
    else
        fail "$prog ($variant): $mark named at its line" "$want" "${got:-no such line; top: $(grep -m 3 -v '^[=# ]' "$rep" | tr '\n' '|')}"
    fi
    TABLE="$TABLE
| $prog | $variant | $mark in $fn (via $wrapper) | $verdict |"
}

# check_wrapper_listed PROG VARIANT REPORT WRAPPER: the report says it took WRAPPER.
check_wrapper_listed() {
    check "$1 ($2): the report lists $4 among the wrappers it took" \
        grep -Eq "^# wrappers \\(sites are their callers' lines\\):.* $4 \\(" "$3"
}

N=25 # requests of each kind

# ---------------------------------------------------------------- redis (zmalloc)
# redis_run VARIANT OUTDIR: the redis of DIR under leak-report, N ECHOs and N+5 PINGs; sets rep.
redis_run() {
    local variant=$1 out=$2 port cli=$DIR/src/redis-cli
    rep=""
    pick_port || return
    port=$PICKED
    run_under redis "$out" "$DIR/src/redis-server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no
    if ! wait_port "$port" 30; then fail "redis ($variant) listens" "port $port" "nothing"; stop_under; return; fi
    for _ in $(seq 1 $N); do echo "ECHO planted"; done | timeout 30 "$cli" -p "$port" >/dev/null
    for _ in $(seq 1 $((N + 5))); do echo "PING"; done | timeout 30 "$cli" -p "$port" >/dev/null
    stop_under
    rep=$(report_of "$out")
}

redis_case() {
    local variant=$1 out rep line
    build redis "$variant" || return
    out=$R/redis-$variant
    # The control: without the wrapper rule, the planted lines are not sites
    # (every caller of zmalloc is one group inside zmalloc.c): the checks
    # below can fail, and the rule is what passes them.
    TRACKER_WRAPPERS=none redis_run "$variant" "$out-nowrappers"
    line=$(grep -n "PLANTED-A in" "$DIR/src/server.c" | cut -d: -f1)
    if [ -n "$rep" ]; then
        check_eq "redis ($variant), TRACKER_WRAPPERS=none (control): no group at the planted line" \
            0 "$(grep -c "^src/server.c:$line " "$rep")"
        check "redis ($variant), TRACKER_WRAPPERS=none (control): the top group is inside zmalloc.c" \
            grep -q "^src/zmalloc.c:[0-9]*: " <(grep -m 1 -v '^[=# ]' "$rep")
    fi
    redis_run "$variant" "$out"
    [ -n "$rep" ] || { fail "redis ($variant): a report" "a report file" "none: $(tail -n 2 "$out.err")"; return; }
    check_planted redis "$variant" "$rep" "$DIR" PLANTED-A zmalloc "$N" yes
    check_planted redis "$variant" "$rep" "$DIR" PLANTED-B zmalloc "$((N + 5))" yes
    check_wrapper_listed redis "$variant" "$rep" zmalloc
    check "redis ($variant): no site is an absolute or ../ path" \
        bash -c "! grep -Eq '^(/|\\.\\./)[^ ]*:[0-9]+' '$rep'"
    check "redis ($variant): resident memory stated beside the tracked heap" grep -q '^# rss: VmRSS .* beside the tracked heap' "$rep"
}

# ---------------------------------------------------------------- mosquitto (mosquitto__malloc)
# MQTT 3.1.1 CONNECT (clean session, keepalive 60, client id "pl"), then
# DISCONNECT, on one connection each, over bash's /dev/tcp.
mqtt_session() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf '\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02pl' >&3
    timeout 5 head -c 4 <&3 >/dev/null # CONNACK
    printf '\xe0\x00' >&3
    timeout 5 cat <&3 >/dev/null # the broker closes
    exec 3>&-
}

mosquitto_case() {
    local variant=$1 debug=$2 port out rep conf
    build mosquitto "$variant" || return
    pick_port || return
    port=$PICKED
    out=$R/mosquitto-$variant
    conf=$R/mosquitto-$variant.conf
    # user: as root, the broker would drop to "nobody" and could not write its report
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n' "$port" "$(id -un)" > "$conf"
    # -s USR2: the broker handles SIGUSR2 itself (it prints its subscription
    # tree): the launcher must say so, with the fix.
    run_under mosquitto "$out" -s USR2 "$DIR/build/src/mosquitto" -c "$conf"
    if ! wait_port "$port" 30; then fail "mosquitto ($variant) listens" "port $port" "nothing"; stop_under; return; fi
    for _ in $(seq 1 $N); do mqtt_session "$port"; done
    local pid
    pid=$(basename "$(ls "$out"/*.txt | head -n 1)" .txt)
    kill -USR2 "$pid" 2>/dev/null || true
    sleep 0.3
    stop_under
    rep=$(report_of "$out")
    [ -n "$rep" ] || { fail "mosquitto ($variant): a report" "a report file" "none: $(tail -n 2 "$out.err")"; return; }
    check_planted mosquitto "$variant" "$rep" "$DIR" PLANTED-A mosquitto__malloc "$N" "$debug"
    check_planted mosquitto "$variant" "$rep" "$DIR" PLANTED-B mosquitto__strdup "$N" "$debug"
    check_wrapper_listed mosquitto "$variant" "$rep" mosquitto__malloc
    check "mosquitto ($variant): leak-report says the broker took SIGUSR2, and the fix (-s RTMIN+N)" \
        grep -q "^leak-report: mosquitto set the action of SIGUSR2 itself (its own handler).*run again with -s RTMIN+" "$out.err"
}

# http_case NAME VARIANT PORT WRAPPER CMD...: CMD serves 127.0.0.1:PORT under
# leak-report; N GETs of /index.html; both planted lines through WRAPPER.
http_case() {
    local name=$1 variant=$2 port=$3 wrapper=$4 out rep; shift 4
    out=$R/$name-$variant
    run_under "$name" "$out" "$@"
    if ! wait_port "$port" 30; then fail "$name ($variant) listens" "port $port" "nothing: $(tail -n 2 "$out.log")"; stop_under; return; fi
    for _ in $(seq 1 $N); do curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/index.html"; done
    stop_under
    rep=$(report_of "$out")
    [ -n "$rep" ] || { fail "$name ($variant): a report" "a report file" "none: $(tail -n 2 "$out.err")"; return; }
    check_planted "$name" "$variant" "$rep" "$DIR" PLANTED-A "$wrapper" "$N" yes
    check_planted "$name" "$variant" "$rep" "$DIR" PLANTED-B "$wrapper" "$N" yes
    check_wrapper_listed "$name" "$variant" "$rep" "$wrapper"
}

# ---------------------------------------------------------------- lighttpd (ck_malloc)
lighttpd_case() {
    local variant=$1 conf
    build lighttpd "$variant" || return
    pick_port || return
    conf=$R/lighttpd-$variant.conf
    mkdir -p "$R/www"
    echo planted > "$R/www/index.html"
    printf 'server.document-root = "%s"\nserver.port = %s\nserver.bind = "127.0.0.1"\nserver.errorlog = "%s"\n' \
        "$R/www" "$PICKED" "$R/lighttpd-$variant.error.log" > "$conf"
    http_case lighttpd "$variant" "$PICKED" ck_malloc "$DIR/src/lighttpd" -D -f "$conf" -m "$DIR/src/.libs"
}

# ---------------------------------------------------------------- nginx (ngx_alloc)
nginx_case() {
    local variant=$1 pre
    build nginx "$variant" || return
    pick_port || return
    pre=$R/nginx-$variant.prefix
    mkdir -p "$pre/logs" "$pre/html" "$pre/conf"
    echo planted > "$pre/html/index.html"
    cat > "$pre/conf/nginx.conf" <<EOF
daemon off;
master_process off;
error_log $pre/logs/error.log;
pid $pre/logs/nginx.pid;
events { worker_connections 64; }
http { access_log off; server { listen 127.0.0.1:$PICKED; root $pre/html; } }
EOF
    http_case nginx "$variant" "$PICKED" ngx_alloc "$DIR/objs/nginx" -p "$pre/" -c conf/nginx.conf
}

# ---------------------------------------------------------------- redis with its bundled jemalloc
# Its allocations never reach the preload: the report must say so, and
# when RSS grows past the tracked heap between two reports, name the cause.
jemalloc_case() {
    local port out rep pid cli
    build redis default || return
    cli=$DIR/src/redis-cli
    local bench=$DIR/src/redis-benchmark
    build redis jemalloc || return
    pick_port || return
    port=$PICKED
    out=$R/redis-jemalloc
    # -t: the reports are written by a thread of the tracker's own; the
    # hooks, which write them otherwise, never run: redis calls je_malloc
    run_under redis "$out" -t "$DIR/src/redis-server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no
    if ! wait_port "$port" 30; then fail "redis (jemalloc) listens" "port $port" "nothing"; stop_under; return; fi
    pid=$(basename "$(ls "$out"/*.txt | head -n 1)" .txt)
    kill -s RTMIN+7 "$pid" # leak-report's default on-demand signal: the baseline
    echo PING | timeout 10 "$cli" -p "$port" >/dev/null
    # ~60 MB of values, stored by jemalloc
    timeout 60 "$bench" -p "$port" -t set -n 30000 -r 30000 -d 2000 -P 16 -q >/dev/null 2>&1
    kill -s RTMIN+7 "$pid"
    echo PING | timeout 10 "$cli" -p "$port" >/dev/null
    sleep 0.5
    stop_under
    rep=$(report_of "$out")
    [ -n "$rep" ] || { fail "redis (jemalloc): a report" "a report file" "none: $(tail -n 2 "$out.err")"; return; }
    check "redis (jemalloc): two on-demand reports, counted by leak-report" \
        grep -q "on demand (RTMIN+7): 2 requested, 2 written" "$out.err"
    check "redis (jemalloc): the RSS growth past the tracked heap is named: jemalloc linked into redis-server" \
        grep -q "^# untracked: RSS grew .* likely cause: a jemalloc linked into redis-server" "$rep"
    check "redis (jemalloc): the exit report says what it cannot see" \
        grep -Eq "^# (untracked: .*|not seen: )a jemalloc linked into redis-server" "$rep"
    TABLE="$TABLE
| redis | jemalloc (bundled, static) | RSS growth named: $(grep -c '^# untracked: .*jemalloc' "$rep") report(s) | said |"
}

[ -n "${REALCODE_ONLY:-}" ] || REALCODE_ONLY="redis mosquitto lighttpd nginx jemalloc"
case " $REALCODE_ONLY " in *" redis "*) redis_case default ;; esac
case " $REALCODE_ONLY " in *" mosquitto "*) mosquitto_case default no; mosquitto_case O2g yes ;; esac
case " $REALCODE_ONLY " in *" lighttpd "*) lighttpd_case default ;; esac
case " $REALCODE_ONLY " in *" nginx "*) nginx_case default; nginx_case O2g ;; esac
case " $REALCODE_ONLY " in *" jemalloc "*) jemalloc_case ;; esac

echo "# | program | build | planted | ours |"
echo "# |---|---|---|---|"
echo "$TABLE" | sed '/^$/d; s/^/# /'
done_testing
