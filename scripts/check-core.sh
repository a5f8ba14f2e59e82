#!/usr/bin/env bash
# scripts/check-core.sh CC: the freestanding rules of lockfree/, buddy/, kmem/ and
# vaspace/, checked rather than trusted.
#  1. Each .c compiles with -ffreestanding -nostdlib -nostdinc: only the
#     compiler's own headers are reachable, so a libc include fails.
#  2. The objects, linked together, need no symbol but the platform shim's
#     (lf_platform_*) and the few the compiler may emit (memcpy, memset,
#     memmove, memcmp) that every kernel provides.
#  3. No file but lockfree/lf_atomic.h includes <stdatomic.h> or uses
#     __atomic/__sync builtins or atomic_* calls directly.
#  4. Includes are limited to <stdint.h> <stddef.h> <stdbool.h>
#     <stdatomic.h> and the project's own quoted headers.
set -euo pipefail
cc=${1:-cc}
cd "$(dirname "$0")/.."
dirs=""
for d in lockfree buddy vaspace kmem; do
    [ -d "$d" ] && dirs="$dirs $d"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

sysinc=$("$cc" -print-file-name=include)
incs=()
for d in $dirs; do incs+=(-I"$d"); done
objs=()
for f in $(find $dirs -name '*.c' | sort); do
    o="$tmp/$(echo "$f" | tr / _).o"
    if ! "$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -nostdlib \
        -nostdinc -isystem "$sysinc" "${incs[@]}" -c "$f" -o "$o"; then
        echo "FAIL: $f does not compile freestanding"; fail=1
    fi
    objs+=("$o")
done
if [ ${#objs[@]} -gt 0 ] && [ $fail -eq 0 ]; then
    ld -r -o "$tmp/core.o" "${objs[@]}"
    bad=$(nm -u "$tmp/core.o" | awk '{print $2}' |
        grep -vE '^(lf_platform_[a-z_]+|memcpy|memset|memmove|memcmp)$' || true)
    if [ -n "$bad" ]; then
        echo "FAIL: the core needs symbols no kernel shim provides:"; echo "$bad"; fail=1
    fi
fi

direct=$(grep -rnE --include='*.[ch]' 'stdatomic\.h|__atomic_|__sync_|\batomic_[a-z_]+\(' $dirs |
    grep -v '^lockfree/lf_atomic.h:' || true)
if [ -n "$direct" ]; then
    echo "FAIL: atomics that bypass lockfree/lf_atomic.h:"; echo "$direct"; fail=1
fi

badinc=$(grep -rnE --include='*.[ch]' '^\s*#\s*include\s*<' $dirs |
    grep -vE '<(stdint|stddef|stdbool|stdatomic)\.h>' || true)
if [ -n "$badinc" ]; then
    echo "FAIL: includes outside the freestanding four:"; echo "$badinc"; fail=1
fi

n=$(find $dirs -name '*.[ch]' | wc -l)
if [ $fail -eq 0 ]; then
    echo "core_freestanding: $n files in: $(echo $dirs) pass"
fi
exit $fail
