#!/usr/bin/env bash
# scripts/mutants.sh: mutation testing over verify/mutants/*.patch (make
# mutants). Each patch is a seeded bug in the lock-free core; the tests must
# kill it. See verify/mutants/README.md.
#
# Usage: scripts/mutants.sh [options] [NAME...]
#   NAME          a mutant (file name without .patch); default: all of them
#   --check       only check that every patch still applies to the working
#                 tree (dry run, nothing changed) and has its metadata; this
#                 is the ctest mutants_apply
#   --list        print the mutants and their descriptions
#   --no-baseline skip the run of the tests on the unmutated copy
#   --keep        keep the scratch copy (its path is printed)
# Environment: JOBS (build and ctest parallelism, default nproc),
#   MUTANT_TIMEOUT (seconds one ctest run may take, default 180),
#   TMPDIR (where the scratch copy goes). Logs: build/mutants/.
#
# What it does: copies the tracked and untracked-not-ignored files of the
# working tree into a scratch directory (the real tree and build/ are never
# touched), configures there each preset the selected mutants name (bench
# off), builds the test programs they need, runs those tests unmutated (a
# failing baseline would make every kill meaningless), then for each mutant:
# applies the patch, rebuilds incrementally, runs its tests one by one in
# the order its Run: lines give (stopping at the first failure), reverts the
# patch. A mutant is KILLED when a test
# fails (or hangs past MUTANT_TIMEOUT), SURVIVED when all pass, ERROR when it
# does not build, STALE when it no longer applies. Exit status 0 only if
# every mutant was killed.
#
# Patch format: a header of "Key: value" lines, then a unified diff against
# the repository root (patch -p1). Keys:
#   Mutant:      the name (= the file name without .patch)
#   Module:      the source file it mutates
#   Description: one line: the bug
#   Run:         PRESET TEST..., one or more lines, run in order: the ctest
#                tests (by exact name) to run in that preset; the first
#                failing test kills the mutant
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mdir=$root/verify/mutants
jobs=${JOBS:-$(nproc)}
tmo=${MUTANT_TIMEOUT:-180}
# The unmutated run of a preset runs every test any mutant names, at once:
# a sum of runs, so it gets a multiple of the per-mutant bound.
btmo=${MUTANT_BASELINE_TIMEOUT:-$((tmo * 4))}
presets_ok=" default tsan asan mc "
# Never the QEMU boots or the benchmarks: they test nothing a mutant breaks
# that the userspace tests do not, and cost minutes.
exclude='kernel|bench'

mode=run
baseline=1
keep=0
names=()
for a in "$@"; do
	case "$a" in
	--check) mode=check ;;
	--list) mode=list ;;
	--no-baseline) baseline=0 ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
	-*) echo "mutants.sh: unknown option $a" >&2; exit 2 ;;
	*) names+=("$(basename "${a%.patch}")") ;;
	esac
done

if ! command -v patch >/dev/null; then
	echo "mutants.sh: patch is not installed (scripts/deps.sh build)" >&2
	exit 2
