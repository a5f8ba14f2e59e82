#!/bin/sh
# bench/check_latency_csv.sh CSV REPEATS: the checks of bench_latency's
# smoke test on its CSV. Every (bench, impl, scenario, op) that must be
# there is there for every repeat with samples > 0 and
# p50 <= p99 <= p99.9 <= max, and in the writers scenario the writers did
# operations (writer_ops > 0). Exit 0 if so, 1 with what is wrong.
set -eu
csv=$1
repeats=$2
[ -s "$csv" ] || { echo "check_latency_csv: no $csv" >&2; exit 1; }
head -n 1 "$csv" | grep -qx \
  'bench,impl,scenario,op,repeat,samples,p50_ns,p99_ns,p999_ns,max_ns,writer_ops,load1' \
  || { echo "check_latency_csv: bad header" >&2; exit 1; }
awk -F, -v R="$repeats" '
NR == 1 { next }
{
	key = $1 "/" $2 "/" $3 "/" $4
	seen[key]++
	if ($6 <= 0 || $7 > $8 || $8 > $9 || $9 > $10) {
		print "check_latency_csv: bad row " NR ": " $0 > "/dev/stderr"
		bad = 1
	}
	if ($3 == "writers" && $11 <= 0) {
		print "check_latency_csv: writers idle, row " NR > "/dev/stderr"
		bad = 1
	}
}
END {
	split("lf_buddy lf_buddy_nocache locked_buddy", bi, " ")
	split("vas vas_pc rb_rwlock rb_mutex", vi, " ")
	split("alone writers", sc, " ")
	for (s in sc) {
		for (i in bi) {
			need["buddy/" bi[i] "/" sc[s] "/alloc"]
			need["buddy/" bi[i] "/" sc[s] "/free"]
		}
		for (i in vi) {
			need["vas/" vi[i] "/" sc[s] "/lookup"]
			need["vas/" vi[i] "/" sc[s] "/alloc"]
			need["vas/" vi[i] "/" sc[s] "/free"]
		}
	}
	for (k in need)
		if (seen[k] != R) {
			print "check_latency_csv: " k ": " seen[k] + 0 \
			    " rows, want " R > "/dev/stderr"
			bad = 1
		}
	exit bad
}' "$csv"
