#!/usr/bin/env bash
# test_faults.sh - things going wrong around the lab: server killed mid-load, port taken, package missing, Ctrl-C in `make demo`.
#
# Each fault must end in a clear one-line message and leave nothing running.
# Nothing is uninstalled: a missing package is a name that does not exist
# (scripts/deps.sh's DEPS_EXTRA) or a tool left out of PATH, and apt-get and
# sudo are stand-ins in a PATH directory of this test.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# ---------------------------------------------------------------- helpers
# children PID: PIDs whose parent is PID.
children() { procs_with 2 "$1"; }
# comm_of PID: the command name of PID.
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
# alive_of PIDS...: those of PIDS still running (not zombies).
alive_of() { local p; for p in "$@"; do proc_gone "$p" || echo "$p($(comm_of "$p"))"; done; }

# A stand-in bin directory: fake apt-get (never touches the system) and sudo.
FAKE="$TEST_TMP/fakebin"
mkdir -p "$FAKE"
cat >"$FAKE/apt-get" <<'EOF'
#!/bin/sh
# fake apt-get: "update" succeeds, "install" cannot find its packages (as apt says it).
case " $* " in
    *" install "*)
        for a in "$@"; do case "$a" in -*|install) ;; *) echo "E: Unable to locate package $a" >&2 ;; esac; done
        exit 100 ;;
