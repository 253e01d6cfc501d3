#!/usr/bin/env bash
# The GPU check of issue 15: on a machine with an NVIDIA GPU, from the repository root,
#
#   OUT=/some/dir benchmarks/gpu_check.sh          (default OUT: benchmarks/results/gpu)
#
# 1. env:   nvidia-smi, torch's CUDA/cuDNN, `dlbox env --json`, `dlbox env gpu --json`
# 2. tests: `pytest -m gpu` (junit XML and log; the only tests that skip elsewhere)
# 3. eager: ResNet-50 batch 256, one path per process (fp32, fp32 channels_last, bf16/fp16 channels_last;
#           TF32 and CUDA graphs where `dlbox bench` offers them), so figures exist even if time runs out
# 4. suite: `dlbox bench --suite` at batch 256 (adds torch.compile; parity-checked, "vs baseline")
# 5. train: training throughput of real runs: classification (resnet50, 224 px, bf16, channels_last on the
#           digits sample) and detection (tinydet on shapes-det)
# 6. decode: benchmarks/decode_speed.py, JPEG decoding for the classification loader: PIL in CPU workers
#           against `--decode device` (nvjpeg through torchvision.io.decode_jpeg), 224 px crops, images/s
# then benchmarks/gpu_summary.py writes $OUT/gpu_check.json (everything) and $OUT/gpu_table.md (README rows).
# All output also goes to $OUT/gpu_check.log.
#
# Time guard: BUDGET_S (default 540 s) for the whole script; each step gets at most its own cap and what is
# left (minus RESERVE_S for the summary); a step that no longer fits is recorded as skipped. PARTS (default
# "env tests eager suite train decode") picks parts, e.g. two calls: PARTS="env tests eager train decode", then PARTS=suite
# (the summary reads every part found in $OUT). STEPS / WARMUP: timed and warm-up steps per measurement.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
BUDGET_S=${BUDGET_S:-540}
RESERVE_S=${RESERVE_S:-20}
PARTS=${PARTS:-env tests eager suite train decode}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-5}
BATCH=${BATCH:-256}
# For a dry run of the plumbing on a CPU: DEVICE=cpu MODEL=tiny BATCH=8 TRAIN_MODEL=resnet18 IMG=32 ...
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL:-resnet50}
TRAIN_MODEL=${TRAIN_MODEL:-resnet50}
IMG=${IMG:-224}
DET_IMG=${DET_IMG:-320}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-3}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" DLBOX_PROGRESS=0 PYTHONUNBUFFERED=1
START=$(date +%s)
mkdir -p "$OUT"
STEPS_TSV="$OUT/steps.tsv"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

left() { echo $((BUDGET_S - ($(date +%s) - START) - RESERVE_S)); }

# step NAME CAP_S OUTFILE CMD...: CMD under `timeout` (its cap or what is left), stdout also into OUTFILE;
# NAME, exit code (124: out of time) and seconds go to steps.tsv. A failing step never stops the script.
step() {
    local name=$1 cap=$2 outfile=$3 t rc s
    shift 3
    t=$(left)
    ((t > cap)) && t=$cap
    if ((t < 15)); then
        echo "== $name: skipped, the time budget is spent"
        printf '%s\tskipped\t0\n' "$name" >>"$STEPS_TSV"
        return 0
    fi
    echo "== $name (up to ${t}s): $*"
    s=$(date +%s)
    set +e
    timeout -k 10 "$t" "$@" | tee "$outfile"
    rc=${PIPESTATUS[0]}
    set -e
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - s))" >>"$STEPS_TSV"
    echo "== $name: exit $rc after $(($(date +%s) - s))s"
}

has() { [[ " $PARTS " == *" $1 "* ]]; }

bench() {  # bench LABEL CAP OPTIONS...: one `dlbox bench` run of $MODEL at batch $BATCH on $DEVICE
    local label=$1 cap=$2
    shift 2
    step "bench-$label" "$cap" "$OUT/bench-$label.txt" "$PYTHON" -m dlbox bench --model "$MODEL" \
        --batch-size "$BATCH" --device "$DEVICE" --steps "$STEPS" --warmup "$WARMUP" --save "$OUT/bench-$label.csv" "$@"
}

