"""Images/s of the classification loader: JPEG decoding on the CPU (PIL in N loader workers) against decoding
on the training device (`dlbox classify train --decode device`: the workers read bytes, the device decodes).

    python benchmarks/decode_speed.py [--data DIR] [--images 1024] [--img-size 224] [--batch-size 128]
                                      [--workers 0,2,8] [--device auto] [--preset light] [--threads N] [--json]

Both paths produce the same thing, a training batch (N, 3, 224, 224) float32 on the device with the light
preset's random resized crop and flip, normalised; the figure is images/s over --passes timed passes through
the images after one warm-up pass (workers persist, so their start is not timed). "device decode alone" is
the device's ceiling: the preprocessing of byte batches already in memory, no loader. Without --data it
writes --images JPEGs of 500x375 or 375x500 px (ImageNet's typical size), cut from scikit-image's photos.
On a machine without CUDA both paths run on the CPU (the same code; the figure then compares PIL with
torchvision's libjpeg-turbo decoder and tensor ops in the main process).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlbox.data import device_decode  # noqa: E402
from dlbox.data.images import ImageDataset  # noqa: E402
from dlbox.data.transforms import build_transforms  # noqa: E402


def write_jpegs(out: Path, n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` JPEGs (quality 90) cut at random from scikit-image's colour photos, as (path, label) samples."""
    from PIL import Image
    from skimage import data

    photos = [Image.fromarray(f()) for f in (data.astronaut, data.coffee, data.chelsea, data.rocket, data.hubble_deep_field)]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = (500, 375) if i % 3 else (375, 500)
        path = out / f"{i:05d}.jpg"
        im.crop((x, y, x + cw, y + ch)).resize(size, Image.BILINEAR).save(path, quality=90)
        samples.append((str(path), i % 2))
    return samples


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(loader: DataLoader, step, device: torch.device, passes: int) -> float:
    """Images/s over ``passes`` passes after one warm-up pass; ``step(batch) -> (N, 3, S, S) on device``."""
    for batch in loader:
        step(batch)
    _sync(device)
    t, n = time.perf_counter(), 0
    for _ in range(passes):
        for batch in loader:
            n += len(step(batch))
    _sync(device)
    rate = n / (time.perf_counter() - t)
    if isinstance(loader, DataLoader):
        del loader
        gc.collect()  # the persistent workers exit now, not while the next path is being timed
    return rate


def measure(samples, device: torch.device, img_size: int, batch_size: int, workers: list[int], preset: str,
            passes: int) -> dict:  # fmt: skip
    rows = []
    tf = build_transforms(preset, img_size, train=True)
    for w in workers:  # CPU: PIL decode + transforms in w workers, the batch copied to the device
        ds = ImageDataset(samples, ["a", "b"], transform=tf)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=w, persistent_workers=w > 0,
                            pin_memory=device.type == "cuda")  # fmt: skip
        rate = _rate(loader, lambda b: b[0].to(device, non_blocking=True), device, passes)
        rows.append({"path": "PIL in the loader workers", "workers": w, "images_per_sec": round(rate, 1)})
    pre = device_decode.DevicePreprocess(preset, img_size)
    enc = device_decode.EncodedDataset(ImageDataset(samples, ["a", "b"]), seed=0)
    for w in sorted({0, min(2, max(workers))}):  # device: the workers only read bytes
        loader = DataLoader(enc, batch_size=batch_size, shuffle=False, num_workers=w, persistent_workers=w > 0,
                            collate_fn=device_decode.collate)  # fmt: skip
        rate = _rate(loader, lambda b: pre(b[0], device, train=True), device, passes)
        rows.append({"path": f"decode_jpeg on {device.type}", "workers": w, "images_per_sec": round(rate, 1)})
    batches = [device_decode.collate([enc[j] for j in range(i, min(i + batch_size, len(enc)))])[0]
               for i in range(0, len(enc), batch_size)]  # fmt: skip
    rate = _rate(batches, lambda b: pre(b, device, train=True), device, passes)
    rows.append({"path": f"decode_jpeg on {device.type}, bytes in memory", "workers": None, "images_per_sec": round(rate, 1)})
    cpu_best = max(r["images_per_sec"] for r in rows[: len(workers)])
    dev_best = max(r["images_per_sec"] for r in rows[len(workers) : -1])
    return {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_cores": os.cpu_count(), "threads": torch.get_num_threads(), "images": len(samples), "img_size": img_size, "batch_size": batch_size,
        "preset": preset, "passes": passes, "rows": rows,
        "best_cpu_loader": cpu_best, "best_device_decode": dev_best, "speedup": round(dev_best / cpu_best, 2),
    }  # fmt: skip


def render(r: dict) -> str:
    lines = [f"JPEG decode + {r['preset']} augment -> {r['img_size']} px batches of {r['batch_size']} on {r['device']} "
             f"({r['device_name']}, {r['cpu_cores']} CPU cores, {r['threads']} torch threads, {r['images']} images)",
             f"{'path':<40} {'workers':>7} {'images/s':>10}"]  # fmt: skip
    for row in r["rows"]:
        w = "-" if row["workers"] is None else row["workers"]
        lines.append(f"{row['path']:<40} {w:>7} {row['images_per_sec']:>10,.1f}")
    lines.append(f"device decode vs the best CPU loader: {r['speedup']:.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a folder of JPEGs (searched recursively; default: generated)")
    ap.add_argument("--images", type=int, default=1024, help="how many JPEGs to generate (default 1024)")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=128)
    cores = os.cpu_count() or 1
    ap.add_argument("--workers", default=",".join(map(str, sorted({0, min(2, cores), max(1, cores // 2)}))),
                    help="CPU loader worker counts, comma-separated (default: 0, 2 and half the cores)")  # fmt: skip
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    ap.add_argument("--preset", choices=["none", "light"], default="light", help="augmentation (default light)")
    ap.add_argument("--passes", type=int, default=2, help="timed passes through the images (default 2)")
    ap.add_argument("--threads", type=int, help="torch threads of the main process (default: 1 on the CPU, where the "
                    "device path's tensor ops in the main process would fight the workers for cores; torch's on CUDA)")
    ap.add_argument("--json", action="store_true", help="print only the JSON")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)  # fmt: skip
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    with tempfile.TemporaryDirectory(prefix="dlbox-decode-speed-") as tmp:
        if args.data:
            files = sorted(p for p in Path(args.data).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
            samples = [(str(p), 0) for p in files]
            if not samples:
                sys.exit(f"no .jpg/.jpeg files under {args.data}")
        else:
            samples = write_jpegs(Path(tmp), args.images)
        result = measure(samples, device, args.img_size, args.batch_size,
                         [int(w) for w in args.workers.split(",")], args.preset, args.passes)  # fmt: skip
    if not args.json:
        print(render(result))
    print(json.dumps(result, indent=None if not args.json else 2))


if __name__ == "__main__":
    main()
