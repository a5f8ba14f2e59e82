#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR: run the micro-benchmarks of bench/ (make bench)
# and keep the results with a description of the machine:
#
#   bench/results/<machine>/lockfree.csv   every run (bench_lockfree --csv)
#   bench/results/<machine>/lockfree.txt   the printed table of medians
#   bench/results/<machine>/machine.txt    CPU, cores, memory, kernel,
#                                          compiler, git commit, command
#
# <machine> is $BENCH_MACHINE, "dev" by default (the 2-core development
# machine whose results are committed); set it on any other machine so that
# its results go beside, not over, those. BENCH_REPEATS (5) and
# BENCH_SECONDS (0.5 per point) and BENCH_THREADS_MAX (2) tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/default}
machine=${BENCH_MACHINE:-dev}
repeats=${BENCH_REPEATS:-5}
seconds=${BENCH_SECONDS:-0.5}
threads_max=${BENCH_THREADS_MAX:-2}
prog=$build/bench/bench_lockfree

if [ ! -x "$prog" ]; then
    echo "bench.sh: $prog is not built (make bench builds it)" >&2
    exit 1
fi
case "$machine" in
*/* | .* | "") echo "bench.sh: bad BENCH_MACHINE '$machine'" >&2; exit 2 ;;
esac
out=bench/results/$machine
mkdir -p "$out"

cmd=("$prog" --repeats "$repeats" --seconds "$seconds"
     --threads-max "$threads_max" --csv "$out/lockfree.csv")

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
    echo "cores:     $(nproc) online" \
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
    echo "command:   ${cmd[*]}"
} >"$out/machine.txt"

cat "$out/machine.txt"
echo
"${cmd[@]}" | tee "$out/lockfree.txt"
echo "bench.sh: results in $out/"
