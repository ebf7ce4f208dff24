#!/usr/bin/env bash
# test_host.sh - the preloaded tracker changes nothing a program can observe (output, exit, signals, fds, threads, symbols) and loses no report silently.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

LIB=$TEST_ROOT/bin/libtracker.so
H=$TEST_ROOT/build/host
R=$TEST_TMP/reports          # every report of this file goes under here
mkdir -p "$R"
T=${HOST_TIMEOUT:-60}        # seconds any one program may take

if ! make -s bin/libtracker.so bin/leak-report host-progs >"$TEST_TMP/make.log" 2>&1; then
    fail "make builds the library, the launcher and tests/host/" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log")"
    done_testing
fi

# with_lib NAME CMD...: CMD with the library preloaded, reports to $R/NAME.PID.txt.
with_lib() {
    local name=$1; shift
    LD_PRELOAD=$LIB TRACKER_OUT="$R/$name.%p.txt" "$@"
}

# same NAME CMD...: run CMD without and with the preload (run_pair in lib.sh:
# stdin /dev/null, in $WORK, the plain run bounded by $T s); check that stdout,
# stderr and exit status are the same, and that the process wrote a report at exit.
same() {
    local name=$1; shift
    PAIR_LIB=$LIB PAIR_CWD=$WORK PAIR_TIMEOUT=$T run_pair "$R" "$name" "$@"
    if cmp -s "$R/$name.out0" "$R/$name.out1"; then pass "$name: same stdout ($(wc -c <"$R/$name.out0") bytes)"
    else fail "$name: same stdout" "$(head -c 80 "$R/$name.out0")" "$(head -c 80 "$R/$name.out1")"; fi
    if cmp -s "$R/$name.err0" "$R/$name.err1"; then pass "$name: same stderr"
    else fail "$name: same stderr" "$(head -c 80 "$R/$name.err0")" "$(head -c 80 "$R/$name.err1")"; fi
    check_eq "$name: same exit status" "$PAIR_RC0" "$PAIR_RC1"
    check "$name: a report at exit was written" grep -qs '^== tracker report [0-9]* (pid [0-9]*, at' $R/"$name".*.txt
}

WORK=$TEST_TMP/work
mkdir -p "$WORK"
seq 1 300000 >"$WORK/numbers.txt"
seq 1 20000 >"$WORK/small.txt"

# ---------------------------------------------------------------- real programs
PY=$(command -v /usr/bin/python3 || command -v python3)
same python3 "$PY" -c '
import subprocess, sys, threading
out = []
def work(i): out.append(sum(len(str(x)) for x in range(i * 20000)))
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
r = subprocess.run(["sh", "-c", "echo from child; exit 2"], capture_output=True, text=True)
print(sorted(out), r.stdout.strip(), r.returncode)
sys.stderr.write("to stderr\n")
sys.exit(3)'
same perl perl -e 'my %h; $h{$_} = $_ * 2 for 1 .. 20000; print scalar(keys %h), " ", $h{777}, "\n"; warn "warned\n"; exit 4'
same gawk gawk 'BEGIN { for (i = 0; i < 20000; i++) a[i] = i "x"; n = 0; for (k in a) n++; print n; print "e" > "/dev/stderr"; exit 5 }'
same sqlite3 sqlite3 :memory: 'create table t(a, b); with recursive c(x) as (select 1 union all select x + 1 from c limit 5000) insert into t select x, x * x from c; select count(*), sum(b) from t; select * from nosuch;'
git init -q "$WORK/repo" && echo hello >"$WORK/repo/f" &&
    GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z \
    git -C "$WORK/repo" -c user.name=t -c user.email=t@t -c commit.gpgsign=false add f >/dev/null 2>&1 &&
    GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z \
    git -C "$WORK/repo" -c user.name=t -c user.email=t@t -c commit.gpgsign=false commit -qm first >/dev/null 2>&1
