"""Truncated and foreign files for the model readers (caffemodel, prototxt, TF checkpoints): one line naming
the file, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_user_error, run_main
from tests.hub.test_caffe_import import PARITY, random_weights

SLIM = Path(__file__).parent / "fixtures" / "slim" / "mobilenet_v1"


@pytest.fixture(scope="module")
def caffemodel(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("caffe") / "m.caffemodel"
    random_weights(PARITY, path)
    return path.read_bytes()


@pytest.mark.parametrize("case", ["cut in half", "first 7 bytes", "text", "empty"])
def test_a_damaged_caffemodel_is_one_line(case, caffemodel, tmp_path, capsys):
    data = {"cut in half": caffemodel[: len(caffemodel) // 2], "first 7 bytes": caffemodel[:7],
            "text": b"hello world\n", "empty": b""}[case]  # fmt: skip
    (tmp_path / "w.caffemodel").write_bytes(data)
    res = run_main(capsys, "caffe", "import", PARITY, tmp_path / "w.caffemodel", "--out", tmp_path / "o.pt")
    assert_user_error(res, "w.caffemodel")
    assert not (tmp_path / "o.pt").exists()


@pytest.mark.parametrize("case", ["garbage", "binary"])
def test_a_damaged_prototxt_is_one_line(case, caffemodel, tmp_path, capsys):
    (tmp_path / "w.caffemodel").write_bytes(caffemodel)
    proto = tmp_path / "n.prototxt"
    if case == "garbage":
        proto.write_text("layer { name: 'x' type: \n garbage {{{")
    else:
        proto.write_bytes(bytes(range(256)))
    res = run_main(capsys, "caffe", "import", proto, tmp_path / "w.caffemodel", "--out", tmp_path / "o.pt")
    assert_user_error(res, "n.prototxt")


@pytest.mark.parametrize("cut", ["model.ckpt.index", "model.ckpt.data-00000-of-00001", "model_v1.ckpt"])
def test_a_truncated_tf_checkpoint_is_one_line(cut, tmp_path, capsys):
    for f in SLIM.iterdir():
        data = f.read_bytes()
        (tmp_path / f.name).write_bytes(data[: len(data) // 2] if f.name == cut else data)
    spec = tmp_path / ("model_v1.ckpt" if cut == "model_v1.ckpt" else "model.ckpt")
    res = run_main(capsys, "hub", "convert", spec, "--out", tmp_path / "o.safetensors")
    assert_user_error(res, cut, "TensorFlow checkpoint")
    assert not (tmp_path / "o.safetensors").exists()
