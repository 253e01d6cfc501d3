"""Identity folders (``DATA/<person>/<photo>``), held-out identities, verification pairs, face inputs.

Face crops are standardised as FaceNet's were: (pixel - 127.5) / 128. Photos that are not crops yet are
detected and aligned once (``--align``) into ``$DLBOX_HOME/face-aligned/``, keyed by the source file's path,
size and modification time, so a second run reads the crops.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.base.progress import bar, log

MEAN, STD = (127.5 / 255,) * 3, (128 / 255,) * 3  # ToTensor's [0, 1] -> (p - 127.5) / 128


def face_transform(img_size: int, train: bool = False, flip: bool = True):
    from torchvision import transforms as T

    steps = [T.Resize((img_size, img_size))]
    if train and flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])


@dataclass
class Identities:
    names: list[str]
    samples: list[tuple[str, int]]  # (file, identity index)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    skipped_identities: list[str] = field(default_factory=list)  # one readable photo only: no same pair


def scan_identities(root: str | Path, min_photos: int = 2) -> Identities:
    """Identity folders with at least ``min_photos`` readable photos; the others are counted and reported."""
    from dlbox.data.folders import report_skipped, scan_class_folders

    scan = scan_class_folders(root, min_classes=1)
    report_skipped(scan.skipped)
    counts = np.bincount([lbl for _, lbl in scan.samples], minlength=len(scan.classes))
    keep = [i for i, c in enumerate(counts) if c >= min_photos]
    dropped = [scan.classes[i] for i, c in enumerate(counts) if c < min_photos]
    if dropped:
        log(f"skipped {len(dropped)} identity folder(s) with fewer than {min_photos} readable photos "
            f"(verification needs two of a person): {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''}")  # fmt: skip
    remap = {old: new for new, old in enumerate(keep)}
    samples = [(f, remap[lbl]) for f, lbl in scan.samples if lbl in remap]
    return Identities([scan.classes[i] for i in keep], samples, scan.skipped, dropped)


def split_identities(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of identity indices into (train, held-out); both get at least 2 identities."""
    if n < 4:
        raise UserError(f"the data has {n} usable identities", "training with held-out identities needs at least 4 "
                        "folders of 2 or more photos")  # fmt: skip
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(2, round(n * fraction)), n - 2)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def draw_pairs(labels: list[int] | np.ndarray, n_pairs: int, seed: int) -> list[tuple[int, int, bool]]:
    """Balanced, seeded (i, j, same) pairs over sample indices: half of one person twice, half of two people.

    Pairs are distinct; when fewer distinct pairs exist than asked for, all of them are used."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    by_id = {lbl: np.flatnonzero(labels == lbl) for lbl in np.unique(labels)}
    multi = [lbl for lbl, idx in by_id.items() if len(idx) >= 2]
    if not multi or len(by_id) < 2:
        raise UserError("pairs need at least 2 identities, one of them with 2 or more photos", "add photos: each identity a folder, some with two or more photos")
    same_all = [(int(a), int(b)) for lbl in multi for k, a in enumerate(by_id[lbl]) for b in by_id[lbl][k + 1 :]]
    n_same = min(n_pairs // 2, len(same_all))
    same = [same_all[k] for k in rng.choice(len(same_all), n_same, replace=False)]
    n_diff_all = (len(labels) ** 2 - sum(len(v) ** 2 for v in by_id.values())) // 2
    n_diff, diff, seen = min(n_pairs - n_same, n_diff_all), [], set()
    while len(diff) < n_diff:
        a, b = (int(v) for v in rng.integers(0, len(labels), 2))
        key = (min(a, b), max(a, b))
        if labels[a] != labels[b] and key not in seen:
            seen.add(key)
            diff.append(key)
    pairs = [(a, b, True) for a, b in same] + [(a, b, False) for a, b in diff]
    order = rng.permutation(len(pairs))  # interleave, so contiguous folds hold both kinds
    return [pairs[k] for k in order]


def read_image(path: str | Path) -> Image.Image:
    """RGB image; UserError naming the file when it is missing or cannot be decoded."""
    from dlbox.data.images import open_image

    try:
        return open_image(str(path))
    except FileNotFoundError:
        raise UserError(f"image {str(path)!r} does not exist", "check the path") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {str(path)!r}: {str(e)[:100]}", "the file is corrupt or not an image") from None


def largest(faces):
    """The largest detected face (the subject of a portrait), or None."""
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)


def aligned_cache(align: str) -> Path:
    from dlbox.hub.settings import home

    return home() / "face-aligned" / align


def align_files(files: list[str], align: str, detector=None) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each photo -> its cached aligned crop (largest face); photos without a face are returned as skipped."""
    from dlbox.base.fileio import atomic_write
    from dlbox.tasks.face.align import align as align_face

    cache = aligned_cache(align)
    out, skipped, todo = {}, [], []
    for f in files:
        st = os.stat(f)
        key = hashlib.sha1(f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        target = cache / key[:2] / f"{key}.png"
        nofile = target.with_suffix(".noface")
        if target.is_file():
            out[f] = str(target)
        elif nofile.is_file():
            skipped.append((f, "no face found"))
        else:
            todo.append((f, target, nofile))
    if todo:
        if detector is None:
            from dlbox.tasks.face.mtcnn import MTCNN

            detector = MTCNN()
        with bar(len(todo), f"detect and align ({align})", unit="photo") as pbar:
            for f, target, nofile in todo:
                img = read_image(f)
                face = largest(detector.detect(img))
                if face is None:
                    nofile.parent.mkdir(parents=True, exist_ok=True)
                    nofile.touch()
                    skipped.append((f, "no face found"))
                else:
                    crop = align_face(img, face, align)
                    atomic_write(target, lambda tmp, c=crop: c.save(tmp, format="PNG"))
                    out[f] = str(target)
                pbar.update(1)
    if skipped:
        log(f"skipped {len(skipped)} photo(s) with no face: {', '.join(f for f, _ in skipped[:3])}"
            f"{' ...' if len(skipped) > 3 else ''}")  # fmt: skip
    return out, skipped
