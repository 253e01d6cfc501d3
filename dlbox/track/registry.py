"""`dlbox track register RUN --name NAME`: a run's export as the next version of a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.models import mlflow_registry


def find_export(run: str | Path, file: str | None = None) -> Path:
    """The export to register: ``file`` (in RUN or as given), an export file itself, RUN/model.onnx, or RUN's
    only export."""
    run = Path(run)
    if file:
        p = Path(file)
        p = p if p.is_file() or not run.is_dir() else run / file
        if not p.is_file():
            raise UserError(f"{file} does not exist", f"pass an export of {run} (see its *.onnx, *.xml files)")
        return p
    if run.is_file():
        return run
    if not run.is_dir():
        raise UserError(f"{run} does not exist", "pass a run directory or an export file")
    if (run / "model.onnx").is_file():
        return run / "model.onnx"
    found = sorted(f for f in run.iterdir() if f.is_file() and f.name.endswith(mlflow_registry.EXPORT_SUFFIXES))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"{run} has no export to register",
                        f"export it first: dlbox {run.parent.name or 'classify'} export {run} --register NAME")  # fmt: skip
    raise UserError(f"{run} has {len(found)} exports", f"choose one with --file ({', '.join(f.name for f in found)})")


def register(run: str, name: str, file: str | None = None) -> dict[str, Any]:
    path = find_export(run, file)
    run_dir = Path(run) if Path(run).is_dir() else None
    return mlflow_registry.register_export(path, name, run_dir)


def render(r: dict[str, Any]) -> str:
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in r["metrics"].items() if k.startswith("val/")) or "-"
    return (f"registered {r['file']} as {r['uri']} ({r['format']}) in {r['tracking_uri']}\n"
            f"run {r['run_id']}; metrics: {metrics}")
