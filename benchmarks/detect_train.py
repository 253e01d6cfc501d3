"""tinydet from scratch on the shapes-det sample: COCO AP50 reached and training time on this machine's CPU.

    python benchmarks/detect_train.py [--epochs 8] [--img-size 160] [--threads 1] [--seed 0]

The defaults are the acceptance test's configuration (tests/tasks/detect: AP50 >= 0.5 asserted); more epochs
or a larger --img-size buy accuracy (small objects especially) for time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.data.shapes_det import write_shapes_det  # noqa: E402
from dlbox.tasks.detect.config import DetectConfig  # noqa: E402
from dlbox.tasks.detect.evaluate import evaluate  # noqa: E402
from dlbox.tasks.detect.train import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--img-size", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="training seed (the sample is always seed 0)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlbox-detect-train-"))
    t = time.perf_counter()
    write_shapes_det(work / "shapes-det", seed=0)
    sample_s = time.perf_counter() - t
    cfg = DetectConfig(data=str(work / "shapes-det"), epochs=args.epochs, img_size=args.img_size, batch_size=args.batch_size,
                       threads=args.threads, seed=args.seed, channels_last=True, device="cpu", runs_dir=str(work / "runs"))  # fmt: skip
    result = train(cfg)
    test = evaluate(result["run_dir"], str(work / "shapes-det"), split="test", threads=args.threads)
    print(json.dumps({
        "sample_seconds": round(sample_s, 1), "train_seconds": result["seconds"], "train_images_per_sec": result["images_per_sec"],
        "val_AP50": result["AP50"], "val_AP": result["AP"], "test_AP50": test["AP50"], "test_AP": test["AP"],
        "test_per_class_AP": test["per_class"], "config": {k: getattr(args, k) for k in vars(args)},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
