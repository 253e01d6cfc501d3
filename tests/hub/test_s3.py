"""Object storage on loopback (moto's S3 server): `hub mirror` fills a mirror the hub then downloads from,
`hub sync` copies trees both ways and moves nothing when nothing changed; keys are never shown."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dlbox.base.errors import UserError
from dlbox.cli import main
from dlbox.hub import cache, catalog
from dlbox.hub.download import download
from dlbox.hub.sync import mirror, sync
from tests.conftest import assert_user_error
from tests.hub.conftest import entry_toml, payload, sha256, tree

SECRET = "test-secret-Zq8VxW2nK4pL"


def _objects(client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        out[o["Key"]] = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def _entry(extra_catalog, server, data: dict[str, bytes], name: str = "testdata") -> None:
    files = []
    for fname, blob in data.items():
        server.files[f"/upstream/{fname}"] = blob
        files.append({"name": fname, "url": server.url(f"/upstream/{fname}"), "size": len(blob), "sha256": sha256(blob)})
    extra_catalog(entry_toml(name, files))


def test_mirror_uploads_to_s3_and_a_fresh_machine_downloads_from_that_mirror(s3, server, extra_catalog, monkeypatch,
                                                                             tmp_path):  # fmt: skip
    bucket, client = s3
    data = {"a.bin": payload(70_000, seed=1), "b.bin": payload(1234, seed=2)}
    _entry(extra_catalog, server, data)
    r = mirror(["testdata"], f"s3://{bucket}/dlbox")
    assert r["uploaded_files"] == 2 and r["use_with"] == f"DLBOX_MIRROR=s3://{bucket}/dlbox"
    assert _objects(client, bucket) == {f"dlbox/testdata/{k}": v for k, v in data.items()}
    head = client.head_object(Bucket=bucket, Key="dlbox/testdata/a.bin")
    assert head["Metadata"]["sha256"] == sha256(data["a.bin"])

    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "another-machine"))
    monkeypatch.setenv("DLBOX_MIRROR", f"s3://{bucket}/dlbox")
    server.requests.clear()
    got = download("testdata")
    assert {row["source"] for row in got["files"]} == {f"s3://{bucket}/dlbox/testdata/a.bin", f"s3://{bucket}/dlbox/testdata/b.bin"}
    assert {row["name"]: Path(row["path"]).read_bytes() for row in got["files"]} == data
    assert server.requests == []  # upstream never asked


def test_mirroring_again_uploads_nothing(s3, server, extra_catalog):
    bucket, _ = s3
    _entry(extra_catalog, server, {"a.bin": payload(5000, seed=3)})
    assert mirror(["testdata"], f"s3://{bucket}/m")["uploaded_files"] == 1
    again = mirror(["testdata"], f"s3://{bucket}/m")
    assert (again["uploaded_files"], again["present_files"]) == (0, 1)


def test_mirror_into_a_directory_serves_as_a_local_mirror(server, extra_catalog, monkeypatch, tmp_path):
    data = payload(9000, seed=4)
    _entry(extra_catalog, server, {"w.pth": data})
    mirror(["testdata"], str(tmp_path / "mirror"))
    assert (tmp_path / "mirror" / "testdata" / "w.pth").read_bytes() == data
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "offline-machine"))
    monkeypatch.setenv("DLBOX_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    assert Path(download("testdata")["files"][0]["path"]).read_bytes() == data


def test_a_corrupt_object_in_the_s3_mirror_is_rejected_and_upstream_used(s3, server, extra_catalog, monkeypatch):
    bucket, client = s3
    data = payload(3000, seed=5)
    _entry(extra_catalog, server, {"a.bin": data})
    client.put_object(Bucket=bucket, Key="m/testdata/a.bin", Body=payload(3000, seed=6))
    monkeypatch.setenv("DLBOX_MIRROR", f"s3://{bucket}/m")
    got = download("testdata")
    assert got["files"][0]["source"] == server.url("/upstream/a.bin")
    assert Path(got["files"][0]["path"]).read_bytes() == data


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, blob in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)


def test_sync_up_down_and_again_moves_nothing(s3, cli, tmp_path):
    bucket, client = s3
    files = {"train/cat/1.jpg": payload(1000, 1), "train/dog/2.jpg": payload(2000, 2), "labels.txt": b"cat\ndog\n"}
    _write_tree(tmp_path / "data", files)
    up = cli("hub", "sync", tmp_path / "data", f"s3://{bucket}/mydata", "--json")
    assert up.returncode == 0, up.stderr
    assert up.json()["copied_files"] == 3 and up.json()["copied_bytes"] == sum(map(len, files.values()))
    assert _objects(client, bucket, "mydata/") == {f"mydata/{k}": v for k, v in files.items()}

    down = cli("hub", "sync", f"s3://{bucket}/mydata/", tmp_path / "copy", "--json")
    assert down.returncode == 0, down.stderr
    assert down.json()["copied_files"] == 3 and tree(tmp_path / "copy") == files

    for args in ((tmp_path / "data", f"s3://{bucket}/mydata"), (f"s3://{bucket}/mydata", tmp_path / "copy")):
        again = sync(*map(str, args))
        assert (again["copied_files"], again["unchanged_files"]) == (0, 3)


def test_sync_copies_only_what_changed(s3, tmp_path):
    bucket, _ = s3
    _write_tree(tmp_path / "data", {"a.txt": b"one", "b.txt": b"two", "c.txt": b"three"})
    sync(str(tmp_path / "data"), f"s3://{bucket}/d")
    time.sleep(1.1)  # S3 times have one-second resolution
    (tmp_path / "data" / "b.txt").write_bytes(b"TWO")  # same size, new content
    (tmp_path / "data" / "d.txt").write_bytes(b"four")
    os.utime(tmp_path / "data" / "c.txt")  # touched, content unchanged
    r = sync(str(tmp_path / "data"), f"s3://{bucket}/d")
    assert sorted(r["copied"]) == ["b.txt", "d.txt"] and r["unchanged_files"] == 2


def test_sync_down_refuses_keys_that_would_escape_the_destination(s3, tmp_path):
    bucket, client = s3
    client.put_object(Bucket=bucket, Key="x/ok.txt", Body=b"ok")
    client.put_object(Bucket=bucket, Key="x/sub/../../../escaped.txt", Body=b"pwned")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    if "x/sub/../../../escaped.txt" not in keys:
        pytest.skip("this S3 server normalises '..' in keys")  # then no such key can reach us
    with pytest.raises(UserError, match="outside the destination"):
        sync(f"s3://{bucket}/x", str(tmp_path / "dest"))
    assert not (tmp_path / "escaped.txt").exists()


def test_keys_are_never_printed_even_on_errors(s3, cli, tmp_path, monkeypatch, capsys):
    _write_tree(tmp_path / "data", {"a.txt": b"a"})
    res = cli("hub", "sync", tmp_path / "data", "s3://no-such-bucket-dlbox/x")
    assert_user_error(res, "bucket does not exist")
    assert SECRET not in res.stderr + res.stdout and "AKIATESTKEY" not in res.stderr + res.stdout
    monkeypatch.setenv("DLBOX_MIRROR", f"s3://{s3[0]}/m")
    assert main(["hub", "info", "mnist", "--json"]) == 0
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and "AKIATESTKEY" not in out.out + out.err


def test_s3_keys_from_the_config_file_are_used(s3, server, extra_catalog, hub_home, monkeypatch, moto_endpoint):
    bucket, client = s3
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DLBOX_S3_ENDPOINT"):
        monkeypatch.delenv(name)
    with open(hub_home / "config.toml", "a") as fh:
        fh.write(f'[s3]\nendpoint_url = "{moto_endpoint}"\nregion = "us-east-1"\n'
                 f'access_key_id = "AKIACONFIG"\nsecret_access_key = "{SECRET}"\n')  # fmt: skip
    _entry(extra_catalog, server, {"a.bin": b"hello"})
    assert mirror(["testdata"], f"s3://{bucket}/c")["uploaded_files"] == 1
    assert client.get_object(Bucket=bucket, Key="c/testdata/a.bin")["Body"].read() == b"hello"


def test_offline_refuses_object_storage(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="offline"):
        sync(str(tmp_path / "d"), f"s3://{s3[0]}/x")


def test_download_records_the_s3_source_and_cache_index(s3, server, extra_catalog, monkeypatch):
    bucket, client = s3
    blob = payload(2048, seed=9)
    _entry(extra_catalog, server, {"a.bin": blob})
    client.put_object(Bucket=bucket, Key="testdata/a.bin", Body=blob)
    monkeypatch.setenv("DLBOX_MIRROR", f"s3://{bucket}")
    download("testdata")
    e = catalog.get("testdata")
    rec = cache.recorded(e, e.files[0])
    assert rec["source"] == f"s3://{bucket}/testdata/a.bin" and rec["sha256"] == sha256(blob)
