"""`--data s3://bucket/prefix` (moto's S3 server on loopback): synced into $DLBOX_HOME/data/s3/... and read from
there exactly like the local tree; a second use moves nothing; removed remote files leave the copy; offline
uses the copy or says where to put one; keys never appear in a message."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from dlbox.base.errors import UserError
from dlbox.data.build import build_dataset
from dlbox.data.images import load_image_splits
from dlbox.data.remote import cache_dir, resolve_data
from dlbox.data.samples import write_sample
from dlbox.hub.sync import sync
from tests.hub import conftest as hub_fixtures

# The hub tests' fixtures: an isolated DLBOX_HOME with no inherited settings (autouse), moto's S3 server on
# loopback, and a fresh bucket with credentials in the environment.
hub_home = hub_fixtures.hub_home
moto_endpoint = hub_fixtures.moto_endpoint
s3 = hub_fixtures.s3

SECRET = "test-secret-Zq8VxW2nK4pL"
KEY_ID = "AKIATESTKEY1234567890"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("remote") / "shapes"
    write_sample("shapes", out, n_per_class=6)  # 4 classes x 6 images
    return out


@pytest.fixture(scope="module")
def built(shapes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("remote-built") / "built"
    build_dataset(shapes, out, val_split=0.25, shards=True, shard_size=7)
    return out


def _upload(bucket: str, root: Path, prefix: str) -> str:
    """Upload a tree with the hub's own sync (what a user does); the s3:// URL of it."""
    url = f"s3://{bucket}/{prefix}"
    sync(str(root), url)
    return url


def _rel(samples, root: Path):
    """Samples with paths relative to their tree, so a copy compares equal to its source."""
    out = []
    for src, y in samples:
        if isinstance(src, tuple):
            out.append(((Path(src[0]).relative_to(root).as_posix(), src[1], src[2]), y))
        else:
            out.append((Path(src).relative_to(root).as_posix(), y))
    return out


def _same_splits(remote, local, remote_root: Path, local_root: Path) -> None:
    (rt, rv, rc), (lt, lv, lc) = remote, local
    assert rc == lc
    assert _rel(rt.samples, remote_root) == _rel(lt.samples, local_root)
    assert _rel(rv.samples, remote_root) == _rel(lv.samples, local_root)
    for i in (0, len(lt) - 1):  # the pixels too
        (ra, ry), (la, ly) = rt[i], lt[i]
        assert ry == ly and np.array_equal(np.asarray(ra), np.asarray(la))


def test_s3_class_folders_load_like_the_local_tree_and_a_second_use_moves_nothing(s3, shapes, hub_home, capsys):
    bucket, _ = s3
    url = _upload(bucket, shapes, "team/shapes")
    capsys.readouterr()
    remote = load_image_splits(url + "/", val_split=0.25, seed=3)  # a trailing "/" is the same prefix
    copy = hub_home / "data" / "s3" / bucket / "team" / "shapes"
    assert cache_dir(url) == copy and copy.is_dir()
    _same_splits(remote, load_image_splits(shapes, val_split=0.25, seed=3), copy, shapes)
    err = capsys.readouterr().err
    assert f"data {url}: synced 25 file(s)" in err and str(copy) in err  # 24 images + the sample's marker
    assert len(err.strip().splitlines()) == 1

    mtimes = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    assert resolve_data(url) == copy
    assert capsys.readouterr().err.strip() == f"data {url}: 25 file(s) up to date in {copy}, nothing moved"
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == mtimes


def test_s3_built_dataset_with_shards_loads_like_the_local_one(s3, built, hub_home):
    bucket, _ = s3
    url = _upload(bucket, built, "built")
    remote = load_image_splits(url)
    copy = hub_home / "data" / "s3" / bucket / "built"
    assert all(isinstance(src, tuple) for src, _ in remote[0].samples)  # read from the shards
    _same_splits(remote, load_image_splits(built), copy, built)


def test_files_removed_remotely_leave_the_copy_and_a_changed_file_moves_alone(s3, shapes, tmp_path, capsys):
    bucket, client = s3
    url = _upload(bucket, shapes, "shapes")
    copy = resolve_data(url)
    for o in client.list_objects_v2(Bucket=bucket, Prefix="shapes/star/")["Contents"]:  # a class removed
        client.delete_object(Bucket=bucket, Key=o["Key"])
    one = sorted((shapes / "circle").iterdir())[0]
    client.put_object(Bucket=bucket, Key=f"shapes/circle/{one.name}", Body=(shapes / "cross" / sorted(
        (shapes / "cross").iterdir())[0].name).read_bytes())  # fmt: skip
    capsys.readouterr()
    _, _, classes = load_image_splits(url)
    assert classes == ["circle", "cross", "triangle"] and not (copy / "star").exists()
    assert f"data {url}: synced 1 file(s)" in capsys.readouterr().err
    assert (copy / "circle" / one.name).read_bytes() == client.get_object(
        Bucket=bucket, Key=f"shapes/circle/{one.name}")["Body"].read()  # fmt: skip


