#!/usr/bin/env bash
# bench/coherence/check_coherence_v3.sh: the smoke test of
# bench_coherence_v3 (ctest bench_coherence_v3_smoke; docs/v3-status.md
# item 25): bench_buddy_v3's workloads under the coherence accounting,
# quick, at 1 and 2 logical CPUs, then:
#   - every bench (repeat, bulk, cross, mixed, huge) for every series
#     (lf_buddy_v3, lf_buddy_v3_nocache, locked_buddy) at both CPU counts,
#     and repeat and bulk for lf_buddy_v3_norsv, each with ops > 0;
#   - one CPU has no coherence traffic (no transfer, upgrade or remote
#     RMW), and the contended series do have some at 2 CPUs (the locked
#     buddy on every bench, version 3 on cross): a directory that counts
#     nothing fails.
# Usage: check_coherence_v3.sh BENCH_COHERENCE_V3 OUT_CSV
set -euo pipefail
bin=$1 csv=$2
rm -f "$csv"
"$bin" --cpus 1,2 --quick --csv "$csv" >"$csv.log" 2>&1 ||
    { cat "$csv.log" >&2; exit 1; }
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = {(r["bench"], r["impl"], int(r["cpus"])): r for r in rows}
want = [(b, i, c) for b in ("repeat", "bulk", "cross", "mixed", "huge")
        for i in ("lf_buddy_v3", "lf_buddy_v3_nocache", "locked_buddy")
        for c in (1, 2)]
want += [(b, "lf_buddy_v3_norsv", c) for b in ("repeat", "bulk") for c in (1, 2)]
bad = []
for k in want:
    r = got.get(k)
    if r is None:
        bad.append(f"{k}: missing")
        continue
    if int(r["ops"]) <= 0:
        bad.append(f"{k}: no operation")
    traffic = int(r["transfers"]) + int(r["upgrades"]) + int(r["rmw_remote"])
    if k[2] == 1 and traffic:
        bad.append(f"{k}: coherence traffic at one CPU")
    contended = k[1] == "locked_buddy" or (k[0], k[1]) == ("cross", "lf_buddy_v3")
    if k[2] == 2 and contended and int(r["transfers"]) == 0:
        bad.append(f"{k}: no line transfer at two CPUs")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"bench_coherence_v3: {len(want)} series checked")
PY
