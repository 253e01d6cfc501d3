"""Exports as versions of named models in MLflow's model registry, and ``models:/`` references back to files.

``register_export(file, name)`` logs an export (``.onnx``, ``.torchscript.pt``, OpenVINO ``.xml`` + ``.bin``)
as artifacts of an MLflow run (the training run's own when its directory has one, see
``dlbox.engine.trackers_mlflow``; else a new run in the experiment ``dlbox-exports``) and makes it the next
version of ``name``, with the export's metadata as version tags (task, model, classes, input facts, format)
and the run's best metrics.

``resolve("NAME/VERSION")`` / ``resolve("NAME@ALIAS")`` (``models:/`` taken off; the scheme handler of
``dlbox.models.weights.resolve_weights``) downloads a version once into
``$DLBOX_HOME/registry/<store>/<name>/<version>/`` and returns the export file inside as a ``WeightsSource``;
a numbered version (immutable in MLflow) is read from that cache without asking the store again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.engine import trackers_mlflow as tm

SCHEME = "models:/"
EXPORT_DIR = "export"  # the artifact folder the export goes to
EXPORTS_EXPERIMENT = "dlbox-exports"
TRANSFER_TIMEOUT_S = "120"  # whole exports go up and down: a person waits for these, a training does not
NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\- ]{0,255}$")
EXPORT_SUFFIXES = (".onnx", ".xml", ".torchscript.pt")


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UserError(f"model name {name!r} is not valid",
                        "use letters, digits, '-', '_' and '.', starting with a letter or digit (e.g. digits)")  # fmt: skip
    return name


def parse(rest: str) -> tuple[str, str | None, str | None]:
    """``NAME/VERSION`` -> (name, version, None); ``NAME@ALIAS`` -> (name, None, alias)."""
    spec = SCHEME + rest
    m = re.fullmatch(r"([^/@]+)/(\d+)", rest) or re.fullmatch(r"([^/@]+)@([\w\-]+)", rest)
    if not m:
        raise UserError(f"{spec!r} is not a registered model reference",
                        "write models:/NAME/VERSION (e.g. models:/digits/2) or models:/NAME@ALIAS")  # fmt: skip
    name, tail = m.group(1), m.group(2)
    return (name, tail, None) if tail.isdigit() else (name, None, tail)


# files an export of a task needs beside it (sherpa-onnx's layout: an ASR model.onnx reads tokens.txt next to it)
COMPANIONS = {"asr": ("tokens.txt",)}


def export_files(path: Path, meta: dict[str, Any] | None = None) -> list[Path]:
    """The files of one export: OpenVINO's .xml comes with its .bin; an ASR export (``meta['task']``) with the
    tokens.txt beside it. They go up and come back down as one folder."""
    files = [path]
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        files.append(path.with_suffix(".bin"))
    for name in COMPANIONS.get(str((meta or {}).get("task", "")), ()):
        if path.with_name(name).is_file() and path.name != name:
            files.append(path.with_name(name))
    return files


def run_dir_of(path: Path) -> Path | None:
    """The run directory an export was written into (RUN/model.onnx), when it is one."""
    for d in (path.parent, path.parent.parent):
        if (d / "checkpoints").is_dir() or (d / "config.yaml").is_file():
            return d
    return None


def best_metrics(run_dir: Path | None) -> dict[str, float]:
    """The best epoch's metrics of a run (best.json, else its checkpoint's record in metrics.jsonl)."""
    if run_dir is None:
        return {}
    best = run_dir / "best.json"
    record: dict[str, Any] = {}
    try:
        if best.is_file():
            doc = json.loads(best.read_text())
            record = doc.get("record") or {}
        elif (run_dir / "metrics.jsonl").is_file():
            from dlbox.engine.metrics import read_jsonl

            records = read_jsonl(run_dir / "metrics.jsonl")
            record = records[-1] if records else {}
    except (OSError, ValueError):
        return {}
    from dlbox.engine.tracking import numeric

    return numeric({k: v for k, v in record.items() if "/" in k})


def _version_tags(meta: dict[str, Any], fmt: str, metrics: dict[str, float], files: list[Path]) -> dict[str, str]:
    tags = {"dlbox.task": str(meta.get("task", "")), "dlbox.model": str(meta.get("model", "")), "dlbox.format": fmt,
            "dlbox.files": ",".join(f.name for f in files)}  # fmt: skip
    if meta.get("task") == "asr" and meta.get("classes") is not None:
        tags["dlbox.tokens"] = str(len(meta["classes"]))  # the vocabulary's size; the tokens travel in tokens.txt
    if meta.get("classes") is not None:
        tags["dlbox.classes"] = json.dumps(meta["classes"])[:5000]
    if meta.get("inputs") is not None:
        tags["dlbox.inputs"] = json.dumps(meta["inputs"])[:5000]
    for k, v in metrics.items():
        tags[f"metric.{k}"] = f"{v:.6g}"
    return {k: v for k, v in tags.items() if v}


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _format_of(path: Path) -> str:
    return "openvino" if path.suffix == ".xml" else "onnx" if path.suffix == ".onnx" else "torchscript"


def register_export(path: str | Path, name: str, run_dir: str | Path | None = None,
                    meta: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Register the export ``path`` as the next version of ``name``; returns {name, version, uri, run_id, ...}.
    Failures to reach the store are one-line UserErrors (the export itself stays written)."""
    check_name(name)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist", "export first, e.g. dlbox classify export RUN")
    if meta is None:
        from dlbox.runtime.exported import load_exported

        meta = load_exported(path).meta
    run = Path(run_dir) if run_dir else run_dir_of(path)
    uri = tm.tracking_uri()
    try:
        return _register(path, name, run, meta, uri)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the store or the network: one line
        raise UserError(f"cannot register {path.name} as {name!r}: {tm.describe(e, tm._display(uri))}",
                        tm.STORE_HINT) from None  # fmt: skip


