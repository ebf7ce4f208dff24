#!/usr/bin/env bash
# leak-report - runs a program under the preloaded tracker (bin/libtracker.so) and says where each process's leak report is.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: leak-report [-o DIR] [-s SIGNAL [-t]] [-f] [-r] [-n TOP] [-k KEY] [--json] [--] PROGRAM [ARGS...]
Runs PROGRAM with the allocation tracker preloaded, as heaptrack does. Every
process of the run (forked and exec'd children included) writes its own report,
DIR/PID.txt, at exit() / return from main / _exit(); at the end one line on
stderr says where the reports are and names the top site of PROGRAM itself.
  -o DIR     report directory (default: ./leak-report.PROGRAM.PID, made absolute)
  -s SIGNAL  the signal that asks for a report on demand (default RTMIN+7, a
             real-time signal programs rarely use: `kill -s RTMIN+7 PID`);
             written at the process's next allocation; `-s none`: no handler.
             At the end, how many were asked for and written; a program that
             puts its own handler on the signal is named, with the fix
  -t         a tracker thread (all signals blocked) writes on-demand reports at
             once, even in an idle program or one whose own allocator never
             enters the tracker (redis with its jemalloc) (costs one thread)
  -f         also a report when a fatal signal (SEGV, ABRT, TERM, INT, ...) ends
             a process: a handler of ours on each signal left at its default
  -r         each report also says, per site, which live blocks are lost and
             which are held, and by whom (a scan of a copy-on-write fork:
             docs/retention.md)
  -n TOP     groups per report (default 10); -k KEY: lineno|traceback|filename
  --json     reports in JSON
Exit status: PROGRAM's (128+N when killed by signal N); 127 if it is not found.
Not tracked (said so): static binaries and setuid/setgid programs (the loader
ignores LD_PRELOAD there). No report (said so): a process killed by a signal
or abort() (without -f; SIGKILL always), or one that exec'd such a program.
EOF
    exit 2
}

self_dir=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
lib=${LEAK_REPORT_LIB:-$self_dir/libtracker.so}
[ -f "$lib" ] || lib=$self_dir/../bin/libtracker.so
default_signal=RTMIN+7
asked_signal=0 dir="" signal=$default_signal thread=0 fatal=0 top="" key="" json=0 retention=0
while [ $# -gt 0 ]; do
    case "$1" in
        -o) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
        -s) [ $# -ge 2 ] || usage; signal=${2#SIG}; asked_signal=1; shift 2 ;;
        -t) thread=1; shift ;;
        -f) fatal=1; shift ;;
        -r) retention=1; shift ;;
        -n) [ $# -ge 2 ] || usage; top=$2; shift 2 ;;
        -k) [ $# -ge 2 ] || usage; key=$2; shift 2 ;;
        --json) json=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "leak-report: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
[ -f "$lib" ] || { echo "leak-report: $lib not found (run make)" >&2; exit 2; }
lib=$(readlink -f "$lib")

