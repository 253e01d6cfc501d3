"""dlbox's training loop versus a plain hand-written PyTorch loop: same model, data, batches and optimiser.

    python benchmarks/classify_overhead.py [--model resnet18] [--img-size 32] [--epochs 3] [--threads N]

Both loops train on the digits sample (class folders of PNGs, decoded each epoch by the same dataset and
transforms); the figure is training images/second over the timed epochs (the first epoch is warm-up and
evaluation time is excluded). The goal is a ratio >= 0.95: the engine's bookkeeping (metrics, progress,
signal checks, checkpoints once per epoch) must cost little.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.data.samples import write_sample  # noqa: E402
from dlbox.engine.metrics import read_jsonl  # noqa: E402
from dlbox.tasks.classify.train import ClassifyConfig, ClassifyTask, train  # noqa: E402


def plain_loop(cfg: ClassifyConfig, epochs: int) -> list[float]:
    """The reference: DataLoader, forward, cross-entropy, backward, AdamW step. Images/s per epoch."""
    torch.manual_seed(cfg.seed)
    task = ClassifyTask(cfg)
    model = task.build_model()
    opt, sched = task.configure_optimizers(model, 1)
    loader = torch.utils.data.DataLoader(task.train_set, batch_size=cfg.batch_size, shuffle=True)
    rates = []
    for _ in range(epochs):
        model.train()
        t, n = time.perf_counter(), 0
        for x, y in loader:
            out = model(x)
            logits = out if isinstance(out, torch.Tensor) else out.logits
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n += len(y)
        rates.append(n / (time.perf_counter() - t))
    return rates


def dlbox_loop(cfg: ClassifyConfig) -> list[float]:
    result = train(cfg)
    return [r["images_per_sec"] for r in read_jsonl(Path(result["run_dir"]) / "metrics.jsonl")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits"
        write_sample("digits", data)
        cfg = ClassifyConfig(data=str(data), model=args.model, img_size=args.img_size, epochs=args.epochs,
                             batch_size=args.batch_size, augment="none", runs_dir=str(Path(tmp) / "runs"),
                             threads=args.threads, val_split=0.1)  # fmt: skip
        from dlbox.engine.device import set_threads

        threads = set_threads(args.threads)
        plain = plain_loop(cfg, args.epochs)[1:]  # first epoch: warm-up
        ours = dlbox_loop(cfg)[1:]
    p, d = statistics.median(plain), statistics.median(ours)
    print(f"model {args.model}, {args.img_size}px, batch {args.batch_size}, {threads} threads, torch {torch.__version__}")
    print("| loop | train images/s (median of epochs 2..N) |")
    print("|---|---|")
    print(f"| plain PyTorch | {p:.1f} |")
    print(f"| dlbox engine | {d:.1f} |")
    print(f"ratio dlbox / plain: {d / p:.3f}")


if __name__ == "__main__":
    main()
