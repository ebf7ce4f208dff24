#!/usr/bin/env bash
# matrix.sh - the transparency matrix as a markdown table from two runs of tests/test_transparency.sh
# (results/transparency.tsv of each): case, verdict and cause before, verdict and cause after.
# usage: matrix.sh BEFORE.tsv AFTER.tsv
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BEFORE.tsv AFTER.tsv" >&2; exit 2; }
echo "| case | before | cause before | after | cause after |"
echo "|---|---|---|---|---|"
awk -F'\t' '
    # (a run'"'"'s temporary folder is not worth keeping: DIR)
    function cell(s) { gsub(/\|/, "\\|", s); gsub(/\/tmp\/leaklab\.[A-Za-z0-9]+\/runs\//, "DIR/", s); return s }
    NR == FNR { v0[$1] = $2; c0[$1] = $3; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } next }
    { v1[$1] = $2; c1[$1] = $3; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
    END {
        for (i = 0; i < n; i++) {
            k = order[i]
            printf "| %s | %s | %s | %s | %s |\n", k, (k in v0) ? v0[k] : "-", cell(c0[k]), (k in v1) ? v1[k] : "-", cell(c1[k])
        }
    }' "$1" "$2"
