#!/usr/bin/env bash
# test_transparency.sh - real programs (servers that drop root, allocators, runtimes) and the patterns real software has behave the same with the preloaded tracker: stdout, stderr, exit status, time within 2x + 1 s, a report at exit.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

# Each case is one ok/FAIL line: run plain, then preloaded (run_pair in lib.sh),
# the first difference told in one line. A case that cannot run here (a package
# missing: scripts/deps.sh test installs them) is a `# skip` line.
# TRANSPARENCY_ONLY=REGEX runs only the cases whose name matches;
# TRANSPARENCY_KEEP=DIR keeps every run's output and reports there (DIR/runs);
# TRANSPARENCY_LIB=PATH runs the cases against another build of the library
# (an older commit's, for the matrix's "before" column).

# Every verdict also goes to results/transparency.tsv (case, verdict, cause,
# plain ms, preloaded ms): docs/transparency.md's matrix is made from it.
PAIR_LIB=${TRANSPARENCY_LIB:-$TEST_ROOT/bin/libtracker.so}
export LEAK_REPORT_LIB=$PAIR_LIB # the launcher's cases too
TP=$TEST_ROOT/build/transparency
SRC=$TEST_ROOT/tests/transparency
R=$TEST_TMP/runs           # outputs and reports of every run
W=$TEST_TMP/work           # inputs, compiled Java/Rust/Go programs
mkdir -p "$R" "$W"
ONLY=${TRANSPARENCY_ONLY:-}
TSV=${TRANSPARENCY_TSV:-$TEST_ROOT/results/transparency.tsv}
mkdir -p "$(dirname "$TSV")"
: >"$TSV"
ulimit -c 0 # the crash and abort cases dump no core

if ! make -s bin/libtracker.so bin/leak-report >"$TEST_TMP/make.log" 2>&1; then
    fail "make builds the library and the launcher" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log")"
    done_testing
fi
# -k: a program whose library is missing (jemalloc, tcmalloc, mimalloc) is skipped, the rest run.
make -s -k transparency-progs >"$TEST_TMP/make-tp.log" 2>&1 || true

# tcase NAME [-r COMM | -n] [-x LINE] [--] CMD...: one case.
#   -r COMM[:N]  a report at exit is expected from N processes (default 1) named
#            COMM (default: CMD's own name); -n: no report expected (said why at the call)
#   -x LINE  the plain run's first stdout line must be LINE too (what the
#            program should do, not only the same thing twice)
#   -L       the second run is through bin/leak-report (its own stderr lines
#            set apart), not a bare LD_PRELOAD
#   -F SED   both runs' stdout pass through `sed SED` before they are compared
#            (kept whole as NAME.out0.raw/.out1.raw: a documented difference checked apart)
#   -S       CMD is a server's driver (tests/transparency/*.sh): the preload or
#            the launcher goes to the server only (TP_WRAP), not to its clients
tcase() {
    local name=$1 comm="" want=1 expect="" why="" launcher="" server=0 filter="" o; shift
    while :; do
        case "$1" in
            -r) comm=$2; shift 2 ;;
            -n) want=0; shift ;;
            -x) expect=$2; shift 2 ;;
            -L) launcher=$TEST_ROOT/bin/leak-report; shift ;;
            -S) server=1; shift ;;
            -F) filter=$2; shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    if [ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]]; then return; fi
    [ -n "$comm" ] || comm=$(basename "$1")
    PAIR_LAUNCHER=$launcher PAIR_SERVER=$server run_pair "$R" "$name" "$@"
    if [ -n "$filter" ]; then
        for o in out0 out1; do mv "$R/$name.$o" "$R/$name.$o.raw" && sed "$filter" "$R/$name.$o.raw" >"$R/$name.$o"; done
    fi
    why=$(pair_diff "$R" "$name")
    if [ -z "$why" ] && [ -n "$expect" ] && [ "$(head -n 1 "$R/$name.out0")" != "$expect" ]; then
        why="both printed \"$(head -n 1 "$R/$name.out0" | head -c 80)\", not \"$expect\""
    fi
    local count=1 got
    case "$comm" in *:*) count=${comm#*:}; comm=${comm%:*} ;; esac
    if [ -z "$why" ] && [ "$want" -eq 1 ] && got=$(reports_of "$name" "$comm") && [ "$got" -lt "$count" ]; then
        why="$got of $count report(s) at exit from $comm ($(find "$R" -path "$R/$name.*.txt" -o -path "$R/$name.lr/*.txt" | wc -l) report file(s) in all)"
        [ -z "$launcher" ] || why="$why; $(tail -n 1 "$R/$name.lr.err" | head -c 120)"
    fi
    local secs="$((PAIR_MS0 / 1000)).$((PAIR_MS0 % 1000 / 100)) s -> $((PAIR_MS1 / 1000)).$((PAIR_MS1 % 1000 / 100)) s"
    if [ -z "$why" ]; then
        pass "$name: same output and exit status ($(status_name "$PAIR_RC0")), $secs$([ "$want" -eq 1 ] && echo ", report at exit")"
        printf '%s\tok\t\t%s\t%s\n' "$name" "$PAIR_MS0" "$PAIR_MS1" >>"$TSV"
    else
        fail "$name" "the same as plain" "$why"
        printf '%s\tFAIL\t%s\t%s\t%s\n' "$name" "$why" "$PAIR_MS0" "$PAIR_MS1" >>"$TSV"
    fi
}

# reports_of NAME COMM: how many report files of case NAME are from a process
# named COMM (its path or name, as the tracker's first line gives it; a forked
# child's line names its parent's, maybe retitled: "nginx: master process ...")
# and have a report at exit.
reports_of() {
    local f n=0
    for f in "$R/$1".*.txt "$R/$1".lr/*.txt; do
        [ -f "$f" ] && grep -q "\(started\|forked\) (\(.*/\)\?$2[):]" "$f" &&
            grep -q '^== tracker report [0-9]* (pid [0-9]*, at exit' "$f" && n=$((n + 1))
    done
    echo "$n"
}

