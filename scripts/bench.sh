#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR: run the micro-benchmarks of bench/ (make bench)
# and keep the results with a description of the machine:
#
#   bench/results/<machine>/lockfree.csv   every run (bench_lockfree --csv)
#   bench/results/<machine>/lockfree.txt   its printed table of medians
#   bench/results/<machine>/buddy.csv      every run (bench_buddy --csv)
#   bench/results/<machine>/buddy.txt      its table, work per pair, targets
#   bench/results/<machine>/machine.txt    CPU, cores, memory, kernel,
#                                          compiler, git commit, commands,
#                                          load before and after the run
#
# <machine> is $BENCH_MACHINE, "dev" by default (the 2-core development
# machine whose results are committed); set it on any other machine so that
# its results go beside, not over, those. It builds nothing: build
# bench_lockfree and bench_buddy in BUILD_DIR first (make bench does).
#
# The environment tunes the run:
#   BENCH_REPEATS      runs per point (5)
#   BENCH_SECONDS      measured seconds per point (0.5)
#   BENCH_THREADS_MAX  thread counts 1, 2, 4, ... up to it (the online
#                      CPUs, at least 2)
#   BENCH_PROGS        which programs ("lockfree buddy")
#   BENCH_QUICK=1      a fast check of the whole chain: --quick (0.01 s per
#                      point) and 1 repeat unless set; the results go to
#                      bench/results/quick/ unless BENCH_MACHINE says where
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
    repeats=${BENCH_REPEATS:-5}
fi
seconds=${BENCH_SECONDS:-0.5}
online=$(nproc)
threads_max=${BENCH_THREADS_MAX:-$((online > 2 ? online : 2))}
progs=${BENCH_PROGS:-lockfree buddy}

case "$machine" in
*/* | .* | "") echo "bench.sh: bad BENCH_MACHINE '$machine'" >&2; exit 2 ;;
esac
for p in $progs; do
    case "$p" in
    lockfree | buddy) ;;
    *) echo "bench.sh: unknown program '$p' in BENCH_PROGS" >&2; exit 2 ;;
    esac
    if [ ! -x "$build/bench/bench_$p" ]; then
        echo "bench.sh: $build/bench/bench_$p is not built" \
             "(make bench builds it)" >&2
        exit 1
    fi
done
out=bench/results/$machine
mkdir -p "$out"

# The command line of one program.
bench_cmd() {
    cmd=("$build/bench/bench_$1" --repeats "$repeats")
    if [ "$quick" = 1 ] && [ -z "${BENCH_SECONDS:-}" ]; then
        cmd+=(--quick)
    else
        cmd+=(--seconds "$seconds")
    fi
    cmd+=(--threads-max "$threads_max" --csv "$out/$1.csv")
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
    for p in $progs; do
        bench_cmd "$p"
        echo "command:   ${cmd[*]}"
    done
} >"$out/machine.txt"

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
echo "bench.sh: results in $out/"
exit "$failed"
