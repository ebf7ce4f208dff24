#!/usr/bin/env bash
# test_guide.sh - runs the commands of docs/workshop.md and docs/lab.md's "By hand" block, and checks every line number, site and figure they show against that run.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# How docs/workshop.md marks its blocks:
#   ```sh          run here, in order, in one bash (set -eu), so variables
#                  such as SERVER_PID carry over from block to block
#   ```sh slow     run only with GUIDE_SLOW=1 (make demo, make compare: minutes)
#   ```sh human    never run: needs a person (a browser, root, a picture)
#   ```text        the output to expect, pasted from a real run: checked
#                  against the output of the last block run before it
#   <!-- expect: REGEX -->      after a block: its output must match REGEX
#                  (grep -E; @SITE@ stands for fetch_user_data.c:<LEAK-SITE line>)
#   <!-- growth: KEY LO..HI --> the last "KEY":N of the block's output minus
#                  the first is in LO..HI (a flat curve: RSS in kB)
#   <!-- seconds: LO..HI -->    the block took LO..HI seconds (the time the
#                  prose around it promises)
# docs/lab.md (BYHAND): the first sh block after "## By hand" runs too (port 5000
# replaced by a free one), and the text blocks of that section are checked against it.
#
# What "checked against the run" means, for a text block: every file:line of
# the repository in it (server/routes.c:89) appears in the real output; every
# capture line of a repository site (SITE: size=... count=...) appears with the
# same sizes and counts; every /stats line agrees on requests, leaked bytes and
# blocks, mode and leak kind, and on rss_kb within 10%. For the rest of the
# docs, the guide, solutions.md and the exercise sheets: every file:line of
# the repository they name is either in the output of this run or a line that
# carries a marker (LEAK-SITE, LEAK-RESPONSE, EXERCISE-SITE): never a stale number. Every
# picture they show is in the tree.
#
# The guide gets PORT (a free port, or GUIDE_PORT) and W (a scratch directory)
# from here, and RESULTS (make demo, make compare) points into the scratch
# space, so results/ is left alone. GUIDE_KEEP=DIR keeps each block's output.
GUIDE=${GUIDE:-docs/workshop.md}
BYHAND=${BYHAND:-docs/lab.md}
GUIDE_SECONDS=${GUIDE_SECONDS:-420}
BLOCKS="$TEST_TMP/blocks"
mkdir -p "$BLOCKS" "$TEST_TMP/w"
# The README's long sections moved to these pages: they are checked as the README was.
DOCS="README.md $GUIDE docs/solutions.md $(ls docs/exercises/*.md docs/lab.md docs/sites.md docs/preload.md docs/dashboard.md docs/production.md docs/tracker.md 2>/dev/null | tr '\n' ' ')"

[ -f "$GUIDE" ] || { fail "$GUIDE exists" "a file" "none"; done_testing; }

