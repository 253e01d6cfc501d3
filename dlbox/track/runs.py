"""`dlbox track runs`: the tracked runs with their key metrics, as a table or JSON (no browser needed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dlbox.base.errors import UserError
from dlbox.engine import trackers_mlflow as tm

KEY_PREFIXES = ("val/", "eval/", "test/")  # the metrics a table shows first (besides --sort)
TABLE_METRICS = 4


def runs(experiment: str | None = None, sort: str | None = None, ascending: bool = False,
         limit: int = 20) -> dict[str, Any]:  # fmt: skip
    """Runs of ``experiment`` (default: every experiment), newest first or by the metric ``sort``: {tracking_uri,
    experiment, sort, runs: [each with its id, name, experiment, status, start time, task, model, run directory
    and latest metrics]}."""
    uri = tm.tracking_uri()
    try:
        from mlflow.entities import ViewType

        c = tm.client(uri)
        exps = c.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        if experiment is not None:
            exps = [e for e in exps if e.name == experiment]
            if not exps:
                names = ", ".join(sorted(e.name for e in c.search_experiments())) or "none yet"
                raise UserError(f"no experiment {experiment!r} at {tm._display(uri)}", f"experiments: {names}")
        if not exps:
            return {"tracking_uri": tm._display(uri), "experiment": experiment, "sort": sort, "runs": []}
        order = [f"metrics.`{sort}` {'ASC' if ascending else 'DESC'}"] if sort else ["attributes.start_time DESC"]
        found = c.search_runs([e.experiment_id for e in exps], order_by=order, max_results=limit)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot list runs: {tm.describe(e, tm._display(uri))}",
                        tm.STORE_HINT) from None  # fmt: skip
    names = {e.experiment_id: e.name for e in exps}
    rows = []
    for r in found:
        tags = r.data.tags
        rows.append({
            "run_id": r.info.run_id, "name": r.info.run_name, "experiment": names.get(r.info.experiment_id),
            "status": r.info.status, "start": datetime.fromtimestamp(r.info.start_time / 1000).isoformat(timespec="seconds"),
            "task": tags.get("dlbox.task"), "model": tags.get("dlbox.model"), "run_dir": tags.get("dlbox.run_dir"),
            "metrics": dict(sorted(r.data.metrics.items())),
        })  # fmt: skip
    if sort:  # runs without the metric last (MLflow puts them first when ascending)
        rows.sort(key=lambda row: sort not in row["metrics"])
    return {"tracking_uri": tm._display(uri), "experiment": experiment, "sort": sort, "runs": rows}


def render(result: dict[str, Any]) -> str:
    rows, sort = result["runs"], result["sort"]
    if not rows:
        return f"no runs yet in {result['tracking_uri']} (train with --tracker mlflow)"
    keys: list[str] = [sort] if sort else []
    for row in rows:
        for k in row["metrics"]:
            if k.startswith(KEY_PREFIXES) and k not in keys and len(keys) < TABLE_METRICS:
                keys.append(k)
    head = f"{'run':<10} {'name':<20} {'experiment':<14} {'status':<9} {'started':<19} {'model':<16}"
    head += "".join(f" {k[-12:]:>12}" for k in keys)
    lines = [head]
    for r in rows:
        line = (f"{r['run_id'][:8]:<10} {str(r['name'])[:20]:<20} {str(r['experiment'])[:14]:<14} "
                f"{r['status'][:9]:<9} {r['start']:<19} {str(r['model'] or '-')[:16]:<16}")  # fmt: skip
        line += "".join(f" {r['metrics'][k]:>12.4g}" if k in r["metrics"] else f" {'-':>12}" for k in keys)
        lines.append(line)
    return "\n".join(lines)
