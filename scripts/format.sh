#!/usr/bin/env bash
# scripts/format.sh [--check [FILE...] | --count]: the C formatting of the
# tree, by clang-format 14 and .clang-format.
#   (no option)   format every tracked .c and .h in place (make format), and
#                 empty scripts/format-pending.txt
#   --check       list every line clang-format would change (file:line and
#                 the line) in FILEs, or in every tracked .c/.h but those
#                 listed in scripts/format-pending.txt; exit 1 if any
#                 (ctest format_check)
#   --count       the number of lines it would change in every tracked
#                 .c/.h, pending ones included
# scripts/format-pending.txt lists files written before .clang-format
# matched the code; `make format` formats them and empties it. New files
# are never added to it: they are checked from the start.
# Exit 77 (ctest: skipped) if clang-format 14 is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=""
for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null &&
        "$c" --version | grep -q 'version 14\.'; then
        cf=$c; break
    fi
done
if [ -z "$cf" ]; then
    echo "format.sh: clang-format 14 not found (Debian: clang-format-14)" >&2
    exit 77
fi
pending=scripts/format-pending.txt

# changed FILE: the lines of FILE that clang-format would change.
changed() {
    "$cf" --style=file "$1" |
        diff --unchanged-line-format= --old-line-format="$1:%dn: %L" \
            --new-line-format= "$1" - || true
}

files() { git ls-files '*.c' '*.h'; }

case "${1:-}" in
"")
    files | xargs "$cf" --style=file -i
    : >"$pending"
    ;;
--count)
    n=0
    for f in $(files); do n=$((n + $(changed "$f" | wc -l))); done
    echo "$n"
    ;;
--check)
    shift
    if [ $# -eq 0 ]; then
        set -- $(files | grep -vxF -f <(grep -v '^#' "$pending" 2>/dev/null || true))
    fi
    out=$(for f in "$@"; do changed "$f"; done)
    skipped=$(grep -cv '^#' "$pending" 2>/dev/null || true)
    if [ -n "$out" ]; then
        echo "$out"
        echo "format_check: $(echo "$out" | wc -l) lines to reformat" \
             "(scripts/format.sh formats them)"
        exit 1
    fi
    echo "format_check: $# files formatted${skipped:+ (${skipped} pending, see $pending)}"
    ;;
*)
    echo "usage: format.sh [--check [FILE...] | --count]" >&2
    exit 2
    ;;
esac
