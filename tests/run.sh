#!/usr/bin/env bash
# run.sh - runs every test of the lab (tests/test_*.sh, the unit tests build/unit/*) and sums their results.
set -eu

usage() {
    echo "usage: $0 [FILTER]" >&2
    echo "Runs tests/test_*.sh and the unit test binaries build/unit/* (only those whose" >&2
    echo "name contains FILTER, if given), each bounded by a ${TEST_TIMEOUT:-600} s timeout." >&2
    echo "Last line of output: 'N passed, N failed'; exit status 1 if any test failed." >&2
    exit 2
}

case "${1:-}" in -h|--help) usage ;; esac
[ $# -le 1 ] || usage
filter=${1:-}
cd "$(dirname "$0")/.."

log=$(mktemp "${TMPDIR:-/tmp}/leaklab-run.XXXXXX")
cleanup() { rm -f "$log"; }
trap cleanup EXIT INT TERM

total_pass=0
total_fail=0
total_todo=0
# The whole suite (no FILTER) must leave the tree as it found it: what the
# tests write goes to results/, build/ (ignored) or temporary folders.
git_before=""
if [ -z "$filter" ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git_before=$(git status --porcelain 2>&1; echo end)
fi

# run_one NAME CMD...: run one test under a timeout, echo its output, add its
# TAP `ok N - ` / `not ok N - ` lines to the totals. A test that exits non-zero without
# printing any FAIL line (crash, timeout, missing binary), or that prints no
# ok line at all, counts as one failure.
run_one() {
    local name=$1 rc=0 p f why; shift
    echo "=== $name"
    timeout "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1 </dev/null || rc=$?
    cat "$log"
    p=$(grep -c '^ok [0-9]* *- ' "$log" || true)
    f=$(grep '^not ok [0-9]* *- ' "$log" | grep -vc ' # TODO ' || true)
    total_todo=$((total_todo + $(grep '^not ok [0-9]* *- ' "$log" | grep -c ' # TODO ' || true)))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        [ "$rc" -eq 124 ] && why="timed out after ${TEST_TIMEOUT:-600} s" || why="exit status $rc"
        echo "not ok - $name ran to completion (expected exit 0, got $why)"
        f=1
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - $name printed at least one ok line (expected >= 1, got 0)"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

# --- unit tests (tests/unit/, built into build/unit/ by `make unit`) ----------
# With a FILTER, build only when some tests/unit/ file name contains it.
wanted=1
if [ -n "$filter" ]; then
    wanted=0
    for u in tests/unit/*; do case "$(basename "$u")" in *"$filter"*) wanted=1 ;; esac; done
fi
if [ "$wanted" -eq 1 ] && ! make -s unit >"$log" 2>&1; then
    cat "$log"
    echo "not ok - make unit builds the unit tests (expected exit 0, got a build error)"
    total_fail=$((total_fail + 1))
fi
for t in build/unit/*; do
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
    case "$(basename "$t")" in *"$filter"*) ;; *) continue ;; esac
    run_one "$t" "$t"
done

# --- end-to-end scripts ------------------------------------------------------
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    case "$(basename "$t")" in *"$filter"*) ;; *) continue ;; esac
    run_one "$t" bash "$t"
done

if [ -n "$git_before" ]; then
    git_after=$(git status --porcelain 2>&1; echo end)
    if [ "$git_after" = "$git_before" ]; then
        echo "ok - the tests left git status as they found it"
        total_pass=$((total_pass + 1))
    else
        echo "not ok - the tests left git status as they found it (expected no change, got:" \
             "$(diff <(echo "$git_before") <(echo "$git_after") | grep '^[<>]' | head -n 5 | tr '\n' ' '))"
        total_fail=$((total_fail + 1))
    fi
fi
[ "$total_todo" -eq 0 ] || echo "# $total_todo known shortcoming(s) checked as TAP TODO (not ok ... # TODO): they are listed above"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
