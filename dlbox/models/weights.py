"""``--weights``: one parser of weights specs, one state-dict reader, one loader with one mismatch error.

``resolve_weights(spec)`` looks at a spec once and returns a typed ``WeightsSource``:

==============  ================================================================================================
kind            what it is
==============  ================================================================================================
state-dict      a PyTorch file of tensors (.pt/.pth/.bin; ``{"state_dict": ...}``/``{"model": ...}`` unwrapped)
safetensors     a plain .safetensors file
checkpoint      a dlbox checkpoint file (``format: dlbox.checkpoint``)
run             a dlbox run directory (its checkpoints/best.pt, else last.pt)
hf-folder       Hugging Face / timm layout: a folder with model.safetensors (+ config.json), or a .safetensors
                file with a config.json beside it
slim            a TF-Slim (TensorFlow) checkpoint: V2 prefix/.index/.data-*, V1 file, a folder holding one, or a
                .safetensors written by `dlbox hub convert`
caffe           a .caffemodel, or a net written by `dlbox caffe import --out model.pt`
export          an export of a model: .onnx, .torchscript.pt, OpenVINO .xml (dlbox.runtime.exported)
sherpa-onnx     a sherpa-onnx speech model of the hub (several files)
==============  ================================================================================================

Schemes are resolved first: ``hub:NAME`` is fetched through the hub's cache and mirrors (then typed like a
path, with the catalog entry kept in ``source.entry``). ``register_scheme(prefix, handler)`` adds another (e.g.
``models:/NAME/VERSION`` of a tracking server); a handler is a callable or a ``"module:function"`` string taking
the part after the prefix and returning a ``WeightsSource``. Handlers of layers above this one are named by
string and imported when used, like the registry's builders.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dlbox.base.errors import UserError, not_found
from dlbox.models.registry import resolve_target

Kind = Literal["state-dict", "safetensors", "checkpoint", "run", "hf-folder", "slim", "caffe", "export", "sherpa-onnx"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

HF_WEIGHTS = "model.safetensors"  # the Hugging Face / timm layout
HF_CONFIG = "config.json"
SLIM_META_KEY = "dlbox.slim"  # safetensors metadata written by `dlbox hub convert`
CAFFE_PT_FORMAT = "dlbox-caffe/1"  # what `dlbox caffe import --out model.pt` writes
CHECKPOINT_FORMAT = "dlbox.checkpoint"
TF_TABLE_MAGIC = 0xDB4775248B80FB57  # the footer of a TensorFlow table (checkpoint .index, V1 checkpoint)
TF_FOOTER_SIZE = 48
KNOWN = ("pass a weights file (.pt/.pth/.safetensors), a dlbox run or checkpoint, a TF-Slim checkpoint, "
         "an export (.onnx) or hub:NAME")  # fmt: skip


@dataclass
class WeightsSource:
    """What a ``--weights`` spec is, once: its kind, the local path, and what else the spec said."""

    kind: Kind
    spec: str  # as the user wrote it
    path: Path  # the local file (a TF checkpoint: its prefix; a run: the run directory)
    config: Path | None = None  # hf-folder: config.json
    hub: str | None = None  # hub:NAME -> NAME
    entry: Any = None  # the hub catalog entry (ModelEntry) when from hub:NAME
    files: dict[str, Path] = field(default_factory=dict)  # every file of a multi-file model (sherpa-onnx)

    @property
    def loader(self) -> str:
        """The hub entry's loader ("torchvision:resnet18", "tf-slim", "timm:ARCH", ...) or ""."""
        return getattr(self.entry, "loader", "") or ""

    @property
    def label(self) -> str:
        return self.spec

    def checkpoint_file(self, name: str = "best.pt") -> Path:
        """A run's ``checkpoints/<name>`` (else its last.pt); a checkpoint's own path."""
        if self.kind != "run":
            return self.path
        ckpt = self.path / "checkpoints" / name
        return ckpt if ckpt.is_file() else self.path / "checkpoints" / "last.pt"


