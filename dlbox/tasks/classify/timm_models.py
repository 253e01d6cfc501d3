"""timm's zoo as dlbox classifiers: ``--model timm:NAME`` (an architecture, or ``architecture.tag``).

Models are always built with ``pretrained=False``, so timm never reaches the Hugging Face hub; pretrained
weights come from files in the Hugging Face layout (``model.safetensors`` + ``config.json``, what timm
publishes on the hub and ``timm.models.push_to_hf_hub``/``save_for_hf`` write), given as a folder, a
.safetensors file with its config.json beside it, or ``hub:NAME`` for a dlbox hub entry with
``loader = "timm:ARCH"`` (fetched through the hub's cache and mirrors). Input size and normalisation come from
the config's ``pretrained_cfg``; without weights, from the pretrained config timm ships for the name.

timm's package holds no accuracy figures (its results CSVs live in its repository, not in the wheel):
``list_models(results=CSV)`` reads timm's published ``results-imagenet.csv`` when you have a copy.
"""

from __future__ import annotations

import csv
import fnmatch
import os
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError, close_matches
from dlbox.models.weights import HF_CONFIG, HF_WEIGHTS, WeightsSource, read_hf_config, resolve_weights

PREFIX = "timm:"
WEIGHTS_FILE = HF_WEIGHTS
CONFIG_FILE = HF_CONFIG
NOTE = ("timm's package ships no accuracy figures: pass its results CSV (results-imagenet.csv from "
        "github.com/huggingface/pytorch-image-models/tree/main/results) with --results for top-1/top-5")  # fmt: skip


def _timm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing here asks the hub for anything
    try:
        import timm
    except ImportError:
        raise UserError("timm is not installed", "pip install timm") from None
    return timm


def is_timm(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PREFIX)


def arch_name(name: str) -> str:
    """'timm:resnet10t.c3_in1k' -> 'resnet10t.c3_in1k' (what timm.create_model takes)."""
    return name.removeprefix(PREFIX)


def check_name(name: str) -> None:
    timm = _timm()
    arch, _, tag = arch_name(name).partition(".")
    if not timm.is_model(arch):
        raise UserError(f"unknown timm model {arch!r}",
                        close_matches(arch, timm.list_models()) or "run `dlbox classify models --source timm`")  # fmt: skip
    if tag and f"{arch}.{tag}" not in timm.list_models(arch, pretrained=True):
        tags = timm.list_models(arch, pretrained=True)
        raise UserError(f"timm has no pretrained tag {tag!r} for {arch}",
                        f"its tags: {', '.join(t.split('.', 1)[1] for t in tags)}" if tags else f"use timm:{arch}")  # fmt: skip


def create(name: str, num_classes: int):
    """A freshly initialised timm model (``pretrained=False``: no download, ever)."""
    check_name(name)
    return _timm().create_model(arch_name(name), pretrained=False, num_classes=num_classes)


def pretrained_cfg(name: str) -> dict[str, Any]:
    """The pretrained config timm ships for ``name`` (its default tag when none is given)."""
    from timm.models import get_pretrained_cfg

    check_name(name)
    cfg = get_pretrained_cfg(arch_name(name))
    return cfg.to_dict() if cfg is not None else {}


def transform_info(cfg: dict[str, Any]) -> dict[str, Any]:
    """Input size and normalisation of a timm pretrained config (timm's own `input_size`, not the test size)."""
    out: dict[str, Any] = {}
    if cfg.get("input_size"):
        out["img_size"] = int(cfg["input_size"][-1])
    for key in ("mean", "std"):
        if cfg.get(key):
            out[key] = tuple(float(v) for v in cfg[key])
    return out


def imagenet_names() -> list[str]:
    """ImageNet-1k's 1000 class names in timm's order (the short form of each synset's description)."""
    from timm.data import ImageNetInfo

    return [d.split(",")[0] for d in ImageNetInfo().label_descriptions()]


def weights_info(name: str, weights: str | WeightsSource | None = None) -> dict[str, Any]:
    """img_size/mean/std/categories for ``name`` with ``weights``: from the weights' config.json when they are in
    the Hugging Face layout, else from the config timm ships."""
    found = locate(weights) if weights and weights != "none" else None
    cfg = read_hf_config(found[1]) if found and found[1] else {"pretrained_cfg": pretrained_cfg(name)}
    pcfg = cfg.get("pretrained_cfg") or {}
    info = transform_info(pcfg)
    names = cfg.get("label_names") or pcfg.get("label_names")
    classes = int(cfg.get("num_classes") or pcfg.get("num_classes") or 0)
    if names:
        info["categories"] = list(names)
    elif classes == 1000:
        info["categories"] = imagenet_names()
    elif classes:
        info["categories"] = [str(i) for i in range(classes)]
    return info


