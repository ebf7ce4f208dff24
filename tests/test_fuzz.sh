#!/usr/bin/env bash
# test_fuzz.sh - bounded libFuzzer runs (ASan+UBSan) of the /capture query parser, the tracker's report formatter and the HTTP path.
#
# Builds build/fuzz/fuzz_* (make fuzz-build; clang from `scripts/deps.sh test`)
# and runs each target for FUZZ_SECONDS (default 30) and at most FUZZ_RUNS
# inputs (default 2000000) on a scratch copy of its corpus in
# tests/fuzz/corpus/<target>/, so a CI run never rewrites the committed
# corpus. A crash, a sanitizer report, a leak or a violated property stops the
# target with a non-zero status: the reproducer is kept in $FUZZ_ARTIFACTS
# (default build/fuzz/artifacts/) and named in the FAIL line.
# To grow the committed corpus: run a target by hand on a scratch directory,
# then `build/fuzz/fuzz_X -merge=1 tests/fuzz/corpus/fuzz_X SCRATCH`.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

SECONDS_EACH=${FUZZ_SECONDS:-30}
RUNS_EACH=${FUZZ_RUNS:-2000000}
ARTIFACTS=${FUZZ_ARTIFACTS:-build/fuzz/artifacts}

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    fail "clang is installed for the fuzz targets" "clang (bash scripts/deps.sh test)" "none"
    done_testing
fi
if ! make -s fuzz-build >"$TEST_TMP/build.log" 2>&1; then
    fail "make fuzz-build builds the fuzz targets" "exit 0" "$(tail -n 3 "$TEST_TMP/build.log" | tr '\n' ' ')"
    done_testing
fi
check_eq "make fuzz-build: no compiler warnings" 0 "$(grep -c 'warning:' "$TEST_TMP/build.log")"
mkdir -p "$ARTIFACTS"

# fuzz TARGET [EXTRA ARGS...]: one bounded run; prints execs and the corpus size.
fuzz() {
    local t=$1 rc=0 log="$TEST_TMP/$1.log" work="$TEST_TMP/corpus-$1" execs crash
    shift
    mkdir -p "$work"
    cp tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: growth is a finding.
    "build/fuzz/$t" -max_total_time="$SECONDS_EACH" -runs="$RUNS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-" \
        "$@" "$work" >"$log" 2>&1 </dev/null || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
        pass "$t: ${execs} executions in <= ${SECONDS_EACH} s, 0 crashes (corpus $(find tests/fuzz/corpus/"$t" -type f | wc -l) -> $(find "$work" -type f | wc -l) inputs)"
    else
        fail "$t runs clean" "exit 0, 0 crashes" \
             "exit $rc after ${execs:-?} executions: $(grep -m1 -E 'ERROR|runtime error|property violated|deadly signal|timeout' "$log")${crash:+; reproducer $crash}"
        tail -n 30 "$log" | sed 's/^/#   /'
    fi
}

fuzz fuzz_query -dict=tests/fuzz/query.dict
fuzz fuzz_report
fuzz fuzz_http -dict=tests/fuzz/http.dict -max_len=4096

# The committed corpora replay clean on their own, too (a regression check that
# does not depend on what the random runs above happened to try).
for t in fuzz_query fuzz_report fuzz_http; do
    n=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
    check "$t: the $n committed corpus inputs replay clean" \
        "build/fuzz/$t" -runs=0 -artifact_prefix="$ARTIFACTS/$t-replay-" tests/fuzz/corpus/"$t"
done
done_testing
