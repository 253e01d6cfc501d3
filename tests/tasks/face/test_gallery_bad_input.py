"""`face identify` reads its .npz gallery with checks: truncated, foreign (another .npz, a .npy, a text file),
damaged (names and embeddings disagree) and enrolled by another embedder (another dimension) are one line
naming the gallery, never numpy's EOFError/BadZipFile/KeyError or a broadcasting error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_user_error, run_main


@pytest.fixture
def tiny(tmp_path) -> Path:
    """Plain weights of an untrained tinyface (16-dim embeddings): enough to embed an aligned crop."""
    import torch

    from dlbox.tasks.face import models

    torch.save(models.build("tinyface", 16, 0.5).state_dict(), tmp_path / "tiny.pt")
    return tmp_path / "tiny.pt"


def _gallery(tiny: Path, dim: int = 16, **override) -> bytes:
    fields = dict(names=np.array(["ada", "bob"]), embeddings=np.ones((2, dim), np.float32) / np.sqrt(dim),
                  photos=np.array([1, 1]), source=np.array(str(tiny)), model=np.array("tinyface"),
                  aligned=np.array(True), align=np.array(""), flip=np.array(False))  # fmt: skip
    fields.update(override)
    buf = io.BytesIO()
    np.savez(buf, **fields)
    return buf.getvalue()


def _foreign() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(3))
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    return buf.getvalue()


@pytest.mark.parametrize("case", ["truncated", "empty", "foreign npz", "npy", "text", "names and rows disagree",
                                  "nan embeddings"])  # fmt: skip
def test_a_bad_gallery_is_one_line_naming_it(case, tiny, tmp_path, capsys):
    good = _gallery(tiny)
    data = {"truncated": good[: len(good) // 2], "empty": b"", "foreign npz": _foreign(), "npy": _npy(),
            "text": b"ada,bob\n", "names and rows disagree": _gallery(tiny, names=np.array(["ada"])),
            "nan embeddings": _gallery(tiny, embeddings=np.full((2, 16), np.nan, np.float32))}[case]  # fmt: skip
    (tmp_path / "g.npz").write_bytes(data)
    Image.new("RGB", (112, 112), (120, 90, 80)).save(tmp_path / "probe.png")
    res = run_main(capsys, "face", "identify", tmp_path / "g.npz", tmp_path / "probe.png", "--aligned")
    assert_user_error(res, "g.npz", "face enroll")


def test_a_gallery_of_another_embedder_is_one_line(tiny, tmp_path, capsys):
    (tmp_path / "g.npz").write_bytes(_gallery(tiny, dim=128))
    Image.new("RGB", (112, 112), (120, 90, 80)).save(tmp_path / "probe.png")
    res = run_main(capsys, "face", "identify", tmp_path / "g.npz", tmp_path / "probe.png", "--aligned")
    assert_user_error(res, "g.npz", "128-dim", "16-dim", "another embedder")


def test_the_good_gallery_identifies(tiny, tmp_path, capsys):
    (tmp_path / "g.npz").write_bytes(_gallery(tiny))
    Image.new("RGB", (112, 112), (120, 90, 80)).save(tmp_path / "probe.png")
    res = run_main(capsys, "face", "identify", tmp_path / "g.npz", tmp_path / "probe.png", "--aligned", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["results"][0]["nearest"] in ("ada", "bob")


def test_compare_without_a_face_does_not_suggest_an_option_it_lacks(tiny, tmp_path, capsys):
    Image.new("RGB", (64, 64), (10, 200, 10)).save(tmp_path / "a.png")
    res = run_main(capsys, "face", "compare", tmp_path / "a.png", tmp_path / "a.png", "--weights", tiny, "--model", "tinyface")
    line = assert_user_error(res, "no face found")
    assert "--min-face-size" not in line
