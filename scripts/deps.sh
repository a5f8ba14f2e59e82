#!/usr/bin/env bash
# scripts/deps.sh: make sure every tool and library the build needs is here.
#
# Checks each Debian package the project depends on; installs the missing ones
# with apt-get when running as root (apt-get update once first: a fresh
# machine has empty package lists), or prints the exact command and fails.
#
# Usage: scripts/deps.sh [group...]   groups: build (default), kernel, debug, plot
set -euo pipefail

pkgs_build=(cmake make gcc clang libclang-rt-14-dev binutils liburcu-dev libck-dev libbsd-dev patch clang-format-14 pkgconf
            libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev)
pkgs_kernel=(qemu-system-x86)
pkgs_debug=(gdb)
pkgs_plot=(gnuplot-nox python3)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build)

want=()
for g in "${groups[@]}"; do
    case "$g" in
    build) want+=("${pkgs_build[@]}") ;;
    kernel) want+=("${pkgs_kernel[@]}") ;;
    debug) want+=("${pkgs_debug[@]}") ;;
    plot) want+=("${pkgs_plot[@]}") ;;
    *) echo "deps.sh: unknown group '$g' (build, kernel, debug, plot)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: not root; install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "deps.sh: installed ${missing[*]}" >&2