def _register(path: Path, name: str, run: Path | None, meta: dict[str, Any], uri: str) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    c = tm.client(uri, timeout=TRANSFER_TIMEOUT_S)
    doc = tm.read_run_file(run) if run else {}
    run_id = doc.get("run_id") if doc.get("tracking_uri") == uri else None
    if run_id is not None:
        try:
            c.get_run(run_id)
        except MlflowException:
            run_id = None
    created = False
    if run_id is None:  # an untracked run (or a bare file): a run of its own holds the export
        exp = tm.experiment_id(c, os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or EXPORTS_EXPERIMENT)
        tags = tm.run_tags(run, None) if run else {"mlflow.runName": path.stem}
        tags["dlbox.export"] = str(path.resolve())
        run_id = c.create_run(exp, tags=tags, run_name=tags.get("mlflow.runName")).info.run_id
        created = True
    # a folder per content: a later version never overwrites the files an earlier one points to
    files = export_files(path, meta)
    folder = f"{EXPORT_DIR}/{_digest(files)[:12]}"
    for f in files:
        c.log_artifact(run_id, str(f), folder)
    if created:
        c.set_terminated(run_id, "FINISHED")
    try:
        c.create_registered_model(name, description="registered by dlbox")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    metrics = best_metrics(run)
    fmt = _format_of(path)
    source = f"{c.get_run(run_id).info.artifact_uri}/{folder}"
    mv = c.create_model_version(name, source, run_id=run_id, tags=_version_tags(meta, fmt, metrics, files),
                                description=f"{meta.get('task', '')} {meta.get('model', '')} ({fmt}) from "
                                            f"{run or path}")  # fmt: skip
    return {"name": name, "version": int(mv.version), "uri": f"{SCHEME}{name}/{mv.version}", "run_id": run_id,
            "source": source, "file": str(path), "files": [str(f) for f in files], "format": fmt, "metrics": metrics, "tracking_uri": tm._display(uri)}  # fmt: skip


# --- models:/ -> a local file ----------------------------------------------------------------------------------
def registry_cache() -> Path:
    return tm.dlbox_home() / "registry"


