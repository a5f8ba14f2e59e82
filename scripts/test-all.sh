#!/usr/bin/env bash
# scripts/test-all.sh PRESET...: configure, build and run ctest for each
# preset, go on past a failing one, and end with one line for CI:
#   make test: N passed, N failed
# A preset that does not build counts as one failed test. Each preset's
# verdict is ctest's exit status; its counts are read from the JUnit file
# ctest writes (build/<preset>/ctest-junit.xml). The exit status is 0 only
# if every preset built and passed.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
werror=${WERROR:-OFF}
passed=0
failed=0
summary=()
start=$(date +%s)

# junit_count ATTR FILE: the testsuite's ATTR="N" in ctest's JUnit report
# (0 if the file or attribute is missing).
junit_count() {
    local n
    n=$(sed -n "s/^[[:space:]]*$1=\"\([0-9]*\)\".*/\1/p" "$2" 2>/dev/null | head -n 1)
    echo "${n:-0}"
}
for p in "$@"; do
    echo "=== preset $p: configure and build"
    if ! cmake --preset "$p" -DLF_WERROR="$werror" >/dev/null ||
       ! cmake --build --preset "$p" -j "$jobs"; then
        echo "=== preset $p: BUILD FAILED"
        failed=$((failed + 1)); summary+=("$p: build failed"); continue
    fi
    echo "=== preset $p: ctest"
    # The verdict is ctest's exit status; the counts come from its JUnit
    # report (machine-readable), never from its text.
    junit=$PWD/build/$p/ctest-junit.xml
    rm -f "$junit"
    ctest --preset "$p" -j "$jobs" --no-tests=error --output-junit "$junit"
    rc=$?
    t=$(junit_count tests "$junit")
    f=$(junit_count failures "$junit")
    sk=$(( $(junit_count skipped "$junit") + $(junit_count disabled "$junit") ))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # ctest failed with no test counted as failing (no tests, a crash)
    fi
    ok=$((t - f - sk)); [ "$ok" -ge 0 ] || ok=0
    passed=$((passed + ok)); failed=$((failed + f))
    line="$p: $ok passed, $f failed"
    [ "$sk" -eq 0 ] || line="$line, $sk skipped"
    summary+=("$line")
done
echo
echo "=== summary ($(( $(date +%s) - start )) s)"
for s in "${summary[@]}"; do echo "  $s"; done
echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
