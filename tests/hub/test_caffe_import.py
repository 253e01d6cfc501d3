"""`dlbox caffe import`: a prototxt + caffemodel give OpenCV dnn's outputs (an independent Caffe reader) layer
by layer, and the .pt / .onnx files give the imported net's outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from dlbox.convert.caffe import load_net, load_pt
from dlbox.convert.caffe.net import CaffeNet
from dlbox.convert.caffe.textformat import parse, parse_file
from dlbox.convert.caffe.wire import write_caffemodel
from tests.conftest import assert_user_error, run_main

PARITY = Path(__file__).parent / "caffe_nets" / "parity.prototxt"
# Blobs compared with OpenCV: every layer that is not in-place, from the first to the softmax.
BLOBS = ["conv1", "bn1", "pool1", "norm1", "conv2a", "conv2b", "sum", "max", "prod", "cat", "prelu", "pool2",
         "norm2", "up", "tanh", "pool3", "ip1", "sig", "shape", "ip2", "prob"]  # fmt: skip


def random_weights(prototxt: Path, path: Path, seed: int = 0) -> None:
    """A caffemodel with random weights of the prototxt's shapes (BatchNorm: stored sums with normaliser 2)."""
    rng = np.random.default_rng(seed)
    layers = []
    for name, kind, blobs in CaffeNet(parse_file(prototxt)).caffe_layers():
        new = [rng.standard_normal(b.shape).astype(np.float32) for b in blobs]
        if kind == "BatchNorm":
            new = [new[0], np.abs(new[1]) + 0.5, np.array([2.0], np.float32)]
        elif kind in ("Convolution", "Deconvolution", "InnerProduct"):
            new[0] /= np.sqrt(blobs[0][0].size)  # keep activations of order 1
        elif kind == "Scale":
            new[0] = 1 + 0.2 * new[0]
        layers.append((name, kind, new))
    write_caffemodel(path, "parity", layers)


@pytest.fixture(scope="module")
def parity_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("caffe") / "parity.caffemodel"
    random_weights(PARITY, path)
    return path


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((2, 3, 24, 24)).astype(np.float32)


@pytest.fixture(scope="module")
def opencv_blobs(parity_model, image) -> dict[str, np.ndarray]:
    net = cv2.dnn.readNetFromCaffe(str(PARITY), str(parity_model))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.enableFusion(False)  # keep every layer's own output
    net.setInput(image)
    return dict(zip(BLOBS, net.forward(BLOBS), strict=True))


def test_every_layer_matches_opencv_dnn(parity_model, image, opencv_blobs):
    net, report = load_net(PARITY, parity_model)
    assert report["missing"] == [] and len(report["loaded"]) == 9
    with torch.no_grad():
        ours = net(torch.from_numpy(image))
    diffs = {}
    for name in BLOBS:
        got, ref = ours[name].numpy(), opencv_blobs[name]
        assert got.size == ref.size, (name, got.shape, ref.shape)  # Caffe's ceil rounding and clipping rule
        diffs[name] = float(np.abs(got - ref.reshape(got.shape)).max())
    assert max(diffs.values()) <= 1e-4, diffs
    assert ours["pool1"].shape[-1] == 12 and ours["pool2"].shape[-1] == 7 and ours["pool3"].shape[-1] == 5


def test_lrn_k_follows_caffe_formula():
    """OpenCV ignores lrn_param.k; Caffe's formula is x / (k + alpha / n * sum of x^2 over n channels)^beta."""
    proto = ('input: "x" input_shape { dim: 2 dim: 6 dim: 3 dim: 3 }\nlayer { name: "n" type: "LRN" bottom: "x" top: "y" '
             'lrn_param { local_size: 3 alpha: 0.6 beta: 0.7 k: 2.5 } }')  # fmt: skip
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    y = CaffeNet(parse(proto)).double()(x)["y"]
    sq = np.pad(x.numpy() ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]
    np.testing.assert_allclose(y.numpy(), x.numpy() * (2.5 + 0.6 / 3 * window) ** -0.7, rtol=1e-12)


def test_onnx_export_matches_opencv(parity_model, image, opencv_blobs, tmp_path, capsys):
    res = run_main(capsys, "caffe", "import", PARITY, parity_model, "--out", tmp_path / "m.onnx", "--json")
    assert res.returncode == 0, res.stderr
    r = res.json()
    assert r["outputs"] == ["prob"] and r["inputs"] == {"data": [2, 3, 24, 24]} and r["max_abs_diff"] <= 1e-5
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (prob,) = session.run(None, {"data": image})
    assert float(np.abs(prob - opencv_blobs["prob"]).max()) <= 1e-4


def test_pt_file_loads_safely_and_gives_the_same_outputs(parity_model, image, tmp_path, capsys):
    res = run_main(capsys, "caffe", "import", PARITY, parity_model, "--out", tmp_path / "m.pt")
    assert res.returncode == 0, res.stderr
    assert "parity with the imported net" in res.stdout
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain tensors and strings
    net, _ = load_net(PARITY, parity_model)
    x = torch.from_numpy(image)
    with torch.no_grad():
        assert torch.equal(load_pt(tmp_path / "m.pt")(x)["prob"], net(x)["prob"])


def test_unsupported_layer_is_one_line_naming_layer_and_type(tmp_path, capsys):
    (tmp_path / "n.prototxt").write_text('input: "x" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                                         'layer { name: "crop1" type: "Crop" bottom: "x" bottom: "x" top: "y" }')  # fmt: skip
    res = run_main(capsys, "caffe", "import", tmp_path / "n.prototxt", "--out", tmp_path / "m.pt")
    assert_user_error(res, "'crop1'", "'Crop'", "does not support")


def test_weights_of_another_shape_are_refused(parity_model, tmp_path, capsys):
    wide = PARITY.read_text().replace("num_output: 5", "num_output: 6")
    (tmp_path / "wide.prototxt").write_text(wide)
    res = run_main(capsys, "caffe", "import", tmp_path / "wide.prototxt", parity_model, "--out", tmp_path / "m.pt")
    assert_user_error(res, "'ip2'", "(5, 12)", "(6, 12)")


def test_data_layer_needs_an_input_shape(tmp_path, capsys):
    from dlbox.tasks.caffe.train import EXAMPLES

    net = EXAMPLES / "lenet_train_test.prototxt"
    assert_user_error(run_main(capsys, "caffe", "import", net, "--out", tmp_path / "m.pt"), "'data'", "--input-shape")
    res = run_main(capsys, "caffe", "import", net, "--out", tmp_path / "m.pt", "--input-shape", "data=1,1,28,28", "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["outputs"] == ["ip2"]  # deployed: accuracy and loss layers left out