echo "gpu_check $(date -u +%FT%TZ) on $(hostname): parts '$PARTS', budget ${BUDGET_S}s, python $PYTHON"
[[ "$DEVICE" != cuda* ]] || "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || {
    echo "no CUDA device visible to torch: nothing to measure here"
    printf 'cuda\tunavailable\t0\n' >>"$STEPS_TSV"
    "$PYTHON" benchmarks/gpu_summary.py "$OUT" || true
    exit 1
}

if has env; then
    step nvidia-smi 30 "$OUT/nvidia-smi.txt" nvidia-smi
    step nvidia-smi-query 30 "$OUT/nvidia-smi.csv" nvidia-smi \
        --query-gpu=index,name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv
    step torch-cuda 60 "$OUT/torch-cuda.json" "$PYTHON" -c 'import json, torch
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
    "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}))'
    step dlbox-env 90 "$OUT/dlbox-env.json" "$PYTHON" -m dlbox env --json
    step dlbox-env-gpu 30 "$OUT/dlbox-env-gpu.json" "$PYTHON" -m dlbox env gpu --json
fi

if has tests; then
    mapfile -t gpu_tests < <(grep -rlE "pytest\.mark\.gpu|pytestmark = pytest\.mark\.gpu" tests --include='*.py' | sort)
    step tests 240 "$OUT/tests.txt" "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider \
        --junitxml="$OUT/tests.xml" "${gpu_tests[@]}"
fi

if has eager; then
    bench fp32 120 --precision fp32
    bench fp32-cl 120 --precision fp32 --channels-last
    bench bf16-cl 120 --precision bf16 --channels-last
    bench fp16-cl 120 --precision fp16 --channels-last
    help=$("$PYTHON" -m dlbox bench --help)
    if [[ "$help" == *"--tf32"* ]]; then bench tf32-cl 120 --precision fp32 --channels-last --tf32; fi
    if [[ "$help" == *"--cuda-graphs"* ]]; then bench bf16-cl-graphs 180 --precision bf16 --channels-last --cuda-graphs; fi
fi

if has suite; then
    bench suite 900 --suite
fi

if has train; then
    step sample-digits 60 "$OUT/sample-digits.json" "$PYTHON" -m dlbox data sample digits --out "$WORK/digits" --json
    step train-classify 240 "$OUT/train-classify.json" "$PYTHON" -m dlbox classify train --data "$WORK/digits" \
        --model "$TRAIN_MODEL" --img-size "$IMG" --epochs "$TRAIN_EPOCHS" --batch-size "$BATCH" --device "$DEVICE" --precision bf16 \
        --channels-last --workers 8 --runs-dir "$WORK/runs" --name gpu --json
    cp "$WORK/runs/classify/gpu/metrics.jsonl" "$OUT/train-classify.metrics.jsonl" 2>/dev/null || true
    step sample-shapes-det 60 "$OUT/sample-shapes-det.json" "$PYTHON" -m dlbox data sample shapes-det \
        --out "$WORK/shapes-det" --json
    step train-detect 240 "$OUT/train-detect.json" "$PYTHON" -m dlbox detect train --data "$WORK/shapes-det" \
        --epochs "$TRAIN_EPOCHS" --img-size "$DET_IMG" --batch-size 64 --device "$DEVICE" --precision bf16 --workers 8 \
        --runs-dir "$WORK/runs" --name gpu --json
    cp "$WORK/runs/detect/gpu/metrics.jsonl" "$OUT/train-detect.metrics.jsonl" 2>/dev/null || true
fi

if has decode; then  # ~20 s on 16 cores: 1024 generated JPEGs, one timed pass per path
    step decode-speed 120 "$OUT/decode-speed.json" "$PYTHON" benchmarks/decode_speed.py --device "$DEVICE" \
        --images 1024 --passes 1 --workers "2,8,$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))" --json
fi

"$PYTHON" benchmarks/gpu_summary.py "$OUT"
echo "gpu_check done in $(($(date +%s) - START))s: $OUT/gpu_check.json, $OUT/gpu_table.md"