same git git -C "$WORK/repo" log --stat --format='%H %s'
same git-status git -C "$WORK/repo" status --porcelain=v2 --branch
if start_server --fixed; then
    same curl curl -s --max-time 10 -w ' %{http_code}\n' "$(url /dashboard)"
    same curl-404 curl -s --max-time 10 -w ' %{http_code}\n' "$(url /nosuch)"
    stop_server
fi
same xz-T2 xz -T2 --block-size=256KiB -6 -c numbers.txt
same bash-pipeline bash -c 'sort -r numbers.txt | head -3; seq 1 2000 | awk "{ s += \$1 } END { print s }" | tr 0-9 a-j; (cd / && ls -d tmp); exit 7'
same cxx-threads "$H/threads"

# ---------------------------------------------------------------- totals = valgrind's "in use at exit"
# Both runs see the same environment: programs copy it into their heap
# (gawk's ENVIRON: 2 blocks a variable). Valgrind gives its client its own
# LD_PRELOAD and a few variables (LD_LIBRARY_PATH, GLIBCXX_FORCE_NEW, ...):
# our run gets those too, our LD_PRELOAD padded with slashes to the same
# length, and valgrind's run gets our TRACKER_* (which it ignores).
vg_env() {
    mapfile -t VG_ADDED < <(comm -13 <(env /usr/bin/env | sort) <(env valgrind -q /usr/bin/env 2>/dev/null | sort) |
        grep -v '^LD_PRELOAD=')
    local vgp d
    vgp=$(env valgrind -q /usr/bin/env 2>/dev/null | sed -n 's/^LD_PRELOAD=//p')
    d=$(dirname "$LIB")
    PADDED_LIB=$LIB
    while [ ${#PADDED_LIB} -lt ${#vgp} ]; do d="$d/"; PADDED_LIB="$d/$(basename "$LIB")"; done
}
# valgrind_vs_tracker NAME CMD...: bytes and blocks in use at exit, by both
# (CMD's own process: valgrind does not follow children, so CMD starts none).
valgrind_vs_tracker() {
    local name=$1 vg ours out; shift
    out="$R/vg-$name.%p.txt"
    vg=$(cd "$WORK" && env TRACKER_OUT="$out" TRACKER_FORMAT=json timeout 120 \
        valgrind --run-libc-freeres=no --run-cxx-freeres=no "$@" 2>&1 >/dev/null </dev/null |
        sed -n 's/.*in use at exit: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' | tr -d ,)
    (cd "$WORK" && env "${VG_ADDED[@]}" LD_PRELOAD="$PADDED_LIB" TRACKER_OUT="$out" TRACKER_FORMAT=json \
        "$@" >/dev/null 2>&1 </dev/null)
    ours=$(cat $R/vg-"$name".*.txt 2>/dev/null | sed -n 's/.*"total":{"size":\([0-9]*\),"count":\([0-9]*\).*/\1 \2/p' | tail -n 1)
    if [ -z "$vg" ]; then fail "$name: valgrind ran" "an 'in use at exit' line" "none"; return; fi
    check_eq "$name: live bytes and blocks at exit = valgrind's in use at exit ($vg)" "$vg" "$ours"
}
cc -std=c11 -D_GNU_SOURCE -g -O2 -o "$TEST_TMP/leaky_prog" tests/preload/leaky_prog.c
if command -v valgrind >/dev/null 2>&1; then
    vg_env
    valgrind_vs_tracker leaky_prog "$TEST_TMP/leaky_prog" 100
    valgrind_vs_tracker sqlite3 sqlite3 :memory: 'create table t(a); insert into t values (1), (2); select sum(a) from t;'
    valgrind_vs_tracker xz xz -c small.txt
    valgrind_vs_tracker gawk gawk 'BEGIN { for (i = 0; i < 2000; i++) a[i] = i "x"; print length(a) }'
    export PERL_HASH_SEED=0 # perl's hashes are laid out the same in both runs
    valgrind_vs_tracker perl perl -e 'my %h; $h{$_} = 1 for 1 .. 100; print "x\n"'
    unset PERL_HASH_SEED
    valgrind_vs_tracker git git -C "$WORK/repo" log -1 --format=%H
    export PYTHONHASHSEED=0 # the same for python's str hashes
    valgrind_vs_tracker python3 "$PY" -S -c 'import json; print(json.dumps({str(i): i for i in range(100)})[:20])'
    unset PYTHONHASHSEED
    valgrind_vs_tracker rdynamic "$H/rdynamic_clash"
    valgrind_vs_tracker cxx-no-threads "$H/threads" 0
else
    skip "totals = valgrind" "valgrind not installed (scripts/deps.sh test installs it)"
fi

# ---------------------------------------------------------------- the defects of issue 11, one case each
# Nothing of ours by default: no thread, no signal handler, no fd.
out=$(with_lib st "$H/sig_malloc" 2>&1)
check_eq "malloc in a signal handler, single-threaded: the process stays single-threaded, and finishes" \
    "$("$H/sig_malloc" 2>&1)" "$out"
check_eq "fd numbers: the program's first open() gets the same fd, same count of open fds" \
    "$("$H/fd_probe" first)" "$(with_lib fd "$H/fd_probe" first)"
check_eq "fd numbers: the same after an on-demand report (TRACKER_SIGNAL=USR2)" \
    "$("$H/fd_probe" first)" "$(TRACKER_SIGNAL=USR2 with_lib fdr "$H/fd_probe" report)"
check "... and that on-demand report was written" grep -qs 'on demand' $R/fdr.*.txt
# python3 with stripped extension modules: the symbolizer (libdw) reads their
# symbol tables and would keep an fd on each; it is closed after each report.
pyfds='import os, signal, ssl, sqlite3
if os.environ.get("TRACKER_SIGNAL"):
    os.kill(os.getpid(), signal.SIGUSR2)
    x = [bytearray(100) for _ in range(10)]
print(sorted(os.listdir("/proc/self/fd"), key=int), open("/dev/null").fileno())'
check_eq "fd numbers: python3 has the same fds after an on-demand report (libdw's are closed)" \
    "$("$PY" -c "$pyfds" 2>&1)" "$(TRACKER_SIGNAL=USR2 with_lib pyfd "$PY" -c "$pyfds" 2>&1)"
check "... and that report was written" grep -qs 'on demand' $R/pyfd.*.txt
check_eq "a daemon that closed every fd: nothing written into its data file by an on-demand report" \
    "data fd=3 size=0" "$(TRACKER_SIGNAL=USR2 with_lib fdc "$H/fd_probe" closeall "$TEST_TMP/data.bin")"
rc0=0; rc1=0
{ timeout 10 bash -c 'kill -USR2 $$; sleep 5' || rc0=$?; } 2>/dev/null
{ with_lib usr2 timeout 10 bash -c 'kill -USR2 $$; sleep 5' || rc1=$?; } 2>/dev/null
check_eq "SIGUSR2 still has its default action (terminates) without TRACKER_SIGNAL" "$rc0" "$rc1"

# signalfd daemon: SIGTERM blocked in every thread, read from a signalfd.
# sigfd_run LABEL ENV...: start it preloaded, SIGTERM it once ready; SIGFD_RC, SIGFD_OUT.
sigfd_run() {
    local label=$1 pid; shift
    SIGFD_OUT=$TEST_TMP/sigfd.$label.out
    env "$@" LD_PRELOAD="$LIB" TRACKER_OUT="$R/sigfd-$label.%p.txt" "$H/sigfd_daemon" >"$SIGFD_OUT" 2>&1 &
    pid=$!
    started "$pid"
    for _ in $(seq 1 100); do grep -q ready "$SIGFD_OUT" && break; sleep 0.1; done
    term_status "$pid" 10
    SIGFD_RC=$TERM_RC
}
sigfd_run default TRACKER_X=1
check_eq "signalfd daemon: SIGTERM is read by the program, clean exit 0" 0 "$SIGFD_RC"
check "... it says so" grep -q 'clean shutdown (signal 15)' "$SIGFD_OUT"
sigfd_run thread TRACKER_SIGNAL=USR2 TRACKER_SIGNAL_THREAD=1
check_eq "signalfd daemon with the opt-in reporter thread (it blocks every signal): clean exit 0" 0 "$SIGFD_RC"

if timeout 10 script -q -e -c 'exit 3' /dev/null </dev/null >/dev/null 2>&1; rc0=$?; [ "$rc0" -eq 3 ]; then
    rc1=0
    with_lib script timeout 20 script -q -e -c 'exit 3' /dev/null </dev/null >/dev/null 2>&1 || rc1=$?
    check_eq "script -c 'exit 3': exits 3, not hung (its SIGCHLD is its own)" 3 "$rc1"
else
    skip "script -c 'exit 3'" "util-linux script gives $rc0 here without the preload"
fi

if u0=$(timeout 10 unshare -U id -u 2>&1); then
    u1=$(with_lib unshare timeout 10 unshare -U id -u 2>&1)
    check_eq "unshare -U id -u: works as without the preload (single-threaded)" "$u0" "$u1"
else
    skip "unshare -U id" "user namespaces not allowed here: $u0"
fi

# fork while reports are made, from a multithreaded parent.
fork_storm() {
    local label=$1; shift
    local start=$SECONDS
    out=$(timeout 120 env "$@" LD_PRELOAD="$LIB" TRACKER_SIGNAL=USR2 TRACKER_OUT="$R/fork-$label.%p.txt" \
        "$H/fork_storm" 300 2>&1)
    check_eq "fork x300 during on-demand reports ($label): every child exits" "forks=300 exited=300 hung=0" "$out"
    check_range "... within 100 s" 0 100 $((SECONDS - start))
    check_range "... each child wrote its own report, named by its own pid" 300 300 \
        "$(grep -l ' forked (' $R/fork-"$label".*.txt | xargs grep -l 'pid [0-9]*, at exit' | wc -l)"
    check "... and the parent made on-demand reports meanwhile" grep -qs 'on demand' $R/fork-"$label".*.txt
}
fork_storm hooks TRACKER_X=1
fork_storm thread TRACKER_SIGNAL_THREAD=1

check_eq "-rdynamic program with its own tracker_init: called once, by itself" \
    "tracker_init called 1 time(s)" "$(with_lib clash "$H/rdynamic_clash")"
clash_line=$(grep -n 'LEAK-CLASH' tests/host/rdynamic_clash.c | cut -d: -f1)
check "... and its report is not empty: it names its own kept block" \
    grep -qs "rdynamic_clash.c:$clash_line: size=100 B, count=1" $R/clash.*.txt

exports=$(nm -D --defined-only "$LIB" | awk '{ print $3 }' | sort | tr '\n' ' ')
check_eq "exports: only the malloc family, _exit/_Exit, prctl and the privilege drops (nm -D)" \
    "_Exit _exit aligned_alloc calloc chroot free malloc malloc_usable_size memalign posix_memalign prctl pvalloc realloc reallocarray setegid seteuid setgid setregid setresgid setresuid setreuid setuid valloc " "$exports"

api0=$("$H/api_check")
check_eq "malloc API: every edge case (posix_memalign(0), aligned_alloc, realloc(p, 0), overflow, errno) as glibc" \
    "$api0" "$(with_lib api "$H/api_check")"
check "... posix_memalign(&p, 0, 64) is EINVAL" grep -q 'posix_memalign(0, 64) *rc=22' <<<"$api0"

# ---------------------------------------------------------------- stack use of the hooks and of a report
# build/host/stack_use paints a 1 MiB thread stack, allocates from 12 new call
# sites (walks with rule-cache misses), then asks for a report: the preload's
# part is the difference with the plain run (hooks: the walk, libdw's CFI), and
# what the report took of the program's stack (it runs on a stack of its own).
read -r _ plain_allocs _ _ <<<"$(build/host/stack_use)"
read -r _ allocs _ report <<<"$(LD_PRELOAD=$LIB TRACKER_SIGNAL=USR2 TRACKER_OUT="$R/stack_use.%p.txt" build/host/stack_use)"
hook_bytes=$(( ${allocs:-0} - ${plain_allocs:-0} ))
report_bytes=$(( ${report:-0} - ${allocs:-0} ))
echo "# stack: plain ${plain_allocs:-?} B, with the hooks ${allocs:-?} B (+$hook_bytes), after a report ${report:-?} B (+$report_bytes)"
check_range "stack: the hooks' walks (with libdw misses) take <= 2 KiB of the program's stack ($hook_bytes B)" 0 2048 "$hook_bytes"
check_range "stack: an on-demand report takes <= 8 KiB of the program's stack ($report_bytes B)" 0 8192 "$report_bytes"
check "stack: that report was written" grep -qs '^== tracker report [0-9]* (pid [0-9]*, on demand' "$R"/stack_use.*.txt

# ---------------------------------------------------------------- exit paths and the launcher
check "_exit (dash: sh -c 'exit 3') writes a report" bash -c "
    LD_PRELOAD='$LIB' TRACKER_OUT='$R/dash.%p.txt' sh -c 'exit 3'; [ \$? -eq 3 ] && grep -qs 'at _exit' $R/dash.*.txt"
(cd "$WORK" && mkdir -p sub && LD_PRELOAD=$LIB TRACKER_OUT=rel.%p.txt bash -c 'cd sub && true')
check "a relative TRACKER_OUT is resolved once, at load (not after the program's chdir)" \
    bash -c "ls '$WORK'/rel.*.txt && ! ls '$WORK'/sub/rel.*.txt"

# An idle program asked for an on-demand report (no allocation after the
# signal, no reporter thread): the report is written at its exit, before the exit report.
LD_PRELOAD=$LIB TRACKER_SIGNAL=USR2 TRACKER_OUT="$R/idle.%p.txt" sleep 2 &
pid=$!
started "$pid"
sleep 0.7
kill -USR2 "$pid"
rc=0; wait "$pid" || rc=$?; forget_pid "$pid"
check_eq "idle program with TRACKER_SIGNAL=USR2: SIGUSR2 does not end it" 0 "$rc"
check "... the report it asked for is written at exit, said so" grep -qs 'on demand, written at exit' $R/idle.*.txt

# Fatal signals: no report by default (no handler of ours); TRACKER_FATAL=1
# installs them, and the process still ends by the same signal.
crash_line=$(grep -n 'LEAK-CRASH' tests/host/crash.c | cut -d: -f1)
for how in segv abort; do
    rc0=0; rc1=0; rc2=0
    { (ulimit -c 0; exec "$H/crash" "$how") >/dev/null || rc0=$?; } 2>/dev/null
    { (ulimit -c 0; with_lib "crash-$how" "$H/crash" "$how") >/dev/null || rc1=$?; } 2>/dev/null
    { (ulimit -c 0; TRACKER_FATAL=1 with_lib "fatal-$how" "$H/crash" "$how") >/dev/null || rc2=$?; } 2>/dev/null
    check_eq "crash $how: the same signal ends it, without and with TRACKER_FATAL=1" "$rc0 $rc0" "$rc1 $rc2"
    check "... no report without TRACKER_FATAL (no handler of ours)" bash -c "! grep -qs 'tracker report' $R/crash-$how.*.txt"
    check "... with it, a report at the signal names the kept block's line" \
        grep -qs "crash.c:$crash_line: size=77 B, count=1" $R/fatal-"$how".*.txt
done
rc=0
LD_PRELOAD=$LIB TRACKER_FATAL=1 TRACKER_OUT="$R/fatal-term.%p.txt" sleep 10 &
pid=$!
started "$pid"
sleep 0.5
term_status "$pid" 10
check_eq "TRACKER_FATAL=1: SIGTERM still ends sleep with 143" 143 "$TERM_RC"
check "... after a report at SIGTERM" grep -qs 'at signal SIGTERM' $R/fatal-term.*.txt

LR=$TEST_ROOT/bin/leak-report
rec_line=$(grep -n 'LEAK-RECORD' tests/preload/leaky_prog.c | cut -d: -f1)
rc=0
(cd "$WORK" && "$LR" -o lr1 "$TEST_TMP/leaky_prog" 40 >"$TEST_TMP/lr1.out" 2>"$TEST_TMP/lr1.err") || rc=$?
check_eq "leak-report PROGRAM: the program's exit status" 0 "$rc"
check "... last line: where the reports are (absolute) and the top site" \
    grep -q "^leak-report: 1 report(s) in $WORK/lr1/ (leaky_prog: pid [0-9]*, exit status 0); top site: tests/preload/leaky_prog.c:$rec_line: size=8160 B, count=40" "$TEST_TMP/lr1.err"
rc=0
(cd "$WORK" && "$LR" -o lr2 bash -c 'sh -c "exit 0"; seq 3 | wc -l; (kill -9 $BASHPID); exit 6' >/dev/null 2>"$TEST_TMP/lr2.err") || rc=$?
check_eq "leak-report bash ...: bash's exit status" 6 "$rc"
check "... every process has its own report file, by pid (forks included)" \
    bash -c "[ \$(ls '$WORK'/lr2/*.txt | wc -l) -ge 4 ]"
check "... the killed subshell is named: ended without a report" grep -q 'ended without a report.*[0-9](bash)' "$TEST_TMP/lr2.err"
rc=0
"$LR" -o "$WORK/lr3" bash -c 'kill -9 $$' >/dev/null 2>"$TEST_TMP/lr3.err" || rc=$?
check_eq "leak-report, program killed by SIGKILL: 137" 137 "$rc"
check "... and it says the program wrote no report" grep -q 'bash (pid [0-9]*, killed by SIGKILL) wrote no report' "$TEST_TMP/lr3.err"
if printf 'int main(void) { return 4; }\n' >"$TEST_TMP/static.c" && cc -static -o "$TEST_TMP/static" "$TEST_TMP/static.c" 2>/dev/null; then
    rc=0
    "$LR" -o "$WORK/lr4" "$TEST_TMP/static" 2>"$TEST_TMP/lr4.err" || rc=$?
    check_eq "leak-report, static binary: still runs, its exit status" 4 "$rc"
    check "... it says it cannot be tracked" grep -q 'cannot be tracked: a static binary' "$TEST_TMP/lr4.err"
else
    skip "leak-report on a static binary" "no static libc here (libc6-dev)"
fi
rc=0
{ "$LR" -f -o "$WORK/lr6" "$H/crash" segv >/dev/null 2>"$TEST_TMP/lr6.err" || rc=$?; } 2>/dev/null
check_eq "leak-report -f, a segfault: 139" 139 "$rc"
check "... one report, and the top site said" grep -q '^leak-report: 1 report(s) in .*(crash: pid [0-9]*, killed by SIGSEGV); top site: ' "$TEST_TMP/lr6.err"
rc=0
"$LR" -o "$WORK/lr5" no-such-program-here 2>"$TEST_TMP/lr5.err" || rc=$?
check_eq "leak-report, unknown program: 127 and a message" "127 1" "$rc $(grep -c 'not found' "$TEST_TMP/lr5.err")"

done_testing