esac
exit 0
EOF
printf '#!/bin/sh\nexit 1\n' >"$FAKE/sudo"               # sudo that needs a password
printf '#!/bin/sh\n[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n' >"$FAKE/id"   # not root
chmod +x "$FAKE"/*

# ================================================================ server killed mid-load
if start_server --leak-cap-mb 4000; then
    csv="$TEST_TMP/kill.csv"
    bash loadgen/run_load.sh --port "$PORT" --pid "$SERVER_PID" --requests 200000 --concurrency 8 \
        --label killed --csv "$csv" --ab-out "$TEST_TMP/kill-ab.txt" >"$TEST_TMP/kill.out" 2>"$TEST_TMP/kill.err" &
    load=$!
    # Wait for the load to be under way (>= 3 samples), at most 20 s.
    for _ in $(seq 1 200); do [ "$(lines "$csv" 2>/dev/null || echo 0)" -ge 4 ] && break; sleep 0.1; done
    kids=$(children "$load" | tr '\n' ' ')
    kid_names=$(for k in $kids; do comm_of "$k"; done | sort | tr '\n' ' ')
    rows_before=$(lines "$csv")
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null   # reap it here, without bash's "Killed" notice
    forget_pid "$SERVER_PID"
    rc=0
    for _ in $(seq 1 100); do proc_gone "$load" && break; sleep 0.1; done
    wait "$load" || rc=$?
    check "run_load.sh started ab (children: $kid_names)" grep -qw ab <<<"$kid_names"
    check "SIGKILL of the server mid-load: run_load.sh exits non-zero within 10 s (got $rc)" test "$rc" -ne 0
    sed 's/^/#   /' "$TEST_TMP/kill.err"
    # run_load.sh's own reason is its one line, the last; the lines before it
    # are its progress lines ("[killed] 1.0 s  requests ...").
    check "... its last stderr line says the server died" \
        grep -q "^run_load: server pid $SERVER_PID died during the load" <(tail -n 1 "$TEST_TMP/kill.err")
    check_eq "... and any other line is a progress line" 0 \
        "$(head -n -1 "$TEST_TMP/kill.err" | grep -vc '^\[killed\] ')"
    # shellcheck disable=SC2086 # a list of PIDs
    check_eq "... and leaves nothing it started running" "" "$(alive_of $kids)"
    rows=$(($(lines "$csv") - 1))
    check "the CSV keeps the samples taken before the kill ($rows rows; $((rows_before - 1)) seen before)" \
        test "$rows" -ge 3 -a "$rows" -ge $((rows_before - 1))
    check_eq "the CSV header is intact" "run,elapsed_s,requests,rss_kb" "$(head -n 1 "$csv")"
    check "every CSV row is whole (4 fields, numeric)" \
        awk -F, 'NR > 1 && !(NF == 4 && $2 ~ /^[0-9.]+$/ && $3 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/) { bad = 1 } END { exit bad }' "$csv"
fi

# ================================================================ port already in use
if start_server; then
    rc=0
    timeout 10 bin/server --port "$PORT" >"$TEST_TMP/busy.out" 2>"$TEST_TMP/busy.err" </dev/null || rc=$?
    check_eq "bin/server on a port in use: exit status 1" 1 "$rc"
    check "... one line: cannot listen on 127.0.0.1:$PORT: Address already in use" \
        test "$(cat "$TEST_TMP/busy.err")" = "server: cannot listen on 127.0.0.1:$PORT: Address already in use"
    rc=0
    PORT=$PORT REQUESTS=100 RESULTS="$TEST_TMP/busy-results" timeout 60 bash scripts/demo.sh \
        >"$TEST_TMP/demo-busy.out" 2>"$TEST_TMP/demo-busy.err" </dev/null || rc=$?
    check_eq "scripts/demo.sh on a port in use: exit status 1" 1 "$rc"
    check_eq "... one line on stderr" 1 "$(lines "$TEST_TMP/demo-busy.err")"
    echo "#   $(cat "$TEST_TMP/demo-busy.err")"
    check "... that names the port and says what to do" grep -q "port $PORT is busy.*PORT=" "$TEST_TMP/demo-busy.err"
    check_eq "... and the server already on that port still answers" 200 "$(http GET /stats)"
    stop_server
fi

# ================================================================ a missing package
rc=0
DEPS_EXTRA=leaklab-no-such-package PATH="$FAKE:$PATH" bash scripts/deps.sh demo \
    >"$TEST_TMP/deps1.out" 2>"$TEST_TMP/deps1.err" || rc=$?
check_eq "deps.sh, not root, no sudo, a package missing: exit status 1" 1 "$rc"
check "... says which package is missing" grep -qx "deps: missing Debian packages: leaklab-no-such-package" "$TEST_TMP/deps1.err"
check "... and the exact command to run" \
    grep -qx "deps: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends leaklab-no-such-package" \
    "$TEST_TMP/deps1.err"
sed 's/^/#   /' "$TEST_TMP/deps1.err"
rc=0
rm -f "$FAKE/id" "$FAKE/sudo"   # now as root (or with sudo): apt-get is tried, and fails
if [ "$(id -u)" -eq 0 ]; then
    DEPS_EXTRA=leaklab-no-such-package PATH="$FAKE:$PATH" bash scripts/deps.sh demo \
        >"$TEST_TMP/deps2.out" 2>"$TEST_TMP/deps2.err" || rc=$?
    check_eq "deps.sh as root, apt cannot find the package: exit status 1" 1 "$rc"
    check "... apt's reason and the failed command are shown" \
        test "$(grep -c -e 'Unable to locate package leaklab-no-such-package' -e '^deps: failed: .*apt-get install .*leaklab-no-such-package' "$TEST_TMP/deps2.err")" = 2
    sed 's/^/#   /' "$TEST_TMP/deps2.err"
fi
# A build package missing: plain `make` installs nothing; it stops with one line
# naming the package and `make deps` (-W: run the check again, as after an edit of deps.sh).
# Run as a user's top-level make: under `make test` the inherited MAKELEVEL
# would make it print "make[2]: ***" lines a user never sees.
rc=0
DEPS_EXTRA=leaklab-no-such-package PATH="$FAKE:$PATH" env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS make -s -W scripts/deps.sh build/deps-ok \
    >"$TEST_TMP/make.out" 2>"$TEST_TMP/make.err" </dev/null || rc=$?
check "make with a build package missing: stops (exit status $rc)" test "$rc" -ne 0
check_eq "... with one line naming it and make deps" \
    "missing Debian package(s): leaklab-no-such-package: run 'make deps' (or: sudo apt-get install leaklab-no-such-package)" \
    "$(grep -v '^make: \*\*\*' "$TEST_TMP/make.err")"
check "... and tries no install" test ! -s "$TEST_TMP/make.out"
# A tool missing from PATH: demo.sh says which and how to get it.
NOAB="$TEST_TMP/noab"
mkdir -p "$NOAB"
ln -s /usr/bin/* "$NOAB"/ 2>/dev/null
ln -s /bin/* "$NOAB"/ 2>/dev/null   # same names where /bin is /usr/bin: those fail, harmlessly
rm -f "$NOAB/ab"
rc=0
pick_port && PATH="$NOAB" PORT=$PICKED REQUESTS=100 RESULTS="$TEST_TMP/noab-results" \
    timeout 30 bash scripts/demo.sh >"$TEST_TMP/noab.out" 2>"$TEST_TMP/noab.err" </dev/null || rc=$?
check_eq "scripts/demo.sh without ab: exit status 1" 1 "$rc"
check "... one line: ab not found: run 'bash scripts/deps.sh demo'" \
    test "$(cat "$TEST_TMP/noab.err")" = "demo: ab not found: run 'bash scripts/deps.sh demo'"

# ================================================================ Ctrl-C during make demo
# make demo in its own session (setsid: session id = process group id = its pid);
# SIGINT to that whole group, as a terminal's Ctrl-C does. A non-interactive
# bash starts background commands with SIGINT ignored (and a script cannot trap
# a signal ignored at entry): env --default-signal=INT gives make what a
# terminal would, the default action.
if pick_port; then
    dport=$PICKED
    results="$TEST_TMP/demo-int"
    PORT=$dport REQUESTS=100000 RESULTS="$results" setsid env --default-signal=INT make -s demo >"$TEST_TMP/int.out" 2>"$TEST_TMP/int.err" </dev/null &
    sid=$!
    started "$sid"
    # Wait until ab runs against the leaky server (at most 60 s: make may rebuild first).
    seen=""
    for _ in $(seq 1 600); do
        seen=$(for p in $(session_pids "$sid"); do comm_of "$p"; done | sort -u | tr '\n' ' ')
        case " $seen " in *" ab "*) break ;; esac
        sleep 0.1
    done
    sleep 1
    before=$(session_pids "$sid" | tr '\n' ' ')
    srv=$(sed -n 's/^ready: .* pid=\([0-9]*\) .*/\1/p' "$results/server-leaky.log" 2>/dev/null | head -n 1)
    check "make demo is running the load (session: $seen)" grep -q 'ab.*server' <<<"$seen"
    kill -INT -- "-$sid" 2>/dev/null
    t0=$(date +%s)
    for _ in $(seq 1 200); do proc_gone "$sid" && break; sleep 0.1; done
    rc=0
    wait "$sid" || rc=$?
    forget_pid "$sid"
    check "Ctrl-C: make demo ends within 20 s, non-zero (status $rc, $(($(date +%s) - t0)) s)" test "$rc" -ne 0
    # shellcheck disable=SC2086 # a list of PIDs
    left=$(alive_of $before)
    check_eq "Ctrl-C: nothing it started is left running (of: $before)" "" "$left"
    check_eq "Ctrl-C: nothing left in its session" "" "$(session_pids "$sid")"
    check "Ctrl-C: the demo's server (pid ${srv:-?}) is gone" test -n "$srv" -a ! -e "/proc/${srv:-0}/stat"
    check "Ctrl-C: port $dport is free" port_free "$dport"
    check "Ctrl-C: demo.sh says it was interrupted" grep -q "demo: interrupted" "$TEST_TMP/int.err"
    # Whatever is left (a failure above): stop it by PID, never by name.
    # shellcheck disable=SC2086
    for p in $(session_pids "$sid"); do kill -KILL "$p" 2>/dev/null; done
fi
done_testing
