#!/usr/bin/env bash
# bench/coherence/check_coherence.sh: the smoke test of the coherence
# accounting mode (ctest bench_coherence_smoke): the whole chain of
# scripts/coherence.sh (make coherence), quick, at 1, 2 and 4 logical CPUs,
# into a scratch folder (a short ping-pong, bench_coherence --quick, the
# report), then:
#   - every column of the CSV, every series at every CPU count (ck's
#     upmc stack is skipped at 4: it is not ABA-safe there), kmem's
#     (kmem_cache, kmalloc, the locked slab) included, ops > 0;
#   - what the mode cannot run is skipped with its reason: the
#     general-purpose mallocs (not instrumented), ck's synchronize and
#     retire (they wait or scan inside libck), liburcu;
#   - the columns agree: misses = transfers + upgrades per op, the estimate
#     = misses x line_ns, per-op figures = counts / ops;
#   - one CPU has no coherence traffic (no transfer, upgrade, invalidation
#     or remote RMW), and contended series do have some at 2 and 4 CPUs
#     (the shared stack, the locked buddy, the mutex tree, the locked
#     slab, kmem's remote frees): a directory that counts nothing fails;
#   - the line latency measured and used (line_ns the same in both files);
#   - every plot (gnuplot) and the validation table against the committed
#     2-thread timings written, each file not empty, kmem's rows in it;
#   - a point that did no operation makes bench_coherence fail;
#   - docs/results.md untouched.
# Usage: check_coherence.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
docs_before=$(cksum <"$top/docs/results.md" 2>/dev/null || echo none)
rm -rf "$out"
COHERENCE_QUICK=1 COHERENCE_CPUS=1,2,4 COHERENCE_OUT="$out" \
    "$top/scripts/coherence.sh" "$build" >"$out.log" 2>&1 ||
    { cat "$out.log" >&2; exit 1; }
cols="prog,bench,impl,cpus,ops,accesses,reads,writes,rmws,cold,transfers,\
upgrades,invalidations,rmw_remote,hottest,heavy,accesses_per_op,\
transfers_per_op,upgrades_per_op,misses_per_op,invalidations_per_op,\
rmw_per_op,rmw_remote_per_op,heavy_per_op,est_ns_per_op,cap_mops,\
sim_ns_per_op,line_ns,hit_ns,pause_ns,budget_us,seed"
series=""
for b in repeat bulk cross mixed huge; do
    for i in lf_buddy lf_buddy_nocache locked_buddy; do
        series+=" buddy/$b/$i"
    done
done
for m in lookup mix90 mix50; do
    for e in 3 4; do
        for i in vas rb_rwlock rb_mutex; do series+=" vas/${m}_1e$e/$i"; done
    done
done
for i in lf_stack ck_stack_upmc ck_stack_mpmc; do series+=" lockfree/stack/$i"; done
for i in lf_epoch ck_epoch; do series+=" lockfree/epoch/$i"; done
series+=" lockfree/epoch_retire/lf_epoch"
for i in lf_synchronize lf_barrier; do series+=" lockfree/epoch_sync/$i"; done
for b in pair threadtest prodcons falseshare; do
    for i in kmem_cache kmalloc locked_slab; do series+=" kmem/$b/$i"; done
done
python3 - "$out/coherence.csv" "$cols" "$series" <<'PY'
import csv, sys
path, cols, series = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split()
allow = {("lockfree/stack/ck_stack_upmc", 4)}
contended = ["lockfree/stack/lf_stack", "buddy/repeat/locked_buddy",
             "vas/mix50_1e3/rb_mutex", "buddy/repeat/lf_buddy_nocache",
             "kmem/pair/locked_slab", "kmem/prodcons/kmem_cache",
             "kmem/prodcons/kmalloc"]
bad = []
with open(path) as f:
    r = csv.DictReader(f)
    if r.fieldnames != cols:
        sys.exit("check_coherence: columns %s, expected %s" % (r.fieldnames, cols))
    rows = list(r)
