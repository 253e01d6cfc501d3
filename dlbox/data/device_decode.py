"""JPEG decoding and augmentation on the training device (``--decode device``), for when the CPU cannot feed it.

The loader workers only read each file's bytes (no decode, no resize); the task hands the byte batch to
``DevicePreprocess``, which decodes every JPEG of the batch in one ``torchvision.io.decode_jpeg(list, device=)``
call (nvjpeg on CUDA; libjpeg-turbo on the CPU, the same code path, which is what the tests run) and then
crops, resizes, flips and normalises with torchvision.transforms.v2's functional ops on that device.

What it computes follows ``dlbox.data.transforms.build_transforms``: the evaluation transform (resize to
1/0.875 and centre-crop; small images straight to the size) matches the PIL path to a few thousandths
(resize filters differ slightly, tensors are not rounded to uint8 after the resize); the training presets
draw the same kinds of crops and flips (``standard`` adds TrivialAugmentWide per image).

Randomness: each sample's crop, flip and TrivialAugment op come from its own seed, a function of (run seed,
epoch, dataset index) only, so they do not depend on the number of workers, on the order of loading or on a
resume in the middle of an epoch.

Files that are not JPEG (PNG, BMP, WebP) are decoded with PIL in the worker and travel as pixels; the device
still resizes and augments them. A JPEG the device's decoder refuses (e.g. CMYK under nvjpeg) is decoded with
PIL instead, with a warning once.
"""

from __future__ import annotations

import io
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from dlbox.base.errors import UserError
from dlbox.base.progress import log, log_main
from dlbox.data.images import ImageDataset, Source, describe, read_bytes
from dlbox.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PRESETS

JPEG_MAGIC = b"\xff\xd8\xff"
MODES = ("auto", "cpu", "device")
CROP_SCALE = {"light": (0.7, 1.0), "standard": (0.25, 1.0)}  # as in build_transforms
CROP_RATIO = (3 / 4, 4 / 3)


def is_jpeg(src: Source) -> bool:
    """Whether the file's first bytes are a JPEG's (the content decides, not the name)."""
    try:
        if isinstance(src, tuple):
            tar, offset, _ = src
            with open(tar, "rb") as f:
                f.seek(offset)
                return f.read(3) == JPEG_MAGIC
        with open(src, "rb") as f:
            return f.read(3) == JPEG_MAGIC
    except OSError:
        return False


