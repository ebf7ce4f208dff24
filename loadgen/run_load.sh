#!/usr/bin/env bash
# run_load.sh - drives `ab` against the lab server while sampling its RSS (/proc) and request count (/stats) into a CSV.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: run_load.sh --port P --pid SERVER_PID --requests N --concurrency C
                   --label LABEL --csv FILE --ab-out FILE [--keepalive]
Runs `ab -n N -c C [-k] http://127.0.0.1:P/` (its report goes to the --ab-out
FILE) while it appends a run,elapsed_s,requests,rss_kb row every 100 ms to the
--csv FILE (header written if the FILE is new or empty): rss_kb is VmRSS of
SERVER_PID from /proc, requests the server's own count from GET /stats.
Exits non-zero with a one-line reason if ab fails or the server dies.
Environment: LOAD_MAX_SECONDS (default 600) bounds the whole load.
EOF
    exit 2
}

die() {
    echo "run_load: $*" >&2
    exit 1
}

# ---- arguments ---------------------------------------------------------------

port="" server_pid="" requests="" concurrency="" label="" csv="" ab_out="" keepalive=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port|--pid|--requests|--concurrency|--label|--csv|--ab-out)
            [ $# -ge 2 ] || { echo "run_load: $1 needs a value" >&2; usage; }
            case "$1" in
                --port) port=$2 ;;
                --pid) server_pid=$2 ;;
                --requests) requests=$2 ;;
                --concurrency) concurrency=$2 ;;
                --label) label=$2 ;;
                --csv) csv=$2 ;;
                --ab-out) ab_out=$2 ;;
            esac
            shift 2 ;;
        --keepalive) keepalive="-k"; shift ;;
        -h|--help) usage ;;
        *) echo "run_load: unknown argument '$1'" >&2; usage ;;
    esac
done
# Each check: variable, then the option that sets it.
for pair in port:--port server_pid:--pid requests:--requests concurrency:--concurrency \
            label:--label csv:--csv ab_out:--ab-out; do
    v=${pair%%:*} opt=${pair#*:}
    [ -n "${!v}" ] || { echo "run_load: $opt is required" >&2; usage; }
    case "$v" in label|csv|ab_out) continue ;; esac
    case "${!v}" in
        *[!0-9]*|0*) echo "run_load: $opt must be a positive integer, got '${!v}'" >&2; usage ;;
    esac
done
[ "$concurrency" -le "$requests" ] || { echo "run_load: --concurrency ($concurrency) exceeds --requests ($requests)" >&2; usage; }
max_seconds=${LOAD_MAX_SECONDS:-600}

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/../scripts/lib.sh"   # stats_field, rss_kb, proc_gone; stops ab at exit
command -v ab >/dev/null 2>&1 || die "ab not found: run 'bash scripts/deps.sh demo' (package apache2-utils)"
command -v curl >/dev/null 2>&1 || die "curl not found: run 'bash scripts/deps.sh demo'"
proc_gone "$server_pid" && die "server pid $server_pid is not running"
PORT=$port

# ---- the load ----------------------------------------------------------------

# No -l: every "hello user<ID>" body has the same length (server/routes.c
# walks ids of one digit count), so a length change is a real failure.
ab $keepalive -n "$requests" -c "$concurrency" "http://127.0.0.1:$port/" >"$ab_out" 2>&1 &
ab_pid=$!
started "$ab_pid"

# ---- the sampler: every 100 ms, VmRSS from /proc and "requests" from /stats
# A shell loop (bash builtins but for curl and sleep): at 10 rows a second the
# cost of a fork or two per row is noise beside ab and the server, and curl
# is the robust HTTP client. Each row is appended at once, so the CSV keeps
# every sample whatever happens next. The load is looked at before each
# sample, so the sample taken after ab ended is the last one.
[ -s "$csv" ] || echo "run,elapsed_s,requests,rss_kb" >"$csv"
t=$EPOCHREALTIME; t0=${t/[.,]/}; next=$t0 us=0 shown=-1000000 base="" failed=0
[ -t 2 ] && tty=1 || tty=0
while :; do
    ab_done=0; proc_gone "$ab_pid" && ab_done=1
    rss=$(rss_kb "$server_pid") || rss=""
    [ -n "$rss" ] || die "server pid $server_pid died during the load (ab report so far: $ab_out)"
    if req=$(stats_field requests); then
        t=$EPOCHREALTIME; us=$((${t/[.,]/} - t0))
        printf -v el '%d.%03d' $((us / 1000000)) $((us / 1000 % 1000))
        echo "$label,$el,$req,$rss" >>"$csv"
        base=${base:-$req}
        # Progress: rewritten in place on a terminal, once a second otherwise.
        if [ "$tty" = 1 ] || [ "$ab_done" = 1 ] || [ $((us - shown)) -ge 1000000 ]; then
            shown=$us
            printf -v line '[%s] %d.%d s  requests %d/%d  RSS %s' "$label" $((us / 1000000)) $((us / 100000 % 10)) \
                $((req - base)) "$requests" "$(mib "$rss")"
            if [ "$tty" = 1 ]; then printf '\r%s\033[K' "$line" >&2; else echo "$line" >&2; fi
        fi
    else
        proc_gone "$server_pid" && die "server pid $server_pid died during the load (ab report so far: $ab_out)"
        # A row with a stale counter would bend the curve: skip it, say so once.
        [ $((failed++)) -gt 0 ] || echo "run_load: GET /stats on port $port failed (row skipped; will retry)" >&2
    fi
    [ "$ab_done" = 0 ] || break
    [ $((us / 1000000)) -lt "$max_seconds" ] ||
        die "ab did not finish within $max_seconds s (LOAD_MAX_SECONDS); stopped it"
    next=$((next + 100000)); t=$EPOCHREALTIME; wait_us=$((next - ${t/[.,]/}))
    if [ "$wait_us" -gt 0 ]; then printf -v s '0.%06d' "$wait_us"; sleep "$s"; else next=${t/[.,]/}; fi
done
[ "$tty" = 0 ] || echo >&2
[ -n "$base" ] || die "no sample kept: GET /stats on port $port never answered"

# ab has exited (the loop ends only then), so this wait is immediate.
ab_rc=0
wait "$ab_pid" || ab_rc=$?
forget_pid "$ab_pid"
if [ "$ab_rc" -ne 0 ]; then
    die "ab failed (exit $ab_rc): $(grep -v '^Completed\|^Finished' "$ab_out" | tail -n 1)"
fi
[ "$(ab_field "$ab_out" 'Complete requests')" != 0 ] || die "ab wrote no report to $ab_out"
