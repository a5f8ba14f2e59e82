#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR: run every benchmark of bench/ (make bench),
# keep the results with a description of the machine, and render them:
#
#   bench/results/<machine>/P.csv        every run of program P (--csv):
#                                        the data, kept once
#   bench/results/<machine>/P.txt        what it printed: tables of
#                                        medians, work, targets
#   bench/results/<machine>/*.png        plots (scripts/bench_report.py)
#   bench/results/<machine>/machine.txt  CPU, cores, memory, kernel,
#                                        compiler, git commit, commands,
#                                        load before and after the run
#   docs/results.md                      the results section, from
#                                        bench/results-template.md and the
#                                        data (not for quick runs)
#
# Programs P: lockfree (stack, epoch vs ck and liburcu), buddy (vs the
# locked buddy), vas (vs red-black trees under a rwlock and a mutex),
# frag (order-9 share over time), latency (p50/p99/p99.9 of one
# operation, alone and with writers) and mem (bytes per frame and range).
#
# <machine> is $BENCH_MACHINE, "dev" by default (the 2-core development
# machine whose results are committed); set it on any other machine so that
# its results go beside, not over, those. It builds nothing: build the
# bench_* programs in BUILD_DIR first (make bench does).
#
# The environment tunes the run:
#   BENCH_REPEATS      runs per point (10: enough for a 95% interval of
#                      the median)
#   BENCH_SECONDS      measured seconds per point (0.5)
#   BENCH_THREADS_MAX  thread counts 1, 2, 4, ... up to it (the online
#                      CPUs, at least 2); above the online CPUs the points
#                      are marked oversubscribed (tables and plots)
#   BENCH_PROGS        which programs ("lockfree buddy vas frag latency
#                      mem kmem"); the others' results stay, and
#                      machine.txt keeps their run and command lines
#   BENCH_QUICK=1      a fast check of the whole chain: --quick (0.01 s per
#                      point) and 1 repeat unless set; the results go to
#                      bench/results/quick/ unless BENCH_MACHINE says where
#   BENCH_OUT          write to this folder instead (the smoke test)
# A program whose check fails makes the script exit 1, after the others ran.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/default}
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
    machine=${BENCH_MACHINE:-quick}
    repeats=${BENCH_REPEATS:-1}
else
    machine=${BENCH_MACHINE:-dev}
    repeats=${BENCH_REPEATS:-10}
fi
seconds=${BENCH_SECONDS:-0.5}
online=$(nproc)
threads_max=${BENCH_THREADS_MAX:-$((online > 2 ? online : 2))}
progs=${BENCH_PROGS:-lockfree buddy vas frag latency mem kmem}

