"""What `dlbox serve MODEL...` serves: model specs -> (name, version, source, task) -> loaded predictors.

A MODEL is a run directory, an export (.onnx, .torchscript.pt, OpenVINO .xml), a word2vec model, ``hub:NAME``,
``models:/NAME/VERSION`` (MLflow's registry), or a model repository folder laid out as Triton's
(``NAME/VERSION/model.onnx``: one sub-folder per model, numbered version folders inside); ``NAME=MODEL`` names one.
The task comes from the export's metadata, the run's checkpoint or the hub catalog, and each task's
``inference.predictor(source, name)`` loads it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.runtime.exported import is_export

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TASKS = ("classify", "detect", "face", "asr", "text", "caffe")


@dataclass
class ModelSpec:
    name: str
    version: str
    source: str
    task: str
    model: str = ""  # the architecture (a run's model_name): the key of its saved fast path
    backend: str = ""  # the runtime it runs in (dlbox.serve.backend.plan)
    path: dict | None = None  # the runtime path applied when it loads (a fastpath choice), if any


def _export_task(path: Path) -> str:
    """The task written into a dlbox export's metadata (``dlbox.runtime.exported`` reads every format)."""
    from dlbox.runtime.exported import load_exported

    task = load_exported(path, threads=1).task
    if task not in TASKS:
        raise UserError(f"{str(path)!r}: a {task} export, which dlbox serve does not serve", f"tasks: {', '.join(TASKS)}")
    return task


def _run_task(run: Path) -> tuple[str, str]:
    """The task of a run or checkpoint, and its architecture's name (classification runs)."""
    from dlbox.engine import checkpoint

    ckpt = checkpoint.resolve(run, "best.pt")
    state = checkpoint.load(ckpt)
    task = state.get("task")
    if task not in TASKS:
        raise UserError(f"{str(run)!r} holds a {task or 'unknown'} checkpoint, which dlbox serve does not serve",
                        f"tasks: {', '.join(TASKS)}")  # fmt: skip
    return task, str((state.get("task_state") or {}).get("model_name") or "")


def _repository(root: Path) -> list[ModelSpec]:
    """Triton's layout: ROOT/NAME/VERSION/model.{onnx,pt} (the highest version is the default)."""
    specs = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for vdir in sorted((p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
            files = sorted(f for f in vdir.iterdir() if is_export(f))
            if not files:
                continue
            f = next((f for f in files if _stem(f) == "model"), files[0])
            specs.append(ModelSpec(model_dir.name, vdir.name, str(f), _export_task(f)))
    return specs


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def is_word2vec(path: Path) -> bool:
    """A model `dlbox text w2v train` wrote: its folder (vectors.kv or word2vec.model inside) or that file."""
    if path.is_dir():
        return (path / "vectors.kv").is_file() or (path / "word2vec.model").is_file()
    return path.suffix in (".kv", ".model")


def is_repository(path: Path) -> bool:
    return path.is_dir() and any(v.is_dir() and v.name.isdigit() for m in path.iterdir() if m.is_dir() for v in m.iterdir())


def resolve(specs: list[str]) -> list[ModelSpec]:
    """Every MODEL argument -> the models it holds, names checked unique; a bad one is a UserError."""
    out: list[ModelSpec] = []
    for raw in specs:
        name, sep, source = raw.partition("=")
        if not sep or not NAME_RE.match(name) or Path(raw).exists():
            name, source = "", raw
        if source.startswith("models:/"):  # MLflow's model registry (issue 24): the version's export, cached
            from dlbox.models import mlflow_registry

            local = mlflow_registry.fetch(source[len("models:/") :])
            version = local.relative_to(mlflow_registry.registry_cache()).parts[2]  # <store>/<name>/<version>/...
            out.append(ModelSpec(name or mlflow_registry.parse(source[len("models:/") :])[0], version, str(local),
                                 _export_task(local)))  # fmt: skip
            continue
        if source.startswith("hub:"):
            from dlbox.hub import catalog

            entry = catalog.get(source[4:])
            if entry.kind != "model" or entry.task not in TASKS:
                raise UserError(f"{source} is a {entry.task} {entry.kind}, not a model dlbox serves")
            out.append(ModelSpec(name or entry.name, "1", source, entry.task))
            continue
        path = Path(source)
        if not path.exists():
            raise UserError(f"{source!r} does not exist",
                            "pass a run directory, an .onnx/.pt export, hub:NAME or a model repository folder")  # fmt: skip
        if path.is_file() and is_export(path):
            out.append(ModelSpec(name or _stem(path), "1", str(path), _export_task(path)))
        elif path.is_file() and path.suffix not in (".pt", ".kv", ".model"):
            raise UserError(f"{source!r} is neither an export nor a checkpoint",
                            "dlbox serve reads .onnx, .torchscript.pt and OpenVINO .xml exports, runs, checkpoints "
                            "and word2vec models")  # fmt: skip
        elif is_word2vec(path):
            out.append(ModelSpec(name or _stem(path), "1", str(path), "text"))
        elif (path / "checkpoints").is_dir() or path.suffix == ".pt":
            task, arch = _run_task(path)
            out.append(ModelSpec(name or path.name, "1", str(path), task, model=arch))
        elif is_repository(path):
            found = _repository(path)
            if not found:
                raise UserError(f"{source!r} has version folders but no model file in them",
                                "lay it out as NAME/1/model.onnx")  # fmt: skip
            if name:
                raise UserError(f"{raw!r}: a model repository names its models itself", f"pass {source} alone")
            out += found
        else:
            raise UserError(f"{source!r} is neither a run directory nor a model repository",
                            "a run has checkpoints/; a repository has NAME/1/model.onnx; a word2vec model vectors.kv")  # fmt: skip
    seen: set[tuple[str, str]] = set()
    for s in out:
        if not NAME_RE.match(s.name):
            raise UserError(f"model name {s.name!r} is not usable in a URL", "name it with NAME=MODEL (letters, digits, _.-)")
        if (s.name, s.version) in seen:
            raise UserError(f"two models are named {s.name!r}", "name them apart with NAME=MODEL")
        seen.add((s.name, s.version))
    return out


def load(spec: ModelSpec, threads: int | None = None):
    """The task's predictor for ``spec``: its ``inference.predictor(source, name)`` (dlbox.runtime.predictor),
    run in the backend ``dlbox.serve.backend.plan`` chose for it."""
    from dlbox.serve import backend

    try:
        make = importlib.import_module(f"dlbox.tasks.{spec.task}.inference").predictor
    except (ImportError, AttributeError):
        raise UserError(f"serving {spec.task} models is not available in this dlbox ({spec.source})",
                        "serve a classify, detect, face, asr or text model") from None  # fmt: skip
    return backend.apply(spec, make(spec.source, name=spec.name), threads)
