#!/usr/bin/env bash
# scripts/test-all.sh PRESET...: configure, build and run ctest for each
# preset, go on past a failing one, and end with one line for CI:
#   make test: N passed, N failed
# A preset that does not build counts as one failed test.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
werror=${WERROR:-OFF}
passed=0
failed=0
summary=()
start=$(date +%s)
for p in "$@"; do
    echo "=== preset $p: configure and build"
    if ! cmake --preset "$p" -DLF_WERROR="$werror" >/dev/null ||
       ! cmake --build --preset "$p" -j "$jobs"; then
        echo "=== preset $p: BUILD FAILED"
        failed=$((failed + 1)); summary+=("$p: build failed"); continue
    fi
    echo "=== preset $p: ctest"
    log=$(mktemp)
    ctest --preset "$p" -j "$jobs" 2>&1 | tee "$log"
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "=== preset $p: ctest printed no summary"
        failed=$((failed + 1)); summary+=("$p: no ctest summary"); continue
    fi
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
    passed=$((passed + t - f)); failed=$((failed + f))
    summary+=("$p: $((t - f)) passed, $f failed")
done
echo
echo "=== summary ($(( $(date +%s) - start )) s)"
for s in "${summary[@]}"; do echo "  $s"; done
echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