# --- parsing ---------------------------------------------------------------------------------------------
def split_scheme(spec: str | Path) -> tuple[str | None, str]:
    """``("hub:", "resnet18")`` for ``hub:resnet18``; ``(None, spec)`` for a path. Parses nothing else."""
    s = str(spec)
    for prefix in SCHEMES:
        if s.startswith(prefix):
            return prefix, s[len(prefix) :]
    return None, s


def is_reference(spec: str | Path) -> bool:
    """A scheme reference (hub:NAME, ...) rather than a path: resolving it may download."""
    return split_scheme(spec)[0] is not None


def register_scheme(prefix: str, handler: Callable[[str], WeightsSource] | str) -> None:
    """Teach ``resolve_weights`` a scheme (``"models:/"``): ``handler(rest_of_spec) -> WeightsSource``."""
    SCHEMES[prefix] = handler


def resolve_weights(spec: str | Path | WeightsSource) -> WeightsSource:
    """Parse ``spec`` once: a scheme reference is resolved to local files, a path is typed by what it holds
    (a ``WeightsSource`` is returned as it is). Unknown, missing or unreadable specs are a one-line UserError."""
    if isinstance(spec, WeightsSource):
        return spec
    spec = str(spec)
    prefix, rest = split_scheme(spec)
    if prefix is not None:
        handler = SCHEMES[prefix]
        fn = resolve_target(handler) if isinstance(handler, str) else handler
        return fn(rest)
    return from_path(Path(spec), spec)


def from_path(path: Path, spec: str | None = None, **extra: Any) -> WeightsSource:
    """Type a local path by its layout and the header of its contents (no tensors are read here)."""
    spec = spec if spec is not None else str(path)

    def src(kind: str, p: Path = path, **kw: Any) -> WeightsSource:
        return WeightsSource(kind, spec, p, **{**extra, **kw})  # type: ignore[arg-type]

    if path.is_dir():
        if (path / HF_WEIGHTS).is_file():
            cfg = path / HF_CONFIG
            return src("hf-folder", path / HF_WEIGHTS, config=cfg if cfg.is_file() else None)
        if (path / "checkpoints").is_dir():
            return src("run")
        tf = sorted(path.rglob("*.index")) or sorted(f for f in path.rglob("*.ckpt") if f.is_file())
        if tf:
            return src("slim", tf[0].with_suffix("") if tf[0].suffix == ".index" else tf[0])
        raise UserError(f"{spec!r} is a folder but not a dlbox run, a Hugging Face layout or a TF checkpoint", KNOWN)
    if is_tf_checkpoint(path):
        return src("slim")
    if not path.is_file():
        raise UserError(f"{spec!r} {not_found(path)}", KNOWN)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".xml") or path.name.endswith(".torchscript.pt"):
        return src("export")
    if suffix == ".caffemodel":
        return src("caffe")
    if suffix == ".safetensors":
        if SLIM_META_KEY in safetensors_metadata(path):
            return src("slim")
        cfg = path.parent / HF_CONFIG
        return src("hf-folder", config=cfg) if cfg.is_file() else src("safetensors")
    kind = _torch_kind(path)  # without reading the tensors: read_state reads them, once
    return src(kind)