fi
if [ ${#names[@]} -eq 0 ]; then
	for p in "$mdir"/*.patch; do
		[ -e "$p" ] && names+=("$(basename "${p%.patch}")")
	done
fi
if [ ${#names[@]} -eq 0 ]; then
	echo "mutants.sh: no mutants in $mdir" >&2
	exit 2
fi

# meta FILE KEY: the value of the first "KEY: value" line of the header.
meta() {
	sed -n "/^--- /q; s/^$2: *//p" "$1" | head -n 1
}
# runs FILE: the Run lines, "PRESET TEST..." each.
runs() {
	sed -n '/^--- /q; s/^Run: *//p' "$1"
}

# Check a mutant's file and header; prints the problem, returns 1.
validate() {
	local n=$1 f=$mdir/$1.patch
	if [ ! -f "$f" ]; then
		echo "$n: no such mutant ($f)"
		return 1
	fi
	local mod desc
	mod=$(meta "$f" Module)
	desc=$(meta "$f" Description)
	if [ "$(meta "$f" Mutant)" != "$n" ]; then
		echo "$n: the Mutant: line does not name the file"
		return 1
	fi
	if [ -z "$desc" ] || [ -z "$mod" ] || [ ! -f "$root/$mod" ]; then
		echo "$n: missing Description:, or Module: not a file"
		return 1
	fi
	if ! grep -q "^+++ b/$mod" "$f"; then
		echo "$n: the patch does not change its Module: $mod"
		return 1
	fi
	local p r any=0
	while read -r p r; do
		any=1
		if [[ "$presets_ok" != *" $p "* ]] || [ -z "$r" ]; then
			echo "$n: bad Run: line '$p $r'"
			return 1
		fi
	done < <(runs "$f")
	if [ $any -eq 0 ]; then
		echo "$n: no Run: line"
		return 1
	fi
	return 0
}

# applies DIR FILE: does the patch apply cleanly (no fuzz) to DIR?
applies() {
	patch -d "$1" -p1 -f -s --dry-run --fuzz=0 <"$2" >/dev/null 2>&1
}

if [ "$mode" = list ]; then
	for n in "${names[@]}"; do
		f=$mdir/$n.patch
		printf '%-26s %-24s %s\n' "$n" "$(meta "$f" Module)" \
			"$(meta "$f" Description)"
	done
	exit 0
fi

if [ "$mode" = check ]; then
	bad=0
	for n in "${names[@]}"; do
		if ! validate "$n"; then
			bad=$((bad + 1))
		elif ! applies "$root" "$mdir/$n.patch"; then
			echo "$n: STALE: no longer applies to $(meta "$mdir/$n.patch" Module)"
			bad=$((bad + 1))
		else
			echo "$n: applies"
		fi
	done
	echo "mutants: ${#names[@]} checked, $bad bad"
	[ $bad -eq 0 ]
	exit
fi

# ---- run ----

for n in "${names[@]}"; do
	validate "$n" >&2 || exit 2
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lfalloc-mutants.XXXXXX")
cleanup() {
	if [ $keep -eq 1 ]; then
		echo "scratch copy kept: $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
src=$tmp/src
mkdir -p "$src"
# Logs outlive the scratch copy: build/mutants/ (ignored by git).
log=$root/build/mutants
rm -rf "$log"
mkdir -p "$log"

# The working tree as it is, committed or not, without ignored files (or,
# outside a git checkout, everything but build/).
tree_files() {
	if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$root" ls-files -co --exclude-standard -z |
			while IFS= read -r -d '' f; do
				[ -e "$root/$f" ] && printf '%s\0' "$f"
			done
	else
		(cd "$root" && find . -path ./build -prune -o -type f -print0)
	fi
}
tree_files | (cd "$root" && tar --null -cf - -T -) | tar -xf - -C "$src" || {
	echo "mutants.sh: cannot copy the working tree" >&2
	exit 2
}

# rx TEST...: the ctest regex that selects exactly these tests (one group:
# CMake's regex engine allows few).
rx() {
	local IFS='|'
	echo "^($*)\$"
}

# Which presets, and per preset the union of the test names.
declare -A union
for n in "${names[@]}"; do
	while read -r p r; do
		union[$p]="${union[$p]:-} $r"
	done < <(runs "$mdir/$n.patch")
done
presets=()
for p in default tsan asan mc; do
	[ -n "${union[$p]:-}" ] || continue
	presets+=("$p")
	# shellcheck disable=SC2046,SC2086
	union[$p]=$(rx $(printf '%s\n' ${union[$p]} | sort -u))
done

# targets PRESET REGEX: the executables built in the build tree that the
# selected tests run (ctest -N -V prints each test's command, or, before
# the first build, the executable it could not find).
targets() {
	local b=$src/build/$1
	ctest --test-dir "$b" -N -V -R "$2" -LE "$exclude" 2>/dev/null |
		sed -n -e 's/^[0-9]*: Test command: //p' \
			-e 's/^Could not find executable //p' | awk '{print $1}' |
		while read -r exe; do
			exe=${exe//\"/}
			case "$exe" in "$b"/*) basename "$exe" ;; esac
		done | sort -u
}

# build PRESET REGEX LOG: (re)build what the tests of REGEX need.
build() {
	local t
	t=$(targets "$1" "$2")
	[ -n "$t" ] || { echo "no tests match '$2'" >>"$3"; return 1; }
	# shellcheck disable=SC2086
	cmake --build "$src/build/$1" -j "$jobs" --target $t >>"$3" 2>&1
}

# runtests PRESET REGEX LOG: run the tests (in parallel); prints the first
# failing test.
runtests() {
	local out=$3.last
	rm -f "$3.junit.xml"
	timeout "$tmo" ctest --test-dir "$src/build/$1" -R "$2" -LE "$exclude" \
		-j "$jobs" --stop-on-failure --output-on-failure \
		--output-junit "$3.junit.xml" >"$out" 2>&1
	local rc=$? failed
	cat "$out" >>"$3.ctest"
	cat "$out" >>"$3"
	# The failing test, from ctest's JUnit report (not its text).
	failed=$(grep -o '<testcase name="[^"]*"[^>]*status="fail"' \
		"$3.junit.xml" 2>/dev/null | sed 's/<testcase name="\([^"]*\)".*/\1/' |
		head -n 1)
	rm -f "$out" "$3.junit.xml"
	if [ $rc -eq 124 ]; then
		echo "timeout(${tmo}s)"
		return 1
	fi
	[ $rc -eq 0 ] && return 0
	echo "${failed:-ctest(rc=$rc)}"
	return 1
}

# runorder PRESET LOG TEST...: run the tests one by one in the order
# given (cheap deterministic ones first: the killer reported is the first
# that fails, not whichever ctest happened to start first); prints it.
runorder() {
	local p=$1 l=$2 t why
	shift 2
	for t in "$@"; do
		why=$(runtests "$p" "$(rx "$t")" "$l") || {
			echo "$why"
			return 1
		}
	done
	return 0
}

echo "=== mutants: scratch copy in $tmp; presets: ${presets[*]}"
t0=$(date +%s)
for p in "${presets[@]}"; do
	echo "=== preset $p: configure and build (baseline)"
	if ! (cd "$src" && cmake --preset "$p" -DLF_WERROR=OFF \
		-DLF_BUILD_BENCH=OFF >"$log/configure-$p" 2>&1); then
		cat "$log/configure-$p" >&2
		echo "mutants.sh: preset $p does not configure" >&2
		exit 2
	fi
	if ! build "$p" "${union[$p]}" "$log/build-$p"; then
		tail -n 40 "$log/build-$p" >&2
		echo "mutants.sh: preset $p does not build unmutated" >&2
		exit 2
	fi
	if [ $baseline -eq 1 ]; then
		echo "=== preset $p: the tests, unmutated"
		if ! why=$(tmo=$btmo runtests "$p" "${union[$p]}" \
			"$log/baseline-$p"); then
			tail -n 60 "$log/baseline-$p" >&2
			echo "mutants.sh: $why fails WITHOUT a mutant ($p):" \
				"fix the tests first" >&2
			exit 2
		fi
	fi
done
echo "=== baseline ready in $(( $(date +%s) - t0 )) s"

declare -A result killer secs
killed=0
others=0
for n in "${names[@]}"; do
	f=$mdir/$n.patch
	l=$log/$n
	s0=$(date +%s)
	printf '=== %-26s ' "$n"
	if ! applies "$src" "$f"; then
		result[$n]=STALE
		killer[$n]="-"
	elif ! patch -d "$src" -p1 -f -s --fuzz=0 --no-backup-if-mismatch \
		<"$f" >"$l" 2>&1; then
		result[$n]=STALE
		killer[$n]="-"
	else
		result[$n]=SURVIVED
		killer[$n]="-"
		while read -r p r; do
			# shellcheck disable=SC2086
			if ! build "$p" "$(rx $r)" "$l"; then
				result[$n]=ERROR
				killer[$n]="$p: does not build"
				break
			fi
			# shellcheck disable=SC2086
			if ! why=$(runorder "$p" "$l" $r); then
				result[$n]=KILLED
				killer[$n]="$p: $why"
				break
			fi
		done < <(runs "$f")
		if ! patch -d "$src" -p1 -R -f -s --fuzz=0 \
			--no-backup-if-mismatch <"$f" >>"$l" 2>&1; then
			echo
			echo "mutants.sh: cannot revert $n; stopping" >&2
			exit 2
		fi
	fi
	secs[$n]=$(( $(date +%s) - s0 ))
	if [ "${result[$n]}" = KILLED ]; then
		killed=$((killed + 1))
	else
		others=$((others + 1))
	fi
	printf '%-8s %-36s %4s s\n' "${result[$n]}" "${killer[$n]}" "${secs[$n]}"
done

echo
printf '%-26s %-8s %-36s %5s  %s\n' mutant result "killed by" seconds description
for n in "${names[@]}"; do
	printf '%-26s %-8s %-36s %5s  %s\n' "$n" "${result[$n]}" "${killer[$n]}" \
		"${secs[$n]}" "$(meta "$mdir/$n.patch" Description)"
done
echo
echo "mutants: ${#names[@]} run, $killed killed, $others not killed" \
	"($(( $(date +%s) - t0 )) s; logs in $log)"
[ $others -eq 0 ]
