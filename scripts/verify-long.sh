#!/usr/bin/env bash
# scripts/verify-long.sh (make verify-long): the searches too long for
# `make test`, then one summary line:
#   make verify-long: N passed, N failed
#
#  1. The model checker (verify/mc/): builds the mc preset and runs
#     every test of `mc_run --list` and `mc_run_units --list` with --long (DFS one preemption more,
#     PCT 20 times the runs; self-tests must still catch their bug). Each
#     run is capped at MC_LONG_TIMEOUT seconds (default 1800).
#  2. The fuzzers (verify/fuzz/): if the asan preset is built with
#     libFuzzer (build/asan/verify/fuzz/fuzz_buddy and fuzz_vas, from
#     `make test-asan` with libclang-rt installed), each one fuzzes for
#     FUZZ_SECONDS (default 600) from a scratch copy of its seed corpus;
#     crash inputs land in build/asan/verify/fuzz/artifacts-long/. Without
#     them this part is skipped, with a note.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
jobs=${JOBS:-$(nproc)}
mc_timeout=${MC_LONG_TIMEOUT:-1800}
fuzz_seconds=${FUZZ_SECONDS:-600}
passed=0
failed=0
failures=()
start=$(date +%s)

note() { echo "=== $*"; }
count() { # count NAME STATUS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failures+=("$1")
    fi
}

note "model checker: configure and build the mc preset"
if ! cmake --preset mc >/dev/null ||
   ! cmake --build --preset mc -j "$jobs"; then
    note "mc preset: BUILD FAILED"
    count "mc build" 1
else
    # mc_run: version 2 at BUDDY_CORE_SHIFT 0 and the rest; mc_run_units:
    # the buddy sources at shift 5 (version 3's two levels).
    for prog in mc_run mc_run_units; do
        mc=build/mc/verify/mc/$prog
        for t in $("$mc" --list | awk '{print $1}'); do
            case $t in
            self.ok) args=(--long) ;;
            self.*) args=(--expect-fail) ;;
            *) args=(--long) ;;
            esac
            note "$prog $t ${args[*]}"
            timeout "$mc_timeout" "$mc" "$t" "${args[@]}"
            count "$prog.$t" $?
        done
    done
fi

fuzz_dir=build/asan/verify/fuzz
if grep -q '^LF_HAVE_LIBFUZZER:INTERNAL=1' build/asan/CMakeCache.txt \
       2>/dev/null; then
    for f in buddy vas; do
        bin=$fuzz_dir/fuzz_$f
        if [ ! -x "$bin" ]; then
            note "fuzz_$f: not built (make test-asan first)"
            count "fuzz_$f (not built)" 1
            continue
        fi
        note "fuzz_$f for $fuzz_seconds s"
        ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            verify/fuzz/run-fuzz.sh "$bin" "verify/fuzz/corpus/$f" \
            "$fuzz_seconds" "$fuzz_dir/artifacts-long/fuzz_$f"
        count "fuzz_$f" $?
    done
else
    note "fuzzers skipped: the asan preset is not built with libFuzzer" \
         "(install libclang-rt-14-dev, then make test-asan)"
fi

echo
note "summary ($(( $(date +%s) - start )) s)"
for f in "${failures[@]}"; do echo "  FAILED: $f"; done
echo "make verify-long: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
