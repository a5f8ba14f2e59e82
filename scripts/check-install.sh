#!/usr/bin/env bash
# scripts/check-install.sh CC WORKDIR: lfalloc as an outside project sees it
# (ctest install_consumer, default preset). From the source tree:
#  1. configure and build lfalloc alone, as a fresh clone would, and
#     `cmake --install` it under WORKDIR/prefix;
#  2. build examples/consumer against that prefix by find_package(lfalloc),
#     and run it;
#  3. build the same main.c by pkg-config (lfalloc-user), and run it;
#  4. build examples/consumer with lfalloc added by add_subdirectory: only
#     the libraries are built, and lfalloc's warning flags do not reach the
#     parent (its -Werror build of a shadowed name passes); run it.
# Exits non-zero at the first step that fails.
set -euo pipefail
cc=${1:-cc}
work=${2:?usage: check-install.sh CC WORKDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
gen=(-G "Unix Makefiles" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release)

echo "== 1. install lfalloc to $prefix"
cmake -S "$src" -B "$work/lfalloc" "${gen[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DLF_BUILD_TESTS=OFF -DLF_BUILD_BENCH=OFF -DLF_BUILD_KERNEL=OFF >/dev/null
cmake --build "$work/lfalloc" -j "$jobs" >/dev/null
cmake --install "$work/lfalloc" >/dev/null
for f in include/lfalloc/buddy.h include/lfalloc/vas.h include/lfalloc/lf_spin.h \
    lib/cmake/lfalloc/lfallocConfig.cmake lib/pkgconfig/lfalloc.pc \
    lib/pkgconfig/lfalloc-user.pc; do
    [ -f "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
if ls "$prefix"/include/lfalloc/*_i.h >/dev/null 2>&1; then
    echo "FAIL: internal headers installed"; exit 1
fi

# consumer DIR CMAKE-ARGS...: configure, build and run examples/consumer.
consumer() {
    local dir=$1
    shift
    cmake -S "$src/examples/consumer" -B "$dir" "${gen[@]}" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    "$dir/consumer"
}

echo "== 2. find_package(lfalloc)"
consumer "$work/by-cmake" -DCMAKE_PREFIX_PATH="$prefix"

echo "== 3. pkg-config lfalloc-user"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046 # word splitting of the flags is intended
"$cc" -std=c11 -Werror -o "$work/by-pkgconfig" "$src/examples/consumer/main.c" \
    $(pkg-config --cflags --libs lfalloc-user) -lpthread
"$work/by-pkgconfig"

echo "== 4. add_subdirectory(lfalloc)"
consumer "$work/by-subdir" -DLFALLOC_SOURCE_DIR="$src"
echo "install_consumer: pass"
