#!/usr/bin/env bash
# test_server_layout.sh - server/ by concern: the lab at the top, exercises/, analysis/, http/; no include cycle; nothing outside tracker/ includes tracker_internal.h.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

for d in server/exercises server/analysis server/http; do
    check "$d exists and holds C files" test -n "$(ls "$d"/*.c 2>/dev/null)"
done
check_eq "the lab's own files stay at server/ (main, routes, fetch_user_data, user directory, cache)" \
    "server/fetch_user_data.c server/main.c server/profile_cache.c server/routes.c server/user_directory.c" \
    "$(ls server/main.c server/routes.c server/fetch_user_data.c server/user_directory.c server/profile_cache.c 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "no file under server/ includes tracker_internal.h" "" \
    "$(grep -rl 'tracker_internal\.h' server --include='*.[ch]' | tr '\n' ' ')"

# Who calls whom, from the objects (nm): file A -> file B when A uses a symbol
# B defines. A cycle there (exercise_card.c calling routes.c, routes.c calling
# exercise_card.c) is one between concerns; tsort finds the loops.
make -s bin/server >/dev/null 2>&1
OBJ=build/obj/O2
objs() { find server -name '*.c' | sort | sed "s|^|$OBJ/|; s|\.c\$|.o|"; } # not the stale ones of moved files
uses() {
    local defs; defs=$(for o in $(objs); do
        nm --defined-only "$o" | awk -v f="${o#"$OBJ"/}" '$2 ~ /^[TDBR]$/ { print $3, f }'; done | sort)
    for o in $(objs); do
        nm --undefined-only "$o" | awk '{ print $2 }' | sort -u | join - <(echo "$defs") | \
            awk -v f="${o#"$OBJ"/}" '{ print f, $2 }'
    done | awk '$1 != $2' | sort -u
}
graph=$(uses)
check_range "the call graph was read from the objects (edges)" 10 9999 "$(echo "$graph" | grep -c .)"
loops=$(echo "$graph" | tsort 2>&1 >/dev/null | grep -v 'input contains a loop' | tr '\n' ' ')
check_eq "no cycle between server files (tsort of file -> file whose symbol it uses)" "" "$loops"
# The test can fail: a planted cycle is found.
loops=$( { echo "$graph"; echo "server/analysis/rss.o server/analysis/history.o"; } | tsort 2>&1 >/dev/null | grep -c 'tsort: ')
check_range "... a planted call (rss.c -> history.c) is reported as a cycle" 1 99 "$loops"
check_eq "the exercises do not include routes.h" "" "$(grep -l 'routes\.h' server/exercises/*.c | tr '\n' ' ')"
check_eq "analysis/rss.c does not include history.h" "" "$(grep -l 'history\.h' server/analysis/rss.c)"
done_testing
