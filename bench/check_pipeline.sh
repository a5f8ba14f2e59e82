#!/usr/bin/env bash
# bench/check_pipeline.sh: the smoke test of the whole `make bench` chain
# (ctest bench_pipeline_smoke, default preset): scripts/bench.sh with
# BENCH_QUICK=1 (tiny sizes, 1 and 2 threads, one repeat) into a scratch
# folder, then the checks:
#   - every program's CSV has every expected series (check_csv.sh for the
#     timed programs, check_frag_mem_csv.sh for frag and mem);
#   - check_latency_csv.sh: every latency series, percentiles in order;
#   - scripts/bench_report.py --check: every (bench, impl) at every thread
#     count with its wall and CPU figures and load1, every program's load
#     average at its start and end, every plot (PNG) written and not
#     empty, no JSON or SVG copies, every fragmentation share in [0, 1];
#   - a results page rendered from the template with the scratch folder's
#     data into it (every placeholder filled): the wall and cpu columns,
#     the load averages, the plots and the targets;
#   - a second run of one program (BENCH_PROGS=mem) keeps every other
#     program's run and command line in machine.txt;
#   - docs/results.md untouched (a quick run never rewrites it).
#
# Usage: check_pipeline.sh BUILD_DIR OUT_DIR LOCKFREE_SERIES LOCKFREE_ALLOW
#                          BUDDY_SERIES VAS_SERIES MEM_SERIES
# Its opening (paths, the docs checksum, a fresh OUT_DIR) is the one
# bench/coherence/check_coherence.sh has: each check script stands alone.
set -euo pipefail
build=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
docs_before=$(cksum <"$top/docs/results.md" 2>/dev/null || echo none)
rm -rf "$out"
BENCH_QUICK=1 BENCH_REPEATS=1 BENCH_THREADS_MAX=2 BENCH_OUT="$out" \
    "$top/scripts/bench.sh" "$build"
"$here/check_csv.sh" --csv "$out/lockfree.csv" --threads "1 2" \
    --series "$3" --allow-missing "$4"
"$here/check_csv.sh" --csv "$out/buddy.csv" --threads "1 2" --series "$5"
"$here/check_csv.sh" --csv "$out/vas.csv" --threads "1 2" --series "$6"
"$here/check_frag_mem_csv.sh" --csv "$out/frag.csv" --kind frag \
    --threads "1 2" --series "lf_buddy lf_buddy_nocache locked_buddy"
"$here/check_frag_mem_csv.sh" --csv "$out/mem.csv" --kind mem --series "$7"
"$here/check_latency_csv.sh" "$out/latency.csv" 1
"$top/scripts/bench_report.py" --check --docs "$out/results.md" "$out"
# The page (written only into the scratch folder here) carries the CPU
# figures and the load averages.
for want in '| 1 thr wall | 1 thr cpu | 2 thr wall | 2 thr cpu |' \
            '| program | start | end |' '| repeat | lf_buddy |' \
            'buddy-cpu.png' 'latency.png' 'frag.png' \
            'per-CPU path: repeat, lf_buddy, 1 thr, cpu'; do
    if ! grep -qF -- "$want" "$out/results.md"; then
        echo "check_pipeline.sh: '$want' missing from $out/results.md" >&2
        exit 1
    fi
done
# A run of one program keeps the other programs' run and command lines
# (and their data) in machine.txt; it replaces its own.
old_frag=$(grep -E '^run: +frag: ' "$out/machine.txt")
BENCH_QUICK=1 BENCH_REPEATS=1 BENCH_OUT="$out" BENCH_PROGS=mem \
    "$top/scripts/bench.sh" "$build" >/dev/null
for p in lockfree buddy vas frag latency mem kmem; do
    for k in run command; do
        n=$(grep -cE "^($k: +$p: |$k: +[^ ]*/bench_$p )" "$out/machine.txt" ||
            true)
        if [ "$n" != 1 ]; then
            echo "check_pipeline.sh: after a run of mem alone," \
                 "machine.txt has $n $k lines for $p" >&2
            exit 1
        fi
    done
done
if [ "$(grep -E '^run: +frag: ' "$out/machine.txt")" != "$old_frag" ]; then
    echo "check_pipeline.sh: a run of mem alone changed frag's run line" >&2
    exit 1
fi
docs_after=$(cksum <"$top/docs/results.md" 2>/dev/null || echo none)
if [ "$docs_before" != "$docs_after" ]; then
    echo "check_pipeline.sh: a quick run rewrote docs/results.md" >&2
    exit 1
fi
echo "check_pipeline.sh: the whole chain ran; every series and plot present"
