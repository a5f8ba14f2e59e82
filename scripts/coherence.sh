#!/usr/bin/env bash
# scripts/coherence.sh BUILD_DIR: the coherence accounting mode of the
# benchmarks (make coherence; bench/coherence/README.md):
#
#   1. bench_pingpong measures the per-line latency on this machine
#      (two threads pass one line; the median handoff / 2);
#   2. bench_coherence runs every benchmark's implementations on 1, 2, 4,
#      ..., 64 logical CPUs with that latency;
#   3. bench/coherence/coh_report.py draws the plots and the validation
#      table against this machine's timed results, and puts its section
#      into docs/results.md (not for a quick run or COHERENCE_OUT, unless
#      COHERENCE_DOCS=1; COHERENCE_DOCS=0: never).
#
# Written to bench/results/$BENCH_MACHINE/ (dev by default):
#   coherence-latency.csv   the ping-pong repeats and the line latency
#   coherence.csv, .txt     every point's counts, and what the run printed
#   coherence-*.png         misses per op against logical CPUs
#   coherence-validation.md the 2-CPU comparison with the timed benchmarks
#                           (when docs/results.md is written: there
#                           instead, after coherence-summary.md, the
#                           analysis written by hand beside the data)
#
# COHERENCE_CPUS (1,2,4,8,16,32,64), COHERENCE_ONLY (bench_coherence
# --only), COHERENCE_LINE_NS (skip the ping-pong and use this latency),
# COHERENCE_OUT (write there instead), COHERENCE_QUICK=1 (a fast check of
# the chain, bench/coherence/check_coherence.sh: a short ping-pong and
# bench_coherence --quick).
# It builds nothing: build bench_coherence and bench_pingpong first (make
# coherence does). Several minutes of one CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/default}
machine=${BENCH_MACHINE:-dev}
out=${COHERENCE_OUT:-bench/results/$machine}
bin=$build/bench/coherence
quick=${COHERENCE_QUICK:-0}
pp_args=(--repeats 21)
[ "$quick" = 1 ] && pp_args=(--repeats 3 --handoffs 20000)
mkdir -p "$out"
echo "loadavg at the start: $(cat /proc/loadavg)"
if [ -n "${COHERENCE_LINE_NS:-}" ]; then
    line_ns=$COHERENCE_LINE_NS
else
    "$bin/bench_pingpong" "${pp_args[@]}" --csv "$out/coherence-latency.csv" |
        tee "$out/coherence-latency.txt"
    line_ns=$(awk '/^line_ns/ {print $2}' "$out/coherence-latency.txt")
    rm -f "$out/coherence-latency.txt"
fi
args=(--line-ns "$line_ns" --cpus "${COHERENCE_CPUS:-1,2,4,8,16,32,64}"
      --csv "$out/coherence.csv")
[ -n "${COHERENCE_ONLY:-}" ] && args+=(--only "$COHERENCE_ONLY")
[ "$quick" = 1 ] && args+=(--quick)
echo "$bin/bench_coherence ${args[*]}"
"$bin/bench_coherence" "${args[@]}" | tee "$out/coherence.txt"
# docs/results.md gets the section, as bench.sh rewrites it, except for a
# quick run or a run into another folder (COHERENCE_DOCS=0/1 decides).
docs_default=1
[ "$quick" = 1 ] || [ -n "${COHERENCE_OUT:-}" ] && docs_default=0
docs=()
[ "${COHERENCE_DOCS:-$docs_default}" = 1 ] && docs=(--docs docs/results.md)
# The timed results of this machine: beside ours, else the committed ones.
timed=$out
[ -f "$timed/buddy.csv" ] || timed=bench/results/$machine
bench/coherence/coh_report.py --timed "$timed" "${docs[@]}" "$out"
echo "loadavg at the end: $(cat /proc/loadavg)"
