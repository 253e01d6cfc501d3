"""`dlbox data build`: stratified seeded splits, labels and manifests, WebDataset shards, duplicates."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from dlbox.data.build import build_dataset
from dlbox.data.images import load_image_splits
from dlbox.data.samples import write_sample
from tests.conftest import assert_user_error
from tests.data.helpers import copy_tree, manifest_rows, run_main

CLASSES = ["circle", "cross", "star", "triangle"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s") / "shapes"
    write_sample("shapes", out, n_per_class=20)
    return out


def _class_of(root: Path, path: str) -> str:
    return (root / path).resolve().parent.name


def test_the_split_is_stratified_with_the_requested_fraction(shapes, tmp_path):
    root = copy_tree(shapes, tmp_path / "uneven")
    for f in sorted((root / "star").iterdir())[:10]:  # star keeps 10 images, the others 20
        f.unlink()
    s = build_dataset(root, tmp_path / "ds", val_split=0.2)
    assert s["val"]["per_class"] == {"circle": 4, "cross": 4, "star": 2, "triangle": 4}
    assert s["train"]["per_class"] == {"circle": 16, "cross": 16, "star": 8, "triangle": 16}


def test_the_same_seed_gives_the_same_split_and_another_seed_another(shapes, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        build_dataset(shapes, tmp_path / name, val_split=0.25, seed=seed)
    val = {n: (tmp_path / n / "val.csv").read_text() for n in "abc"}
    assert val["a"] == val["b"] and val["a"] != val["c"]


def test_labels_and_manifests_list_every_image_once_under_its_class(shapes, tmp_path):
    out = tmp_path / "ds"
    build_dataset(shapes, out, val_split=0.25)
    classes = (out / "labels.txt").read_text().splitlines()
    assert classes == CLASSES
    train, val = manifest_rows(out / "train.csv"), manifest_rows(out / "val.csv")
    assert len(train) == 60 and len(val) == 20
    for path, label in train + val:
        assert not Path(path).is_absolute() and (out / path).is_file()  # relative to out/
        assert _class_of(out, path) == classes[label]
    every = {(out / p).resolve() for p, _ in train + val}
    assert every == {p.resolve() for p in shapes.rglob("*.png")}


def test_dataset_json_holds_the_summary(shapes, tmp_path):
    s = build_dataset(shapes, tmp_path / "ds", val_split=0.25, seed=5)
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["format"] == 1 and meta["seed"] == 5 and meta["classes"] == CLASSES
    assert meta["train"] == s["train"] and meta["val"]["images"] == 20


def test_a_relative_source_path_gives_manifests_that_resolve(shapes, tmp_path, monkeypatch):
    copy_tree(shapes, tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    build_dataset("photos", "data/built", val_split=0.25)
    train, val, classes = load_image_splits(tmp_path / "data" / "built")
    assert len(train) == 60 and len(val) == 20
    assert train.read(0).size[0] >= 32


def test_a_val_dir_is_the_validation_set(shapes, tmp_path):
    train_dir = copy_tree(shapes, tmp_path / "train")
    val_dir = tmp_path / "val"
    for c in CLASSES:
        (val_dir / c).mkdir(parents=True)
        for f in sorted((train_dir / c).iterdir())[:3]:
            f.rename(val_dir / c / f.name)
    s = build_dataset(train_dir, tmp_path / "ds", val_dir=val_dir)
    assert s["train"]["images"] == 68 and s["val"]["per_class"] == dict.fromkeys(CLASSES, 3)
    assert all(_class_of(tmp_path / "ds", p) == CLASSES[y] for p, y in manifest_rows(tmp_path / "ds" / "val.csv"))


def test_shards_hold_the_manifest_images_and_labels_in_order(shapes, tmp_path):
    out = tmp_path / "ds"
    s = build_dataset(shapes, out, val_split=0.25, shards=True, shard_size=16)
    assert s["shards"]["train"] == [f"shards/train-{i:06d}.tar" for i in range(4)]  # 60 images, 16 a shard
    assert s["shards"]["val"] == ["shards/val-000000.tar", "shards/val-000001.tar"]
    rows = manifest_rows(out / "train.csv")
    members = []
    for name in s["shards"]["train"]:
        with tarfile.open(out / name) as tar:
            members.append([(m.name, tar.extractfile(m).read()) for m in tar])
    assert [len(m) // 2 for m in members] == [16, 16, 16, 12]
    flat = [x for m in members for x in m]
    for i, (path, label) in enumerate(rows):
        (img_name, img), (cls_name, cls) = flat[2 * i], flat[2 * i + 1]
        assert img_name == f"{i:08d}.png" and cls_name == f"{i:08d}.cls"
        assert img == (out / path).read_bytes() and int(cls) == label


def test_a_rebuild_with_fewer_shards_leaves_no_stale_ones(shapes, tmp_path):
    build_dataset(shapes, tmp_path / "ds", shards=True, shard_size=8)
    build_dataset(shapes, tmp_path / "ds", shards=True, shard_size=40)
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir()) == [
        "train-000000.tar", "train-000001.tar", "val-000000.tar"]  # fmt: skip


def test_copies_across_train_and_val_are_reported(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "dup")
    for i in range(20):  # 20 copies of one circle: with a 0.2 split some land in val
        (root / "circle" / f"copy{i:02d}.png").write_bytes((root / "circle" / "0000.png").read_bytes())
    res = run_main(capsys, "data", "build", root, "--val-split", "0.2", "--out", tmp_path / "out", "--json")
    assert res.returncode == 0, res.stderr
    dups = res.json()["duplicates"]
    val_circles = [p for p, y in manifest_rows(tmp_path / "out" / "val.csv") if y == 0]
    copies_in_val = [p for p in val_circles if "copy" in p or p.endswith("0000.png")]
    assert len(dups) == len(copies_in_val) > 0
    assert all(Path(d["train"]).name in {"0000.png"} | {f"copy{i:02d}.png" for i in range(20)} for d in dups)


def test_a_build_without_copies_reports_none(shapes, tmp_path, capsys):
    res = run_main(capsys, "data", "build", shapes, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "no duplicates across train and val" in res.stdout and "4 classes, 72 train / 8 val" in res.stdout


def test_copies_between_train_dir_and_val_dir_are_reported(shapes, tmp_path):
    val_dir = tmp_path / "val"
    for c in CLASSES:
        (val_dir / c).mkdir(parents=True)
        (val_dir / c / "same.png").write_bytes((shapes / c / "0003.png").read_bytes())
    s = build_dataset(shapes, tmp_path / "ds", val_dir=val_dir)
    assert sorted(Path(d["train"]).parent.name for d in s["duplicates"]) == CLASSES


def test_out_inside_the_class_folders_is_refused(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "src")
    assert_user_error(run_main(capsys, "data", "build", root, "--out", root / "built"), "inside the class folders")


def test_val_dir_and_val_split_together_are_refused(shapes, tmp_path, capsys):
    res = run_main(capsys, "data", "build", shapes, "--val-dir", shapes, "--val-split", "0.2", "--out", tmp_path / "o")
    assert_user_error(res, "not both")


def test_a_full_disk_is_one_line_and_leaves_the_earlier_dataset_whole(shapes, tmp_path, small_disk, capsys, monkeypatch):
    """Shards that do not fit: one line naming the file and the free space, and no half-written file left
    (each file is written to a temporary name and renamed)."""
    disk = small_disk("300k")
    if disk is None:  # no tmpfs here: the same OSError, raised inside the shard write
        import errno

        disk = tmp_path
        real = tarfile.TarFile.addfile

        def full(self, *a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(tarfile.TarFile, "addfile", full)
    else:
        real = None
    res = run_main(capsys, "data", "build", str(shapes), "--out", str(disk / "ds"), "--shards", "--shard-size", "16")
    if real is not None:
        monkeypatch.setattr(tarfile.TarFile, "addfile", real)
    assert res.returncode == 1, res.stderr  # not bad input (2): the machine's disk
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: ") and "No space left on device" in line
    assert "cannot write" in line and str(disk / "ds") in line and "free there" in line, line
    assert not [p for p in (disk / "ds").rglob("*") if p.name.endswith(".tmp")]