# tskip NAME REASON: a case that cannot run here.
tskip() {
    if [ -n "$ONLY" ] && ! [[ $1 =~ $ONLY ]]; then return; fi
    skip "$1" "$2"
    printf '%s\tskip\t%s\t\t\n' "$1" "$2" >>"$TSV"
}

# have_prog NAME: build/transparency/NAME was built (else the case is skipped with make's reason).
have_prog() {
    [ -x "$TP/$1" ] && return 0
    tskip "$2" "build/transparency/$1 not built: $(grep -m 1 -E 'error|cannot find' "$TEST_TMP/make-tp.log" | head -c 100)"
    return 1
}
# have_cmd CMD CASE PACKAGE: CMD is on PATH (else CASE is skipped, naming PACKAGE).
have_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    tskip "$2" "$1 not installed (Debian package $3: scripts/deps.sh test)"
    return 1
}
root_only() {
    [ "$(id -u)" -eq 0 ] && return 0
    tskip "$1" "needs root (it drops privileges or chroots)"
    return 1
}

seq 1 300000 >"$W/numbers.txt"

# ================================================================ servers that drop root, foreign allocators
if have_cmd redis-server redis redis-server && have_cmd redis-cli redis redis-tools; then
    tcase redis -S -r redis-server bash "$SRC/redis.sh"
fi
# The preload goes to the server only (-S: its clients are not the subject; a
# shell loop of short processes is a case of its own below). Each also through
# bin/leak-report (the way docs/preload.md gives for servers that drop root).
if have_cmd memcached memcached-drop-root memcached; then
    tcase memcached-drop-root -S -r memcached bash "$SRC/memcached.sh"
    tcase memcached-drop-root-launcher -S -L -r memcached bash "$SRC/memcached.sh"
fi
if have_cmd nginx nginx-worker-user nginx-light; then
    tcase nginx-worker-user -S -r nginx:3 bash "$SRC/nginx.sh"
    tcase nginx-worker-user-launcher -S -L -r nginx:3 bash "$SRC/nginx.sh"
fi
if have_cmd lighttpd lighttpd-username lighttpd; then
    tcase lighttpd-username -S -r lighttpd bash "$SRC/lighttpd.sh"
    tcase lighttpd-username-launcher -S -L -r lighttpd bash "$SRC/lighttpd.sh"
fi
have_prog jemalloc_api jemalloc-api && tcase jemalloc-api "$TP/jemalloc_api"
have_prog tcmalloc_api tcmalloc-api && tcase tcmalloc-api "$TP/tcmalloc_api"
have_prog mimalloc_api mimalloc-api && tcase mimalloc-api "$TP/mimalloc_api"

# ================================================================ runtimes
if have_cmd java java-version openjdk-17-jre-headless; then
    tcase java-version java -version
    if have_cmd javac java-threads openjdk-17-jdk-headless &&
        javac -d "$W/java" "$SRC/Threads.java" 2>"$TEST_TMP/javac.err"; then
        tcase java-threads java -cp "$W/java" Threads
    fi
fi
RUSTC=$(command -v rustc || ls "$HOME"/.cargo/bin/rustc 2>/dev/null || true)
if [ -z "$RUSTC" ]; then tskip rust-threads "rustc not installed (Debian package rustc: scripts/deps.sh test)"
elif "$RUSTC" -O -o "$W/threads_rs" "$SRC/threads.rs" 2>"$TEST_TMP/rustc.err"; then
    tcase rust-threads "$W/threads_rs"
