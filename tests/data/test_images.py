"""Training datasets from class folders, split layouts, built datasets and shards; read errors at train time."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from dlbox.base.errors import UserError
from dlbox.data.build import build_dataset
from dlbox.data.images import ImageDataset, load_image_splits
from dlbox.data.samples import write_sample
from tests.data.helpers import copy_tree


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s") / "shapes"
    write_sample("shapes", out, n_per_class=20)
    return out


@pytest.fixture(scope="module")
def built(shapes, tmp_path_factory) -> tuple[Path, Path]:
    """The same split, as manifests only and with shards of 7 images."""
    root = tmp_path_factory.mktemp("b")
    build_dataset(shapes, root / "plain", val_split=0.25)
    build_dataset(shapes, root / "sharded", val_split=0.25, shards=True, shard_size=7)
    return root / "plain", root / "sharded"


def test_flat_class_folders_are_split_stratified_and_seeded(shapes):
    train, val, classes = load_image_splits(shapes, val_split=0.25, seed=3)
    assert classes == ["circle", "cross", "star", "triangle"]
    assert Counter(y for _, y in val.samples) == dict.fromkeys(range(4), 5)
    assert load_image_splits(shapes, val_split=0.25, seed=3)[1].samples == val.samples
    assert load_image_splits(shapes, val_split=0.25, seed=4)[1].samples != val.samples
    assert not {s for s, _ in train.samples} & {s for s, _ in val.samples}


def test_items_are_rgb_images_with_their_label_until_a_transform_is_set(shapes):
    train, _, classes = load_image_splits(shapes)
    im, label = train[0]
    assert im.mode == "RGB" and classes[label] == Path(train.samples[0][0]).parent.name
    train.transform = lambda im: im.size
    assert train[0][0] == im.size


def test_a_train_and_val_layout_is_used_as_it_is(shapes, tmp_path):
    copy_tree(shapes, tmp_path / "d" / "train")
    for c in ("circle", "star"):  # val/ may lack a class: labels follow train/
        (tmp_path / "d" / "val" / c).mkdir(parents=True)
        shutil.copy(shapes / c / "0001.png", tmp_path / "d" / "val" / c / "v.png")
    train, val, classes = load_image_splits(tmp_path / "d", val_split=0.25)
    assert len(train) == 80 and classes == ["circle", "cross", "star", "triangle"]
    assert sorted(y for _, y in val.samples) == [0, 2]


def test_a_train_only_layout_is_split_like_flat_folders(shapes, tmp_path):
    copy_tree(shapes, tmp_path / "d" / "train")
    train, val, _ = load_image_splits(tmp_path / "d", val_split=0.25)
    assert len(train) == 60 and len(val) == 20


def test_a_class_named_train_among_others_is_just_a_class(shapes, tmp_path):
    root = copy_tree(shapes, tmp_path / "d")
    (root / "circle").rename(root / "train")
    _, _, classes = load_image_splits(root)
    assert classes == ["cross", "star", "train", "triangle"]


def test_a_built_dataset_gives_its_own_split(shapes, built):
    plain, _ = built
    train, val, classes = load_image_splits(plain, val_split=0.5, seed=9)  # a built split wins over val_split
    ref_train, ref_val, _ = load_image_splits(shapes, val_split=0.25, seed=0)
    assert [Path(s).resolve() for s, _ in val.samples] == [Path(s).resolve() for s, _ in ref_val.samples]
    assert len(train) == len(ref_train) == 60


def test_val_split_zero_puts_every_image_in_train(built):
    for root in built:
        train, val, _ = load_image_splits(root, val_split=0)
        assert len(train) == 80 and val is None


def test_shards_are_a_map_style_dataset_equal_to_the_manifests(built):
    plain, sharded = built
    a_train, a_val, _ = load_image_splits(plain)
    b_train, b_val, classes = load_image_splits(sharded)
    assert isinstance(b_train.samples[0][0], tuple) and (len(b_train), len(b_val)) == (60, 20)
    for a, b in ((a_train, b_train), (a_val, b_val)):
        for i in reversed(range(len(a))):  # random access, back to front
            (ia, ya), (ib, yb) = a[i], b[i]
            assert ya == yb and ia.tobytes() == ib.tobytes()


def test_a_distributed_sampler_over_shards_covers_every_image_once(built):
    _, sharded = built
    train, _, _ = load_image_splits(sharded)
    train.transform = lambda im: torch.tensor(im.size)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(train, num_replicas=2, rank=rank, shuffle=True, seed=0)
        for _, y in DataLoader(train, batch_size=8, sampler=sampler):
            seen += y.tolist()
    assert Counter(seen) == Counter(y for _, y in train.samples)


def test_images_missing_after_the_build_are_reported_and_left_out(shapes, tmp_path, capsys):
    src = copy_tree(shapes, tmp_path / "src")
    build_dataset(src, tmp_path / "ds", val_split=0.25)
    gone = sorted((src / "star").iterdir())[:2]
    for f in gone:
        f.unlink()
    train, val, _ = load_image_splits(tmp_path / "ds")
    assert len(train) + len(val) == 78
    err = capsys.readouterr().err
    assert "skipped 2 file(s)" in err and all(f.name in err for f in gone)


def test_a_dataset_whose_sources_all_moved_is_an_error(shapes, tmp_path):
    src = copy_tree(shapes, tmp_path / "src")
    build_dataset(src, tmp_path / "ds", val_split=0.25)
    src.rename(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="none of the 60 images"):
        load_image_splits(tmp_path / "ds")


def test_sharded_datasets_do_not_need_the_source_images(shapes, tmp_path):
    src = copy_tree(shapes, tmp_path / "src")
    build_dataset(src, tmp_path / "ds", val_split=0.25, shards=True)
    shutil.rmtree(src)
    train, val, _ = load_image_splits(tmp_path / "ds")
    assert len(train) == 60 and train[59][0].mode == "RGB"


def test_a_missing_shard_is_an_error_naming_it(built, tmp_path):
    _, sharded = built
    copy = tmp_path / "copy"
    shutil.copytree(sharded, copy)
    (copy / "shards" / "train-000002.tar").unlink()
    with pytest.raises(UserError, match="train-000002.tar is missing"):
        load_image_splits(copy)


def test_an_image_broken_after_the_scan_is_logged_once_and_replaced_by_the_next(shapes, tmp_path, capsys):
    root = copy_tree(shapes, tmp_path / "d")
    train, _, _ = load_image_splits(root, val_split=0)
    Path(train.samples[5][0]).write_bytes(b"broken")
    expected = train.read(6).tobytes(), train.samples[6][1]
    for _ in range(2):
        im, y = train[5]
        assert (im.tobytes(), y) == expected
    err = capsys.readouterr().err
    assert err.count("cannot read image") == 1 and train.samples[5][0] in err


def test_a_strict_dataset_raises_naming_the_broken_file(shapes, tmp_path):
    root = copy_tree(shapes, tmp_path / "d")
    train, _, _ = load_image_splits(root, val_split=0)
    Path(train.samples[0][0]).write_bytes(b"broken")
    train.strict = True
    with pytest.raises(UserError, match=f"cannot read image {train.samples[0][0]}"):
        train[0]


def test_many_broken_images_stop_the_run(tmp_path):
    (tmp_path / "x.png").write_bytes(b"broken")
    ds = ImageDataset([(str(tmp_path / "x.png"), 0)] * 5 + [(str(tmp_path / "missing.png"), 0)] * 20, ["a"])
    with pytest.raises(UserError, match="images are unreadable"):
        for i in range(len(ds)):
            ds[i]


def test_a_wrong_data_path_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_image_splits(tmp_path / "nope")
