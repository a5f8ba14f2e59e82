#!/usr/bin/env bash
# bench/check_csv.sh: check a CSV written by bench_lockfree or bench_buddy
# --csv.
#
# Fails unless the header is exactly bench,impl,threads,repeat,ops,seconds,
# ns_per_op,cpu_seconds,cpu_ns_per_op,load1, every row is well formed with
# ops, seconds, ns_per_op, cpu_seconds and cpu_ns_per_op > 0 and load1 a
# load average (>= 0; -1 only where /proc/loadavg cannot be read), and
# every expected series (bench/impl at each thread count) has a row.
# A series named in --allow-missing may be absent (the sanitizer builds
# skip some; see bench/README.md); the script says so when it is.
#
# Usage: check_csv.sh --csv FILE --threads "1 2" --series "stack/lf_stack ..."
#                     [--allow-missing "stack/ck_stack_mpmc/2 ..."]
set -euo pipefail

csv='' threads='' series='' allow=''
while [ $# -gt 0 ]; do
    case "$1" in
    --csv) csv=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --allow-missing) allow=$2; shift 2 ;;
    *) echo "check_csv.sh: bad argument '$1'" >&2; exit 2 ;;
    esac
done
if [ -z "$csv" ] || [ -z "$threads" ] || [ -z "$series" ]; then
    echo "check_csv.sh: need --csv, --threads and --series" >&2
    exit 2
fi
if [ ! -s "$csv" ]; then
    echo "check_csv.sh: $csv is missing or empty" >&2
    exit 1
fi

header=$(head -n 1 "$csv")
want=bench,impl,threads,repeat,ops,seconds,ns_per_op,cpu_seconds,cpu_ns_per_op,load1
if [ "$header" != "$want" ]; then
    echo "check_csv.sh: $csv: bad header '$header'" >&2
    exit 1
fi

# Every row well formed; print the series present as bench/impl/threads.
present=$(awk -F, '
    NR == 1 { next }
    NF != 10 || $3 !~ /^[0-9]+$/ || $4 !~ /^[0-9]+$/ || $5 !~ /^[0-9]+$/ ||
    !($5 > 0) || !($6 > 0) || !($7 > 0) || !($8 > 0) || !($9 > 0) ||
    $10 !~ /^-?[0-9]+\.[0-9]+$/ || !($10 >= 0 || $10 == -1) {
        printf "check_csv.sh: line %d is malformed or zero: %s\n", NR, $0 \
            > "/dev/stderr"
        bad = 1
        next
    }
    { print $1 "/" $2 "/" $3 }
    END { exit bad }' "$csv" | sort -u) || {
    echo "check_csv.sh: $csv has malformed rows" >&2
    exit 1
}

missing=0
for s in $series; do
    for t in $threads; do
        key="$s/$t"
        if grep -qxF "$key" <<<"$present"; then
            continue
        fi
        if [[ " $allow " == *" $key "* ]]; then
            echo "check_csv.sh: $key absent: allowed in this build"
            continue
        fi
        echo "check_csv.sh: $key MISSING from $csv" >&2
        missing=$((missing + 1))
    done
done
if [ "$missing" -ne 0 ]; then
    echo "check_csv.sh: $missing series missing" >&2
    exit 1
fi
echo "check_csv.sh: $csv: every expected series is there"
