#!/usr/bin/env bash
# kernel/run-qemu.sh: boot the lfalloc kernel in QEMU (TCG, one thread per
# vCPU), stream its serial report, and judge it. Used by ctest (label
# kernel), `make run` and `make debug`.
#
# Usage: run-qemu.sh [--smp N] [--mem SIZE] [--timeout S] [--append CMDLINE]
#                    [--machine M] [--initrd FILE]
#                    [--expect pass|fail|fault|error] [--expect-reason R]
#                    [--expect-line REGEX]... [--debug] KERNEL
#   --expect pass   (default) QEMU status 33 (the kernel's pass value),
#                   "LFK end status=pass", and no line that reports a fault,
#                   a panic, an error or a failed test or check
#   --expect fail   a test or check failed: "LFK end status=fail", status
#                   3, no fault, panic or error line
#   --expect fault  a deliberate fault: "LFK fault ...", "LFK end
#                   status=fail" and QEMU status 3 (the failure value)
#   --expect error  a refused command line or setup: "LFK error ...",
#                   "LFK end status=fail", status 3, and no fault
#   --expect-reason R  also: a report line with status=fail reason=R
#   --expect-line RE   also: a line matching the extended regex RE
#   --machine M     QEMU -machine (default pc), e.g. pc,pit=off
#   --initrd FILE   a boot module (PVH modlist): the kernel must keep it
#   --debug         start halted with a gdb stub on :1234 (-S -s), no
#                   timeout; kernel/gdbinit loads the symbols
# A run that outlives --timeout (default 60 s) is a hang: failure.
# Exit status: 0 when the run is what was expected, 1 otherwise, 2 usage.
set -uo pipefail

smp=4 mem=256M timeout=60 append="" expect=pass debug=0 kernel=""
machine=pc initrd="" reason="" lines=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smp) smp=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --expect) expect=$2; shift 2 ;;
    --expect-reason) reason=$2; shift 2 ;;
    --expect-line) lines+=("$2"); shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --debug) debug=1; shift ;;
    -h|--help) sed -n '2,/^# Exit status/p' "$0"; exit 0 ;;
    -*) echo "run-qemu.sh: unknown option $1" >&2; exit 2 ;;
    *) kernel=$1; shift ;;
    esac
done
case "$expect" in pass|fail|fault|error) ;; *)
    echo "run-qemu.sh: --expect pass, fail, fault or error" >&2; exit 2 ;;
esac
if [ -n "$reason" ] && [ "$expect" = pass ]; then
    echo "run-qemu.sh: --expect-reason needs --expect fail, fault or error" >&2
    exit 2
fi
if [ -z "$kernel" ] || [ ! -f "$kernel" ]; then
    echo "run-qemu.sh: no kernel image '$kernel'" >&2; exit 2
fi
qemu=${QEMU:-qemu-system-x86_64}
if ! command -v "$qemu" >/dev/null; then
    echo "run-qemu.sh: $qemu not found (scripts/deps.sh kernel installs it)" >&2
    exit 1
fi

args=(-machine "$machine" -accel tcg,thread=multi -cpu qemu64 -smp "$smp" -m "$mem"
      -display none -monitor none -serial stdio -no-reboot
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -kernel "$kernel" -append "$append")
if [ -n "$initrd" ]; then
    [ -f "$initrd" ] || { echo "run-qemu.sh: no initrd '$initrd'" >&2; exit 2; }
    args+=(-initrd "$initrd")
fi
if [ "$debug" = 1 ]; then
    echo "run-qemu.sh: halted, gdb stub on localhost:1234" >&2
    exec "$qemu" "${args[@]}" -S -s </dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s%N)
timeout -k 5 "$timeout" "$qemu" "${args[@]}" </dev/null 2>&1 |
    tr -d '\r' | tee "$log"
rc=${PIPESTATUS[0]}
ms=$(( ($(date +%s%N) - start) / 1000000 ))

has() { grep -qE "$1" "$log"; }
verdict=""
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    verdict="hang: no exit within ${timeout} s"
elif [ "$expect" = pass ]; then
    if [ "$rc" != 33 ]; then verdict="QEMU exit status $rc, not 33 (pass)"
    elif ! has '^LFK end status=pass'; then verdict="no 'LFK end status=pass' line"
    elif has '^LFK (fault|panic|error)' || has 'status=fail'; then
        verdict="a fault, panic, error or failed line"
    elif ! has '^LFK test name=' && ! has '^LFK smp '; then verdict="no report"
    fi
elif [ "$expect" = fault ]; then
    if ! has '^LFK fault '; then verdict="no 'LFK fault' line"
    elif ! has '^LFK end status=fail'; then verdict="no 'LFK end status=fail' line"
    elif [ "$rc" != 3 ]; then verdict="QEMU exit status $rc, not 3 (fail)"
    fi
elif [ "$expect" = fail ]; then
    if has '^LFK (fault|panic|error) '; then verdict="a fault, panic or error line"
    elif ! has '^LFK end status=fail'; then verdict="no 'LFK end status=fail' line"
    elif [ "$rc" != 3 ]; then verdict="QEMU exit status $rc, not 3 (fail)"
    fi
else
    if ! has '^LFK error '; then verdict="no 'LFK error' line"
    elif has '^LFK fault '; then verdict="a fault instead of an error"
    elif ! has '^LFK end status=fail'; then verdict="no 'LFK end status=fail' line"
    elif [ "$rc" != 3 ]; then verdict="QEMU exit status $rc, not 3 (fail)"
    fi
fi
if [ -z "$verdict" ] && [ -n "$reason" ] &&
   ! has "^LFK .*status=fail( .*)? reason=$reason( |\$)"; then
    verdict="no line with status=fail reason=$reason"
fi
for re in "${lines[@]}"; do
    if [ -z "$verdict" ] && ! has "$re"; then verdict="no line matching '$re'"; fi
done
if [ -n "$verdict" ]; then
    echo "run-qemu.sh: FAIL (expected $expect): $verdict [smp=$smp, ${ms} ms]"
    exit 1
fi
echo "run-qemu.sh: OK (expected $expect) [smp=$smp, ${ms} ms]"
