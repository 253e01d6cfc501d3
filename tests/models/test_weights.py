"""``dlbox.models.weights``: every ``--weights`` kind parsed by ``resolve_weights`` into its typed source, read
back by the one reader (the tensors written are the tensors read) and loaded by the one loader; the errors of
what cannot be resolved or does not fit. Files are written by the tests; hub entries come from a local mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dlbox.base.errors import UserError
from dlbox.engine import checkpoint
from dlbox.models import weights
from dlbox.models.weights import KINDS, load_state, read_state, resolve_weights
from tests.hub.conftest import HUB_ENV, entry_toml, sha256

SLIM_CKPT = Path(__file__).parents[1] / "hub" / "fixtures" / "slim" / "mobilenet_v1" / "model.ckpt"


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An isolated hub: its own home, a local folder as the mirror, and a test catalog; ``add(name, files,
    **entry)`` puts files ({name: bytes}) in the mirror and their entry in the catalog."""
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    mirror, catalog = tmp_path / "mirror", tmp_path / "extra.toml"
    monkeypatch.setenv("DLBOX_MIRROR", str(mirror))
    monkeypatch.setenv("DLBOX_CATALOG_EXTRA", str(catalog))
    entries: list[str] = []
    catalog.write_text("")

    def add(name: str, files: dict[str, bytes], **entry) -> str:
        for fname, data in files.items():
            (mirror / name).mkdir(parents=True, exist_ok=True)
            (mirror / name / fname).write_bytes(data)
        rows = [{"name": f, "url": f"https://example.invalid/{f}", "sha256": sha256(d)} for f, d in files.items()]
        entries.append(entry_toml(name, rows, kind="model", **entry))
        catalog.write_text("".join(entries))
        return f"hub:{name}"

    return add


def _pt(tmp_path: Path, obj, name: str = "w.pt") -> Path:
    torch.save(obj, tmp_path / name)
    return tmp_path / name


def _ckpt(tmp_path: Path, state, where: str) -> Path:
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save({"model": state, "task": "classify", "task_state": {"classes": ["a", "b", "c"]}}, path)
    return path


def _hf(tmp_path: Path, state, folder: bool) -> Path:
    d = tmp_path / "hf"
    d.mkdir()
    save_file(state, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"architecture": "tiny", "label_names": ["a", "b", "c"]}))
    return d if folder else d / "model.safetensors"


def _hub_file(tmp_path: Path, state, hub) -> str:
    blob = _pt(tmp_path, state, "blob.pth").read_bytes()
    return hub("tiny-net", {"tiny-net-0123.pth": blob}, loader="torchvision:tiny")


def _hub_timm(tmp_path: Path, state, hub) -> str:
    d = _hf(tmp_path, state, folder=True)
    return hub("tiny-timm", {f.name: f.read_bytes() for f in sorted(d.iterdir())}, loader="timm:tiny")


# kind -> how the test writes it, and what its metadata must say
WRITERS = {
    "state-dict .pt": ("state-dict", lambda tmp, s, hub: _pt(tmp, s), {}),
    "state-dict .pth, wrapped": ("state-dict", lambda tmp, s, hub: _pt(tmp, {"state_dict": s}, "w.pth"), {}),
    "state-dict, DataParallel names": ("state-dict", lambda tmp, s, hub: _pt(tmp, {f"module.{k}": v for k, v in s.items()}), {}),
    "safetensors": ("safetensors", lambda tmp, s, hub: (save_file(s, str(tmp / "w.safetensors")), tmp / "w.safetensors")[1], {}),
    "dlbox checkpoint": ("checkpoint", lambda tmp, s, hub: _ckpt(tmp, s, "elsewhere/model.pt"), {"classes": ["a", "b", "c"]}),
    "dlbox run": ("run", lambda tmp, s, hub: _ckpt(tmp, s, "run/checkpoints/best.pt").parent.parent, {"classes": ["a", "b", "c"]}),
    "hf folder": ("hf-folder", lambda tmp, s, hub: _hf(tmp, s, folder=True), {"timm_architecture": "tiny", "classes": ["a", "b", "c"]}),
    "hf safetensors + config.json": ("hf-folder", lambda tmp, s, hub: _hf(tmp, s, folder=False), {"classes": ["a", "b", "c"]}),
    "hub:NAME (state dict)": ("state-dict", _hub_file, {}),
    "hub:NAME (timm)": ("hf-folder", _hub_timm, {"timm_architecture": "tiny"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WRITERS))
def test_every_readable_kind_resolves_reads_and_loads_the_same_tensors(case, tmp_path, hub):
    kind, write, meta = WRITERS[case]
    state = net().state_dict()
    spec = str(write(tmp_path, state, hub))
    src = resolve_weights(spec)
    assert src.kind == kind and src.spec == spec
    assert (src.hub is not None) == spec.startswith("hub:")
    got, got_meta = read_state(src)
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)
    assert {k: got_meta[k] for k in meta} == meta
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert load_state(model, got, spec) == []
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def _caffe_pt(tmp_path: Path) -> Path:
    return _pt(tmp_path, {"format": weights.CAFFE_PT_FORMAT, "prototxt": "name: 'x'", "input_shapes": {},
                          "state_dict": {"conv.weight": torch.ones(1)}}, "net.pt")  # fmt: skip