# ---- cut a document into numbered blocks: NN.sh, NN.expect, NN.text, NN.title
# split DOC PREFIX MODE: MODE guide (every sh block) or readme (the first sh
# block after the "## By hand" heading, and the text blocks of that section).
split_doc() {
    awk -v dir="$BLOCKS" -v pre="$2" -v mode="$3" -v slow="${GUIDE_SLOW:-0}" '
        function out(ext) { return sprintf("%s/%s%02d.%s", dir, pre, n, ext) }
        /^## / && mode == "readme" { insec = ($0 ~ /^## By hand/); if (!insec) attach = 0 }
        /^```/ && !inb {
            inb = 1; tag = substr($0, 4); text = 0
            if (mode == "guide") run = (tag == "sh" || (tag == "sh slow" && slow == "1"))
            else run = (insec && tag == "sh" && !done++)
            if (run) { n++; first = ""; printf "" > out("sh"); attach = 1 }
            # a block not run here (sh slow, sh human): what follows it is its own,
            # not the last run block (its seconds, its pasted output)
            if (!run && tag ~ /^sh/) attach = 0
            if (tag == "text" && n && attach) text = 1
            next
        }
        /^```$/ && inb {
            inb = 0
            if (run) { close(out("sh")); print first > out("title"); close(out("title")) }
            run = 0; next
        }
        inb && run { print > out("sh"); if (first == "" && $0 !~ /^#/ && $0 != "") first = $0; next }
        inb && text { print >> out("text"); next }
        !inb && n && attach && /^<!-- (expect|growth|seconds): .* -->$/ {
            e = $0; sub(/^<!-- /, "", e); sub(/ -->$/, "", e)
            k = e; sub(/:.*/, "", k); sub(/^[a-z]+: /, "", e)
            print e >> out(k)
        }
    ' "$1"
}
split_doc "$GUIDE" g guide
split_doc "$BYHAND" r readme
nblocks=$(ls "$BLOCKS"/g*.sh 2>/dev/null | wc -l)
check_range "$GUIDE has runnable sh blocks" 5 999 "$nblocks"
check_eq "$BYHAND has a runnable \"By hand\" block" 1 "$(ls "$BLOCKS"/r*.sh 2>/dev/null | wc -l)"
# The By hand block is written for port 5000, as a reader types it.
for b in "$BLOCKS"/r*.sh; do sed -i 's/\b5000\b/$PORT/g' "$b"; done

# ---- one bash per document runs its blocks in order; a failing command stops it there
driver() { # driver PREFIX: the script that runs PREFIX's blocks
    echo "set -eu"
    echo "cd '$TEST_ROOT'"
    echo "trap '[ -z \"\${SERVER_PID:-}\" ] || kill \$SERVER_PID 2>/dev/null || true' EXIT"
    for b in "$BLOCKS"/"$1"*.sh; do
        nn=$(basename "$b" .sh)
        echo "echo $nn >'$BLOCKS/$1.current'"
        echo "t0=\$(date +%s%N)"
        echo ". '$b' >'$BLOCKS/$nn.out' 2>&1 </dev/null"
        echo "echo \$(((\$(date +%s%N) - t0) / 1000000)) >'$BLOCKS/$nn.ms'"
        echo "echo $nn >>'$BLOCKS/$1.done'"
    done
}
# A server the By hand block left running (it has no SERVER_PID): its ready line names it.
stop_ready_servers() {
    for pid in $(cat "$BLOCKS"/*.out 2>/dev/null | sed -n 's/^ready: .* pid=\([0-9]*\).*/\1/p' | sort -u); do
        if ! proc_gone "$pid"; then started "$pid"; stop_pid "$pid"; fi
    done
}

declare -A RC SECS
for doc in g r; do
    driver "$doc" >"$TEST_TMP/driver.$doc.sh"
    if [ -n "${GUIDE_PORT:-}" ]; then PICKED=$GUIDE_PORT; else pick_port || exit 1; fi
    t0=$(date +%s)
    RC[$doc]=0
    PORT=$PICKED W="$TEST_TMP/w" RESULTS="$TEST_TMP/results" timeout "$GUIDE_SECONDS" \
        bash "$TEST_TMP/driver.$doc.sh" >"$TEST_TMP/driver.$doc.out" 2>&1 || RC[$doc]=$?
    SECS[$doc]=$(($(date +%s) - t0))
    stop_ready_servers
done

# ---- helpers for the checks
MARKED=$(grep -rn -E 'LEAK-SITE|LEAK-RESPONSE|EXERCISE-SITE' server tracker tests --include='*.c' 2>/dev/null |
    cut -d: -f1,2 | tr '\n' ' ')
cat "$BLOCKS"/*.out >"$TEST_TMP/all.out" 2>/dev/null

# repo_sites FILE: the file:line tokens of FILE that name a file of this repository
# (as written; a bare name like routes.c:71 resolved when one file has that name),
# one per line as "written<TAB>repo/path:N".
repo_sites() {
    grep -oE '[A-Za-z0-9_./-]+\.(c|h):[0-9]+' "$1" 2>/dev/null | sort -u | while IFS= read -r tok; do
        path=${tok%:*} line=${tok##*:}
        path=${path#./}
        if [ ! -f "$path" ]; then
            case "$path" in */*) continue ;; esac
            found=$(find server tracker tests scripts loadgen -name "$path" 2>/dev/null)
            [ "$(echo "$found" | grep -c .)" = 1 ] || continue
            path=$found
        fi
        printf '%s\t%s:%s\n' "$tok" "$path" "$line"
    done
}
# site_seen REPO_PATH:N OUTFILE: the run printed it (or it is a marked line).
site_seen() {
    case " $MARKED " in *" $1 "*) return 0 ;; esac
    grep -qF -- "$1" "$2"
}
# stale_sites DOC OUTFILE: the file:line tokens of DOC that OUTFILE does not show (nor a marker).
stale_sites() {
    local bad="" tok site
    while IFS=$'\t' read -r tok site; do
        site_seen "$site" "$2" || bad="$bad $tok"
    done < <(repo_sites "$1")
    echo "${bad# }"
}