def _torch_kind(path: Path) -> str:
    """checkpoint, caffe or state-dict, from the pickle of a torch.save zip (small: tensors are stored apart);
    other files are taken to be state dicts, which reading them checks."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"), None)
            head = z.read(pkl) if pkl else b""
    except (zipfile.BadZipFile, OSError):
        return "state-dict"
    if CHECKPOINT_FORMAT.encode() in head:
        return "checkpoint"
    if CAFFE_PT_FORMAT.encode() in head:
        return "caffe"
    return "state-dict"


def is_tf_checkpoint(path: str | Path) -> bool:
    """True when ``path`` names a TensorFlow checkpoint (V2 prefix/.index/.data, or a V1 table file)."""
    p = Path(path)
    name = p.name
    if name.endswith(".index") or ".data-0" in name or p.with_name(name + ".index").is_file():
        return True
    if p.is_file() and p.suffix not in (".pt", ".pth", ".safetensors", ".onnx", ".caffemodel", ".bin"):
        with open(p, "rb") as f:
            f.seek(0, 2)
            if f.tell() < TF_FOOTER_SIZE:
                return False
            f.seek(-8, 2)
            return struct.unpack("<Q", f.read(8))[0] == TF_TABLE_MAGIC
    return False


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors file ({} when it has none or is not one)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 (any unreadable header: not ours to describe here)
        return {}


def _torch_load(path: Path, spec: str) -> Any:
    from dlbox.engine import checkpoint

    try:  # the one reader of torch files: truncated, foreign (text, audio) and unsafe files are one line
        return checkpoint.read_torch_file(path, "weights", hint="pass a state dict saved with torch.save, or safetensors")
    except UserError:
        if path.parent.name == "checkpoints":  # a run's checkpoint: the engine says what is wrong and what is kept
            checkpoint.load(path)
        raise


# --- the hub ---------------------------------------------------------------------------------------------
def _from_hub(name: str) -> WeightsSource:
    """``hub:NAME`` -> the entry's files through the hub's cache, mirrors and offline rules, typed."""
    spec = f"hub:{name}"
    if not name.strip():
        raise UserError(f"{spec!r} is not a hub reference", "write hub:NAME, e.g. hub:resnet18 (see `dlbox hub list`)")
    entry = resolve_target("dlbox.hub.catalog:model_entry")(name)
    extra = {"hub": entry.name, "entry": entry}
    if entry.loader == "tf-slim":  # an archive: the checkpoint inside it, extracted once (refused by name first)
        return WeightsSource("slim", spec, resolve_target("dlbox.convert.slim:hub_checkpoint")(entry), **extra)
    ensure = resolve_target("dlbox.hub.fetch:ensure")
    if entry.loader.startswith("timm:"):
        files = ensure(entry)  # model.safetensors and config.json
        weights = next((p for n, p in files.items() if n.endswith(".safetensors")), None)
        if weights is None:
            raise UserError(f"hub:{entry.name} has no .safetensors file", "a timm entry lists model.safetensors and config.json")
        return WeightsSource("hf-folder", spec, weights, config=files.get(HF_CONFIG), files=files, **extra)
    if entry.loader.startswith("sherpa-onnx:"):
        files = ensure(entry, list(entry.files))
        model = next(p for n, p in files.items() if n.endswith(".onnx"))
        return WeightsSource("sherpa-onnx", spec, model, files=files, **extra)
    f = entry.weights_file
    path = ensure(entry, [f])[f.name]
    return from_path(path, spec, **extra)


# models:/NAME/VERSION, models:/NAME@ALIAS: an export registered in MLflow's model registry (issue 24)
SCHEMES: dict[str, Callable[[str], WeightsSource] | str] = {"hub:": _from_hub,
                                                          "models:/": "dlbox.models.mlflow_registry:resolve"}


# --- reading ---------------------------------------------------------------------------------------------
def read_hf_config(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read timm config {str(path)!r}: {e}", "it should be the config.json timm saved") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{str(path)!r} is not a timm config (a JSON object with pretrained_cfg)")
    return cfg


def _safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot read safetensors file {str(path)!r}: {e}") from None


def _tensors_only(obj: Any, source: WeightsSource) -> dict:
    import torch

    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{str(source.path)!r} is not a state dict of tensors",
                        "save weights with torch.save(model.state_dict(), path)")  # fmt: skip
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_checkpoint(source: WeightsSource) -> dict[str, Any]:
    """The whole dlbox checkpoint of a ``run`` or ``checkpoint`` source (model, task, task_state, ...)."""
    from dlbox.engine import checkpoint

    if source.kind not in ("run", "checkpoint"):
        raise UserError(f"{source.spec} is not a dlbox run or checkpoint ({source.kind})", "pass a run directory")
    return checkpoint.load(checkpoint.resolve(source.checkpoint_file(), "best.pt"))


def read_state(source: WeightsSource | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, metadata) of any weights; metadata holds what the weights say of themselves: a dlbox
    checkpoint's task state (classes, model name), a timm config's architecture and classes, a TF-Slim
    checkpoint's facts (converted to PyTorch's layout by dlbox.convert.slim)."""
    if not isinstance(source, WeightsSource):
        source = resolve_weights(source)
    kind = source.kind
    if kind in ("run", "checkpoint"):
        ck = read_checkpoint(source)
        return ck["model"], dict(ck.get("task_state") or {})
    if kind == "state-dict":
        return _tensors_only(_torch_load(source.path, source.spec), source), {}
    if kind == "safetensors":
        return _safetensors(source.path), {}
    if kind == "hf-folder":
        cfg = read_hf_config(source.config) if source.config else {}
        meta: dict[str, Any] = {"pretrained_cfg": cfg.get("pretrained_cfg") or {}}
        if cfg.get("architecture"):
            meta["timm_architecture"] = cfg["architecture"]
        names = cfg.get("label_names") or meta["pretrained_cfg"].get("label_names")
        if names:
            meta["classes"] = list(names)
        return _safetensors(source.path), meta
    if kind == "slim":
        return resolve_target("dlbox.convert.slim:read_source")(source)
    if kind == "caffe" and source.path.suffix != ".caffemodel":
        saved = _torch_load(source.path, source.spec)
        return saved["state_dict"], {"prototxt": saved["prototxt"], "input_shapes": saved["input_shapes"]}
    if kind == "caffe":
        raise UserError(f"{source.spec} is a .caffemodel: its layers are named by a prototxt",
                        "import it first: dlbox caffe import NET.prototxt --weights MODEL.caffemodel --out model.pt")  # fmt: skip
    raise UserError(f"{source.spec} is {'an export' if kind == 'export' else f'a {kind} model'}, not weights",
                    "pass the run or checkpoint it was exported from")  # fmt: skip


