"""The hub catalog: datasets and pretrained models, as typed entries.

Sources, merged in this order:

- ``catalog.toml`` in this package: datasets, the TF-Slim checkpoints, and how torchvision is included;
- torchvision's own weights enums, read when first needed (``torchvision.models.list_models()`` and
  ``get_model_weights(name)``): URL, the sha256 prefix in the file name, ``_metrics``, ``num_params``,
  ``_ops``, categories, transforms. Generated, never copied, so the catalog cannot drift from the installed
  torchvision. A model's DEFAULT weights are named after the model (``resnet50``); its other weights
  ``MODEL.ENUM`` (``resnet50.IMAGENET1K_V1``); ``resnet50.IMAGENET1K_V2`` is an alias of ``resnet50``;
- extra TOML files named by ``DLBOX_CATALOG_EXTRA`` (paths separated by ``:``) or passed as ``extra=``: a
  site's own files (or a test's). An extra entry may not reuse a name unless it says ``override = true``.

Every file has a sha256, an md5 or a sha256 prefix, or says ``no_hash_published = true`` (the hub then records
the sha256 of the first copy it gets and verifies later uses against it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dlbox.base.errors import UserError, close_matches

CATALOG_FILE = Path(__file__).with_name("catalog.toml")
TASKS = {
    "classify": "image classification",
    "detect": "object detection",
    "speech": "speech recognition",
    "face": "face recognition",
    "text": "text corpora",
}
TASK_ALIASES = {"classification": "classify", "detection": "detect", "asr": "speech", "nlp": "text"}
_HEX = re.compile(r"^[0-9a-f]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class HubFile:
    """One file of an entry. ``name`` is the file name in the cache, in mirrors and under ``--to``."""

    name: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None  # torchvision: the hex digits in the file name start its sha256
    no_hash_published: bool = False
    hash_source: str | None = None  # who computed the hash, when it is not the upstream publisher
    approx_size: int | None = None  # bytes, when only a rounded size is known (progress and listings)
    note: str | None = None

    @property
    def hashed(self) -> bool:
        return bool(self.sha256 or self.md5 or self.sha256_prefix)

    @property
    def tag(self) -> str:
        """A short content tag for the cache path: two different files never share a path."""
        if self.sha256:
            return self.sha256[:16]
        if self.sha256_prefix:
            return self.sha256_prefix
        if self.md5:
            return "md5-" + self.md5[:16]
        return "unhashed"

    @property
    def display_size(self) -> int | None:
        return self.size if self.size is not None else self.approx_size


@dataclass(frozen=True)
class Entry:
    name: str
    kind: Literal["dataset", "model"]
    task: str
    title: str
    description: str
    license: str
    homepage: str
    files: tuple[HubFile, ...] = ()
    manual: str | None = None  # how to obtain files the licence keeps us from downloading
    aliases: tuple[str, ...] = ()
    override: bool = False
    origin: str = "catalog.toml"  # catalog.toml, torchvision, or the path of an extra catalog file

    def file(self, name: str) -> HubFile:
        for f in self.files:
            if f.name == name:
                return f
        raise UserError(f"hub:{self.name} has no file {name!r}",
                        close_matches(name, [f.name for f in self.files])
                        or f"its files: {', '.join(f.name for f in self.files)}")  # fmt: skip

    @property
    def total_size(self) -> int | None:
        sizes = [f.display_size for f in self.files]
        return sum(sizes) if sizes and all(s is not None for s in sizes) else None


@dataclass(frozen=True)
class DatasetEntry(Entry):
    """A dataset: its files, and a manual note when the licence makes the user supply them."""


@dataclass(frozen=True)
class ModelEntry(Entry):
    """Pretrained weights: the file, what it is (architecture, classes, input), its published metrics."""

    architecture: str = ""
    loader: str = ""  # how dlbox turns the file into a model: "torchvision:NAME" (a state dict), "tf-slim"
    loader_note: str | None = None
    input_size: int | None = None
    num_classes: int | None = None
    background_class: bool = False  # class 0 is "background": dataset label i is output i + 1
    categories: int | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    num_params: int | None = None
    gflops: float | None = None
    transforms: dict[str, Any] | None = None  # resize_size, crop_size, mean, std, interpolation
    weights_enum: str | None = None
    default: bool = False

    @property
    def weights_file(self) -> HubFile:
        return self.files[0]


# --- reading TOML ---------------------------------------------------------------------------------------
def _parse_file(raw: Any, where: str) -> HubFile:
    from dlbox.config import from_dict

    if not isinstance(raw, dict):
        raise UserError(f"{where}: a file must be a table, got {raw!r}")
    raw = dict(raw)
    if "name" not in raw and raw.get("url"):
        raw["name"] = str(raw["url"]).rstrip("/").rsplit("/", 1)[-1]
    if not raw.get("name"):
        raise UserError(f"{where}: a file needs a name (or a url to take it from)")
    try:
        f = from_dict(HubFile, raw)
    except UserError as e:
        raise UserError(f"{where}: {e.message}", e.hint) from None
    problems = file_problems(f)
    if problems:
        raise UserError(f"{where}: file {f.name!r}: {'; '.join(problems)}")
    return f


def file_problems(f: HubFile) -> list[str]:
    """What is malformed in a file record (empty when it is well formed)."""
    out = []
    if "/" in f.name or "\\" in f.name or f.name in (".", "..") or f.name.startswith("."):
        out.append("name must be a plain file name")
    if f.size is not None and f.size <= 0:
        out.append(f"size must be a positive byte count, got {f.size}")
    if f.sha256 is not None and not (len(f.sha256) == 64 and _HEX.match(f.sha256)):
        out.append("sha256 must be 64 lower-case hex digits")
    if f.md5 is not None and not (len(f.md5) == 32 and _HEX.match(f.md5)):
        out.append("md5 must be 32 lower-case hex digits")
    if f.sha256_prefix is not None and not (8 <= len(f.sha256_prefix) <= 64 and _HEX.match(f.sha256_prefix)):
        out.append("sha256_prefix must be 8 to 64 lower-case hex digits")
    if f.hashed and f.no_hash_published:
        out.append("has a hash but also says no_hash_published")
    if not f.hashed and not f.no_hash_published:
        out.append("no sha256, md5 or sha256_prefix: add one, or say no_hash_published = true")
    if f.url is not None and not re.match(r"^(https?|s3)://[^\s]+$", f.url):
        out.append(f"url {f.url!r} is not an http(s):// or s3:// URL")
    return out


def _parse_entry(raw: dict, origin: str) -> Entry:
    from dlbox.config import from_dict

    name = raw.get("name", "?")
    where = f"{origin}: entry {name!r}"
    if not isinstance(raw.get("name"), str) or not _NAME.match(raw["name"]):
        raise UserError(f"{where}: name must be letters, digits, '.', '_', '+' or '-'")
    data = dict(raw)
    files = tuple(_parse_file(f, where) for f in data.pop("files", []) or [])
    kind = data.get("kind")
    cls = {"dataset": DatasetEntry, "model": ModelEntry}.get(kind)
    if cls is None:
        raise UserError(f"{where}: kind must be 'dataset' or 'model', got {kind!r}")
    data["task"] = TASK_ALIASES.get(data.get("task"), data.get("task"))
    if data["task"] not in TASKS:
        raise UserError(f"{where}: unknown task {data['task']!r}", f"one of {', '.join(TASKS)}")
    if "aliases" in data:
        data["aliases"] = list(data["aliases"])
    try:
        entry = from_dict(cls, {**data, "origin": origin})
    except UserError as e:
        raise UserError(f"{where}: {e.message}", e.hint) from None
    entry = dataclasses.replace(entry, files=files, aliases=tuple(entry.aliases))
    if not entry.files:
        raise UserError(f"{where}: no files")
    if not entry.manual and any(f.url is None for f in entry.files):
        raise UserError(f"{where}: a file without a url needs the entry's manual note (how to obtain it)")
    if isinstance(entry, ModelEntry) and not entry.loader:
        raise UserError(f"{where}: a model needs a loader (e.g. 'torchvision:resnet18' or 'tf-slim')")
    return entry


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"catalog file {str(path)!r} does not exist", "check DLBOX_CATALOG_EXTRA") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"catalog file {str(path)!r} is not valid TOML: {e}") from None


def _parse_catalog(path: Path, origin: str) -> tuple[list[Entry], dict]:
    data = _read_toml(path)
    unknown = set(data) - {"schema", "entry", "torchvision"}
    if unknown:
        raise UserError(f"{origin}: unknown top-level key(s) {', '.join(sorted(unknown))}",
                        "entries go in [[entry]] tables")  # fmt: skip
    return [_parse_entry(e, origin) for e in data.get("entry", [])], data.get("torchvision", {})


# --- torchvision ----------------------------------------------------------------------------------------
_TV_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
TV_LICENSE = ("torchvision's pre-trained weights: see https://github.com/pytorch/vision#pre-trained-model-license "
              "(and the terms of the dataset they were trained on)")  # fmt: skip


def _tv_transforms(w) -> dict[str, Any] | None:
    t = w.transforms()
    if not hasattr(t, "crop_size"):
        return None  # detection: the model resizes and normalises inside
    interp = getattr(t, "interpolation", None)
    return {"resize_size": int(t.resize_size[0]), "crop_size": int(t.crop_size[0]),
            "mean": [float(x) for x in t.mean], "std": [float(x) for x in t.std],
            "interpolation": getattr(interp, "value", str(interp))}  # fmt: skip


def published_metrics(meta: dict) -> dict[str, dict[str, float]]:
    """torchvision's ``_metrics`` without the NaN placeholders of weights that publish none."""
    out = {ds: {k: v for k, v in vals.items() if v == v} for ds, vals in (meta.get("_metrics") or {}).items()}
    return {ds: vals for ds, vals in out.items() if vals}


