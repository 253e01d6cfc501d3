"""Class folders, built datasets and shards: splits, skips, duplicates, samples, transforms, bad input."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from dlbox.data.build import build_dataset
from dlbox.data.images import load_image_splits
from dlbox.data.samples import write_sample
from dlbox.data.transforms import build_transforms
from tests.conftest import assert_user_error


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s") / "shapes"
    write_sample("shapes", out, n_per_class=20)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_shapes_sample_is_seeded_and_has_the_classes(shapes, tmp_path):
    write_sample("shapes", tmp_path / "again", n_per_class=20)
    assert _files(shapes) == _files(tmp_path / "again")
    assert sorted(p.name for p in shapes.iterdir()) == ["circle", "cross", "star", "triangle"]
    write_sample("shapes", tmp_path / "other", n_per_class=20, seed=1)
    assert _files(shapes) != _files(tmp_path / "other")


def test_digits_sample_is_scikit_learns_1797_scans(tmp_path):
    r = write_sample("digits", tmp_path / "d")
    assert r["images"] == 1797 and r["classes"] == [str(i) for i in range(10)]
    assert len(list((tmp_path / "d" / "0").iterdir())) == 178


def test_split_is_stratified_and_seeded(shapes):
    train, val, classes = load_image_splits(shapes, val_split=0.25, seed=3)
    assert Counter(y for _, y in val.samples) == {i: 5 for i in range(4)}
    again = load_image_splits(shapes, val_split=0.25, seed=3)[1]
    assert again.samples == val.samples
    assert not {s for s, _ in train.samples} & {s for s, _ in val.samples}


def test_build_writes_labels_manifests_and_summary(shapes, tmp_path):
    s = build_dataset(shapes, tmp_path / "ds", val_split=0.2, seed=0)
    assert (tmp_path / "ds" / "labels.txt").read_text().split() == ["circle", "cross", "star", "triangle"]
    assert s["train"]["images"] == 64 and s["val"]["images"] == 16
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["classes"] == s["classes"]
    train, val, _ = load_image_splits(tmp_path / "ds")
    assert len(train) == 64 and len(val) == 16


def test_shards_hold_the_same_images_and_labels_as_the_manifests(shapes, tmp_path):
    build_dataset(shapes, tmp_path / "plain", val_split=0.2)
    s = build_dataset(shapes, tmp_path / "sharded", val_split=0.2, shards=True, shard_size=10)
    assert len(s["shards"]["train"]) == 7  # 64 images, 10 a shard
    plain, _, _ = load_image_splits(tmp_path / "plain")
    sharded, _, _ = load_image_splits(tmp_path / "sharded")
    assert len(plain) == len(sharded)
    for i in (0, 17, 63):  # map-style random access into the tars
        a, b = plain[i], sharded[i]
        assert a[1] == b[1] and a[0].tobytes() == b[0].tobytes()


def test_bad_files_are_skipped_listed_and_counted(shapes, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(shapes, root)
    (root / "circle" / "notes.txt").write_text("hello")
    (root / "circle" / "fake.jpg").write_text("not an image")
    (root / "cross" / "empty.png").write_bytes(b"")
    good = (root / "star" / "0000.png").read_bytes()
    (root / "star" / "cut.png").write_bytes(good[: len(good) // 3])
    s = build_dataset(root, tmp_path / "out")
    reasons = {Path(x["file"]).name: x["reason"] for x in s["skipped"]}
    assert s["skipped_count"] == 4 and set(reasons) == {"notes.txt", "fake.jpg", "empty.png", "cut.png"}
    assert "not an image" in reasons["fake.jpg"] and "empty" in reasons["empty.png"]
    assert s["train"]["images"] + s["val"]["images"] == 80


def test_duplicates_across_train_and_val_are_reported(shapes, tmp_path):
    root = tmp_path / "dup"
    shutil.copytree(shapes, root)
    for i in range(20):
        shutil.copy(root / "circle" / "0000.png", root / "circle" / f"copy{i}.png")
    s = build_dataset(root, tmp_path / "out", val_split=0.2)
    assert s["duplicates"] and all(Path(d["val"]).parent.name == "circle" for d in s["duplicates"])


def test_transforms_give_normalised_tensors_of_the_size(shapes):
    train, _, _ = load_image_splits(shapes, val_split=0.1)
    for preset in ("none", "light", "standard"):
        for is_train in (True, False):
            x = build_transforms(preset, 40, train=is_train)(train.read(0))
            assert x.shape == (3, 40, 40) and x.dtype == torch.float32


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda root: (root / "a").mkdir(), "'a'"),  # an empty class folder among good ones
        (lambda root: shutil.rmtree(root / "cross"), None),
    ],
    ids=["empty-class-folder", "fewer-classes-is-fine"],
)
def test_class_folder_problems(shapes, tmp_path, cli, make, fragment):
    root = tmp_path / "c"
    shutil.copytree(shapes, root)
    make(root)
    res = cli("data", "build", root, "--out", tmp_path / "o", "--json")
    if fragment is None:
        assert res.returncode == 0, res.stderr
    else:
        assert_user_error(res, fragment)


def test_single_class_is_refused(shapes, tmp_path, cli):
    shutil.copytree(shapes / "circle", tmp_path / "one" / "circle")
    assert_user_error(cli("data", "build", tmp_path / "one", "--out", tmp_path / "o"), "at least 2 classes")


def test_wrong_path_is_refused(tmp_path, cli):
    assert_user_error(cli("data", "build", tmp_path / "nope", "--out", tmp_path / "o"), "does not exist")


def test_sample_command_writes_and_reports_json(tmp_path, cli):
    res = cli("data", "sample", "shapes", "--out", tmp_path / "s", "--n-per-class", "3", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["images"] == 12


def test_unknown_sample_is_refused(tmp_path, cli):
    res = cli("data", "sample", "shapez", "--out", tmp_path)
    assert res.returncode == 2 and "shapez" in res.stderr