def jpeg_fraction(samples: Sequence[tuple[Source, int]], most: int = 64) -> tuple[int, int]:
    """(JPEG files, files looked at) over up to ``most`` evenly spaced samples."""
    step = max(1, len(samples) // most)
    looked = list(samples[::step][:most])
    return sum(is_jpeg(src) for src, _ in looked), len(looked)


def choose(mode: str, on_cuda: bool, samples: Sequence[tuple[Source, int]], data: str = "the data") -> bool:
    """True to decode on the device. ``auto``: when the run is on CUDA and at least half of a sample of the
    files are JPEG. ``device`` is refused when none of the sampled files is a JPEG (the decoder reads only
    JPEG); with some, the others are decoded on the CPU in the loader workers, and a note says how many."""
    if mode not in MODES:
        raise UserError(f"--decode {mode!r} is not valid", "use auto, cpu or device")
    if mode == "cpu" or (mode == "auto" and not on_cuda):
        return False
    jpegs, looked = jpeg_fraction(samples)
    if mode == "auto":
        return looked > 0 and 2 * jpegs >= looked
    if jpegs == 0:
        raise UserError(f"--decode device: none of the {looked} files sampled from {data} is a JPEG",
                        "the device decoder reads JPEG only; use --decode cpu (or auto) for PNG and other formats")  # fmt: skip
    if jpegs < looked:
        log_main(f"--decode device: {looked - jpegs} of {looked} sampled files are not JPEG; those are decoded "
                 "on the CPU in the loader workers, the rest on the device")  # fmt: skip
    return True


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A distinct seed for every (run seed, epoch, index): all a sample's randomness comes from it."""
    return (seed << 80) | (epoch << 40) | index


@dataclass
class Encoded:
    """One sample as a worker hands it over: JPEG bytes, or pixels decoded on the CPU (other formats)."""

    data: bytes
    shape: tuple[int, int, int] | None  # (H, W, 3) of the pixels in ``data``; None: ``data`` is a JPEG file
    seed: int


@dataclass
class EncodedBatch:
    """A batch of ``Encoded`` samples in ONE flat uint8 tensor (one shared-memory block from a worker, not one
    per image). The engine's ``to_device`` passes it through untouched: the decoder reads from host memory."""

    flat: torch.Tensor  # (total bytes,) uint8, every sample's data back to back
    offsets: list[int]  # len N + 1
    shapes: list[tuple[int, int, int] | None]
    seeds: list[int]

    def __len__(self) -> int:
        return len(self.seeds)

    def item(self, i: int) -> torch.Tensor:
        """Sample i: (L,) JPEG bytes, or (H, W, 3) uint8 pixels; a view into ``flat``."""
        t = self.flat[self.offsets[i] : self.offsets[i + 1]]
        return t if self.shapes[i] is None else t.view(self.shapes[i])


def collate(samples: list[tuple[Encoded, int]]) -> tuple[EncodedBatch, torch.Tensor]:
    """DataLoader ``collate_fn`` for ``EncodedDataset``: (EncodedBatch, labels (N,) int64)."""
    enc = [e for e, _ in samples]
    offsets = [0]
    for e in enc:
        offsets.append(offsets[-1] + len(e.data))
    flat = torch.frombuffer(bytearray(b"".join(e.data for e in enc)), dtype=torch.uint8) if offsets[-1] else \
        torch.empty(0, dtype=torch.uint8)  # fmt: skip
    labels = torch.tensor([y for _, y in samples], dtype=torch.int64)
    return EncodedBatch(flat, offsets, [e.shape for e in enc], [e.seed for e in enc]), labels


class EncodedDataset(ImageDataset):
    """``ds[i] -> (Encoded, label)``: the file's bytes when it is a JPEG, else its RGB pixels (decoded with PIL,
    as the CPU path does). Unreadable files are handled as ``ImageDataset`` does (the next readable one, or
    an error when too many fail). Set ``epoch`` before each epoch (the task's ``on_epoch_start`` does)."""

    def __init__(self, base: ImageDataset, seed: int):
        super().__init__(base.samples, base.classes, strict=base.strict)
        self.seed, self.epoch = seed, 0

    def read(self, i: int) -> Encoded:
        src = self.samples[i][0]
        try:
            data = read_bytes(src)
            if data[:3] == JPEG_MAGIC:
                return Encoded(data, None, 0)
            pixels = np.asarray(_open_bytes(data))  # as open_image decodes it for the CPU path
            return Encoded(pixels.tobytes(), pixels.shape, 0)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise UserError(f"cannot read image {describe(src)}: {e}",
                            "the file changed after the dataset was scanned or built; fix or remove it") from None  # fmt: skip

    def __getitem__(self, i: int):
        enc, label = self._read_any(i)
        enc.seed = sample_seed(self.seed, self.epoch, i)
        return enc, label


def _open_bytes(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert("RGB")


def crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
             rng: random.Random) -> tuple[int, int, int, int]:  # fmt: skip
    """(top, left, h, w) of a random resized crop: torchvision's RandomResizedCrop algorithm (10 tries of an
    area fraction in ``scale`` and a log-uniform aspect ratio in ``ratio``, then the centre crop), drawn from
    ``rng`` instead of the global RNG."""
    import math

    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


_warned = False


def _decode_jpeg(data, device: torch.device):
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs (for torchcodec) on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def decode(batch: EncodedBatch, device: torch.device) -> list[torch.Tensor]:
    """Every sample of ``batch`` as (3, H, W) uint8 on ``device``: the JPEGs in one batched decode_jpeg call."""
    global _warned
    out: list[torch.Tensor | None] = [None] * len(batch)
    jpegs = [i for i, s in enumerate(batch.shapes) if s is None]
    if jpegs:
        items = [batch.item(i) for i in jpegs]
        try:
            decoded = _decode_jpeg(items, device)
        except RuntimeError:  # one bad image fails the whole call: decode one by one, PIL for the refused ones
            decoded = []
            for t in items:
                try:
                    decoded.append(_decode_jpeg(t, device))
                except RuntimeError as e:
                    if not _warned:
                        log(f"warning: the {device.type} JPEG decoder refused an image ({str(e)[:80]}); "
                            "such images are decoded with PIL on the CPU")  # fmt: skip
                        _warned = True
                    pixels = np.asarray(_open_bytes(t.numpy().tobytes()))
                    decoded.append(torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(device))
        for i, img in zip(jpegs, decoded, strict=True):
            out[i] = img
    for i, s in enumerate(batch.shapes):
        if s is not None:  # (H, W, 3) pixels from the worker -> (3, H, W)
            out[i] = batch.item(i).to(device, non_blocking=True).permute(2, 0, 1)
    return out  # type: ignore[return-value]


@dataclass
class DevicePreprocess:
    """``EncodedBatch -> (N, 3, size, size)`` float32 on the device: decode, then the preset's transform."""

    preset: str
    img_size: int
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise UserError(f"unknown augment preset {self.preset!r}", f"one of {', '.join(PRESETS)}")
        self._trivial = v2.TrivialAugmentWide() if self.preset == "standard" else None

    def __call__(self, batch: EncodedBatch, device: torch.device, train: bool,
                 channels_last: bool = False) -> torch.Tensor:  # fmt: skip
        # Outside autocast: pixels stay float32 whatever --precision the model runs in.
        with torch.autocast(device.type, enabled=False), torch.no_grad():
            images = decode(batch, device)
            augment = train and self.preset != "none"
            xs = [self._train_one(img, seed) if augment else self._eval_one(img)
                  for img, seed in zip(images, batch.seeds, strict=True)]  # fmt: skip
            x = F.normalize(torch.stack(xs), list(self.mean), list(self.std))  # (N, 3, S, S)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def _eval_one(self, img: torch.Tensor) -> torch.Tensor:
        """The evaluation transform of build_transforms (``_EvalResize``) on (3, H, W) uint8 -> float [0, 1]."""
        s = self.img_size
        x = img.float().div_(255)
        h, w = img.shape[-2:]
        if min(w, h) > s / 0.875:
            return F.center_crop(F.resize(x, [int(round(s / 0.875))], antialias=True), [s, s])
        return F.resize(x, [s, s], antialias=True)

    def _train_one(self, img: torch.Tensor, seed: int) -> torch.Tensor:
        rng = random.Random(seed)
        top, left, h, w = crop_box(img.shape[-2], img.shape[-1], CROP_SCALE[self.preset], CROP_RATIO, rng)
        x = img[:, top : top + h, left : left + w].float().div_(255)  # crop first: convert only what is kept
        x = F.resize(x, [self.img_size, self.img_size], antialias=True)
        if rng.random() < 0.5:
            x = F.horizontal_flip(x)
        if self._trivial is not None:
            # TrivialAugmentWide draws from torch's global RNG: seeded from this sample's stream, then restored.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(rng.getrandbits(63))
                x = self._trivial(x)
        return x