def torchvision_entry(model: str, w, task: str, default_name: str) -> ModelEntry:
    """The catalog entry of one torchvision weights enum member ``w`` of ``model``."""
    meta = w.meta
    m = _TV_HASH.search(w.url)
    prefix = m.group(1) if m else None
    is_default = w.name == default_name
    name = model if is_default else f"{model}.{w.name}"
    size_mb = meta.get("_file_size")
    categories = meta.get("categories") or []
    background = bool(categories) and categories[0] == "__background__"
    docs = " ".join(str(meta.get("_docs", "")).split())
    transforms = _tv_transforms(w)
    return ModelEntry(
        name=name, kind="model", task=task, title=f"torchvision {model} ({w.name})",
        description=docs or f"torchvision {model} weights {w.name}", license=TV_LICENSE,
        homepage=meta.get("recipe") or "https://pytorch.org/vision/stable/models.html",
        files=(HubFile(name=w.url.rsplit("/", 1)[-1], url=w.url, sha256_prefix=prefix,
                       approx_size=round(size_mb * 2**20) if size_mb else None,
                       hash_source="the sha256 prefix in torchvision's file name"),),
        aliases=(f"{model}.{w.name}",) if is_default else (), origin="torchvision",
        architecture=model, loader=f"torchvision:{model}",
        loader_note=(f"a state dict for torchvision.models.get_model({model!r}, num_classes={len(categories)})"
                     if categories else f"the feature layers of torchvision's {model} only (no classifier)"),
        input_size=transforms["crop_size"] if transforms else None,
        num_classes=len(categories) or None, background_class=background, categories=len(categories) or None,
        metrics=published_metrics(meta),
        num_params=meta.get("num_params"), gflops=meta.get("_ops"), transforms=transforms,
        weights_enum=f"{type(w).__name__}.{w.name}", default=is_default,
    )  # fmt: skip


