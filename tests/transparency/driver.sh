# driver.sh - sourced by the server drivers of tests/test_transparency.sh (redis.sh, nginx.sh, ...):
# the lab's shell library (ports, started/proc_gone, cleanup at exit) and a wait for readiness.
# shellcheck shell=bash
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

# wait_up PID CMD...: until CMD succeeds (the server answers), PID ends, or 10 s pass.
wait_up() {
    local pid=$1; shift
    for _ in $(seq 1 100); do
        "$@" >/dev/null 2>&1 && return 0
        proc_gone "$pid" && return 1
        sleep 0.1
    done
    return 1
}

# get PORT PATH: an HTTP GET on 127.0.0.1, its body then " CODE".
get() { curl -s --max-time 10 -w " %{http_code}\n" "http://127.0.0.1:$1$2"; }