# --- loading ---------------------------------------------------------------------------------------------
def drop_background_class(state: dict, head_names: list[str] | tuple[str, ...]) -> bool:
    """The label offset of 1001-class TF-Slim-style heads (index 0 = background), applied in one place: drop that
    row so output i is ImageNet class i. Returns whether anything was dropped."""
    dropped = False
    for name in head_names:
        for suffix in ("weight", "bias"):
            key = f"{name}.{suffix}"
            if key in state and state[key].shape[0] == 1001:
                state[key] = state[key][1:].clone()
                dropped = True
    return dropped


def mismatch(model: Any, state: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, other-shape) keys of ``state`` against ``model``'s own."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, shapes


def load_state(model: Any, state: dict, source: str, *, hint: str = "use the --model the weights were trained with",
               keep_other_shapes: bool = False) -> list[str]:
    """Strict load of ``state`` into ``model``; the one mismatch error names the first keys and shapes.

    ``keep_other_shapes``: tensors whose shape differs keep the model's own (fresh) values (fine-tuning a head
    for other classes); their names are returned."""
    missing, unexpected, shapes = mismatch(model, state)
    if missing or unexpected or (shapes and not keep_other_shapes):
        own = model.state_dict()

        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")

        parts = [f"missing {few(missing)}" if missing else "", f"unexpected {few(unexpected)}" if unexpected else "",
                 "other shapes for " + ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                                                 for k in shapes[:3]) if shapes and not keep_other_shapes else ""]  # fmt: skip
        raise UserError(f"{source} does not fit {type(model).__name__}: {'; '.join(p for p in parts if p)}", hint)
    if shapes:
        own = model.state_dict()
        state = {k: (own[k] if k in shapes else state[k]) for k in own}
    model.load_state_dict(state)
    return shapes
