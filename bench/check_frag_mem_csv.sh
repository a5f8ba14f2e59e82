#!/usr/bin/env bash
# bench/check_frag_mem_csv.sh: check a CSV written by bench_frag or
# bench_mem --csv (check_csv.sh checks the timed programs').
#
# --kind frag: the header is bench,impl,threads,repeat,sample,ops,
#   free_frames,cached_frames,order9_frames,share,enomem,load1; every row
#   is well formed, with cached and order-9 frames at most the free frames,
#   share in [0, 1] and equal to order9_frames / free_frames, and load1 a
#   load average (>= 0, or -1 where /proc/loadavg is unreadable); every
#   impl in
#   --series has, at each thread count in --threads, samples 0 to at least
#   --min-samples.
# --kind mem: the header is what,impl,param,units,bytes,per; every row has
#   units and bytes > 0 and per = bytes / units; every what/impl/param in
#   --series has a row.
#
# Usage: check_frag_mem_csv.sh --csv FILE --kind frag --threads "1 2"
#            --series "lf_buddy locked_buddy" [--min-samples 50]
#        check_frag_mem_csv.sh --csv FILE --kind mem
#            --series "buddy_meta/lf_buddy/zone_64MiB_cpus_1 ..."
set -euo pipefail

csv='' kind='' threads='1' series='' min=1
# Option parsing in the shape of check_csv.sh's and kernel/run-qemu.sh's: each
# script takes its own options and stays standalone.
while [ $# -gt 0 ]; do
    case "$1" in
    --csv) csv=$2; shift 2 ;;
    --kind) kind=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --min-samples) min=$2; shift 2 ;;
    *) echo "check_frag_mem_csv.sh: bad argument '$1'" >&2; exit 2 ;;
    esac
done
me=check_frag_mem_csv.sh
if [ -z "$csv" ] || [ -z "$series" ]; then
    echo "$me: need --csv and --series" >&2
    exit 2
fi
if [ ! -s "$csv" ]; then
    echo "$me: $csv is missing or empty" >&2
    exit 1
fi

case "$kind" in
frag)
    want='bench,impl,threads,repeat,sample,ops,free_frames,cached_frames,order9_frames,share,enomem,load1'
    # Print impl/threads/sample for each good row; fail on a bad one.
    # shellcheck disable=SC2016 # an awk program: awk expands its $N
    rows='
    NF != 12 || $12 !~ /^-?[0-9]+\.[0-9]+$/ || !($12 >= 0 || $12 == -1) ||
    $3 !~ /^[0-9]+$/ || $5 !~ /^[0-9]+$/ ||
    $7 !~ /^[0-9]+$/ || $8 !~ /^[0-9]+$/ || $9 !~ /^[0-9]+$/ ||
    $8 > $7 || $9 > $7 || !($10 >= 0 && $10 <= 1) ||
    ($7 > 0 && ($10 - $9 / $7 > 1e-5 || $9 / $7 - $10 > 1e-5)) {
        printf "%s: line %d is malformed or out of range: %s\n", me, NR,
            $0 > "/dev/stderr"
        bad = 1
        next
    }
    { print $2 "/" $3 "/" $5 }'
    ;;
mem)
    want='what,impl,param,units,bytes,per'
    # shellcheck disable=SC2016 # an awk program, as above
    rows='
    NF != 6 || $4 !~ /^[0-9]+$/ || $5 !~ /^[0-9]+$/ || !($4 > 0) ||
    !($5 > 0) || $6 - $5 / $4 > 1e-3 || $5 / $4 - $6 > 1e-3 {
        printf "%s: line %d is malformed or out of range: %s\n", me, NR,
            $0 > "/dev/stderr"
        bad = 1
        next
    }
    { print $1 "/" $2 "/" $3 }'
    ;;
*)
    echo "$me: --kind frag or --kind mem" >&2
    exit 2
    ;;
esac

header=$(head -n 1 "$csv")
if [ "$header" != "$want" ]; then
    echo "$me: $csv: bad header '$header'" >&2
    exit 1
fi
present=$(awk -F, -v me="$me" "NR == 1 { next } $rows END { exit bad }" \
    "$csv" | sort -u) || {
    echo "$me: $csv has malformed rows" >&2
    exit 1
}

missing=0
for s in $series; do
    if [ "$kind" = mem ]; then
        grep -qxF "$s" <<<"$present" && continue
        echo "$me: $s MISSING from $csv" >&2
        missing=$((missing + 1))
        continue
    fi
    for t in $threads; do
        for k in $(seq 0 "$min"); do
            grep -qxF "$s/$t/$k" <<<"$present" && continue
            echo "$me: $s at $t threads: sample $k MISSING from $csv" >&2
            missing=$((missing + 1))
            break
        done
    done
done
if [ "$missing" -ne 0 ]; then
    echo "$me: $missing series missing or short" >&2
    exit 1
fi
echo "$me: $csv: every expected series is there"