def cache_dir(uri: str, name: str, version: str) -> Path:
    """``$DLBOX_HOME/registry/<store>/<name>/<version>``: <store> tells tracking servers apart."""
    store = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return registry_cache() / store / name / str(version)


def _export_in(folder: Path) -> Path | None:
    found = sorted(f for f in folder.rglob("*") if f.is_file() and f.name.endswith(EXPORT_SUFFIXES))
    return found[0] if found else None


def fetch(rest: str) -> Path:
    """The local export file of ``models:/REST`` (downloaded once into dlbox's cache)."""
    name, version, alias = parse(rest)
    spec = SCHEME + rest
    uri = tm.tracking_uri()
    if version is not None:
        cached = cache_dir(uri, name, version)
        hit = _export_in(cached) if cached.is_dir() else None
        if hit is not None:
            return hit
    try:
        from mlflow.exceptions import MlflowException

        c = tm.client(uri, timeout=TRANSFER_TIMEOUT_S)
        try:
            mv = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, version)
        except MlflowException as e:
            if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                have = [f"{v.version}" for v in c.search_model_versions(f"name='{name}'")]
                raise UserError(f"{spec} is not in the registry at {tm._display(uri)}",
                                f"versions of {name}: {', '.join(sorted(have, key=int))}" if have else
                                f"register one: dlbox classify export RUN --register {name}") from None  # fmt: skip
            raise
        version = str(mv.version)
        target = cache_dir(uri, name, version)
        hit = _export_in(target) if target.is_dir() else None
        if hit is not None:
            return hit
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
        try:
            import mlflow.artifacts

            mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp), tracking_uri=uri)
            if _export_in(tmp) is None:
                raise UserError(f"{spec} holds no export file ({', '.join(EXPORT_SUFFIXES)})",
                                "register an export made by `dlbox ... export`")  # fmt: skip
            try:
                tmp.rename(target)  # complete or absent: a second process may have won the race
            except OSError:
                if _export_in(target) is None:
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot fetch {spec}: {tm.describe(e, tm._display(uri))}",
                        tm.STORE_HINT) from None  # fmt: skip
    return _export_in(target)  # type: ignore[return-value]


def resolve(rest: str):
    """The ``models:/`` scheme of ``resolve_weights``: a WeightsSource of the downloaded export."""
    from dlbox.models.weights import from_path

    return from_path(fetch(rest), SCHEME + rest)


def local_path(spec: str) -> str:
    """``models:/...`` -> the local export file's path (a task's loader calls it first); anything else as is."""
    return str(fetch(spec[len(SCHEME) :])) if str(spec).startswith(SCHEME) else str(spec)


def after_export(path: str | Path, run_dir: str | Path | None = None, register: str | None = None,
                 meta: dict[str, Any] | None = None) -> dict | None:  # fmt: skip
    """What a task's export does last. ``register``: the export becomes the next version of that name (the
    result says which; a store that cannot be reached is a one-line error, the file stays written). Without it,
    a run tracked in MLflow (RUN/mlflow.json) gets the export as an artifact; a failure there is one warning.
    ``meta``: the export's metadata when the task has it at hand (else read from the file when registering)."""
    path = Path(path)
    if register:
        return register_export(path, register, run_dir, meta)
    run = Path(run_dir) if run_dir else run_dir_of(path)
    doc = tm.read_run_file(run) if run else {}
    if not doc.get("run_id"):
        return None
    try:
        c = tm.client(doc["tracking_uri"], timeout="30")  # implicit: a hanging server costs less
        files = export_files(path, meta)
        for f in files:
            c.log_artifact(doc["run_id"], str(f), f"{EXPORT_DIR}/{_digest(files)[:12]}")
    except Exception as e:  # noqa: BLE001 - the export is written; tracking it is extra
        from dlbox.base.progress import log

        log(f"warning: the export was not added to the MLflow run: {tm.describe(e, tm._display(doc['tracking_uri']))}")
    return None
