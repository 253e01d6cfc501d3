"""`--decode device`: JPEG bytes from the loader, decoded and transformed on the training device (here the CPU,
which runs the same code as CUDA): parity with the PIL path, per-sample determinism, training, exact resume,
and what happens with PNGs."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data import device_decode
from dlbox.data.images import ImageDataset
from dlbox.data.samples import write_sample
from dlbox.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

CPU = torch.device("cpu")


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """Normalised (..., 3, H, W) back to 0-255 pixel levels (tolerances read in levels, whatever the std)."""
    std, mean = torch.tensor(IMAGENET_STD)[:, None, None], torch.tensor(IMAGENET_MEAN)[:, None, None]
    return (x * std + mean) * 255


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """scikit-image's photos as JPEGs (quality 90) at several sizes: smaller than, near and above 224 / 0.875
    px, portrait and landscape, colour and grayscale."""
    from skimage import data

    out = tmp_path_factory.mktemp("photos")
    files = []
    for name in ("astronaut", "coffee", "chelsea", "camera"):
        im = Image.fromarray(getattr(data, name)())
        for side in (30, 100, 257, 400):
            small = im.copy()
            small.thumbnail((side, side))
            files.append(out / f"{name}-{side}.jpg")
            small.save(files[-1], quality=90)
    return files


@pytest.fixture(scope="module")
def digit_jpegs(tmp_path_factory) -> Path:
    """4 classes x 60 of scikit-learn's digit scans (32 px) as JPEG class folders."""
    root = tmp_path_factory.mktemp("digits")
    write_sample("digits", root / "png")
    for c in ("0", "1", "2", "3"):
        (root / "jpg" / c).mkdir(parents=True)
        for f in sorted((root / "png" / c).iterdir())[:60]:
            Image.open(f).convert("RGB").save(root / "jpg" / c / f"{f.stem}.jpg", quality=90)
    return root


def _batch(files, seed: int = 0, epoch: int = 0):
    ds = device_decode.EncodedDataset(ImageDataset([(str(f), 0) for f in files], ["x"]), seed)
    ds.epoch = epoch
    return device_decode.collate([ds[i] for i in range(len(ds))])[0]


@pytest.mark.parametrize("size", [32, 224])
def test_evaluation_transform_matches_the_pil_path_within_one_pixel_level(photos, size):
    """decode_jpeg and PIL both use libjpeg-turbo: the decoded pixels are identical (measured: max diff 0).
    The resize then differs only by PIL rounding its result to uint8: measured max 1.0 level, mean ~0.3
    (0.0175 / 0.005 in normalised units)."""
    tf = build_transforms("none", size, train=False)
    batch = _batch(photos)
    decoded = device_decode.decode(batch, CPU)
    x = device_decode.DevicePreprocess("none", size)(batch, CPU, train=False)  # (16, 3, size, size)
    for f, pix, xi in zip(photos, decoded, x, strict=True):
        pil = torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy()).permute(2, 0, 1)
        assert torch.equal(pix, pil), f.name
        diff = (_pixels(xi) - _pixels(tf(Image.open(f).convert("RGB")))).abs()
        assert diff.max() <= 1.05 and diff.mean() <= 0.45, (f.name, diff.max().item(), diff.mean().item())


def test_png_files_arrive_as_pixels_and_give_the_pil_paths_tensors(digit_jpegs):
    """A PNG in a --decode device run is decoded with PIL in the worker (as the CPU path decodes it); the
    device resizes it like the JPEGs."""
    pngs = sorted((digit_jpegs / "png" / "7").iterdir())[:4]
    batch = _batch(pngs)
    assert all(s == (32, 32, 3) for s in batch.shapes)
    x = device_decode.DevicePreprocess("none", 48)(batch, CPU, train=False)
    ref = torch.stack([build_transforms("none", 48, train=False)(Image.open(f).convert("RGB")) for f in pngs])
    assert (_pixels(x) - _pixels(ref)).abs().max() <= 1.05


