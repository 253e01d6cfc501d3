"""`dlbox data fetch-images`: images named by URL, fetched from a loopback HTTP server and moto's S3 through the
hub's downloader; failures (404, an HTML page, a truncated JPEG, too large, a redirect to file://, an ftp URL)
listed while the rest is usable; an interrupted fetch resumes without fetching again; offline and mirrors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.data import coco
from dlbox.data.fetch_images import Want, fetch_urls
from tests.conftest import ROOT, assert_user_error, cli_env, run_main
from tests.data.serving import HTML, jpeg, result_json, truncated_jpeg

pytestmark = pytest.mark.usefixtures("hub_isolated")  # own DLBOX_HOME, no inherited mirrors


def _publish(server, scenes, n: int = 6) -> dict[str, bytes]:
    """n scenes (half of them as JPEG) under /img/; returns {url: bytes}."""
    out = {}
    for k, (name, png) in enumerate(list(scenes["files"].items())[:n]):
        data, path = (jpeg(png), f"/img/{Path(name).stem}.jpg") if k % 2 else (png, f"/img/{name}")
        server.files[path] = data
        out[server.url(path)] = data
    return out


def _reasons(r: dict) -> dict[str, str]:
    return {f["url"]: f["reason"] for f in r["failed"]}


def test_a_csv_of_urls_is_fetched_and_every_failure_is_listed_while_the_rest_is_usable(server, scenes, tmp_path, capsys):
    good = _publish(server, scenes)
    first_url, first = next(iter(good.items()))
    server.files["/same/copy.png"] = first  # the same picture under another URL
    server.redirects["/moved.png"] = "/img/" + Path(first_url).name  # followed
    secret = tmp_path / "secret.png"
    secret.write_bytes(first)
    server.redirects["/sneaky.png"] = secret.as_uri()  # a redirect to file:// is never followed
    server.files["/login.jpg"] = HTML  # an HTML page where an image was expected
    server.files["/cut.jpg"] = truncated_jpeg()
    bad = {server.url("/missing.png"): "HTTP 404", server.url("/login.jpg"): "HTML page",
           server.url("/cut.jpg"): "truncated", server.url("/sneaky.png"): "redirect to a file: URL refused",
           "ftp://127.0.0.1/a.png": "refused: ftp: URLs"}  # fmt: skip
    urls = [*good, server.url("/same/copy.png"), server.url("/moved.png"), *bad, first_url]  # first_url twice
    src = tmp_path / "image_urls.csv"
    src.write_text("id,image_url\n" + "".join(f"{i},{u}\n" for i, u in enumerate(urls)))
    out = tmp_path / "data"

    res = run_main(capsys, "data", "fetch-images", src, "--column", "image_url", "--out", out, "--workers", "4", "--json")
    r = result_json(res)
    assert res.returncode == 1  # something failed
    reasons = _reasons(r)
    assert set(reasons) == set(bad)
    for url, fragment in bad.items():
        assert fragment in reasons[url], (url, reasons[url])
    assert server.count("/sneaky.png") == 1  # refused at once, not retried
    # the good ones are here, byte for byte, each content once
    files = sorted(p.name for p in (out / "images").iterdir())
    assert files == sorted(Path(u).name for u in good)
    for url, data in good.items():
        assert (out / "images" / Path(url).name).read_bytes() == data
    assert {d["url"] for d in r["duplicates"]} == {server.url("/same/copy.png"), server.url("/moved.png")}
    assert r["fetched"] == len(good) + 2 and r["urls"] == len(urls) - 1
    assert not list((out / ".dlbox-fetch").rglob("*.part"))

    # the same command again: nothing that is here is asked for again; the failures are retried
    server.requests.clear()
    r2 = result_json(run_main(capsys, "data", "fetch-images", src, "--column", "image_url", "--out", out, "--json"))
    assert r2["present"] == len(good) + 2 and r2["fetched"] == 0
    assert {p for p, _ in server.requests} == {"/missing.png", "/login.jpg", "/cut.jpg", "/sneaky.png"}


def test_an_interrupted_fetch_resumes_without_fetching_again(server, scenes, tmp_path, capsys):
    good = _publish(server, scenes, n=5)
    slow = list(good)[-2:]
    for url in slow:
        server.stall.add(url.removeprefix(server.url()))  # headers and 1 KB, then nothing
    src = tmp_path / "urls.txt"
    src.write_text("".join(u + "\n" for u in good))
    out = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "dlbox", "data", "fetch-images", str(src), "--out", str(out)],
                            cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    state = out / ".dlbox-fetch"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = (state / "index.jsonl").read_text().splitlines() if (state / "index.jsonl").exists() else []
            parts = [p.stat().st_size for p in (state / "parts").glob("*.part")] if (state / "parts").is_dir() else []
            if len(lines) == 3 and parts == [1024, 1024]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the first fetch did not get as far as expected")
        with pytest.raises(UserError, match="another fetch is writing into"):  # one fetch at a time per folder
            fetch_urls([Want(slow[0], "")], out / "images")
    finally:
        proc.send_signal(signal.SIGKILL)  # as hard as an interruption gets
        proc.wait(30)
    server.stall.clear()
    server.requests.clear()
    r = result_json(run_main(capsys, "data", "fetch-images", src, "--out", out, "--json"))
    assert r["ok"] and r["present"] == 3 and r["fetched"] == 2
    # only the two unfinished images were asked for, each continuing from the KB it had
    assert sorted(server.requests) == sorted((u.removeprefix(server.url()), "bytes=1024-") for u in slow)
    for url, data in good.items():
        assert (out / "images" / Path(url).name).read_bytes() == data


def test_offline_lists_what_is_missing_and_a_local_mirror_is_used(server, scenes, tmp_path, monkeypatch, capsys):
    good = _publish(server, scenes, n=3)
    src = tmp_path / "urls.csv"
    src.write_text("url\n" + "".join(u + "\n" for u in good))
    monkeypatch.setenv("DLBOX_OFFLINE", "1")
    res = run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "data", "--json")
    r = result_json(res)
    assert res.returncode == 1 and r["offline"] and r["fetched"] == 0
    assert [m["url"] for m in r["missing"]] == list(good)
    assert server.requests == [] and not list((tmp_path / "data").rglob("*.png"))
    text = run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "data").stdout
    assert "3 image(s) missing" in text and list(good)[0] in text

    # a mirror folder laid out as <base>/images/<host>/<path>: used offline, the server never asked
    mirror = tmp_path / "mirror"
    url, data = next(iter(good.items()))
    (mirror / "images" / f"127.0.0.1:{server.port}" / "img").mkdir(parents=True)
    (mirror / "images" / f"127.0.0.1:{server.port}" / "img" / Path(url).name).write_bytes(data)
    monkeypatch.setenv("DLBOX_MIRROR", str(mirror))
    r = result_json(run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "data", "--json"))
    assert r["fetched"] == 1 and len(r["missing"]) == 2 and server.requests == []
    assert (tmp_path / "data" / "images" / Path(url).name).read_bytes() == data

    # online: a mirror's broken copy is passed over for the next source (the URL itself)
    url2, data2 = list(good.items())[1]
    (mirror / "images" / f"127.0.0.1:{server.port}" / "img" / Path(url2).name).write_bytes(HTML)
    monkeypatch.delenv("DLBOX_OFFLINE")
    r = result_json(run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "data", "--json"))
    assert r["ok"] and r["fetched"] == 2 and r["present"] == 1
    assert (tmp_path / "data" / "images" / Path(url2).name).read_bytes() == data2
    assert sorted(p for p, _ in server.requests) == sorted(u.removeprefix(server.url()) for u in list(good)[1:])


def test_a_coco_json_with_coco_urls_on_http_and_s3_gets_its_file_names(server, scenes, s3, tmp_path, capsys):
    bucket, client = s3
    data = json.loads(json.dumps(scenes["data"]))
    for k, im in enumerate(data["images"][:6]):
        png = scenes["files"][im["file_name"]]
        if k % 2:
            client.put_object(Bucket=bucket, Key=f"coco/{im['file_name']}", Body=png)
            im["coco_url"] = f"s3://{bucket}/coco/{im['file_name']}"
        else:
            server.files[f"/coco/{im['file_name']}"] = png
            im["flickr_url"] = server.url(f"/coco/{im['file_name']}")
        im["file_name"] = f"train2017/{im['file_name']}"
    data["images"][6]["coco_url"] = server.url("/coco/gone.png")  # 404: left out, with its boxes
    data["images"] = data["images"][:7]
    src = tmp_path / "instances.json"
    src.write_text(json.dumps(data))
    res = run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "data", "--json")
    r = result_json(res)
    assert res.returncode == 1 and [f["url"] for f in r["failed"]] == [server.url("/coco/gone.png")]
    out = coco.load(tmp_path / "data" / "annotations" / "instances.json")
    assert len(out["images"]) == 6 and r["annotations"]["left_out"] == 1
    assert all("/" not in im["file_name"] for im in out["images"])
    kept = {im["id"] for im in out["images"]}
    assert len(out["annotations"]) == sum(1 for a in data["annotations"] if a["image_id"] in kept)
    report, _ = coco.check(out, tmp_path / "data")  # every file present, readable, of the size the json says
    assert report["issues"] == {}


def test_too_large_files_are_refused_and_bad_input_is_one_line(server, scenes, tmp_path, capsys):
    url, data = next(iter(_publish(server, scenes, n=1).items()))
    got = fetch_urls([Want(url, "a.png")], tmp_path / "d" / "images", max_bytes=len(data) // 2)
    assert "too large" in got.failed[0]["reason"] and not list((tmp_path / "d").rglob("a.png"))
    got = fetch_urls([Want(url, "a.png")], tmp_path / "d" / "images", max_bytes=len(data))
    assert got.files == {url: "a.png"} and Image.open(tmp_path / "d" / "images" / "a.png").size[0] >= 128

    src = tmp_path / "two.csv"
    src.write_text(f"a,b\n{url},{url}\n")
    assert_user_error(run_main(capsys, "data", "fetch-images", src, "--out", tmp_path / "o"), "which holds the URLs",
                      "--column")  # fmt: skip
    assert_user_error(run_main(capsys, "data", "fetch-images", src, "--column", "c", "--out", tmp_path / "o"),
                      "no column 'c'")  # fmt: skip
    (tmp_path / "file").write_text("x")
    assert_user_error(run_main(capsys, "data", "fetch-images", src, "--column", "a", "--out", tmp_path / "file"),
                      "--out")  # fmt: skip
    assert server.count(url.removeprefix(server.url())) == 2 and not os.path.exists(tmp_path / "o")


def test_freshly_signed_urls_of_one_image_share_its_file_and_signatures_are_never_shown(server, scenes, tmp_path):
    url, data = next(iter(_publish(server, scenes, n=1).items()))
    path = url.removeprefix(server.url())
    signed = [f"{url}?v=2&X-Amz-Expires=600&X-Amz-Signature=sig{n}secret" for n in range(3)]
    for u in signed[:2]:
        server.files[u.removeprefix(server.url())] = data
    got = fetch_urls([Want(signed[0], ""), Want(signed[1], "")], tmp_path / "d" / "images")
    name = Path(path).name
    assert got.files == {signed[0]: name, signed[1]: name} and len(server.requests) == 1
    # the next export signs it again: already here, nothing asked
    got = fetch_urls([Want(signed[2], "")], tmp_path / "d" / "images")
    assert got.files == {signed[2]: name} and got.present == 1 and len(server.requests) == 1
    # a failure names the URL without its signature
    got = fetch_urls([Want(url + "-gone?X-Amz-Signature=topsecret", "")], tmp_path / "d" / "images")
    assert got.failed and "topsecret" not in json.dumps(got.failed) and "-gone" in got.failed[0]["url"]
