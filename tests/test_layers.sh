#!/usr/bin/env bash
# test_layers.sh - the tracker's stages use only their own and lower stages (scripts/check_layers.sh), and the check fails on a planted upward call.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

if ! make -s bin/libtracker.so >"$TEST_TMP/make.log" 2>&1; then
    fail "make builds bin/libtracker.so" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log")"
    done_testing
fi
check "check-layers: no stage of the tracker uses a later one (bin/libtracker.so's objects)" \
    bash scripts/check_layers.sh build/obj/pic/tracker

# The same objects plus one in record/ that calls the report stage.
P=$TEST_TMP/planted
mkdir -p "$P"
for s in base unwind record symbolize report preload; do
    mkdir -p "$P/$s"
    cp build/obj/pic/tracker/$s/*.o "$P/$s/" 2>/dev/null || true
done
printf '#include "tracker.h"\nchar *planted_upward(tracker_snapshot *s) { return tracker_report(s, NULL, NULL, NULL); }\n' \
    >"$TEST_TMP/planted.c"
if cc -std=c11 -Itracker -c -o "$P/record/planted.o" "$TEST_TMP/planted.c" 2>"$TEST_TMP/cc.log"; then
    rc=0
    bash scripts/check_layers.sh "$P" >"$TEST_TMP/planted.out" 2>&1 || rc=$?
    check_eq "check-layers fails on a planted call from record/ to tracker_report (report/)" 1 "$rc"
    check "... and names it" grep -q 'record/planted.o uses tracker_report of report/' "$TEST_TMP/planted.out"
else
    fail "the planted object compiles" "exit 0" "$(head -n 2 "$TEST_TMP/cc.log")"
fi
done_testing