def _slim_converted(tmp_path: Path) -> Path:
    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "c.safetensors"), metadata={weights.SLIM_META_KEY: "{}"})
    return tmp_path / "c.safetensors"


def _touch(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).write_bytes(b"\0" * 64)
    return tmp_path / name


# kinds that are not a plain state dict: what the resolver types them as
OTHERS = {
    "TF-Slim checkpoint prefix": ("slim", lambda tmp: SLIM_CKPT),
    "TF-Slim .index": ("slim", lambda tmp: Path(str(SLIM_CKPT) + ".index")),
    "TF-Slim folder": ("slim", lambda tmp: SLIM_CKPT.parent),
    "converted TF-Slim safetensors": ("slim", _slim_converted),
    "caffemodel": ("caffe", lambda tmp: _touch(tmp, "net.caffemodel")),
    "dlbox caffe import": ("caffe", _caffe_pt),
    "onnx export": ("export", lambda tmp: _touch(tmp, "model.onnx")),
    "torchscript export": ("export", lambda tmp: _touch(tmp, "model.torchscript.pt")),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OTHERS))
def test_other_kinds_are_typed_by_layout_and_header(case, tmp_path):
    kind, write = OTHERS[case]
    assert resolve_weights(write(tmp_path)).kind == kind


def test_every_kind_has_a_test():
    tested = {k for k, *_ in WRITERS.values()} | {k for k, _ in OTHERS.values()} | {"sherpa-onnx"}
    assert tested == set(KINDS)


def test_slim_and_caffe_sources_read_through_their_converters(tmp_path):
    state, info = read_state(SLIM_CKPT)
    assert info["family"] == "mobilenet_v1" and f"{info['head']}.weight" in state
    state, meta = read_state(_caffe_pt(tmp_path))
    assert set(state) == {"conv.weight"} and meta["prototxt"] == "name: 'x'"


def test_a_sherpa_onnx_hub_entry_is_one_source_with_all_its_files(hub, tmp_path):
    spec = hub("tiny-asr", {"model.onnx": b"onnx", "tokens.txt": b"a\nb\n"}, task="speech", loader="sherpa-onnx:paraformer")
    src = resolve_weights(spec)
    assert src.kind == "sherpa-onnx" and src.loader == "sherpa-onnx:paraformer"
    assert src.path.read_bytes() == b"onnx" and src.files["tokens.txt"].read_bytes() == b"a\nb\n"


def test_a_registered_scheme_resolves_through_its_handler(tmp_path, monkeypatch):
    path = _pt(tmp_path, net().state_dict())
    monkeypatch.setitem(weights.SCHEMES, "models:/", lambda rest: weights.from_path(tmp_path / f"{rest}.pt", f"models:/{rest}"))
    src = resolve_weights("models:/w")
    assert src.kind == "state-dict" and src.path == path and weights.split_scheme("models:/w") == ("models:/", "w")


@pytest.mark.parametrize("write, fragment", [
    (lambda tmp: tmp / "missing.pt", "'.*missing.pt' does not exist"),
    (lambda tmp: "hub:", "is not a hub reference"),
    (lambda tmp: "hub:mnist", "is a dataset, not model weights"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "is a folder but not a dlbox run"),
])  # fmt: skip
def test_what_cannot_be_resolved_is_one_line_naming_it(write, fragment, tmp_path, hub):
    with pytest.raises(UserError, match=fragment):
        resolve_weights(write(tmp_path))


@pytest.mark.parametrize("write, fragment", [
    (lambda tmp: _touch(tmp, "net.caffemodel"), "needs its prototxt|named by a prototxt"),
    (lambda tmp: _touch(tmp, "model.onnx"), "is an export, not weights"),
    (lambda tmp: _touch(tmp, "garbage.pt"), "garbage.pt"),
    (lambda tmp: _pt(tmp, {"a": "text"}), "not a state dict of tensors"),
])  # fmt: skip
def test_what_cannot_be_read_is_one_line_naming_it(write, fragment, tmp_path):
    with pytest.raises(UserError, match=fragment):
        read_state(write(tmp_path))


def test_the_one_mismatch_error_names_missing_unexpected_and_other_shapes(tmp_path):
    state = net().state_dict()
    bad = {"0.weight": torch.zeros(8, 5), "2.weight": state["2.weight"], "2.bias": state["2.bias"], "x": torch.zeros(1)}
    with pytest.raises(UserError) as e:
        load_state(net(), bad, "w.pt", hint="use --model X")
    msg = str(e.value)
    assert msg.startswith("w.pt does not fit Sequential: missing 0.bias; unexpected x; other shapes for 0.weight")
    assert e.value.hint == "use --model X"


def test_fine_tuning_keeps_the_fresh_tensors_whose_shape_differs():
    state = net().state_dict()
    other = {**state, "2.weight": torch.zeros(5, 8), "2.bias": torch.zeros(5)}
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    fresh = model.state_dict()["2.weight"].clone()
    assert load_state(model, other, "w.pt", keep_other_shapes=True) == ["2.weight", "2.bias"]
    assert torch.equal(model.state_dict()["2.weight"], fresh) and torch.equal(model.state_dict()["0.weight"], state["0.weight"])