# --- weights in the Hugging Face layout (read by dlbox.models.weights: kind "hf-folder") -------------------
def locate(spec: str | WeightsSource) -> tuple[Path, Path | None] | None:
    """(model.safetensors, config.json or None) when ``spec`` holds weights in the Hugging Face layout: a folder
    with model.safetensors, a .safetensors file with a config.json beside it, or hub:NAME of a timm entry.
    None when ``spec`` is something else (a dlbox run, a torchvision file...)."""
    src = spec if isinstance(spec, WeightsSource) else resolve_weights(spec)
    return (src.path, src.config) if src.kind == "hf-folder" else None


def check_architecture(name: str, meta: dict[str, Any], spec: str) -> None:
    """The weights' config names the architecture they belong to: refuse others before loading."""
    saved = meta.get("timm_architecture")
    arch = arch_name(name).split(".", 1)[0]
    if saved and saved != arch:
        raise UserError(f"{spec} holds timm:{saved} weights, not {arch}", f"use --model timm:{saved}")


# --- the listing ---------------------------------------------------------------------------------------------
def _published(results: str | None) -> dict[str, dict[str, float]]:
    """timm's results CSV (model,top1,top5,param_count,...) -> {model: {top1, top5, params_m}}."""
    if not results:
        return {}
    try:
        with open(results, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise UserError(f"cannot read {results!r}: {e.strerror}", "pass timm's results-imagenet.csv") from None
    if not rows or not {"model", "top1"} <= set(rows[0]):
        raise UserError(f"{results!r} is not a timm results CSV (no model and top1 columns)",
                        "pass results-imagenet.csv from timm's repository")  # fmt: skip

    def num(v: str | None) -> float | None:
        try:
            return float(str(v).replace(",", ""))
        except ValueError:
            return None

    return {r["model"]: {"top1": num(r.get("top1")), "top5": num(r.get("top5")), "params_m": num(r.get("param_count"))}
            for r in rows}  # fmt: skip


def count_params(name: str) -> float:
    """Parameters in millions, counted on the meta device (no memory, no initialisation)."""
    import torch

    with torch.device("meta"):
        model = _timm().create_model(arch_name(name), pretrained=False)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 2)


def list_models(pattern: str | None = None, results: str | None = None) -> list[dict[str, Any]]:
    """One row per pretrained tag (``timm:arch.tag``) and per architecture without one, matching ``pattern``
    (a glob on the name without ``timm:``). Parameters are counted when ``pattern`` narrows the list (counting all
    1,300 architectures takes minutes) or taken from ``results``; top-1/top-5 only from ``results``."""
    timm = _timm()
    from timm.models import get_pretrained_cfg

    published = _published(results)
    tagged = timm.list_models(pretrained=True)
    archs_with_tags = {n.split(".", 1)[0] for n in tagged}
    names = sorted(tagged + [a for a in timm.list_models() if a not in archs_with_tags])
    if pattern:
        pattern = pattern.removeprefix(PREFIX)
        names = [n for n in names if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n.split(".", 1)[0], pattern)]
    params: dict[str, float] = {}
    rows = []
    for n in names:
        arch, _, tag = n.partition(".")
        cfg = get_pretrained_cfg(n)
        cfg = cfg.to_dict() if cfg is not None else {}
        pub = published.get(n, {})
        if pub.get("params_m") is None and pattern and arch not in params:
            params[arch] = count_params(arch)
        rows.append({
            "name": PREFIX + n, "architecture": arch, "tag": tag or None,
            "params_m": pub.get("params_m") if pub.get("params_m") is not None else params.get(arch),
            "img_size": int(cfg["input_size"][-1]) if cfg.get("input_size") else None,
            "mean": list(cfg["mean"]) if cfg.get("mean") else None, "std": list(cfg["std"]) if cfg.get("std") else None,
            "num_classes": cfg.get("num_classes"), "hf_hub_id": cfg.get("hf_hub_id"), "license": cfg.get("license"),
            "top1": pub.get("top1"), "top5": pub.get("top5"),
        })  # fmt: skip
    return rows


def model_info(name: str) -> dict[str, Any]:
    """The registry's facts for one timm model (parameters counted, input from its pretrained config)."""
    check_name(name)
    info = transform_info(pretrained_cfg(name))
    return {"name": name, "params_m": count_params(name), "gflops": None, "img_size": info.get("img_size"),
            "top1": None, "top5": None, "weights": None}  # fmt: skip


def model_name_of(folder: Path) -> str | None:
    """``timm:ARCH`` of a Hugging Face layout folder, from its config.json (None when it names none)."""
    config = folder / CONFIG_FILE
    arch = read_hf_config(config).get("architecture") if config.is_file() else None
    return PREFIX + arch if arch else None
