"""`dlbox track sync RUN`: send what a run kept while the tracking store was unreachable; a run that was never
tracked (``--tracker tensorboard``) is sent whole (options, every metrics record, config.yaml and metrics.jsonl)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dlbox.base.errors import UserError
from dlbox.engine import trackers_mlflow as tm


def _whole_run(run_dir: Path) -> list[dict[str, Any]]:
    """The operations that would have tracked a finished run from the start, from its files."""
    import json

    from dlbox.config import load_yaml
    from dlbox.engine.tracking import flat_params, numeric

    cfg = load_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}

    class Cfg:  # what run_tags reads (model, data)
        model = cfg.get("model")
        data = cfg.get("data")

    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or run_dir.parent.name or "dlbox"
    tags = tm.run_tags(run_dir, Cfg)
    ops: list[dict[str, Any]] = [{"op": "create", "experiment": experiment, "tags": tags},
                                 {"op": "params", "params": flat_params(cfg), "tags": tags}]  # fmt: skip
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            values = {tm.metric_key(k): v for k, v in numeric(rec).items()}
            if values:
                ops.append({"op": "metrics", "step": int(rec.get("step", 0)), "values": values,
                            "time": int(float(rec.get("time", 0)) * 1000)})  # fmt: skip
    for name in ("config.yaml", "metrics.jsonl", "best.json"):
        if (run_dir / name).is_file():
            ops.append({"op": "artifact", "path": name, "artifact_path": None})
    ops.append({"op": "end", "status": "FINISHED"})
    return ops


def sync(run: str) -> dict[str, Any]:
    run_dir = Path(run)
    if not run_dir.is_dir() or not ((run_dir / "config.yaml").is_file() or (run_dir / tm.RUN_FILE).is_file()):
        raise UserError(f"{run} is not a run directory", "pass a run, e.g. runs/classify/NAME")
    doc = tm.read_run_file(run_dir)
    pending = tm.pending_ops(run_dir)
    try:
        if pending or doc.get("run_id"):
            res = tm.send_pending(run_dir)
            res["imported"] = False
            return res
        ops = _whole_run(run_dir)
        res = tm.Sender(run_dir).replay(ops)
        doc = tm.read_run_file(run_dir)
        return {"run_dir": str(run_dir), "run_id": doc.get("run_id"), "tracking_uri": tm._display(tm.tracking_uri()),
                "sent": res, "operations": len(ops), "imported": True}  # fmt: skip
    except tm.TrackingUnavailable as e:
        raise UserError(f"cannot sync {run}: {e}",
                        f"{tm.STORE_HINT}; the records stay kept") from None  # fmt: skip
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot sync {run}: {tm.describe(e, tm._display(tm.tracking_uri()))}",
                        tm.STORE_HINT) from None  # fmt: skip


def render(r: dict[str, Any]) -> str:
    s = r["sent"]
    what = "imported the whole run" if r.get("imported") else f"sent {r['operations']} kept operation(s)"
    return (f"{r['run_dir']}: {what} to MLflow run {r['run_id']} at {r['tracking_uri']} "
            f"({s['metrics']} metric values, {s['params']} parameters, {s['artifacts']} files)")