def test_a_png_folder_refuses_decode_device_in_one_line(digit_jpegs, tmp_path, capsys):
    """The device decoder reads JPEG only: asked for on PNGs alone, it is refused before training starts."""
    from tests.conftest import assert_user_error, run_main

    for c in ("0", "1"):
        shutil.copytree(digit_jpegs / "png" / c, tmp_path / "png" / c, ignore=lambda d, names: sorted(names)[10:])
    res = run_main(capsys, "classify", "train", "--data", tmp_path / "png", "--decode", "device", "--img-size", "32",
                   "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert_user_error(res, "--decode device: none of the 18 files sampled from", "is a JPEG", "--decode cpu")
    assert not (tmp_path / "runs").exists()


def test_auto_decodes_on_the_device_only_on_cuda_with_jpegs_and_device_takes_mixed_folders(digit_jpegs):
    pngs = [(str(f), 0) for f in sorted((digit_jpegs / "png" / "1").iterdir())]
    jpegs = [(str(f), 0) for f in sorted((digit_jpegs / "jpg" / "1").iterdir())]
    assert device_decode.choose("auto", True, jpegs) is True
    assert device_decode.choose("auto", True, pngs) is False
    assert device_decode.choose("auto", False, jpegs) is False  # a CPU run: PIL in the workers, as before
    assert device_decode.choose("device", True, jpegs[:40] + pngs[:20]) is True  # the PNGs: per file, on the CPU
    with pytest.raises(UserError, match="none of the 64 files sampled"):
        device_decode.choose("device", True, pngs)


def test_a_jpeg_the_decoder_refuses_is_decoded_with_pil(photos, monkeypatch):
    """One bad image fails a batched decode_jpeg call: each is retried alone, the refused one through PIL."""
    real = device_decode.decode_jpeg

    def picky(data, **kw):
        if isinstance(data, list) or data.numel() == photos[3].stat().st_size:
            raise RuntimeError("unsupported (fake)")
        return real(data, **kw)

    batch = _batch(photos[:5])
    monkeypatch.setattr(device_decode, "decode_jpeg", picky)
    got = device_decode.decode(batch, CPU)
    monkeypatch.setattr(device_decode, "decode_jpeg", real)
    assert all(torch.equal(a, b) for a, b in zip(got, device_decode.decode(batch, CPU), strict=True))


def test_augmentation_depends_only_on_seed_epoch_and_index(photos):
    """Not on the loading order or the worker: that makes a mid-epoch resume see the same crops."""
    pre = device_decode.DevicePreprocess("standard", 64)
    ds = device_decode.EncodedDataset(ImageDataset([(str(f), 0) for f in photos], ["x"]), seed=5)
    forward = pre(device_decode.collate([ds[i] for i in range(6)])[0], CPU, train=True)
    backward = pre(device_decode.collate([ds[i] for i in reversed(range(6))])[0], CPU, train=True)
    assert torch.equal(forward, backward.flip(0))
    assert not torch.equal(forward[0], pre(_batch(photos[:1], seed=5, epoch=1), CPU, train=True)[0])
    assert not torch.equal(forward[0], pre(_batch(photos[:1], seed=6), CPU, train=True)[0])


def _config(data: Path, runs: Path, decode: str, **kw):
    from dlbox.tasks.classify.config import ClassifyConfig

    base = dict(data=str(data), model="resnet18", img_size=32, batch_size=32, lr=2e-3, val_split=0.5,
                recalibrate_bn=True, decode=decode, runs_dir=str(runs), threads=1, monitor_interval=0)  # fmt: skip
    return ClassifyConfig(**{**base, **kw})


def test_training_with_device_decode_learns_like_the_cpu_decode(digit_jpegs, tmp_path):
    """The same data and seed, the light augmentation (crops drawn from other random streams): validation
    top-1 after 3 epochs on 120 images, measured on seeds 0-3: cpu 0.925/0.867/0.933/0.933, device
    0.858/0.908/0.942/0.967 (device - cpu from -0.067 to +0.042; chance is 0.25)."""
    from dlbox.tasks.classify.train import train

    runs = {d: train(_config(digit_jpegs / "jpg", tmp_path, d, epochs=3)) for d in ("cpu", "device")}
    assert runs["device"]["val_top1"] >= runs["cpu"]["val_top1"] - 0.12
    assert runs["device"]["val_top1"] >= 0.75


def test_a_run_stopped_mid_epoch_resumes_bit_for_bit_with_device_decode(digit_jpegs, tmp_path, monkeypatch):
    from dlbox.engine import checkpoint
    from dlbox.engine.signals import Interrupted
    from dlbox.tasks.classify.train import ClassifyTask, train

    small = tmp_path / "small"
    for c in ("0", "1"):
        shutil.copytree(digit_jpegs / "jpg" / c, small / c, ignore=lambda d, names: sorted(names)[20:])
    common = dict(epochs=1, batch_size=8, deterministic=True, recalibrate_bn=False, val_split=0.25)
    ref = train(_config(small, tmp_path, "device", name="ref", **common))

    steps = []

    def stop_after_three(self, model):
        steps.append(1)
        if len(steps) == 3:  # of 4 steps of 8 (30 training images)
            signal.raise_signal(signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(ClassifyTask, "on_step_end", stop_after_three)
        with pytest.raises(Interrupted):
            train(_config(small, tmp_path, "device", name="cut", **common))
    run = tmp_path / "classify" / "cut"
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["batch_in_epoch"]) == (0, 3)
    train(_config(small, tmp_path, "device", resume=str(run), **common))
    a = checkpoint.load(Path(ref["run_dir"]) / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(run / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_decode_option_is_in_train_help_and_validated(capsys):
    from tests.conftest import run_main

    res = run_main(capsys, "classify", "train", "--help")
    assert "--decode {auto,cpu,device}" in res.stdout and "auto: device when training on" in " ".join(res.stdout.split())
    assert run_main(capsys, "classify", "train", "--data", "x", "--decode", "gpu").returncode == 2



@pytest.mark.gpu
def test_nvjpeg_decode_on_cuda_matches_libjpeg_turbo_on_the_cpu(photos):
    """nvjpeg's IDCT and chroma upsampling are not libjpeg-turbo's: a pixel may differ by a few levels, the
    mean by well under one; after the evaluation transform the batch is on CUDA, float32, channels_last."""
    batch = _batch(photos)
    cuda, cpu = device_decode.decode(batch, torch.device("cuda")), device_decode.decode(batch, CPU)
    for f, a, b in zip(photos, cuda, cpu, strict=True):
        d = (a.cpu().float() - b.float()).abs()
        assert a.is_cuda and d.mean() <= 1.0 and d.max() <= 32, (f.name, d.mean().item(), d.max().item())
    pre = device_decode.DevicePreprocess("none", 224)
    x = pre(batch, torch.device("cuda"), train=False, channels_last=True)
    assert x.is_cuda and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    d = (_pixels(x.cpu()) - _pixels(pre(batch, CPU, train=False))).abs()
    assert d.mean() <= 1.0, (d.mean().item(), d.max().item())


@pytest.mark.gpu
def test_training_on_cuda_decodes_jpegs_on_the_gpu_by_default_and_learns(digit_jpegs, tmp_path):
    from dlbox.tasks.classify.train import ClassifyTask, train

    cfg = _config(digit_jpegs / "jpg", tmp_path, "auto", epochs=3, device="cuda", precision="bf16", channels_last=True)
    assert ClassifyTask(cfg).device_preprocess is not None  # auto: CUDA and JPEG files
    assert train(cfg)["val_top1"] >= 0.75  # chance: 0.25