else tskip rust-threads "rustc failed: $(head -n 1 "$TEST_TMP/rustc.err")"; fi
if have_cmd go go-cgo golang-go; then
    # Go's os.Exit is a raw exit_group system call, not libc's exit: no report at exit to expect.
    if (cd "$W" && CGO_ENABLED=1 GOCACHE=$TEST_ROOT/build/transparency/gocache GOPATH=$W/gopath GOPROXY=off \
        GOFLAGS='' GO111MODULE=off go build -o "$W/cgo" "$SRC/cgo.go") 2>"$TEST_TMP/go.err"; then
        tcase go-cgo -n "$W/cgo"
    else tskip go-cgo "go build failed: $(head -n 1 "$TEST_TMP/go.err")"; fi
fi
have_cmd node node-workers nodejs && tcase node-workers node "$SRC/workers.js"
PY=$(command -v /usr/bin/python3 || command -v python3)
tcase python3-threads "$PY" "$SRC/threads.py"
tcase perl-threads perl "$SRC/threads.pl"
have_cmd tclsh tclsh tcl && tcase tclsh tclsh "$SRC/threads.tcl"

# ================================================================ everyday tools
# A shell loop of 200 short processes (configure scripts, make, CI jobs): each
# process pays for its own report at exit.
tcase shell-200-processes bash -c 'for i in $(seq 1 100); do echo "$i" | tr 0-9 a-j >/dev/null; done; echo done'
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >"$W/hi.c"
tcase gcc-compile gcc -O2 -Wall -o "$W/hi" "$W/hi.c"
tcase sort-parallel sort --parallel=4 -S 2M -k1,1nr "$W/numbers.txt"
have_cmd zstd zstd-T2 zstd && tcase zstd-T2 zstd -T2 -3 -c "$W/numbers.txt"
if have_cmd jq jq jq; then
    seq 1 100000 | awk 'BEGIN { printf "[" } { printf "%s{\"n\":%d,\"s\":\"x%d\"}", (NR > 1 ? "," : ""), $1, $1 } END { print "]" }' >"$W/data.json"
    tcase jq jq -c '[.[] | select(.n % 7 == 0) | .s] | length, .[-1]' "$W/data.json"
fi
have_cmd gdb gdb-batch gdb && tcase gdb-batch gdb -nx -batch -ex 'print 6*7' -ex 'file /bin/true' -ex 'info line main'
have_cmd openssl openssl openssl && tcase openssl openssl dgst -sha256 -r "$W/numbers.txt"
if have_cmd cmake cmake-script cmake; then
    printf 'set(L "")\nforeach(i RANGE 2000)\n  list(APPEND L "item${i}")\nendforeach()\nlist(SORT L)\nlist(LENGTH L n)\nlist(GET L 5 x)\nmessage("n=${n} x=${x}")\n' >"$W/s.cmake"
    tcase cmake-script cmake -P "$W/s.cmake"
fi

# ================================================================ patterns (tests/transparency/*.c)
have_prog min_stack min-stack-threads && tcase min-stack-threads -x "stack size 16384: set" "$TP/min_stack"
have_prog sigalt sigaltstack-alloc && tcase sigaltstack-alloc -x "handled 200 of 200 on a 16 KiB sigaltstack" "$TP/sigalt" alloc
# _exit from a crash handler: the process ends without exit(); a report may be skipped there.
have_prog sigalt sigaltstack-crash-exit && tcase sigaltstack-crash-exit -n "$TP/sigalt" crash
have_prog atfork_alloc atfork-child-alloc && tcase atfork-child-alloc "$TP/atfork_alloc"
mkdir -p "$W/plugins0" "$W/plugins1"
have_prog cancel_fork cancel-then-fork && tcase cancel-then-fork "$TP/cancel_fork" "$TP/libtp_plugin.so" "$W/plugins0"
# A filter that kills on open: the report file cannot be opened after it (no report to expect).
have_prog seccomp seccomp-no-open && tcase seccomp-no-open -n "$TP/seccomp"
have_prog vm_limit ulimit-v && tcase ulimit-v -r vm_limit bash -c 'ulimit -v 65536 && exec "$0"' "$TP/vm_limit"
have_prog coroutines ucontext-coroutines && tcase ucontext-coroutines "$TP/coroutines"
have_prog dlopen_cycles dlopen-dlclose-4000 &&
    tcase dlopen-dlclose-4000 -x "4000 cycles, sum 1019866, RSS growth after cycle 100 under 16 MiB: yes" \
        "$TP/dlopen_cycles" "$TP/libtp_plugin.so"
