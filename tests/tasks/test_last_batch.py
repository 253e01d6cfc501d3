"""A training split whose last batch holds one sample (9 images at --batch-size 4) trains without BatchNorm's
"Expected more than 1 value per channel" (issue 21), and a run cut mid-way and resumed still equals the whole run
bit for bit. Tiny data, in-process: classify (resnet18 at 32 px: 1x1 maps in its last block), face (tinyface's
BatchNorm1d embedding), detect (tinydet)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbox.engine import checkpoint

COMMON = dict(epochs=2, batch_size=4, seed=0, deterministic=True, threads=1, monitor_interval=0, device="cpu",
              tracker="none")  # fmt: skip


def _classify_cfg(tmp: Path):
    from PIL import Image

    from dlbox.tasks.classify.config import ClassifyConfig

    rng = np.random.default_rng(0)
    for split, counts in (("train", (5, 4)), ("val", (1, 1))):  # 9 training images: batches of 4, 4, 1
        for c, n in zip(("a", "b"), counts, strict=True):
            (tmp / "data" / split / c).mkdir(parents=True)
            for i in range(n):
                px = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) // (1 if c == "a" else 3)
                Image.fromarray(px).save(tmp / "data" / split / c / f"{i}.png")
    # --recalibrate-bn: BatchNorm statistics over the training images in batches of 4, 4, 1 before validation
    return ClassifyConfig(data=str(tmp / "data"), model="resnet18", img_size=32, augment="none", decode="cpu",
                          recalibrate_bn=True, runs_dir=str(tmp / "runs"), **COMMON)  # fmt: skip


def _face_cfg(tmp: Path):
    from dlbox.tasks.face.config import FaceTrainConfig
    from dlbox.tasks.face.synthetic import make_identities

    data = make_identities(tmp / "ids", identities=5, photos=3, size=32, seed=0)  # 3 trained: 9 photos
    return FaceTrainConfig(data=str(data), model="tinyface", img_size=32, width=0.25, embedding_dim=16,
                           val_identities=0.4, val_pairs=4, runs_dir=str(tmp / "runs"), **COMMON)  # fmt: skip


def _detect_cfg(tmp: Path):
    from dlbox.data.shapes_det import write_shapes_det
    from dlbox.tasks.detect.config import DetectConfig

    write_shapes_det(tmp / "det", seed=5, n_images=14, size_range=(48, 64), obj_range=(8, 24), objects=(1, 2))
    return DetectConfig(data=str(tmp / "det"), model="tinydet", img_size=64, max_images=9, tb_images=0,
                        augment="none", runs_dir=str(tmp / "runs"), **COMMON)  # fmt: skip


def _train(task: str, cfg):
    from dlbox.engine.trainer import fit

    if task == "classify":
        from dlbox.tasks.classify.train import ClassifyTask as T
    elif task == "face":
        from dlbox.tasks.face.train import FaceTask as T
    else:
        from dlbox.tasks.detect.train import DetectTask as T
    t = T(cfg)
    return fit(t, cfg), t


def _weights(run_dir: str) -> dict[str, torch.Tensor]:
    return checkpoint.load(f"{run_dir}/checkpoints/last.pt")["model"]


@pytest.mark.parametrize("task", ["classify", "face", "detect"])
def test_a_last_batch_of_one_sample_trains_and_resumes_bit_for_bit(task, tmp_path):
    threads = torch.get_num_threads()
    try:
        cfg = {"classify": _classify_cfg, "face": _face_cfg, "detect": _detect_cfg}[task](tmp_path)
        whole, t = _train(task, dataclasses.replace(cfg, name="whole"))
        assert len(t.datasets()[0]) % 4 == 1  # the case: one sample left for the last batch
        assert checkpoint.load(f"{whole.run_dir}/checkpoints/last.pt")["global_step"] == 4  # 2 steps an epoch
        cut, _ = _train(task, dataclasses.replace(cfg, name="cut", max_steps=3))
        _train(task, dataclasses.replace(cfg, name="cut", resume=cut.run_dir))
    finally:
        torch.set_num_threads(threads)
    ref, resumed = _weights(whole.run_dir), _weights(cut.run_dir)
    for key, value in ref.items():
        assert torch.equal(value, resumed[key]), key