def test_offline_uses_the_copy_and_without_one_says_where_to_put_it(s3, shapes, hub_home, monkeypatch):
    bucket, _ = s3
    url = _upload(bucket, shapes, "shapes")
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        load_image_splits(url)
    msg = str(e.value)
    copy = hub_home / "data" / "s3" / bucket / "shapes"
    assert "offline" in msg and f"no local copy of {url}" in msg and f"put the data in {copy}" in msg
    assert "\n" not in msg and SECRET not in msg and KEY_ID not in msg
    assert not copy.exists()

    monkeypatch.delenv("DLBOX_OFFLINE")
    online = load_image_splits(url)
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    monkeypatch.setenv("DLBOX_S3_ENDPOINT", "http://127.0.0.1:9")  # no network: the copy alone must do
    offline = load_image_splits(url)
    assert offline[2] == online[2] and offline[0].samples == online[0].samples


def test_an_unreachable_store_keeps_the_copy_and_points_at_offline(s3, shapes, hub_home, monkeypatch):
    bucket, _ = s3
    url = _upload(bucket, shapes, "shapes")
    copy = resolve_data(url)
    before = sorted(p for p in copy.rglob("*"))
    monkeypatch.setenv("DLBOX_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("DLBOX_CONFIG", str(hub_home / "fast.toml"))
    (hub_home / "fast.toml").write_text("retries = 0\nconnect_timeout = 2\nread_timeout = 2\n")
    with pytest.raises(UserError, match="cannot reach the S3 endpoint") as e:
        resolve_data(url)
    assert "set DLBOX_OFFLINE=1 to use the local copy" in str(e.value) and SECRET not in str(e.value)
    assert sorted(p for p in copy.rglob("*")) == before
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    assert resolve_data(url) == copy


def test_ranks_sharing_the_copy_take_turns(s3, shapes):
    bucket, _ = s3
    url = _upload(bucket, shapes, "shapes")
    got, errors = [], []

    def use():
        try:
            got.append(resolve_data(url))
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 1
    assert len(load_image_splits(url, val_split=0.0)[0].samples) == 24


@pytest.mark.parametrize("url", ["s3://{bucket}/nothing-here", "s3://no-such-bucket-dlbox-data/x"])
def test_an_empty_prefix_or_a_missing_bucket_is_one_line_without_keys(s3, url):
    with pytest.raises(UserError) as e:
        resolve_data(url.format(bucket=s3[0]))
    msg = str(e.value)
    assert ("holds no files" in msg or "bucket does not exist" in msg) and "\n" not in msg
    assert SECRET not in msg and KEY_ID not in msg


@pytest.mark.parametrize(("spec", "fragment"), [
    ("hub:flowers", "dlbox hub download flowers --extract --to DIR` and pass --data DIR"),
    ("https://example.com/x.tar", "only s3://BUCKET/PREFIX is read directly"),
    ("s3://bucket/a/../b", "'.' and '..' are not allowed"),
])  # fmt: skip
def test_other_remote_data_is_refused_with_a_hint(spec, fragment):
    with pytest.raises(UserError) as e:
        load_image_splits(spec)
    assert fragment in str(e.value)


def test_build_reads_s3_class_folders(s3, shapes, tmp_path):
    bucket, _ = s3
    url = _upload(bucket, shapes, "shapes")
    a = build_dataset(url, tmp_path / "from-s3", val_split=0.25, shards=True)
    b = build_dataset(shapes, tmp_path / "from-disk", val_split=0.25, shards=True)
    assert (a["classes"], a["train"], a["val"]) == (b["classes"], b["train"], b["val"])
    for name in ("labels.txt", "shards/train-000000.tar", "shards/val-000000.tar"):
        assert (tmp_path / "from-s3" / name).read_bytes() == (tmp_path / "from-disk" / name).read_bytes()


def test_cli_trains_on_s3_data(s3, shapes, cli, tmp_path):
    bucket, _ = s3
    url = _upload(bucket, shapes, "shapes")
    res = cli("classify", "train", "--data", url, "--epochs", "1", "--model", "resnet18", "--img-size", "32",
              "--batch-size", "8", "--workers", "0", "--name", "s3run", "--threads", "1", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"data {url}: synced 25 file(s)" in res.stderr
    assert SECRET not in res.stderr + res.stdout and KEY_ID not in res.stderr + res.stdout
    assert (tmp_path / "runs" / "classify" / "s3run" / "checkpoints" / "last.pt").is_file()
    res = cli("classify", "evaluate", tmp_path / "runs" / "classify" / "s3run", "--data", url, "--split", "all", "--json",
              cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"data {url}: 25 file(s) up to date" in res.stderr and res.json()["images"] == 24


def test_detection_trains_and_evaluates_on_s3_coco_data(s3, cli, tmp_path):
    from dlbox.data.shapes_det import write_shapes_det

    coco_dir = tmp_path / "tiny-det"
    write_shapes_det(coco_dir, seed=5, n_images=20)  # annotations/{train,val,test}.json + images/
    bucket, _ = s3
    url = _upload(bucket, coco_dir, "det")
    res = cli("detect", "train", "--data", url, "--epochs", "1", "--img-size", "64", "--batch-size", "8",
              "--threads", "1", "--name", "s3det", "--json", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"data {url}: synced" in res.stderr
    assert SECRET not in res.stderr + res.stdout and KEY_ID not in res.stderr + res.stdout
    res = cli("detect", "evaluate", res.json()["run_dir"], "--data", url, "--split", "test", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stderr and {"AP", "AP50"} <= set(res.json())
