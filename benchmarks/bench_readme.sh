#!/usr/bin/env bash
# The README's benchmark table: ResNet-50, batch 32, every path of `dlbox bench --suite`, with the old
# platform's published table beside it. Run it from the repository root on a QUIET machine (nothing else
# running: `uptime` should show a load average near 0), since other processes on the same cores make the
# figures wrong. On the 2-core CPU this takes about 20-40 minutes (training fp32 NCHW eager alone is minutes);
# with a GPU present it also runs the GPU suite.
#
#   benchmarks/bench_readme.sh [OUT_DIR]     (default: benchmarks/results)
#
# Writes OUT_DIR/resnet50-<device>.md (header, table, notes, published comparison) and .csv, and
# OUT_DIR/uptime-<device>.txt (the load before and after). Paste the table and header lines into README.
set -euo pipefail

PYTHON=${PYTHON:-python}
OUT=${1:-benchmarks/results}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
mkdir -p "$OUT"

run() {  # run DEVICE
    local dev=$1
    uptime | tee "$OUT/uptime-$dev.txt"
    "$PYTHON" -m dlbox bench --suite --compare-published --model resnet50 --batch-size 32 --device "$dev" \
        --steps "$STEPS" --warmup "$WARMUP" --save "$OUT/resnet50-$dev.csv" | tee "$OUT/resnet50-$dev.md"
    uptime | tee -a "$OUT/uptime-$dev.txt"
}

run cpu
if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    run cuda
fi