def torchvision_entries(modules: dict[str, str]) -> list[ModelEntry]:
    """Every weight of every model in the torchvision.models submodules given as {task: submodule}."""
    import importlib

    import torchvision.models as tvm

    out = []
    for task, sub in modules.items():
        module = importlib.import_module(f"torchvision.models.{sub}") if sub else tvm
        for model in tvm.list_models(module=module):
            enum = tvm.get_model_weights(model)
            default = enum.DEFAULT.name
            out.extend(torchvision_entry(model, w, task, default) for w in enum)
    return out


# --- the merged catalog ---------------------------------------------------------------------------------
class Catalog:
    def __init__(self, entries: list[Entry]):
        self.entries = entries
        self._by_name: dict[str, Entry] = {}
        for e in entries:
            for key in (e.name, *e.aliases):
                self._by_name[key.lower()] = e

    def get(self, name: str) -> Entry:
        key = name.strip().removeprefix("hub:").lower()
        if key in self._by_name:
            return self._by_name[key]
        names = [e.name for e in self.entries]
        hint = close_matches(key, names) or close_matches(key, [n.lower() for n in names])
        raise UserError(f"no hub entry named {name!r}", hint or "see `dlbox hub list`")

    def list(self, task: str | None = None, kind: str | None = None) -> list[Entry]:
        if task is not None:
            task = check_task(task)
        return [e for e in self.entries if (task is None or e.task == task) and (kind is None or e.kind == kind)]