got = {}
for row in rows:
    key = "%s/%s/%s" % (row["prog"], row["bench"], row["impl"])
    n = int(row["cpus"])
    got[(key, n)] = row
    if any(row[c] == "" for c in cols):
        bad.append("%s %d: an empty column" % (key, n))
        continue
    ops = int(row["ops"])
    if ops <= 0:
        bad.append("%s %d: no operation" % (key, n))
        continue
    def per(c):
        return int(row[c]) / ops
    t, u = per("transfers"), per("upgrades")
    close = lambda a, b: abs(a - b) <= 1e-3 + 1e-3 * abs(b)
    for c in ("accesses", "transfers", "upgrades", "invalidations",
              "rmw_remote", "heavy"):
        if not close(float(row[c + "_per_op"]), per(c)):
            bad.append("%s %d: %s_per_op != %s / ops" % (key, n, c, c))
    if not close(float(row["rmw_per_op"]), per("rmws")):
        bad.append("%s %d: rmw_per_op != rmws / ops" % (key, n))
    if not close(float(row["misses_per_op"]), t + u):
        bad.append("%s %d: misses != transfers + upgrades" % (key, n))
    if not close(float(row["est_ns_per_op"]), (t + u) * float(row["line_ns"])):
        bad.append("%s %d: estimate != misses x line_ns" % (key, n))
    if int(row["reads"]) + int(row["writes"]) + int(row["rmws"]) != int(row["accesses"]):
        bad.append("%s %d: reads + writes + rmws != accesses" % (key, n))
    if float(row["sim_ns_per_op"]) <= 0:
        bad.append("%s %d: no simulated time" % (key, n))
    if n == 1 and any(int(row[c]) for c in ("transfers", "upgrades",
                                            "invalidations", "rmw_remote")):
        bad.append("%s: coherence traffic on one CPU" % key)
for key in series:
    for n in (1, 2, 4):
        if (key, n) not in got and (key, n) not in allow:
            bad.append("%s at %d cpus: missing" % (key, n))
for key in contended:
    for n in (2, 4):
        row = got.get((key, n))
        if row and int(row["transfers"]) + int(row["upgrades"]) == 0:
            bad.append("%s at %d cpus: contended, yet no miss" % (key, n))
if bad:
    sys.exit("check_coherence: " + "\n  ".join(bad))
print("check_coherence: %d rows, every series and column sound" % len(rows))
PY
lat=$(python3 -c 'import csv,sys; print({r["line_ns"] for r in csv.DictReader(open(sys.argv[1]))}.pop())' "$out/coherence-latency.csv")
used=$(python3 -c 'import csv,sys; print({r["line_ns"] for r in csv.DictReader(open(sys.argv[1]))}.pop())' "$out/coherence.csv")
if ! awk -v a="$lat" -v b="$used" 'BEGIN { d = a - b; exit !(a > 0 && d < 0.01 && d > -0.01) }'; then
    echo "check_coherence.sh: latency measured $lat, used $used" >&2
    exit 1
fi
for f in coherence-buddy.png coherence-vas.png coherence-lockfree.png \
         coherence-kmem.png coherence-sim-buddy.png coherence-sim-vas.png \
         coherence-sim-lockfree.png coherence-sim-kmem.png \
         coherence-validation.md; do
    if [ ! -s "$out/$f" ]; then
        echo "check_coherence.sh: $out/$f missing or empty" >&2
        exit 1
    fi
done
# The validation table has kmem's rows (the committed kmem.csv has 1 and
# 2 threads for each).
for b in pair threadtest prodcons falseshare; do
    for i in kmem_cache kmalloc locked_slab; do
        if ! grep -q "^| $b | $i |" "$out/coherence-validation.md"; then
            echo "check_coherence.sh: no $b/$i row in the validation table" >&2
            exit 1
        fi
    done
done
# What cannot run here is skipped, with its reason, not silently.
for want in "glibc *skipped: a general-purpose malloc: not instrumented" \
            "tcmalloc *skipped: a general-purpose malloc: not instrumented" \
            "ck_synchronize *skipped: ck_epoch_synchronize waits inside libck" \
            "ck_epoch *skipped: ck_epoch_poll scans the records inside libck" \
            "urcu_memb *skipped: liburcu's reader state is thread-local"; do
    if ! grep -q "$want" "$out/coherence.txt"; then
        echo "check_coherence.sh: no \"$want\" in $out/coherence.txt" >&2
        exit 1
    fi
done
# A point that did no operation fails the program: vas's run() looks at
# its stop flag before its first batch, and a budget of 0.1 ps is spent by
# then.
if "$build/bench/coherence/bench_coherence" --cpus 1 --only lookup_1e3/vas \
       --budget-us 0.0000001 >"$out/empty.txt" 2>&1; then
    echo "check_coherence.sh: a point with no operation passed" >&2
    exit 1
fi
if ! grep -q "no operation done" "$out/empty.txt"; then
    echo "check_coherence.sh: the empty point failed, but not as empty:" >&2
    cat "$out/empty.txt" >&2
    exit 1
fi
docs_after=$(cksum <"$top/docs/results.md" 2>/dev/null || echo none)
if [ "$docs_before" != "$docs_after" ]; then
    echo "check_coherence.sh: a quick run rewrote docs/results.md" >&2
    exit 1
fi
echo "check_coherence.sh: the chain ran at 1, 2 and 4 CPUs; plots and table written"
