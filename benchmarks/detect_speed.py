"""tinydet inference speed through onnxruntime: the embedded-target goal is >= 50 images/s at 320 px on 2 cores.

    python benchmarks/detect_speed.py [--img-size 320] [--threads 2] [--runs 200] [--run RUN_DIR]

Times the whole exported detector at batch 1 (network, box decoding, top-k, NMS: all inside the ONNX
graph), the embedded case of one camera frame at a time. Without --run it builds an untrained tinydet
for the 3 shapes-det classes (speed does not depend on the weights; the class count barely matters), so the
figure needs no training. Also prints PyTorch eager for comparison. Same code path as `dlbox detect bench`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.engine.device import physical_cores  # noqa: E402
from dlbox.tasks.detect.bench import bench, render  # noqa: E402

GOAL = 50.0  # images/s at 320 px, onnxruntime, 2 cores


def untrained_run(classes: int = 3) -> Path:
    """A run directory holding a fresh tinydet checkpoint (what `bench` and `export` read)."""
    from dlbox import __version__
    from dlbox.engine import checkpoint
    from dlbox.tasks.detect.tinydet import TinyDet

    run = Path(tempfile.mkdtemp(prefix="dlbox-detect-speed-"))
    torch.manual_seed(0)
    names = [f"class{i}" for i in range(classes)]
    state = {"dlbox": __version__, "task": "detect", "model": TinyDet(classes).state_dict(),
             "task_state": {"classes": names, "category_ids": list(range(1, classes + 1)), "model_name": "tinydet",
                            "img_size": 320}}  # fmt: skip
    checkpoint.save(state, run / "checkpoints" / "best.pt")
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained tinydet run (default: an untrained model)")
    ap.add_argument("--img-size", type=int, default=320)
    ap.add_argument("--threads", type=int, default=min(2, physical_cores()))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    source = args.run or str(untrained_run())
    onnx = bench(source, args.img_size, "onnx", args.runs, 20, args.threads)
    eager = bench(source, args.img_size, "torch", max(20, args.runs // 4), 5, args.threads)
    onnx["goal_images_per_sec"], onnx["meets_goal"] = GOAL, onnx["images_per_sec"] >= GOAL
    if args.json:
        print(json.dumps({"onnxruntime": onnx, "pytorch": eager}, indent=2))
        return
    print(render(onnx))
    print(render(eager))
    verdict = "meets" if onnx["meets_goal"] else "MISSES"
    print(f"goal: >= {GOAL:.0f} images/s at 320 px on 2 cores through onnxruntime -> {verdict} it "
          f"({onnx['images_per_sec']:.1f} images/s at {args.img_size} px, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
