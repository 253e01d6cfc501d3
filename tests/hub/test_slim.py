"""TF-Slim checkpoints in PyTorch: dlbox's own checkpoint reader (V2 bundle and V1 file), the conversion of
each supported family checked against the logits TensorFlow itself computed (tools/slim_fixtures.py), the
1001-class background handling, and the commands: predict, export, hub convert, --weights hub:NAME."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbox.base.errors import UserError
from dlbox.convert import slim, tfbundle
from dlbox.models.weights import resolve_weights
from tests.conftest import run_main
from tests.hub.conftest import entry_toml, sha256

FIXTURES = Path(__file__).parent / "fixtures" / "slim"
TOL = 1e-4


def fixture(name: str) -> tuple[Path, torch.Tensor, np.ndarray]:
    """(checkpoint folder, the input as (N, 3, H, W), TensorFlow's logits (N, classes))."""
    d = FIXTURES / name
    x = torch.from_numpy(np.load(d / "input_int8.npy").astype(np.float32) / 127).permute(0, 3, 1, 2)
    return d, x.contiguous(), np.load(d / "logits.npy")


def logits_of(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


@pytest.fixture(scope="module")
def inception_v1():
    """The Inception V1 fixture loaded as `classify predict/evaluate` load it (no --model)."""
    from dlbox.tasks.classify.inference import load_classifier

    return load_classifier(FIXTURES / "inception_v1" / "model.ckpt")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from PIL import Image
    from skimage import data

    p = tmp_path_factory.mktemp("photo") / "cat.jpg"
    Image.fromarray(data.chelsea()).save(p)
    return p


# --- the reader -----------------------------------------------------------------------------------------


def test_v2_bundle_reader_gives_every_variable_in_tf_layout():
    variables = tfbundle.read_checkpoint(FIXTURES / "inception_v1" / "model.ckpt")
    assert sorted(variables) == sorted(tfbundle.variable_names(FIXTURES / "inception_v1" / "model.ckpt.index"))
    assert variables["InceptionV1/Conv2d_1a_7x7/weights"].shape == (7, 7, 3, 8)  # HWIO
    assert variables["InceptionV1/Logits/Conv2d_0c_1x1/biases"].shape == (1001,)
    assert "InceptionV1/Conv2d_1a_7x7/BatchNorm/gamma" not in variables  # Inception V1: BatchNorm scale=False
    assert all(v.dtype == np.float32 for v in variables.values())


def test_v1_checkpoint_file_reads_the_same_as_the_v2_bundle():
    v2 = tfbundle.read_checkpoint(FIXTURES / "mobilenet_v1" / "model.ckpt")
    v1 = tfbundle.read_checkpoint(FIXTURES / "mobilenet_v1" / "model_v1.ckpt")
    assert sorted(v1) == sorted(v2)
    assert all(np.array_equal(v1[k], v2[k]) for k in v2)


def test_snappy_compressed_blocks_are_decoded():
    """LevelDB tables may snappy-compress blocks (TF's writers of these fixtures did not): a literal, then a
    copy that overlaps its own output."""
    assert tfbundle._snappy(b"\x09\x08abc\x09\x03", Path("x")) == b"abcabcabc"
    with pytest.raises(tfbundle.CorruptCheckpoint, match="damaged compressed block"):
        tfbundle._snappy(b"\x09\x08abc\x09\x07", Path("x"))  # a copy from before the start


@pytest.mark.parametrize("damage", ["truncated", "zeroed footer", "missing data file"])
def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path, capsys, photo, damage):
    for f in (FIXTURES / "mobilenet_v1").glob("model.ckpt.*"):
        shutil.copy(f, tmp_path / f.name)
    index = tmp_path / "model.ckpt.index"
    if damage == "truncated":
        index.write_bytes(index.read_bytes()[:-100])
    elif damage == "zeroed footer":
        data = index.read_bytes()
        index.write_bytes(data[:-48] + bytes(40) + data[-8:])  # magic kept, block handles gone
    else:
        (tmp_path / "model.ckpt.data-00000-of-00001").unlink()
    res = run_main(capsys, "classify", "predict", tmp_path / "model.ckpt", photo)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr
    assert ("missing" if damage == "missing data file" else "not a readable TensorFlow checkpoint") in lines[0]


# --- parity with TensorFlow -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, checkpoint, model_name", [
    ("inception_v1", "model.ckpt", "googlenet"),
    ("resnet_v1_50", "model.ckpt", "resnet_v1_2-2-2-1"),
    ("mobilenet_v1", "model.ckpt", "mobilenet_v1"),
    ("mobilenet_v1", "model_v1.ckpt", "mobilenet_v1"),
    ("vgg_16", "model.ckpt", "vgg16"),
    ("mobilenet_v2", "model.ckpt", "mobilenet_v2"),
    ("inception_v3", "model.ckpt", "inception_v3"),  # torchvision's Inception3
    ("resnet_v2_50", "model.ckpt", "resnet_v2_2-2-2-1"),  # dlbox's ResNetV2
    ("inception_v4", "model.ckpt", "inception_v4"),  # timm's InceptionV4
    ("inception_resnet_v2", "model.ckpt", "inception_resnet_v2"),  # timm's InceptionResnetV2
    ("nasnet_large", "model.ckpt", "nasnetalarge"),  # timm's NASNetALarge, all 18 cells
    ("pnasnet_large", "model.ckpt", "pnasnet5large"),  # timm's PNASNet5Large, all 12 cells
])  # fmt: skip
def test_converted_network_gives_tensorflows_logits(name, checkpoint, model_name):
    d, x, expected = fixture(name)
    state, info = slim.convert(tfbundle.read_checkpoint(d / checkpoint))
    assert info["model_name"] == model_name
    got = logits_of(slim.load_model(state, info), x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


def test_tf_same_padding_is_needed_for_parity():
    """Without the SAME twins (torchvision's symmetric padding), MobileNet's logits move well past the bar."""
    from dlbox.convert.tfsame import Conv2dSame

    d, x, expected = fixture("mobilenet_v1")
    state, info = slim.convert(tfbundle.read_checkpoint(d / "model.ckpt"))
    model = slim.load_model(state, info)
    for m in model.modules():
        if isinstance(m, Conv2dSame):
            m.__class__ = torch.nn.Conv2d
            m.padding = (1, 1)
    assert np.abs(logits_of(model, x) - expected).max() > 10 * TOL  # measured: 3.5e-3


def test_inception_v3_pools_need_tfs_pad_excluding_average():
    """torchvision's Inception3 averages over the padding too: without dlbox's rescaling, no parity."""
    from torchvision.models.inception import BasicConv2d

    from dlbox.convert.inception_v3 import PoolBranchConv

    d, x, expected = fixture("inception_v3")
    model = slim.load_model(*slim.convert(tfbundle.read_checkpoint(d / "model.ckpt")))
    pools = [m for m in model.modules() if isinstance(m, PoolBranchConv)]
    assert len(pools) == 9  # Mixed_5b-5d, 6b-6e, 7b-7c
    for m in pools:
        m.__class__ = BasicConv2d
    assert np.abs(logits_of(model, x) - expected).max() > 10 * TOL  # measured: 2.7e-2


def test_nasnet_reduction_pools_need_tfs_pad_excluding_average():
    """timm's stride-2 "same" average pools count their zero padding: without dlbox's pools, no parity."""
    from timm.layers.pool2d_same import AvgPool2dSame

    from dlbox.convert.nasnet import TfAvgPool2dSame

    d, x, expected = fixture("nasnet_large")
    model = slim.load_model(*slim.convert(tfbundle.read_checkpoint(d / "model.ckpt")))
    pools = [m for m in model.modules() if isinstance(m, TfAvgPool2dSame)]
    assert len(pools) == 4  # comb_iter_2_left of cell_stem_0/1 and reduction_cell_0/1
    for m in pools:
        m.__class__ = AvgPool2dSame
    assert np.abs(logits_of(model, x) - expected).max() > 10 * TOL  # measured: 0.79


def test_a_nasnet_checkpoint_with_another_cell_count_is_refused():
    """NASNet-A Mobile has 12 cells (and other wiring): timm's nasnetalarge has 18, so it is one line, not a
    model with missing cells."""
    variables = tfbundle.read_checkpoint(FIXTURES / "nasnet_large" / "model.ckpt")
    mobile = {k: v for k, v in variables.items() if not k.startswith(tuple(f"cell_{i}/" for i in range(12, 18)))}
    with pytest.raises(UserError, match="12 cells where timm's nasnetalarge has 18"):
        slim.convert(mobile)


# --- 1001 classes, ImageNet names, commands -------------------------------------------------------------


def test_1001_class_checkpoint_predicts_with_imagenets_1000_names(inception_v1):
    d, x, expected = fixture("inception_v1")
    clf = inception_v1  # no --model: the network is read from the checkpoint
    assert clf.classes == slim.imagenet_classes() and len(clf.classes) == 1000
    assert (clf.mean, clf.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # Inception: pixels in [-1, 1]
    got = clf.logits(x).numpy()
    assert np.abs(got - expected[:, 1:]).max() <= TOL  # output i is TF's output i + 1 (0 = background)


def test_resnet_v1_preprocessing_subtracts_the_means_without_scaling():
    from dlbox.tasks.classify.inference import load_classifier

    clf = load_classifier(FIXTURES / "resnet_v1_50" / "model.ckpt")
    assert len(clf.classes) == 1000  # converted from Caffe: 1000 classes, no background
    assert np.allclose(np.array(clf.mean) * 255, [123.68, 116.78, 103.94]) and np.allclose(np.array(clf.std) * 255, 1)


def test_resnet_v2_was_trained_in_tensorflow_with_inception_preprocessing_and_a_background_class():
    from dlbox.tasks.classify.inference import load_classifier

    d, x, expected = fixture("resnet_v2_50")
    clf = load_classifier(d / "model.ckpt")
    assert (clf.mean, clf.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) and clf.classes == slim.imagenet_classes()
    assert np.abs(clf.logits(x).numpy() - expected[:, 1:]).max() <= TOL


def test_classify_predict_prints_imagenet_labels_for_a_checkpoint(capsys, photo, inception_v1):
    from PIL import Image

    res = run_main(capsys, "classify", "predict", "--weights", FIXTURES / "inception_v1" / "model.ckpt", photo,
                   "--topk", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    clf = inception_v1
    with Image.open(photo) as im:
        top = int(clf.logits(clf.transform()(im.convert("RGB"))[None]).argmax())
    label = slim.imagenet_classes()[top]
    assert res.stdout.startswith(f"{photo}: {label} ")


def test_hub_convert_writes_safetensors_that_predict_the_same(tmp_path, capsys):
    from safetensors.torch import load_file

    from dlbox.tasks.classify.inference import load_classifier

    d, x, expected = fixture("inception_v1")
    out = tmp_path / "googlenet-slim.safetensors"
    res = run_main(capsys, "hub", "convert", d / "model.ckpt", "--out", out, "--json")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert (r["model_name"], r["num_classes"], r["background_dropped"]) == ("googlenet", 1000, True)
    import torchvision

    plain = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict()
    assert set(load_file(str(out))) == set(plain)  # torchvision's keys
    clf = load_classifier(out)
    assert np.abs(clf.logits(x).numpy() - expected[:, 1:]).max() <= TOL


def test_hub_slim_entry_is_downloaded_extracted_and_converted(server, extra_catalog, monkeypatch):
    from dlbox.tasks.classify.inference import load_classifier

    d, x, expected = fixture("mobilenet_v1")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(d.glob("model.ckpt.*")):
            tar.add(f, arcname=f"mobilenet_v1_test/{f.name}")
    data = buf.getvalue()
    server.files["/mirror/slim-test/mobilenet_v1_test.tgz"] = data
    extra_catalog(entry_toml("slim-test", [{"name": "mobilenet_v1_test.tgz", "url": "https://example.invalid/m.tgz",
                                            "sha256": sha256(data)}], kind="model", loader="tf-slim",
                             architecture="mobilenet_v1", input_size=200, num_classes=1001, background_class=True))  # fmt: skip
    monkeypatch.setenv("DLBOX_MIRROR", server.url("/mirror"))
    clf = load_classifier("hub:slim-test")
    assert clf.img_size == 200 and len(clf.classes) == 1000
    assert np.abs(clf.logits(x).numpy() - expected[:, 1:]).max() <= TOL
    load_classifier("hub:slim-test")
    assert len(server.hits("/mirror/slim-test/mobilenet_v1_test.tgz")) == 1  # then from the cache


@pytest.mark.parametrize("name, why", [("slim-inception_v2", "no Inception V2"),
                                       ("slim-nasnet_a_mobile", "no NASNet-A Mobile")])  # fmt: skip
def test_unsupported_slim_network_is_refused_by_name_with_the_reason(name, why):
    with pytest.raises(UserError, match=f"checkpoint: converting that network is not supported .*{why}"):
        resolve_weights(f"hub:{name}")  # refused by name, before any download


def test_every_slim_catalog_entry_is_either_converted_or_refused_with_a_reason():
    from dlbox.hub import catalog

    entries = [e for e in catalog.load(torchvision=False).entries if getattr(e, "loader", "") == "tf-slim"]
    assert len(entries) == 22
    for e in entries:
        assert (e.architecture in slim.SUPPORTED_ARCHITECTURES) != (e.architecture in slim.REFUSED), e.name
        assert ("converted by dlbox" in e.loader_note) == (e.architecture in slim.SUPPORTED_ARCHITECTURES), e.name


def test_fine_tuning_keeps_the_backbone_and_replaces_the_head():
    from dlbox.tasks.classify import models

    ckpt = str(FIXTURES / "inception_v1" / "model.ckpt")
    model, meta = models.build("googlenet", 5, ckpt, fine_tune=True)
    assert model.fc.out_features == 5 and meta["slim"]["family"] == "inception_v1"
    state, _ = slim.read(ckpt)
    assert torch.equal(model.conv1.conv.weight, state["conv1.conv.weight"])
    with pytest.raises(UserError, match="add --fine-tune"):
        models.build("googlenet", 5, ckpt)
    with pytest.raises(UserError, match="--model googlenet"):
        models.build("resnet50", 1000, ckpt)


def test_export_to_onnx_matches_pytorch(tmp_path, capsys):
    out = tmp_path / "mobilenet.onnx"
    res = run_main(capsys, "classify", "export", FIXTURES / "mobilenet_v1" / "model.ckpt", "--out", out, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["max_abs_diff"] <= TOL and out.is_file()


def test_a_run_fine_tuned_from_slim_weights_reloads_with_slims_padding(tmp_path):
    """What `classify train` saves (the Slim facts in the task state) brings back TF's padding on reload."""
    from dlbox.convert.tfsame import Conv2dSame
    from dlbox.engine import checkpoint
    from dlbox.tasks.classify import models
    from dlbox.tasks.classify.inference import load_classifier

    model, meta = models.build("mobilenet_v1", 3, str(FIXTURES / "mobilenet_v1" / "model.ckpt"), fine_tune=True)
    task_state = {"classes": ["a", "b", "c"], "model_name": "mobilenet_v1", "img_size": 64, "mean": list(meta["mean"]),
                  "std": list(meta["std"]), "ema": None, "slim": meta["slim"]}  # fmt: skip
    checkpoint.save({"task": "classify", "model": model.state_dict(), "task_state": task_state}, tmp_path / "best.pt")
    clf = load_classifier(tmp_path / "best.pt")
    assert isinstance(clf.model.features[0][0], Conv2dSame) and clf.classes == ["a", "b", "c"]
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(clf.logits(x), model.eval()(x), atol=1e-6)


def test_bench_measures_the_network_a_slim_checkpoint_names_with_its_weights(capsys):
    from dlbox.bench.runner import Bench, BenchConfig

    d, x, expected = fixture("mobilenet_v1")
    with Bench(BenchConfig(weights=str(d / "model.ckpt"), batch_size=2, device="cpu")) as b:
        assert (b.cfg.model, b.image_size) == ("mobilenet_v1", 224)  # no --model: the checkpoint says
        assert np.abs(logits_of(b.model, x) - expected[:, 1:]).max() <= TOL  # the trained weights, not random
    res = run_main(capsys, "bench", "--weights", d / "model.ckpt", "--mode", "infer", "--batch-size", "2",
                   "--image-size", "64", "--steps", "1", "--warmup", "1", "--device", "cpu", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    (row,) = res.json()
    assert row["model"] == "mobilenet_v1" and row["status"] == "ok" and row["images_per_sec"] > 0
