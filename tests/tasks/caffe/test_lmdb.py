"""Caffe's Data layers with backend LMDB: Datum records, `dlbox caffe convert-imageset`, transform_param,
and BVLC's own LeNet layout (examples/mnist/*_lmdb) trained from LMDBs that dlbox wrote."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlbox.base.errors import UserError
from dlbox.convert.caffe.layers import DataTransform
from dlbox.convert.caffe.textformat import parse
from dlbox.convert.caffe.wire import encode_blob, encode_datum
from dlbox.tasks.caffe.data import LmdbDataset, decode_datum
from dlbox.tasks.caffe.train import EXAMPLES
from tests.conftest import assert_user_error, run_main


def test_datum_holds_raw_pixels_float_data_or_an_encoded_image():
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got, label = decode_datum(encode_datum(7, pixels), "d")
    assert label == 7 and got.dtype == np.float32 and np.array_equal(got, pixels)
    # float_data (field 6, one fixed32 each) instead of bytes, as Caffe writes float datums
    body = bytes([8, 1, 16, 1, 24, 2, 40, 3]) + b"".join(b"\x35" + np.float32(v).tobytes() for v in (0.5, -2.0))
    got, label = decode_datum(body, "d")
    assert label == 3 and got.tolist() == [[[0.5, -2.0]]]
    # encoded colour is decoded to BGR channels, as OpenCV (and so Caffe) reads it
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200  # red
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    got, _ = decode_datum(encode_datum(1, encoded=buf.getvalue()), "d")
    assert got.shape == (3, 2, 2) and got[2].min() == 200 and got[:2].max() == 0


def _folder(root: Path) -> dict[str, np.ndarray]:
    """Two classes of small colour PNGs; the RGB arrays by relative path."""
    rng = np.random.default_rng(0)
    images = {}
    for cls in ("dog", "cat"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")
            images[f"{cls}/{i}.png"] = a
    return images


@pytest.mark.parametrize("encoded", [False, True])
def test_convert_imageset_writes_caffes_records_from_class_folders(capsys, tmp_path, encoded):
    images = _folder(tmp_path / "imgs")
    res = run_main(capsys, "caffe", "convert-imageset", tmp_path / "imgs", tmp_path / "out_lmdb", "--json",
                   *(["--encoded"] if encoded else []))  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["records"] == 6 and r["classes"] == {"cat": 0, "dog": 1}  # sorted subfolder names
    ds = LmdbDataset(tmp_path / "out_lmdb", "test")
    assert [k.decode() for k in ds.keys][:2] == ["00000000_cat/0.png", "00000001_cat/1.png"]  # Caffe's keys
    for key, (x, y) in zip(ds.keys, (ds[i] for i in range(len(ds))), strict=True):
        path = key.decode()[9:]
        assert int(y) == (0 if path.startswith("cat") else 1)
        bgr = images[path][..., ::-1].transpose(2, 0, 1)  # (3, H, W) in OpenCV's channel order
        assert torch.equal(x, torch.from_numpy(bgr.astype(np.float32)))
    again = run_main(capsys, "caffe", "convert-imageset", tmp_path / "imgs", tmp_path / "out_lmdb")
    assert_user_error(again, "already exists")


def test_convert_imageset_takes_caffes_list_file_gray_and_resized(capsys, tmp_path):
    images = _folder(tmp_path / "imgs")
    (tmp_path / "list.txt").write_text("dog/2.png 5\ncat/0.png 3\n")
    res = run_main(capsys, "caffe", "convert-imageset", tmp_path / "imgs", tmp_path / "l_lmdb", "--list",
                   tmp_path / "list.txt", "--gray", "--resize-height", "4", "--resize-width", "3", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.json()["shapes"] == [[1, 4, 3]]
    ds = LmdbDataset(tmp_path / "l_lmdb", "test")
    assert [k.decode() for k in ds.keys] == ["00000000_dog/2.png", "00000001_cat/0.png"]  # the list's order
    assert [int(ds[i][1]) for i in range(2)] == [5, 3]
    gray = Image.fromarray(images["dog/2.png"]).convert("L").resize((3, 4), Image.BILINEAR)
    assert torch.equal(ds[0][0][0], torch.from_numpy(np.asarray(gray, np.float32)))


def test_transform_param_is_caffes_data_transformer(tmp_path):
    """Mean file at the uncropped pixel, then the crop (centre in TEST, a random window in TRAIN), scale,
    mirror in TRAIN: the order and indices of DataTransformer::Transform (data_transformer.cpp)."""
    mean = np.random.default_rng(1).uniform(0, 50, (1, 2, 6, 7)).astype(np.float32)
    (tmp_path / "mean.binaryproto").write_bytes(encode_blob(mean))
    layer = parse(f'name: "d" type: "Data" transform_param {{ mean_file: "{tmp_path / "mean.binaryproto"}" '
                  'crop_size: 4 scale: 0.5 mirror: true }')  # fmt: skip
    t = DataTransform(layer, [(3, 2, 6, 7)])
    x = torch.rand(3, 2, 6, 7) * 255
    t.eval()
    (got,) = t(x)
    h_off, w_off = (6 - 4) // 2, (7 - 4) // 2
    expected = (x.numpy() - mean[0])[:, :, h_off : h_off + 4, w_off : w_off + 4] * 0.5
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)  # TEST: centre crop, never mirrored
    t.train()
    torch.manual_seed(0)
    (got,) = t(x)
    windows = [(x.numpy() - mean[0])[:, :, i : i + 4, j : j + 4] * 0.5 for i in range(3) for j in range(4)]
    for n in range(3):  # each image is one of the windows, as it is or mirrored
        assert any(np.allclose(got[n].numpy(), w[n]) or np.allclose(got[n].numpy(), w[n][..., ::-1]) for w in windows)
    with pytest.raises(UserError, match=r"mean_file is \(2, 6, 7\), the images are \(2, 5, 7\)"):
        DataTransform(layer, [(3, 2, 5, 7)])


def bvlc_lenet(root: Path, test_interval: int) -> Path:
    """BVLC Caffe's examples/mnist layout: the solver and net name the paths from Caffe's root folder."""
    mnist = root / "examples" / "mnist"
    mnist.mkdir(parents=True)
    net = (EXAMPLES / "lenet_train_test.prototxt").read_text()
    net = net.replace('"digits:train"', '"examples/mnist/mnist_train_lmdb"').replace('"digits:test"', '"examples/mnist/mnist_test_lmdb"')
    (mnist / "lenet_train_test.prototxt").write_text(net)
    solver = (EXAMPLES / "lenet_solver.prototxt").read_text()
    solver = solver.replace('net: "lenet_train_test.prototxt"', 'net: "examples/mnist/lenet_train_test.prototxt"')
    solver = solver.replace("test_interval: 23", f"test_interval: {test_interval}")
    (mnist / "lenet_solver.prototxt").write_text(solver)
    return mnist / "lenet_solver.prototxt"


def test_lenet_solver_trains_from_lmdbs_and_stops_at_max_iter_testing_every_test_interval(capsys, tmp_path, monkeypatch):
    from dlbox.engine import checkpoint

    solver = bvlc_lenet(tmp_path, test_interval=10)
    monkeypatch.chdir(tmp_path)  # Caffe runs from its root folder
    for split in ("train", "test"):
        res = run_main(capsys, "caffe", "convert-imageset", f"digits:{split}", f"examples/mnist/mnist_{split}_lmdb")
        assert res.returncode == 0, res.stderr
    # 50 iterations: two epochs of 23 and 4 of the third
    res = run_main(capsys, "caffe", "train", "--solver", solver, "--max-iter", "50", "--runs-dir", tmp_path / "runs",
                   "--threads", "1", "--deterministic", "--monitor-interval", "0", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    r = res.json()  # stdout is the JSON document alone, though tests ran mid-epoch
    assert r["data"]["TRAIN"] == str(tmp_path / "examples/mnist/mnist_train_lmdb")
    assert (r["iterations"], r["iterations_per_epoch"], r["test_samples"]) == (50, 23, 360)
    run = Path(r["run_dir"])
    assert checkpoint.load(run / "checkpoints" / "last.pt")["global_step"] == 50
    assert Path(r["caffemodel"]).name == "lenet_iter_50.caffemodel"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    tested = [rec["step"] for rec in records if "val/accuracy" in rec]
    assert [rec["step"] for rec in records if rec.get("kind") == "eval"] == [10, 20, 30, 40]  # test_interval
    assert tested == [10, 20, 23, 30, 40, 46, 50]  # and at each epoch's end and at max_iter
    # Measured on seeds 0-3: 0.931, 0.892, 0.889, 0.925 after 50 iterations (chance: 0.10).
    assert r["test"]["accuracy"] >= 0.80


def test_sources_are_found_from_the_current_folder_next_to_the_net_or_in_data(tmp_path, monkeypatch):
    from dlbox.tasks.caffe.data import resolve_source

    def lmdb_at(path: Path) -> Path:
        path.mkdir(parents=True)
        (path / "data.mdb").write_bytes(b"")
        return path.resolve()

    net = parse('layer { name: "d" type: "Data" top: "data" top: "label" '
                'data_param { source: "examples/mnist/train_lmdb" backend: LMDB batch_size: 8 } }')  # fmt: skip
    monkeypatch.chdir(tmp_path)
    beside = lmdb_at(tmp_path / "nets" / "train_lmdb")  # next to the net, by the source's last part
    assert resolve_source(net, "TRAIN", [tmp_path / "nets"], None).path == str(beside)
    given = lmdb_at(tmp_path / "elsewhere" / "train_lmdb")  # --data FOLDER comes before the net's folder
    assert resolve_source(net, "TRAIN", [tmp_path / "nets"], str(tmp_path / "elsewhere")).path == str(given)
    cwd = lmdb_at(tmp_path / "examples" / "mnist" / "train_lmdb")  # Caffe's way first: from the current folder
    src = resolve_source(net, "TRAIN", [tmp_path / "nets"], str(tmp_path / "elsewhere"))
    assert (src.kind, src.path, src.batch_size) == ("lmdb", str(cwd), 8)


@pytest.mark.parametrize(
    "edit, fragments",
    [(lambda n: n.replace("backend: LMDB", "backend: LEVELDB", 1), ("layer 'mnist' (Data, TRAIN)", "LevelDB", "plyvel")),
     (lambda n: n, ("layer 'mnist' (Data, TRAIN)", "source 'examples/mnist/mnist_train_lmdb' not found"))],
)  # fmt: skip
def test_unreadable_sources_are_one_line_naming_the_layer(capsys, tmp_path, monkeypatch, edit, fragments):
    solver = bvlc_lenet(tmp_path, test_interval=23)
    net = solver.parent / "lenet_train_test.prototxt"
    net.write_text(edit(net.read_text()))
    monkeypatch.chdir(tmp_path)
    res = run_main(capsys, "caffe", "train", "--solver", solver, "--runs-dir", tmp_path / "runs")
    assert_user_error(res, *fragments)


def test_corrupt_record_is_one_line(capsys, tmp_path):
    import lmdb

    env = lmdb.open(str(tmp_path / "bad_lmdb"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"00000000_x", b"\x0a\xff")  # a length past the end
    env.close()
    with pytest.raises(UserError, match="record '00000000_x' .* is not a Caffe Datum"):
        LmdbDataset(tmp_path / "bad_lmdb", "layer 'd' (Data, TRAIN)")
