#!/usr/bin/env bash
# check_layers.sh - fails when a stage of the tracker references a symbol of a later stage (its objects' nm).
set -eu

usage() {
    echo "usage: $0 [OBJDIR]   (default build/obj/pic/tracker: one folder per stage)" >&2
    echo "The stages, lowest first: base unwind record symbolize report preload. A stage may use" >&2
    echo "its own and lower stages only (docs/architecture.md); the malloc family is the C library's API." >&2
    exit 2
}
case "${1:-}" in -h|--help) usage ;; esac
[ $# -le 1 ] || usage
root=${1:-build/obj/pic/tracker}
stages="base unwind record symbolize report preload"
[ -d "$root" ] || { echo "check-layers: $root: no such folder (run make first)" >&2; exit 2; }

# Every defined symbol with its stage's rank; then each undefined one, ranked.
defs=$(mktemp)
trap 'rm -f "$defs"' EXIT
rank=0
for s in $stages; do
    for o in "$root/$s"/*.o; do
        [ -f "$o" ] || continue
        nm --defined-only "$o" | awk -v r=$rank -v s=$s -v f="$(basename "$o")" '$2 ~ /^[TDBRV]$/ { print $3, r, s, f }'
    done
    rank=$((rank + 1))
done | sort -u >"$defs"

bad=0 rank=0 checked=0
for s in $stages; do
    for o in "$root/$s"/*.o; do
        [ -f "$o" ] || continue
        checked=$((checked + 1))
        while read -r sym; do
            case "$sym" in malloc|calloc|realloc|free|reallocarray|memalign|aligned_alloc|posix_memalign|valloc|pvalloc|malloc_usable_size|_exit|_Exit|prctl|setuid|seteuid|setreuid|setresuid|setgid|setegid|setregid|setresgid|chroot) continue ;; esac
            hit=$(awk -v x="$sym" '$1 == x { print $2, $3, $4; exit }' "$defs")
            [ -n "$hit" ] || continue
            read -r r ds df <<<"$hit"
            if [ "$r" -gt "$rank" ]; then
                echo "check-layers: $s/$(basename "$o") uses $sym of $ds/$df (a later stage)" >&2
                bad=$((bad + 1))
            fi
        done < <(nm --undefined-only "$o" | awk '{ print $2 }')
    done
    rank=$((rank + 1))
done
[ "$checked" -gt 0 ] || { echo "check-layers: no objects under $root" >&2; exit 2; }
if [ "$bad" -gt 0 ]; then
    echo "check-layers: $bad upward reference(s) in $checked objects" >&2
    exit 1
fi
echo "check-layers: $checked objects, no stage uses a later one ($stages)"