prog=$(command -v -- "$1" 2>/dev/null || true)
case "$prog" in
    /*|./*|../*) ;;
    *) echo "leak-report: $1: not found (or a shell builtin: nothing to track)" >&2; exit 127 ;;
esac
name=$(basename "$1")
[ -n "$dir" ] || dir=leak-report.$name.$$
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Run as root, the program may drop privileges (memcached -u, nginx's and
# lighttpd's workers): like /tmp, anyone may add a report, none replace another's.
[ "$(id -u)" -ne 0 ] || chmod 1777 "$dir"

# The file the loader actually starts: a script's interpreter (through env).
elf=$prog
if [ "$(head -c 2 "$prog" 2>/dev/null)" = "#!" ]; then
    read -r interp arg _ < <(head -n 1 "$prog" | cut -c 3-) || true
    [ "$(basename "${interp:-}")" = env ] && [ -n "${arg:-}" ] && interp=$(command -v -- "$arg" || echo "$arg")
    elf=${interp:-$prog}
fi
untracked=""
if [ -u "$elf" ] || [ -g "$elf" ]; then
    [ "$(stat -c %u "$elf")" = "$(id -u)" ] || untracked="a setuid/setgid program ($elf): the loader ignores LD_PRELOAD"
fi
if [ -z "$untracked" ] && command -v readelf >/dev/null 2>&1 && readelf -h "$elf" >/dev/null 2>&1 &&
    ! readelf -lW "$elf" 2>/dev/null | grep -q 'program interpreter'; then
    untracked="a static binary ($elf): LD_PRELOAD cannot enter it"
fi
[ -z "$untracked" ] || echo "leak-report: $1 cannot be tracked: $untracked; running it untracked" >&2

export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" TRACKER_OUT="$dir/%p.txt" TRACKER_LAUNCHER=1
[ "$signal" = none ] && signal=""
[ -z "$signal" ] || export TRACKER_SIGNAL="$signal"
[ "$thread" -eq 0 ] || export TRACKER_SIGNAL_THREAD=1
[ "$fatal" -eq 0 ] || export TRACKER_FATAL=1
[ -z "$top" ] || export TRACKER_TOP="$top"
[ -z "$key" ] || export TRACKER_KEY="$key"
[ "$json" -eq 0 ] || export TRACKER_FORMAT=json
[ "$retention" -eq 0 ] || export TRACKER_RETENTION=1

# The program runs as our child (so we learn its pid and status), with our
# stdin (`<&0`: a background job would get /dev/null). Ctrl-C reaches it from
# the terminal directly; TERM and HUP sent to us are passed on.
"$@" <&0 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM
trap 'kill -HUP "$pid" 2>/dev/null || true' HUP
trap ':' INT
rc=0
# A signal we pass on interrupts wait (status 128+N) even when the program
# then exits by itself: once it is gone, one more wait gives its own status
# (127: the first wait had it already).
while :; do
    { wait "$pid" && rc=0 || rc=$?; } 2>/dev/null # (not bash's "Segmentation fault" line: we say it below)
    kill -0 "$pid" 2>/dev/null && continue
    { wait "$pid" && rc2=0 || rc2=$?; } 2>/dev/null
    [ "$rc2" -eq 127 ] || rc=$rc2
    break
done
unset LD_PRELOAD
how="exit status $rc"
[ "$rc" -le 128 ] || how="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"

# ---- what each process left: a final report (at exit, _exit, or a fatal signal with -f)
final='^== tracker report [0-9]* (pid [0-9]*, at \(_\{0,1\}[eE]xit\|signal \)\|^{"capture"'
reports=0 silent="" top_site=""
for f in "$dir"/*.txt; do
    [ -f "$f" ] || continue
    p=$(basename "$f" .txt)
    if grep -q "$final" "$f"; then
        reports=$((reports + 1))
    elif grep -q '^== tracker: pid [0-9]* installs a seccomp' "$f"; then
        : # said below, with its own reason
    else
        what=$(sed -n 's/^== tracker: pid [0-9]* [a-z]* (\(.*\)) ==$/\1/p' "$f" | tail -n 1)
        silent="$silent $p${what:+($(basename "$what"))}"
    fi
done
main="$dir/$pid.txt"
if [ -f "$main" ] && [ "$json" -eq 0 ]; then
    # First group line of the last report of the program itself.
    top_site=$(awk '/^== tracker report/ { n = 0; top = "" } !/^(==|#| )/ && n++ == 0 { top = $0 } END { print top }' "$main")
fi
if [ -n "$silent" ]; then
    hint="killed by a signal or abort (-f reports those, but never SIGKILL), exec of an untrackable program, or its report file could not be written (chroot, a user without write access to it)"
    [ "$fatal" -eq 0 ] || hint="killed by SIGKILL or a signal the program handles itself, exec of an untrackable program, or its report file could not be written (chroot, a user without write access to it)"
    echo "leak-report: ended without a report ($hint):$silent" >&2
fi
# What each process said of itself: the allocator it found, reports it skipped.
grep -h '^== tracker: pid [0-9]* \(allocator\|report skipped\|installs a seccomp\)' "$dir"/*.txt 2>/dev/null | sed 's/^== tracker: /leak-report: /; s/ ==$//' >&2 || true
if [ ! -f "$main" ] || ! grep -q "$final" "$main"; then
    why=$untracked
    if [ -z "$why" ] && [ -f "$main" ] && grep -q '^== tracker: pid [0-9]* installs a seccomp' "$main"; then
        why="it installed a seccomp filter, after which a report (files to open) could make the filter kill it"
    elif [ -z "$why" ] && [ "$rc" -lt 128 ]; then
        why="it exited normally, so its report file could not be written (it changed user or root directory, or it ran out of memory for the report)"
    fi
    echo "leak-report: $name (pid $pid, $how) wrote no report${why:+: $why}" >&2
fi
# ---- the on-demand signal: asked for vs written, and a program that took it
ondemand=""
if [ -n "$signal" ] && [ -f "$main" ]; then
    counts=$(sed -n 's/^== tracker: pid [0-9]* signal [0-9]*: \([0-9]* requested, [0-9]* written\) (.*) ==$/\1/p' "$main" | tail -n 1)
    # said when -s was given, or when a report was asked for with the default
    case "$asked_signal:$counts" in 0:0\ requested*|*:) ;; *) ondemand="; on demand ($signal): $counts" ;; esac
    taken=$(sed -n 's/^== tracker: pid [0-9]* signal [0-9]*: taken by the program (\([^)]*\)).*$/\1/p' "$main" | head -n 1)
    if [ -n "$taken" ]; then
        fix=RTMIN+7
        [ "$signal" != RTMIN+7 ] || fix=RTMIN+9
        echo "leak-report: $name set the action of SIG$signal itself ($taken): reports asked for with it are lost and not counted; run again with -s $fix (any signal it leaves alone)" >&2
    fi
fi
echo "leak-report: $reports report(s) in $dir/ ($name: pid $pid, $how)$ondemand; top site: ${top_site:-none (nothing live at exit, or see the files)}" >&2
exit "$rc"