def check_task(task: str) -> str:
    t = TASK_ALIASES.get(task, task)
    if t not in TASKS:
        raise UserError(f"unknown task {task!r}", close_matches(task, [*TASKS, *TASK_ALIASES]) or f"one of {', '.join(TASKS)}")
    return t


def extra_paths() -> list[Path]:
    raw = os.environ.get("DLBOX_CATALOG_EXTRA", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[tuple[Entry, ...], tuple[tuple[str, str], ...]]:
    entries, tv = _parse_catalog(CATALOG_FILE, "catalog.toml")
    return tuple(entries), tuple((tv.get("modules") or {}).items())


@functools.lru_cache(maxsize=1)
def _torchvision(modules: tuple[tuple[str, str], ...]) -> tuple[ModelEntry, ...]:
    return tuple(torchvision_entries(dict(modules)))


def _merge(base: list[Entry], extras: list[tuple[Path, list[Entry]]]) -> list[Entry]:
    index = {}
    for i, e in enumerate(base):
        for key in (e.name, *e.aliases):
            index[key.lower()] = i
    out = list(base)
    for path, entries in extras:
        for e in entries:
            clash = next((index[k.lower()] for k in (e.name, *e.aliases) if k.lower() in index), None)
            if clash is not None and not e.override:
                raise UserError(f"{path}: entry {e.name!r} reuses the name of hub:{out[clash].name}",
                                "rename it, or add override = true to replace that entry")  # fmt: skip
            if clash is not None:
                out[clash] = e
            else:
                out.append(e)
            for key in (e.name, *e.aliases):
                index[key.lower()] = clash if clash is not None else len(out) - 1
    return out


def load(extra: list[str | Path] | None = None, torchvision: bool = True) -> Catalog:
    """The merged catalog. ``torchvision=False`` skips generating torchvision's entries (no import)."""
    entries, modules = _builtin()
    base: list[Entry] = list(entries)
    if torchvision and modules:
        base += list(_torchvision(modules))
    paths = [*extra_paths(), *(Path(p) for p in extra or [])]
    extras = [(p, _parse_catalog(p, str(p))[0]) for p in paths]
    return Catalog(_merge(base, extras))


def get(name: str, extra: list[str | Path] | None = None) -> Entry:
    """The entry named ``name`` (or an alias; case does not matter); a UserError naming near matches."""
    light = load(extra, torchvision=False)  # packaged and extra entries: no torchvision import for `hub info mnist`
    key = name.strip().removeprefix("hub:").lower()
    found = light._by_name.get(key)
    if found is not None and (found.origin == "catalog.toml" or found.override):
        return found
    return load(extra).get(name)  # an extra entry may clash with a torchvision name: check with them loaded


def model_entry(name: str, extra: list[str | Path] | None = None) -> ModelEntry:
    """The model entry ``name`` (what ``--weights hub:NAME`` names); a UserError for datasets and unknown names."""
    entry = get(name, extra)
    if not isinstance(entry, ModelEntry):
        raise UserError(f"hub:{entry.name} is a {entry.kind}, not model weights",
                        f"see the models with `dlbox hub list --task {entry.task}`")  # fmt: skip
    return entry


def list_entries(task: str | None = None, kind: str | None = None, extra: list[str | Path] | None = None) -> list[Entry]:
    return load(extra).list(task, kind)


def to_dict(entry: Entry) -> dict[str, Any]:
    d = dataclasses.asdict(entry)
    d["files"] = [dataclasses.asdict(f) for f in entry.files]
    d["aliases"] = list(entry.aliases)
    return d
