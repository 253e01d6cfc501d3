"""Using a trained embedder: evaluate (threshold stored), compare, enroll and identify, embed, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_user_error, run_main


def _photo(root: Path, person: int, k: int) -> Path:
    return root / f"person_{person:03d}" / f"{k:02d}.png"


def test_evaluate_on_unseen_people_stores_the_threshold_that_compare_uses(trained, strangers, tmp_path, capsys):
    run = trained["run_dir"]
    res = run_main(capsys, "face", "evaluate", "--weights", run, "--data", strangers, "--aligned", "--num-pairs", "200",
                   "--out", tmp_path / "eval", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["accuracy"] > 0.7 and len(r["fold_accuracy"]) == 10 and r["pairs_used"] == 200
    assert [t["far_target"] for t in r["tar_at_far"]] == [1e-3, 1e-4]
    assert Image.open(r["roc"]).size[0] > 100
    assert json.loads((Path(run) / "threshold.json").read_text())["threshold"] == r["threshold"]
    files = [_photo(strangers, p, k) for p in (0, 1) for k in (0, 1)]
    res = run_main(capsys, "face", "compare", *files, "--weights", run, "--aligned", "--heatmap", tmp_path / "h.png", "--json")
    assert res.returncode == 0, res.stderr
    c = res.json()
    assert c["threshold"] == r["threshold"]
    d = np.array(c["distances"])
    assert d.shape == (4, 4) and np.allclose(np.diag(d), 0, atol=1e-5) and np.allclose(d, d.T, atol=1e-5)
    assert Image.open(tmp_path / "h.png").size == (5 * 64, 5 * 64)  # crops along both axes


def test_a_pairs_file_naming_missing_files_skips_and_counts_them(trained, strangers, tmp_path, capsys):
    lfw = tmp_path / "lfw"
    for p in (0, 1):  # LFW's layout: name/name_NNNN.jpg
        (lfw / f"p{p}").mkdir(parents=True)
        for k in (0, 1):
            Image.open(_photo(strangers, p, k)).save(lfw / f"p{p}" / f"p{p}_{k + 1:04d}.jpg")
    (tmp_path / "pairs.txt").write_text("1 2\np0 1 2\np1 1 2\np0 1 p1 1\np0 2 ghost 1\n")
    res = run_main(capsys, "face", "evaluate", "--weights", trained["run_dir"], "--pairs", tmp_path / "pairs.txt",
                   "--aligned", "--out", tmp_path / "e", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert (r["pairs"], r["pairs_used"], r["skipped_pairs"]) == (4, 3, 1)
    assert r["skipped_files"][0]["error"] == "missing file" and "ghost" in r["skipped_files"][0]["file"]
    assert "skipped 1 of 4 pair(s)" in res.stderr


def test_identify_names_enrolled_people_and_calls_a_stranger_unknown(trained, strangers, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    for p in range(4):  # 4 enrolled people, 3 photos each; photo 3 is the probe
        (gallery / f"person_{p:03d}").mkdir(parents=True)
        for k in range(3):
            Image.open(_photo(strangers, p, k)).save(gallery / f"person_{p:03d}" / f"{k}.png")
    res = run_main(capsys, "face", "enroll", gallery, "--weights", trained["run_dir"], "--aligned",
                   "--out", tmp_path / "g.npz", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.json()["people"] == 4
    probes = [_photo(strangers, p, 3) for p in range(8)]  # people 4-7 were never enrolled
    res = run_main(capsys, "face", "identify", tmp_path / "g.npz", *probes, "--json")
    assert res.returncode == 0, res.stderr
    got = [x["person"] for x in res.json()["results"]]
    print(got)
    assert got[:4] == [f"person_{p:03d}" for p in range(4)]
    assert got[4:].count("unknown") >= 3


def test_embed_and_export_give_the_same_embeddings_as_the_run(trained, strangers, tmp_path, capsys):
    run = trained["run_dir"]
    res = run_main(capsys, "face", "export", run, "--out", tmp_path / "face.onnx", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["max_abs_diff"] < 1e-4
    folder = strangers / "person_000"
    outs = []
    for src in (run, tmp_path / "face.onnx"):
        out = tmp_path / f"{Path(src).name}.npz"
        res = run_main(capsys, "face", "embed", folder, "--weights", src, "--aligned", "--out", out, "--json")
        assert res.returncode == 0, res.stderr
        outs.append(np.load(out)["embeddings"])
    assert outs[0].shape == (4, 64) and np.abs(outs[0] - outs[1]).max() < 1e-4


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    """A plain state dict of an (untrained) tinyface: enough to reach the image checks."""
    import torch

    from dlbox.tasks.face import models

    torch.save(models.build("tinyface", 16, 0.5).state_dict(), tmp_path / "tiny.pt")
    return tmp_path / "tiny.pt"


def test_compare_on_an_image_without_a_face_is_one_line_error(tmp_path, tiny_weights, capsys):
    from skimage import data

    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    res = run_main(capsys, "face", "compare", tmp_path / "astronaut.png", tmp_path / "coffee.png",
                   "--weights", tiny_weights, "--model", "tinyface")  # fmt: skip
    assert_user_error(res, "no face found in", "coffee.png")


def test_a_corrupt_image_is_one_line_error_in_compare(tmp_path, tiny_weights, capsys):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    res = run_main(capsys, "face", "compare", tmp_path / "a.png", tmp_path / "b.png", "--aligned",
                   "--weights", tiny_weights, "--model", "tinyface")  # fmt: skip
    assert_user_error(res, "cannot read image", "b.png")


def test_missing_weights_are_one_line_error(tmp_path, capsys):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    res = run_main(capsys, "face", "compare", tmp_path / "a.png", tmp_path / "a.png", "--weights", tmp_path / "none.pt")
    assert_user_error(res, "none.pt", "does not exist")