# ---- one line per block: did it run to the end, does it print what the doc says?
for b in "$BLOCKS"/*.sh; do
    nn=$(basename "$b" .sh) doc=${nn%%[0-9]*}
    name="$GUIDE"; [ "$doc" = r ] && name=$BYHAND
    title="$name block ${nn#?}: $(head -c 70 "$BLOCKS/$nn.title")"
    out="$BLOCKS/$nn.out"
    if grep -qx "$nn" "$BLOCKS/$doc.done" 2>/dev/null; then
        pass "$title"
    elif [ "$(cat "$BLOCKS/$doc.current" 2>/dev/null)" = "$nn" ]; then
        why="exit status ${RC[$doc]}"; [ "${RC[$doc]}" = 124 ] && why="still running after ${GUIDE_SECONDS} s"
        fail "$title" "exit 0" "$why; its output ends: $(tail -n 5 "$out" 2>/dev/null | tr '\n' '|')"
        continue
    else
        fail "$title" "run" "not reached"
        continue
    fi
    if [ -f "$BLOCKS/$nn.expect" ]; then
        while IFS= read -r re; do
            re=${re//@SITE@/$SITE}
            if grep -Eq -- "$re" "$out" 2>/dev/null; then
                pass "block $nn output matches /$re/"
            else
                fail "block $nn output matches /$re/" "a match" "$(head -c 300 "$out" 2>/dev/null | tr '\n' '|')"
            fi
        done <"$BLOCKS/$nn.expect"
    fi
    if [ -f "$BLOCKS/$nn.growth" ]; then
        while read -r key range; do
            vals=$(grep -oE "\"$key\":[0-9]+" "$out" | cut -d: -f2)
            first=$(echo "$vals" | head -n 1) last=$(echo "$vals" | tail -n 1)
            check_range "block $nn: $key grows by ${range} ($(echo $vals | tr ' ' ','))" \
                "${range%..*}" "${range#*..}" "$(( ${last:-0} - ${first:-0} ))"
        done <"$BLOCKS/$nn.growth"
    fi
    if [ -f "$BLOCKS/$nn.seconds" ]; then
        range=$(head -n 1 "$BLOCKS/$nn.seconds") ms=$(cat "$BLOCKS/$nn.ms" 2>/dev/null || echo x)
        check_range "block $nn took ${range} s, as the prose says (ms)" \
            "$((${range%..*} * 1000))" "$((${range#*..} * 1000))" "$ms"
    fi
    [ -f "$BLOCKS/$nn.text" ] || continue

    # -- the text blocks after it, against its real output
    check_eq "block $nn: every file:line of its pasted output is in the real output" "" \
        "$(stale_sites "$BLOCKS/$nn.text" "$out")"
    bad=""
    while IFS= read -r l; do
        [ -f "${l%%:*}" ] || continue            # a site of the repository only
        want=${l%%, average=*}
        grep -qF -- "$want" "$out" || bad="$bad | $want (real: $(grep -m 1 -F -- "${l%%: size=*}: " "$out" | cut -d, -f1-2))"
    done < <(grep -E '^[A-Za-z0-9_./-]+\.c:[0-9]+( \(via [^)]*\))?: size=' "$BLOCKS/$nn.text")
    check_eq "block $nn: every capture line of a repository site has the real sizes and counts" "" "${bad# | }"
    bad=""
    while IFS= read -r l; do
        req=$(echo "$l" | grep -oE '"requests":[0-9]+')
        real=$(grep -F -- "$req," "$out" | grep -F '"rss_kb"' | head -n 1)
        [ -n "$real" ] || real=$(grep -F -- "$req " "$out" | head -n 1)
        for f in leaked_bytes leaked_blocks mode leak; do
            w=$(echo "$l" | grep -oE "\"$f\":(\"[a-z]*\"|[0-9]+)") r=$(echo "$real" | grep -oE "\"$f\":(\"[a-z]*\"|[0-9]+)")
            [ "$w" = "$r" ] || bad="$bad | $req: $w, real '$r'"
        done
        w=$(echo "$l" | grep -oE '"rss_kb":[0-9]+' | cut -d: -f2) r=$(echo "$real" | grep -oE '"rss_kb":[0-9]+' | cut -d: -f2)
        if [ -n "$w" ] && { [ -z "$r" ] || [ $((w * 10)) -lt $((r * 9)) ] || [ $((w * 10)) -gt $((r * 11)) ]; }; then
            bad="$bad | $req: rss_kb $w, real '$r' (+-10%)"
        fi
    done < <(grep -E '"requests":[0-9]+' "$BLOCKS/$nn.text")
    check_eq "block $nn: every /stats figure it shows agrees with the run (rss_kb +-10%)" "" "${bad# | }"
done
for doc in g r; do
    check_eq "$([ $doc = g ] && echo "$GUIDE" || echo "$BYHAND"): its blocks ran to the end (in ${SECS[$doc]} s)" 0 "${RC[$doc]}"
done

# ---- the rest of the docs: no file:line that this run did not print (or a marker)
for d in $DOCS; do
    check_eq "$d: every file:line it names is printed by this run or carries a marker" "" \
        "$(stale_sites "$d" "$TEST_TMP/all.out")"
    missing=""
    for img in $(grep -oE '!\[[^]]*\]\([^)]+\)' "$d" | sed 's/.*](\(.*\))/\1/'); do
        [ -f "$(dirname "$d")/$img" ] || missing="$missing $img"
    done
    check_eq "$d: every picture it shows is in the tree" "" "${missing# }"
done

# GUIDE_UPDATE=1: paste this run's /stats lines into the docs' text blocks (the
# figures other changes move, such as rss_kb; the line with the same "requests"
# and leak kind), then rerun the test to check the rest. Nothing else is rewritten.
if [ "${GUIDE_UPDATE:-0}" = 1 ]; then
    python3 - "$TEST_TMP/all.out" "$GUIDE" "$BYHAND" <<'PY'
import re, sys
real = open(sys.argv[1], errors="replace").read().split("\n")
for doc in sys.argv[2:]:
    lines, intext, n = open(doc).read().split("\n"), False, 0
    for i, l in enumerate(lines):
        if l.startswith("```"):
            intext = (l == "```text") and not intext
            continue
        m = re.match(r'^(\{"requests":\d+,|"requests":\d+ )', l)
        if not (intext and m):
            continue
        kind = re.search(r'"leak":"\w+"', l)
        same = [r for r in real if r.startswith(m.group(1)) and (not kind or kind.group(0) in r)]
        if same and same[0].rstrip() != l.rstrip():
            lines[i] = same[0].rstrip() + (" " if m.group(1).endswith(" ") else "")
            n += 1
    open(doc, "w").write("\n".join(lines))
    print("# GUIDE_UPDATE: %d /stats line(s) of %s replaced by this run's" % (n, doc))
PY
fi

if [ -n "${GUIDE_KEEP:-}" ]; then mkdir -p "$GUIDE_KEEP" && cp "$BLOCKS"/* "$GUIDE_KEEP"/; fi
done_testing
