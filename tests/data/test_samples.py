"""`dlbox data sample`: embedded digits and generated shapes, seeded, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data.samples import write_sample
from tests.conftest import assert_user_error
from tests.data.helpers import run_main


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_shapes_are_the_same_bytes_for_a_seed_and_differ_for_another(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        write_sample("shapes", tmp_path / name, seed=seed, n_per_class=10)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b and a.keys() == c.keys() and a != c


def test_shapes_have_four_classes_of_varied_sizes_by_default(tmp_path):
    r = write_sample("shapes", tmp_path / "s", n_per_class=30)
    assert r["classes"] == ["circle", "cross", "star", "triangle"] and r["images"] == 120
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir()) == r["classes"]
    sizes = set()
    for c in r["classes"]:
        files = sorted((tmp_path / "s" / c).iterdir())
        assert len(files) == 30
        for f in files:
            with Image.open(f) as im:
                assert im.mode == "RGB" and im.width == im.height
                sizes.add(im.width)
    assert min(sizes) >= 32 and max(sizes) <= 64 and len(sizes) > 10


def test_shapes_take_three_to_five_classes(tmp_path):
    assert write_sample("shapes", tmp_path / "3", n_per_class=2, classes=3)["classes"] == ["circle", "cross", "triangle"]
    assert len(write_sample("shapes", tmp_path / "5", n_per_class=2, classes=5)["classes"]) == 5
    with pytest.raises(UserError, match="3 to 5"):
        write_sample("shapes", tmp_path / "6", classes=6)


def test_digits_are_scikit_learns_1797_scans_as_dark_ink_on_white(tmp_path):
    from sklearn.datasets import load_digits

    r = write_sample("digits", tmp_path / "d")
    assert r["images"] == 1797 and r["classes"] == [str(i) for i in range(10)]
    assert r["per_class"]["0"] == len(list((tmp_path / "d" / "0").iterdir())) == 178
    scans = load_digits().images  # (1797, 8, 8), ink 0..16
    for i in (0, 500, 1796):
        label = load_digits().target[i]
        with Image.open(tmp_path / "d" / str(label) / f"{i:04d}.png") as im:
            assert im.size == (32, 32) and im.mode == "RGB"
            small = np.asarray(im.convert("L").resize((8, 8), Image.BOX), dtype=float)
        ink = 255 - small  # back to ink
        assert np.corrcoef(ink.ravel(), scans[i].ravel())[0, 1] > 0.9


def test_writing_again_replaces_an_earlier_sample_without_stale_files(tmp_path):
    write_sample("shapes", tmp_path / "s", n_per_class=5, classes=5)
    write_sample("shapes", tmp_path / "s", n_per_class=3, classes=3)
    assert sorted(_files(tmp_path / "s")) == [f"{c}/{i:04d}.png" for c in ("circle", "cross", "triangle") for i in range(3)]
    assert not [p for p in tmp_path.iterdir() if p.name != "s"]  # no temporary folders left


def test_a_folder_that_is_not_a_sample_is_never_replaced(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"precious")
    assert_user_error(run_main(capsys, "data", "sample", "shapes", "--out", tmp_path / "photos"), "not a dlbox sample")
    assert (tmp_path / "photos" / "mine.jpg").read_bytes() == b"precious"


def test_the_sample_command_prints_one_json_document(tmp_path, cli):
    res = cli("data", "sample", "shapes", "--out", tmp_path / "s", "--n-per-class", "3", "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["images"] == 12 and r["per_class"] == dict.fromkeys(["circle", "cross", "star", "triangle"], 3)
    assert len(list((tmp_path / "s").rglob("*.png"))) == 12


def test_shapes_det_is_delegated_to_the_detection_sample(tmp_path):
    r = write_sample("shapes-det", tmp_path / "det", n_images=6)
    assert (tmp_path / "det" / "annotations" / "train.json").is_file() and r


def test_an_unknown_sample_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(UserError, match="did you mean 'shapes'"):
        write_sample("shapez", tmp_path)


def test_an_option_a_sample_does_not_take_is_a_one_line_error(tmp_path, capsys):
    res = run_main(capsys, "data", "sample", "digits", "--out", tmp_path / "d", "--n-per-class", "5")
    assert_user_error(res, "takes no --n-per-class")
