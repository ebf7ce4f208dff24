# proc.sh - sourced by the lab's scripts: stop a process this script started, by its PID.
# shellcheck shell=bash

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 5) for it to
# exit, then SIGKILL with a one-line note on stderr; reaps it if it is our child.
stop_pid() {
    local pid=$1 secs=${2:-5}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "${0##*/}: pid $pid ignored SIGTERM for $secs s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
