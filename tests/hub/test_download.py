"""Downloads from a loopback HTTP server: resume, hash checks, errors naming URLs and mirrors, mirror order,
local-directory mirrors, the cache's verification, offline mode, `hub add`, `--to` and `--extract`."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from dlbox.base.errors import UserError
from dlbox.hub import cache, catalog, fetch
from dlbox.hub.download import add, download
from tests.conftest import assert_user_error, fill_disk_after
from tests.hub.conftest import entry_toml, payload, sha256


def _published(server, name: str, data: bytes, path: str | None = None) -> str:
    path = path or f"/upstream/{name}"
    server.files[path] = data
    return server.url(path)


def _one_file_entry(extra_catalog, server, data: bytes, name: str = "blob.bin", entry: str = "testdata", **file_kw):
    url = _published(server, name, data)
    f = {"name": name, "url": url, "size": len(data), "sha256": sha256(data), **file_kw}
    extra_catalog(entry_toml(entry, [f]))
    return url


def _cached(entry: str, name: str) -> Path:
    e = catalog.get(entry)
    return cache.path_of(e, e.file(name))


def test_download_cut_mid_file_resumes_with_a_range_request_and_ends_with_the_right_hash(server, extra_catalog):
    data = payload(3_000_000)
    _one_file_entry(extra_catalog, server, data)
    server.cut["/upstream/blob.bin"] = [1_000_000, 1]  # the first response dies after 1 MB
    r = download("testdata")
    path = Path(r["files"][0]["path"])
    assert sha256(path.read_bytes()) == sha256(data)
    ranges = server.hits("/upstream/blob.bin")
    assert ranges[0] is None and len(ranges) == 2
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert start == 1_000_000  # continued exactly where it stopped, not from the start
    assert not cache.part_of(path).exists()


def test_a_killed_download_continues_from_its_part_file(server, extra_catalog):
    data = payload(500_000, seed=1)
    _one_file_entry(extra_catalog, server, data)
    final = _cached("testdata", "blob.bin")
    final.parent.mkdir(parents=True)
    cache.part_of(final).write_bytes(data[:123_456])  # what a killed process leaves behind
    download("testdata")
    assert server.hits("/upstream/blob.bin") == ["bytes=123456-"]
    assert final.read_bytes() == data


def test_hash_mismatch_is_a_clear_error_and_leaves_no_file_in_the_cache(server, extra_catalog):
    data = payload(200_000, seed=2)
    url = _published(server, "blob.bin", data)
    wrong = sha256(b"something else")
    extra_catalog(entry_toml("testdata", [{"name": "blob.bin", "url": url, "sha256": wrong}]))
    with pytest.raises(UserError) as e:
        download("testdata")
    msg = str(e.value)
    assert url in msg and f"expected {wrong}" in msg and sha256(data) in msg and "deleted" in msg
    final = _cached("testdata", "blob.bin")
    assert not final.exists() and not cache.part_of(final).exists()
    assert list(final.parent.iterdir()) == [final.parent / ".blob.bin.lock"]  # nothing but the lock file


def test_404_names_the_url_and_the_mirrors_tried(server, extra_catalog, monkeypatch):
    url = _one_file_entry(extra_catalog, server, payload(1000))
    server.status["/upstream/blob.bin"] = 404
    monkeypatch.setenv("DLBOX_MIRROR", server.url("/mirror-a") + " " + server.url("/mirror-b"))
    with pytest.raises(UserError) as e:
        download("testdata")
    msg = str(e.value)
    assert f"upstream {url}: not found (HTTP 404" in msg
    assert server.url("/mirror-a/testdata/blob.bin") in msg and server.url("/mirror-b/testdata/blob.bin") in msg
    assert f"mirrors tried: {server.url('/mirror-a')}, {server.url('/mirror-b')}" in msg
    assert len(server.hits("/upstream/blob.bin")) == 1  # a 404 is final: no retries


def test_500_is_retried_then_reported_with_the_url(server, extra_catalog):
    url = _one_file_entry(extra_catalog, server, payload(1000))
    server.status["/upstream/blob.bin"] = 500
    with pytest.raises(UserError) as e:
        download("testdata")
    assert f"upstream {url}: HTTP 500" in str(e.value) and "after 3 attempts" in str(e.value)
    assert len(server.hits("/upstream/blob.bin")) == 3  # retries = 2 in the test config


def test_a_stalled_server_times_out_with_a_clear_error(server, extra_catalog, hub_home):
    (hub_home / "config.toml").write_text("retries = 1\nbackoff = 0\nread_timeout = 1\n")
    url = _one_file_entry(extra_catalog, server, payload(100_000))
    server.stall.add("/upstream/blob.bin")
    with pytest.raises(UserError) as e:
        download("testdata")
    assert f"upstream {url}: no data for 1 s (stalled) (after 2 attempts)" in str(e.value)
    assert server.hits("/upstream/blob.bin") == [None, "bytes=1024-"]  # the retry resumed after the 1 KB
    assert not _cached("testdata", "blob.bin").exists()


def test_mirrors_are_tried_in_order_before_upstream(server, extra_catalog, monkeypatch):
    data = payload(10_000, seed=3)
    _one_file_entry(extra_catalog, server, data)
    server.files["/m2/testdata/blob.bin"] = data
    server.files["/m3/testdata/blob.bin"] = data
    monkeypatch.setenv("DLBOX_MIRROR", ",".join(server.url(m) for m in ("/m1", "/m2", "/m3")))
    r = download("testdata")
    assert r["files"][0]["source"] == server.url("/m2/testdata/blob.bin")
    assert [p for p, _ in server.requests] == ["/m1/testdata/blob.bin", "/m2/testdata/blob.bin"]


def test_mirrors_from_the_config_file(server, extra_catalog, hub_home):
    data = payload(5000, seed=4)
    _one_file_entry(extra_catalog, server, data)
    server.files["/cfg-mirror/testdata/blob.bin"] = data
    with open(hub_home / "config.toml", "a") as fh:
        fh.write(f'mirrors = ["{server.url("/cfg-mirror")}"]\n')
    assert download("testdata")["files"][0]["source"] == server.url("/cfg-mirror/testdata/blob.bin")


def test_a_local_directory_mirror_is_used_without_any_request(server, extra_catalog, monkeypatch, tmp_path):
    data = payload(50_000, seed=5)
    _one_file_entry(extra_catalog, server, data)
    mirror = tmp_path / "usb-drive"
    (mirror / "testdata").mkdir(parents=True)
    (mirror / "testdata" / "blob.bin").write_bytes(data)
    monkeypatch.setenv("DLBOX_MIRROR", str(mirror))
    r = download("testdata")
    assert Path(r["files"][0]["path"]).read_bytes() == data and server.requests == []


def test_several_files_download_in_parallel_into_one_entry(server, extra_catalog):
    blobs = {f"part{i}.bin": payload(300_000 + i, seed=10 + i) for i in range(4)}
    files = [{"name": n, "url": _published(server, n, d), "size": len(d), "md5": __import__("hashlib").md5(d).hexdigest()}
             for n, d in blobs.items()]  # fmt: skip
    extra_catalog(entry_toml("multi", files))
    r = download("multi")
    assert {row["name"]: Path(row["path"]).read_bytes() for row in r["files"]} == blobs


def test_a_corrupted_cached_file_is_caught_before_use_and_fetched_again(server, extra_catalog):
    data = payload(20_000, seed=6)
    _one_file_entry(extra_catalog, server, data)
    path = Path(download("testdata")["files"][0]["path"])
    path.write_bytes(b"x" + data[1:])  # same size, different content, new mtime
    r = download("testdata")
    assert Path(r["files"][0]["path"]).read_bytes() == data
    assert r["files"][0]["source"] == server.url("/upstream/blob.bin")
    assert path.with_name("blob.bin.bad").exists()  # the bad copy is kept aside, never used


def test_a_file_with_no_published_hash_is_recorded_on_first_download_and_checked_later(server, extra_catalog):
    data = payload(8000, seed=7)
    url = _published(server, "dump.xml.bz2", data)
    extra_catalog(entry_toml("nohash", [{"name": "dump.xml.bz2", "url": url, "no_hash_published": True}]))
    path = Path(download("nohash")["files"][0]["path"])
    e = catalog.get("nohash")
    assert cache.recorded(e, e.files[0])["sha256"] == sha256(data)
    path.write_bytes(payload(8000, seed=99))  # tampered with after the first download
    server.status["/upstream/dump.xml.bz2"] = 404
    with pytest.raises(UserError, match="not found"):
        download("nohash")  # the tampered copy was refused (recorded sha256), and upstream is gone
    assert path.with_name("dump.xml.bz2.bad").exists()


def test_offline_never_touches_the_network_and_names_the_file_and_where_to_put_it(server, extra_catalog, cli,
                                                                                  monkeypatch):  # fmt: skip
    data = payload(4000, seed=8)
    _one_file_entry(extra_catalog, server, data)
    server.files["/mirror/testdata/blob.bin"] = data
    monkeypatch.setenv("DLBOX_MIRROR", server.url("/mirror"))
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    where = _cached("testdata", "blob.bin")
    line = assert_user_error(cli("hub", "download", "testdata"), "offline", "blob.bin", str(where),
                             "dlbox hub add testdata --file")  # fmt: skip
    assert "DLBOX_OFFLINE=1" in line
    assert server.requests == []


def test_offline_uses_what_is_cached(server, extra_catalog, monkeypatch):
    data = payload(4000, seed=9)
    _one_file_entry(extra_catalog, server, data)
    download("testdata")
    n = len(server.requests)
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    assert Path(download("testdata")["files"][0]["path"]).read_bytes() == data
    assert len(server.requests) == n


def test_hub_add_registers_a_matching_file_for_offline_use(server, extra_catalog, cli, monkeypatch, tmp_path):
    data = payload(6000, seed=11)
    _one_file_entry(extra_catalog, server, data)
    mine = tmp_path / "downloaded-elsewhere.bin"
    mine.write_bytes(data)
    res = cli("hub", "add", "testdata", "--file", mine, "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["verified_against"] == "sha256 from the catalog"
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    assert Path(download("testdata")["files"][0]["path"]).read_bytes() == data
    assert server.requests == []


def test_hub_add_refuses_a_file_that_does_not_match_the_catalog(server, extra_catalog, tmp_path):
    _one_file_entry(extra_catalog, server, payload(6000, seed=12))
    other = tmp_path / "other.bin"
    other.write_bytes(payload(6000, seed=13))
    with pytest.raises(UserError, match="is not blob.bin of hub:testdata: sha256"):
        add("testdata", other)
    final = _cached("testdata", "blob.bin")
    assert not final.exists() and not cache.part_of(final).exists()


def test_add_picks_the_entry_file_by_name_or_asks_for_as(server, extra_catalog, tmp_path):
    a, b = payload(100, seed=14), payload(200, seed=15)
    extra_catalog(entry_toml("two", [{"name": "a.bin", "md5": __import__("hashlib").md5(a).hexdigest(), "url": server.url("/a")},
                                     {"name": "b.bin", "sha256": sha256(b), "url": server.url("/b")}]))  # fmt: skip
    (tmp_path / "b.bin").write_bytes(b)
    assert add("two", tmp_path / "b.bin")["file"] == "b.bin"
    (tmp_path / "renamed").write_bytes(a)
    with pytest.raises(UserError, match="--as"):
        add("two", tmp_path / "renamed")
    assert add("two", tmp_path / "renamed", as_name="a.bin")["verified_against"] == "md5 from the catalog"


def test_download_to_a_directory_with_extract(server, extra_catalog, cli, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in {"flowers/daisy/1.txt": b"daisy", "flowers/LICENSE.txt": b"CC BY"}.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(content)
            tf.addfile(ti, io.BytesIO(content))
    data = buf.getvalue()
    _one_file_entry(extra_catalog, server, data, name="flowers.tgz", entry="tiny-flowers")
    res = cli("hub", "download", "tiny-flowers", "--to", tmp_path / "data", "--extract", "--json")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "data" / "flowers" / "daisy" / "1.txt").read_bytes() == b"daisy"
    assert res.json()["files"][0]["extracted"]["files"] == 2


def test_credentials_in_a_mirror_url_are_never_shown(server, extra_catalog, monkeypatch):
    _one_file_entry(extra_catalog, server, payload(1000))
    server.status["/upstream/blob.bin"] = 404
    monkeypatch.setenv("DLBOX_MIRROR", f"http://alice:hunter2-secret@127.0.0.1:{server.port}/private")
    with pytest.raises(UserError) as e:
        download("testdata")
    assert "hunter2-secret" not in str(e.value) and "http://***@127.0.0.1" in str(e.value)


def test_sources_are_mirrors_in_order_then_upstream(extra_catalog, monkeypatch, tmp_path):
    extra_catalog(entry_toml("x", [{"name": "f.bin", "url": "https://example.org/f.bin", "no_hash_published": True}]))
    monkeypatch.setenv("DLBOX_MIRROR", f"https://m1.example/base/, s3://bucket/pre {tmp_path}")
    e = catalog.get("x")
    from dlbox.hub.settings import load

    locs = [s.location for s in fetch.sources(e, e.files[0], load())]
    assert locs == ["https://m1.example/base/x/f.bin", "s3://bucket/pre/x/f.bin", str(tmp_path / "x" / "f.bin"),
                    "https://example.org/f.bin"]  # fmt: skip
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    assert [s.location for s in fetch.sources(e, e.files[0], load())] == [str(tmp_path / "x" / "f.bin")]


def test_a_file_put_where_the_offline_error_says_is_verified_and_used(server, extra_catalog, monkeypatch):
    data = payload(3000, seed=16)
    _one_file_entry(extra_catalog, server, data)
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    where = _cached("testdata", "blob.bin")
    with pytest.raises(UserError, match=re.escape(str(where))):
        download("testdata")
    where.write_bytes(payload(3000, seed=17))  # the wrong file: refused, set aside
    with pytest.raises(UserError, match="not in the cache"):
        download("testdata")
    assert where.with_name("blob.bin.bad").exists()
    where.write_bytes(data)
    assert Path(download("testdata")["files"][0]["path"]) == where and server.requests == []


def test_a_full_cache_disk_is_one_line_and_keeps_what_was_downloaded(server, extra_catalog, hub_home, small_disk, monkeypatch):
    """The cache's disk fills up mid-file: one line naming the file and the free space (not three retries
    and 'connection broken'), and the bytes already there stay for the resume."""
    from dlbox.base.fileio import WriteError

    disk = small_disk("1m")
    if disk is None:  # no tmpfs here: the disk fills after 600 KB, through the same write path
        fill_disk_after(monkeypatch, fetch, 600_000)
        disk = hub_home
    monkeypatch.setenv("DLBOX_HOME", str(disk))
    (disk / "config.toml").write_text((hub_home / "config.toml").read_text())
    _one_file_entry(extra_catalog, server, payload(3_000_000, seed=7))
    with pytest.raises(WriteError) as e:
        download("testdata")
    msg = str(e.value)
    assert "No space left on device" in msg and "free there" in msg and "the same command resumes" in msg, msg
    part = cache.part_of(_cached("testdata", "blob.bin"))
    assert str(part) in msg and part.stat().st_size > 0
    assert len(server.hits("/upstream/blob.bin")) == 1  # not retried: a full disk is not a network error


