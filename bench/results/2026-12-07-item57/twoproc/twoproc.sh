#!/bin/bash
# Two independent 1-thread processes at once (each its own zone, pinned to
# CPU 0 and CPU 1) against one alone: is the 2-thread cost the host's?
B=/work/main/build/default/bench/bench_buddy_v3
out=${1:-/tmp/twoproc}; mkdir -p $out
for r in 1 2 3 4 5 6; do
  echo "round $r $(date +%T) $(cat /proc/loadavg)" >> $out/log.txt
  taskset -c 0 $B --only repeat --impls lf_buddy_v3,private --threads-max 1 --seconds 0.2 --repeats 5 > $out/alone-$r.txt 2>&1
  taskset -c 0 $B --only repeat --impls lf_buddy_v3,private --threads-max 1 --seconds 0.2 --repeats 5 > $out/pairA-$r.txt 2>&1 &
  taskset -c 1 $B --only repeat --impls lf_buddy_v3,private --threads-max 1 --seconds 0.2 --repeats 5 > $out/pairB-$r.txt 2>&1 &
  wait
  $B --only repeat --impls lf_buddy_v3,private --threads-max 2 --seconds 0.2 --repeats 5 > $out/twothr-$r.txt 2>&1
done
echo "end $(date +%T) $(cat /proc/loadavg)" >> $out/log.txt
for f in $out/*-?.txt; do echo "$(basename $f): $(grep -E '^\s+[12]\s+(lf_buddy_v3|private) ' $f | awk '{printf "%sT %s cpu %s | ", $1, $2, $6}')"; done
