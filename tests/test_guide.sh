#!/usr/bin/env bash
# test_guide.sh - runs the command blocks of docs/workshop.md in order, so the workshop guide cannot rot.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# How docs/workshop.md marks its blocks:
#   ```sh          run here, in order, in one bash (set -eu), so variables
#                  such as SERVER_PID carry over from block to block
#   ```sh slow     run only with GUIDE_SLOW=1 (make demo, make compare: minutes)
#   ```sh human    never run: needs a person (a browser, a picture to look at)
#   ```text        the output to expect, pasted from a real run
#   <!-- expect: REGEX -->  after a block: its output must match REGEX
#                  (grep -E; @SITE@ stands for fetch_user_data.c:<LEAK-SITE line>)
# The guide gets PORT (a free port, or GUIDE_PORT) and W (a scratch directory)
# from here, and RESULTS (make demo, make compare) points into the scratch
# space, so results/ is left alone. GUIDE_KEEP=DIR keeps each block's output.
GUIDE=${GUIDE:-docs/workshop.md}
GUIDE_SECONDS=${GUIDE_SECONDS:-420}
BLOCKS="$TEST_TMP/blocks"
mkdir -p "$BLOCKS" "$TEST_TMP/w"

[ -f "$GUIDE" ] || { fail "$GUIDE exists" "a file" "none"; done_testing; }

# ---- cut the guide into numbered blocks: NN.sh, NN.expect, NN.title
awk -v dir="$BLOCKS" -v slow="${GUIDE_SLOW:-0}" '
    function out(ext) { return sprintf("%s/%02d.%s", dir, n, ext) }
    /^```/ && !inb {
        inb = 1; tag = substr($0, 4); run = (tag == "sh" || (tag == "sh slow" && slow == "1"))
        if (run) { n++; first = ""; printf "" > out("sh") }
        next
    }
    /^```$/ && inb { inb = 0; if (run) { close(out("sh")); print first > out("title"); close(out("title")) } ; next }
    inb && run { print > out("sh"); if (first == "" && $0 !~ /^#/ && $0 != "") first = $0; next }
    !inb && n && /^<!-- expect: .* -->$/ {
        e = $0; sub(/^<!-- expect: /, "", e); sub(/ -->$/, "", e); print e >> out("expect")
    }
' "$GUIDE"
nblocks=$(ls "$BLOCKS"/*.sh 2>/dev/null | wc -l)
check_range "$GUIDE has runnable sh blocks" 5 999 "$nblocks"

# ---- one bash runs them all, in order; a failing command stops it there
driver="$TEST_TMP/driver.sh"
{
    echo "set -eu"
    echo "cd '$TEST_ROOT'"
    echo "trap '[ -z \"\${SERVER_PID:-}\" ] || kill \$SERVER_PID 2>/dev/null || true' EXIT"
    for b in "$BLOCKS"/*.sh; do
        nn=$(basename "$b" .sh)
        echo "echo $nn >'$BLOCKS/current'"
        echo ". '$b' >'$BLOCKS/$nn.out' 2>&1 </dev/null"
        echo "echo $nn >>'$BLOCKS/done'"
    done
} >"$driver"

if [ -n "${GUIDE_PORT:-}" ]; then PICKED=$GUIDE_PORT; else pick_port || exit 1; fi
t0=$(date +%s)
rc=0
PORT=$PICKED W="$TEST_TMP/w" RESULTS="$TEST_TMP/results" timeout "$GUIDE_SECONDS" bash "$driver" >"$TEST_TMP/driver.out" 2>&1 || rc=$?
secs=$(($(date +%s) - t0))

# Servers the guide started (their ready lines name them) are ours to stop.
for pid in $(cat "$BLOCKS"/*.out 2>/dev/null | sed -n 's/^ready: .* pid=\([0-9]*\).*/\1/p'); do
    proc_gone "$pid" || started "$pid"
done

# ---- one line per block: did it run to the end?
for b in "$BLOCKS"/*.sh; do
    nn=$(basename "$b" .sh)
    title="block $nn: $(head -c 70 "$BLOCKS/$nn.title")"
    if grep -qx "$nn" "$BLOCKS/done" 2>/dev/null; then
        pass "$title"
    elif [ "$(cat "$BLOCKS/current" 2>/dev/null)" = "$nn" ]; then
        why="exit status $rc"; [ "$rc" = 124 ] && why="still running after ${GUIDE_SECONDS} s"
        fail "$title" "exit 0" "$why; its output ends: $(tail -n 5 "$BLOCKS/$nn.out" 2>/dev/null | tr '\n' '|')"
    else
        fail "$title" "run" "not reached"
    fi
    [ -f "$BLOCKS/$nn.expect" ] || continue
    while IFS= read -r re; do
        re=${re//@SITE@/$SITE}
        if grep -Eq -- "$re" "$BLOCKS/$nn.out" 2>/dev/null; then
            pass "block $nn output matches /$re/"
        else
            fail "block $nn output matches /$re/" "a match" "$(head -c 300 "$BLOCKS/$nn.out" 2>/dev/null | tr '\n' '|')"
        fi
    done <"$BLOCKS/$nn.expect"
done
check_eq "the guide's sh blocks ran to the end (in ${secs} s)" 0 "$rc"

# ---- the pasted outputs name the line the source has today
stale=$(grep -Ho 'fetch_user_data\.c:[0-9]*' "$GUIDE" docs/solutions.md 2>/dev/null | grep -v ":$SITE\$" | sort -u | tr '\n' ' ')
check_eq "every fetch_user_data.c:N in the guide and solutions is the LEAK-SITE line ($LEAK_LINE)" "" "$stale"

if [ -n "${GUIDE_KEEP:-}" ]; then mkdir -p "$GUIDE_KEEP" && cp "$BLOCKS"/* "$GUIDE_KEEP"/; fi
done_testing
