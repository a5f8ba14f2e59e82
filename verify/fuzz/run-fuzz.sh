#!/bin/sh
# run-fuzz.sh FUZZER SEEDS SECONDS ARTIFACTS: run a libFuzzer binary for
# SECONDS from a scratch copy of the seed corpus SEEDS (the checked-in
# corpus is never written), crash inputs saved under ARTIFACTS. Extra
# libFuzzer flags may come in LF_FUZZ_FLAGS (e.g. -seed=N to replay a run).
set -eu
bin=$1 seeds=$2 secs=$3 art=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/lf-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$seeds"/* "$work"/
mkdir -p "$art"
# -timeout: an input that runs this long is a hang (a failure);
# -max_len: a few hundred operations an input.
"$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
    -max_len=1024 -print_final_stats=1 -artifact_prefix="$art/" \
    ${LF_FUZZ_FLAGS:-} "$work"