# glibc's checks end these by SIGABRT: no report.
have_prog badfree double-free && tcase double-free -n "$TP/badfree" double
have_prog badfree invalid-free && tcase invalid-free -n "$TP/badfree" invalid
have_prog own_malloc own-malloc-over-libc && tcase own-malloc-over-libc "$TP/own_malloc"
if root_only setuid-drop && have_prog privdrop setuid-drop; then
    tcase setuid-drop -x "uid 65534 gid 65534, sum 4390" "$TP/privdrop" setuid
    tcase setuid-drop-launcher -L -r privdrop "$TP/privdrop" setuid
fi
if root_only chroot && have_prog privdrop chroot; then
    mkdir -p "$W/jail"
    tcase chroot -x "in chroot, sum 4390" "$TP/privdrop" chroot "$W/jail"
fi
have_prog privdrop closefrom && tcase closefrom "$TP/privdrop" closefrom
have_prog spawn vfork-exec && tcase vfork-exec "$TP/spawn" vfork
have_prog spawn posix-spawn && tcase posix-spawn "$TP/spawn" spawn
have_prog spawn popen && tcase popen "$TP/spawn" popen
have_prog threads64 threads-64 && tcase threads-64 "$TP/threads64"
have_prog signal_storm signal-storm && tcase signal-storm "$TP/signal_storm"
have_prog daemonize fork-daemonize-storm && tcase fork-daemonize-storm -x "forks=150 children ok=150 grandchildren done=150" "$TP/daemonize"
have_prog nss getaddrinfo-nss && tcase getaddrinfo-nss "$TP/nss"
have_prog locale_iconv setlocale-iconv && tcase setlocale-iconv -x "locale: C.UTF-8" "$TP/locale_iconv"
have_prog cxx_exceptions cxx-exceptions-threads && tcase cxx-exceptions-threads "$TP/cxx_exceptions"
# glibc's counters see the tracker's 16-byte record in front of each block
# (docs/preload.md): after 300 blocks they may exceed plain's by at most
# that, 300 x 16 B; after freeing, the tracker's own memory (libdw's, a
# report's: its own heap, tracker/base/ialloc.c) must not be there. With
# glibc's tcache off the counters must then be plain's exactly; as programs
# run, glibc counts the chunks its tcache keeps (7 per size, 3 sizes here)
# as in use, each with our 16 bytes: at most 21 x 16 B over plain's.
if have_prog mallinfo mallinfo2; then
    for v in mallinfo2 mallinfo2-no-tcache; do
        tunables=glibc.malloc.tcache_count=7 slack=$((21 * 16))
        [ "$v" = mallinfo2 ] || tunables=glibc.malloc.tcache_count=0 slack=0
        tcase "$v" -r mallinfo -F 1,2d env GLIBC_TUNABLES=$tunables "$TP/mallinfo"
        if [ -z "$ONLY" ] || [[ $v =~ $ONLY ]]; then
            for l in 1 2; do
                b0=$(sed -n "${l}s/.*: +\([0-9]*\) B\$/\1/p" "$R/$v.out0.raw")
                b1=$(sed -n "${l}s/.*: +\([0-9]*\) B\$/\1/p" "$R/$v.out1.raw")
                if [ "$l" = 1 ]; then
                    check_range "$v: uordblks after 300 blocks grows by at most the 16-byte records (B more than plain's ${b0:-?} B)" \
                        0 4800 $((${b1:-0} - ${b0:-0}))
                else
                    check_range "$v: uordblks after freeing them is plain's (${b0:-?} B), give or take the records of chunks glibc's tcache keeps" \
                        0 "$slack" $((${b1:-99999} - ${b0:-0}))
                fi
            done
        fi
    done
fi
have_prog dlopen_self dlopen-libtracker && tcase dlopen-libtracker -x "dlopen ok; before, after" "$TP/dlopen_self" "$PAIR_LIB"
have_prog tls_dtor tls-destructors && tcase tls-destructors -x "destructors that allocated: 32 of 32" "$TP/tls_dtor"
have_prog exit_thread exit-from-thread && tcase exit-from-thread "$TP/exit_thread"
have_prog deep_recursion deep-recursion-4k && tcase deep-recursion-4k -x "allocated with 4 KiB of stack left: ok" "$TP/deep_recursion"
have_prog openmp openmp && tcase openmp "$TP/openmp"

if [ -n "${TRANSPARENCY_KEEP:-}" ]; then mkdir -p "$TRANSPARENCY_KEEP" && cp -r "$R" "$TRANSPARENCY_KEEP/"; fi
done_testing
