#!/usr/bin/env bash
# bench/check_paired.sh: check bench_buddy's (or bench_buddy_v3's)
# 2-thread throughput line against the CSV of the same run.
#
# The report judges "2 threads: throughput 2 / 1 thr (repeat, IMPL)" on
# the paired figure: the median over the repeats of 2 a / b, a and b the
# wall ns/op of IMPL at 1 and 2 threads in one repeat
# (bench_result_paired()), and prints the ratio of the medians beside it.
# This recomputes both from the CSV's rows and fails unless the report
# printed them (within 0.5%: the CSV's and the report's rounding), unless
# every repeat has both rows, or unless the run had an odd number of
# repeats (the median is then one of them).
#
# Usage: check_paired.sh --csv FILE --report FILE --impl IMPL
set -euo pipefail

csv='' report='' impl=''
while [ $# -gt 0 ]; do
    case "$1" in
    --csv) csv=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --impl) impl=$2; shift 2 ;;
    *) echo "check_paired.sh: bad argument '$1'" >&2; exit 2 ;;
    esac
done
if [ -z "$csv" ] || [ -z "$report" ] || [ -z "$impl" ]; then
    echo "check_paired.sh: need --csv, --report and --impl" >&2
    exit 2
fi
line=$(grep -F "2 threads: throughput 2 / 1 thr (repeat, $impl)" "$report" ||
    true)
if [ -z "$line" ]; then
    echo "check_paired.sh: no throughput line for $impl in $report" >&2
    exit 1
fi
printed=$(printf '%s\n' "$line" | sed -E 's/.*\) +([0-9.e+-]+) x .*/\1/')
medians=$(printf '%s\n' "$line" | sed -E 's/.*medians ([0-9.e+-]+)x.*/\1/')
awk -F, -v impl="$impl" -v printed="$printed" -v medians="$medians" '
function med(v, n,   i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
    return v[(n + 1) / 2]
}
NR > 1 && $1 == "repeat" && $2 == impl && ($3 == 1 || $3 == 2) {
    ns[$3, $4] = $7; if ($4 > nr) nr = $4
}
END {
    if (nr < 1 || nr % 2 == 0) {
        printf "check_paired.sh: %d repeats (need an odd number)\n", nr
        exit 1
    }
    for (r = 1; r <= nr; r++) {
        if (!((1, r) in ns) || !((2, r) in ns) || ns[2, r] <= 0) {
            printf "check_paired.sh: repeat %d lacks a row\n", r
            exit 1
        }
        p[r] = 2 * ns[1, r] / ns[2, r]; a[r] = ns[1, r]; b[r] = ns[2, r]
    }
    want = med(p, nr); wm = 2 * med(a, nr) / med(b, nr)
    if (printed + 0 <= 0 || (printed - want) / want > 0.005 ||
        (want - printed) / want > 0.005) {
        printf "check_paired.sh: paired %s printed, %.4f from the CSV\n",
            printed, want
        exit 1
    }
    if (medians + 0 <= 0 || (medians - wm) / wm > 0.01 ||
        (wm - medians) / wm > 0.01) {
        printf "check_paired.sh: medians %s printed, %.4f from the CSV\n",
            medians, wm
        exit 1
    }
    printf "check_paired.sh: %s paired %.4f, medians %.4f (%d repeats)\n",
        impl, want, wm, nr
}' "$csv"