case "$machine" in
*/* | .* | "") echo "bench.sh: bad BENCH_MACHINE '$machine'" >&2; exit 2 ;;
esac
for p in $progs; do
    case "$p" in
    lockfree | buddy | vas | frag | latency | mem | kmem) ;;
    *) echo "bench.sh: unknown program '$p' in BENCH_PROGS" >&2; exit 2 ;;
    esac
    if [ ! -x "$build/bench/bench_$p" ]; then
        echo "bench.sh: $build/bench/bench_$p is not built" \
             "(make bench builds it)" >&2
        exit 1
    fi
done
out=${BENCH_OUT:-bench/results/$machine}
mkdir -p "$out"
[ ! -f "$out/machine.txt" ] || cp "$out/machine.txt" "$out/machine.txt.old"

# The command line of one program.
bench_cmd() {
    cmd=("$build/bench/bench_$1")
    case "$1" in
    mem) ;;
    frag) cmd+=(--repeats "$repeats" --threads 1,2) ;;
    latency) cmd+=(--repeats "$repeats") ;;
    *) cmd+=(--repeats "$repeats" --threads-max "$threads_max")
       if [ "$quick" != 1 ] || [ -n "${BENCH_SECONDS:-}" ]; then
           cmd+=(--seconds "$seconds")
       fi ;;
    esac
    if [ "$quick" = 1 ]; then
        case "$1" in mem | frag | latency) cmd+=(--quick) ;;
        *) [ -n "${BENCH_SECONDS:-}" ] || cmd+=(--quick) ;; esac
    fi
    cmd+=(--csv "$out/$1.csv")
}

# The compiler the build directory was configured with.
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" \
     2>/dev/null || true)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' \
             "$build/CMakeCache.txt" 2>/dev/null || true)

{
    echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host:      $(hostname 2>/dev/null || echo unknown)"
    echo "cpu:       $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo \
                       | head -n 1)"
    echo "cpu id:    family $(sed -n 's/^cpu family[[:space:]]*: //p' \
                       /proc/cpuinfo | head -n 1)," \
         "model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo \
                  | head -n 1)," \
         "$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo \
            | head -n 1) MHz"
    echo "cores:     $online online" \
         "($(grep -c '^processor' /proc/cpuinfo) in /proc/cpuinfo)"
    if command -v lscpu >/dev/null; then
        lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*/hypervisor: /p'
    fi
    echo "memory:    $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' \
                       /proc/meminfo)"
    echo "kernel:    $(uname -srm)"
    echo "compiler:  $(${cc:-cc} --version 2>/dev/null | head -n 1)"
    echo "build:     $build ($build_type)"
    echo "commit:    $(git describe --always --dirty --abbrev=12 \
                       2>/dev/null || echo unknown)"
    echo "load:      $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min," \
         "before the run)"
    # One run line and one command line a program. A run of some
    # programs (BENCH_PROGS) keeps the lines of the others from the last
    # description, so every result in the folder says when, at which
    # commit and by which command it was measured.
    stamp="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe \
            --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
    for p in lockfree buddy vas frag latency mem kmem; do
        if [[ " $progs " == *" $p "* ]]; then
            bench_cmd "$p"
            echo "run:       $p: $stamp"
            echo "command:   ${cmd[*]}"
        elif [ -f "$out/$p.csv" ] && [ -f "$out/machine.txt.old" ]; then
            grep -E "^(run: +$p: |command: +[^ ]*/bench_$p )" \
                "$out/machine.txt.old" || true
        fi
    done
} >"$out/machine.txt.new"
mv "$out/machine.txt.new" "$out/machine.txt"
rm -f "$out/machine.txt.old"

cat "$out/machine.txt"
failed=0
for p in $progs; do
    echo
    bench_cmd "$p"
    if ! "${cmd[@]}" | tee "$out/$p.txt"; then
        echo "bench.sh: bench_$p FAILED a check (see above)" >&2
        failed=1
    fi
done
# Other work on the machine during the run shows in the load after it.
echo "load after: $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min)" \
    >>"$out/machine.txt"
# The plots of this folder, drawn anew from every CSV in it (files of an
# older layout, JSON summaries and SVG copies, go); docs/results.md from
# the template and every machine's folder, this machine's first.
for f in "$out"/*.png "$out"/*.svg "$out"/*.json; do
    case "${f##*/}" in
    coherence*) ;; # scripts/coherence.sh's, not ours
    *) rm -f "$f" ;;
    esac
done
if ! scripts/bench_report.py "$out"; then
    echo "bench.sh: the report (plots) FAILED" >&2
    failed=1
elif [ "$quick" != 1 ] && [ -z "${BENCH_OUT:-}" ]; then
    dirs=("$out")
    # Other machines' runs of this script (a machine.txt); the ad-hoc
    # result folders (a README.md of their own) are not its to report.
    for d in bench/results/*/; do
        [ -f "${d}machine.txt" ] || continue
        [ "$d" = bench/results/quick/ ] || [ "${d%/}" = "$out" ] ||
            dirs+=("${d%/}")
    done
    scripts/bench_report.py --docs docs/results.md "${dirs[@]}" || failed=1
    echo "bench.sh: docs/results.md rewritten from ${dirs[*]}"
fi
echo "bench.sh: results in $out/"
exit "$failed"
