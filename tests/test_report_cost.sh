#!/usr/bin/env bash
# test_report_cost.sh - the exit report of a big stripped program stays cheap and names the same: gcc's cc1 (28,900 dynamic symbols, half its frames in static functions without one).
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

LIB=$TEST_ROOT/bin/libtracker.so
R=$TEST_TMP/reportcost
mkdir -p "$R"

if ! make -s bin/libtracker.so >"$TEST_TMP/make.log" 2>&1; then
    fail "make builds the library" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log")"
    done_testing
fi

# The report's own "report N ms", in whole milliseconds.
report_ms() { sed -n 's/^# tracker: .*, report \([0-9]*\)\.[0-9]* ms$/\1/p' "$@" | head -n 1; }

CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
if [ -x "$CC1" ]; then
    rc=0
    timeout 60 env LD_PRELOAD="$LIB" TRACKER_OUT="$R/cc1.%p.txt" "$CC1" -quiet /dev/null -o /dev/null || rc=$?
    check_eq "cc1 under the preload exits 0 and writes one exit report" "0 1" "$rc $(cat "$R"/cc1.*.txt 2>/dev/null | grep -c '^== tracker report 1 ')"
    # Before the symbol index answered "no symbol here" itself, libdw read every
    # symbol of cc1 for each static function: 550-670 ms here (2.2 s on a busier
    # run); now 12-40 ms. The bound leaves room for a slow, shared machine.
    check_range "cc1's exit report takes at most 250 ms" 0 250 "$(report_ms "$R"/cc1.*.txt)"
    # Names from both paths: a function of the dynamic symbol table by its name,
    # a static function (no symbol covers it) by its offset in the module.
    check "cc1's report names a function by its dynamic symbol (xmalloc)" grep -q '^    #[0-9]* \[cc1\] xmalloc$' "$R"/cc1.*.txt
    check "cc1's report names a static function by its offset ([cc1] +0x...)" grep -Eq '^    #[0-9]+ \[cc1\] \+0x[0-9a-f]+$' "$R"/cc1.*.txt
else
    echo "# skip - cc1: gcc -print-prog-name=cc1 gives no program ($CC1)"
fi

done_testing
