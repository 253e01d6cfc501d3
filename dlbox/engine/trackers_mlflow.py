"""The MLflow tracker (``--tracker mlflow``): a run's parameters, metrics, tags and files in an MLflow run.

Where: ``MLFLOW_TRACKING_URI`` (a server, ``http://host:5000``), else a local SQLite store
``sqlite:///$DLBOX_HOME/mlflow/mlflow.db`` (artifacts beside it), so runs and the model registry work with no
server. The experiment is ``MLFLOW_EXPERIMENT_NAME``, else the task's name (``classify``, ``detect``, ...).

What: the resolved options as parameters; every metrics record (epoch, eval and system samples) as metrics at
its step; tags ``dlbox.task``, ``dlbox.model``, ``dlbox.version``, ``mlflow.source.git.commit`` (the working
directory's commit, when it is a git checkout), ``dlbox.data_fingerprint`` (``manifest:SHA`` of a built
dataset's manifests, ``listing:SHA`` of a data folder's file names and sizes); the run directory's files the
engine hands over (``config.yaml``, ``metrics.jsonl``, ``best.json``) and exports as artifacts.

Resume: the MLflow run id is kept in ``RUN/mlflow.json``; a resumed (or elastically restarted) job adds to the
same MLflow run, and a (metric, step) the run already holds is not sent again.

Never breaking training: the first failure to reach the store (server down, gone mid-run, hanging) prints ONE
warning; from then on the records go to ``RUN/mlflow-pending.jsonl``. They are sent when the run is resumed, or
by ``send_pending(run_dir)`` (``dlbox track sync RUN``). HTTP requests get short timeouts and no retries unless
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` say otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from dlbox.base.progress import log
from dlbox.engine.tracking import Tracker

RUN_FILE = "mlflow.json"  # {"run_id", "tracking_uri", "experiment_id"}
PENDING_FILE = "mlflow-pending.jsonl"  # one operation per line, in order
HTTP_TIMEOUT_S = "5"  # a hanging server costs seconds, not MLflow's default 120 s x 7 retries
HTTP_RETRIES = "0"
STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "diverged": "FAILED", "failed": "FAILED"}
MAX_PARAM = 6000  # MLflow's longest parameter value
_KEY_BAD = re.compile(r"[^\w\-./ ]")
STORE_HINT = ("start the server (dlbox track server), or check MLFLOW_TRACKING_URI (and MLFLOW_TRACKING_TOKEN "
              "for a server started with a token)")  # fmt: skip


class TrackingUnavailable(Exception):
    """The tracking store could not be reached or refused a request."""


# --- where ---------------------------------------------------------------------------------------------------
def dlbox_home() -> Path:
    return Path(os.environ.get("DLBOX_HOME") or Path.home() / ".cache" / "dlbox").expanduser()


def local_store() -> Path:
    """The folder of the local store: mlflow.db and artifacts/ (also what `dlbox track server` serves)."""
    return dlbox_home() / "mlflow"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the local SQLite store under dlbox's home (created)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    store = local_store()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/")) or "://" not in uri


_SET_BY_DLBOX: set[str] = set()  # the HTTP settings dlbox chose (the user's own are never changed)


def _default(name: str, value: str) -> None:
    if name not in os.environ or name in _SET_BY_DLBOX:
        os.environ[name] = value
        _SET_BY_DLBOX.add(name)


def configure_http(timeout: str = HTTP_TIMEOUT_S) -> None:
    """Short timeouts, no retries (unless the user set them): a dead server must cost training seconds, not
    minutes. Commands a person waits for (register, fetch: whole exports) pass a longer ``timeout``."""
    _default("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout)
    _default("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    _default("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # dlbox prints its own lines
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # stdout is for results and --json alone


def quiet() -> None:
    """mlflow's own loggers would add a warning per failed request (and database set-up notes) to ours; set
    after importing mlflow, which configures its logger when imported."""
    for name in ("mlflow", "urllib3.connectionpool", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def client(uri: str | None = None, timeout: str = HTTP_TIMEOUT_S):
    """An ``MlflowClient`` for ``uri`` (default: ``tracking_uri()``), with the HTTP settings above."""
    configure_http(timeout)
    from mlflow.tracking import MlflowClient

    quiet()

    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(c, name: str) -> str:
    """The id of experiment ``name``, created when missing (in the local store, artifacts under dlbox's home)."""
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = None
    if is_local(c.tracking_uri):
        location = (local_store() / "artifacts" / _safe_name(name)).as_uri()
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created by another process meanwhile
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name) or "default"


def metric_key(key: str) -> str:
    """MLflow accepts letters, digits, ``_ - . / `` and spaces in metric names."""
    return _KEY_BAD.sub("_", key)


# --- tags ----------------------------------------------------------------------------------------------------
def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit of the git checkout ``cwd`` (default: the working directory) is in; None outside one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


MANIFESTS = ("dataset.json", "train.csv", "val.csv")


def data_fingerprint(data: str | Path | None) -> str | None:
    """``manifest:SHA256`` of a built dataset's manifests; ``listing:SHA256`` of a folder's (or file's)
    relative names and sizes, in order (what files, not their times); the URI itself for object storage."""
    if not data:
        return None
    s = str(data)
    if "://" in s:
        return f"uri:{s}"
    p = Path(s)
    h = hashlib.sha256()
    if p.is_dir() and (p / "dataset.json").is_file():
        for name in MANIFESTS:
            f = p / name
            if f.is_file():
                h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
        return f"manifest:{h.hexdigest()}"
    if p.is_file():
        h.update(f"{p.name}\0{p.stat().st_size}\n".encode())
        return f"listing:{h.hexdigest()}"
    if not p.is_dir():
        return None
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            f = Path(root) / name
            try:
                size = f.stat().st_size
            except OSError:
                continue
            h.update(f"{f.relative_to(p).as_posix()}\0{size}\n".encode())
    return f"listing:{h.hexdigest()}"


def run_tags(run_dir: Path, cfg: Any) -> dict[str, str]:
    from dlbox import __version__

    tags = {"dlbox.task": run_dir.parent.name, "dlbox.version": __version__, "dlbox.run_dir": str(run_dir.resolve()),
            "mlflow.runName": run_dir.name, "mlflow.source.type": "JOB", "mlflow.source.name": "dlbox"}  # fmt: skip
    model = getattr(cfg, "model", None)
    if model:
        tags["dlbox.model"] = str(model)
    data = getattr(cfg, "data", None)
    if data:
        tags["dlbox.data"] = str(data)
        fp = data_fingerprint(data)
        if fp:
            tags["dlbox.data_fingerprint"] = fp
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


# --- the run file and the pending records --------------------------------------------------------------------
def read_run_file(run_dir: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads((Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_run_file(run_dir: str | Path, doc: dict[str, Any]) -> None:
    from dlbox.base.fileio import atomic_write_text

    atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(doc, indent=2) + "\n")


def pending_ops(run_dir: str | Path) -> list[dict[str, Any]]:
    """The operations kept while the store was unreachable (a torn last line, from a kill, is skipped)."""
    path = Path(run_dir) / PENDING_FILE
    ops = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                ops.append(json.loads(line))
            except ValueError:
                continue
    return ops


def existing_steps(c, run_id: str) -> set[tuple[str, int]]:
    """Every (metric, step) the MLflow run already holds (a resumed job does not send them again)."""
    run = c.get_run(run_id)
    seen: set[tuple[str, int]] = set()
    for key in run.data.metrics:
        seen.update((key, m.step) for m in c.get_metric_history(run_id, key))
    return seen


def _param_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s[:MAX_PARAM]


class Sender:
    """Sends operations to one MLflow run (creating it first when needed); what every path shares: the live
    tracker, a resume, and ``dlbox track sync``."""

    def __init__(self, run_dir: Path, uri: str | None = None):
        self.run_dir = Path(run_dir)
        self.uri = uri or tracking_uri()
        self.client = None
        self.run_id: str | None = None
        self.seen: set[tuple[str, int]] = set()
        self.params: set[str] = set()

    def connect(self, create: dict[str, Any] | None, running: bool = True) -> str:
        """The MLflow run of this run directory: the one in mlflow.json (same store), else a new one from
        ``create`` ({"experiment", "tags"}); marked running unless ``running`` is false."""
        c = self.client = self.client or client(self.uri)
        doc = read_run_file(self.run_dir)
        if doc.get("run_id") and doc.get("tracking_uri") == self.uri:
            self.run_id = doc["run_id"]
            run = c.get_run(self.run_id)
            self.params = set(run.data.params)
            self.seen = existing_steps(c, self.run_id)
            if running and run.info.status != "RUNNING":
                c.update_run(self.run_id, status="RUNNING")
            return self.run_id
        if create is None:
            raise TrackingUnavailable(f"{self.run_dir} has no MLflow run in {self.uri}")
        exp = experiment_id(c, create["experiment"])
        tags = create.get("tags") or {}
        run = c.create_run(exp, tags=tags, run_name=tags.get("mlflow.runName"))
        self.run_id = run.info.run_id
        write_run_file(self.run_dir, {"run_id": self.run_id, "tracking_uri": self.uri, "experiment_id": exp,
                                      "experiment": create["experiment"]})  # fmt: skip
        return self.run_id

    def params_and_tags(self, params: dict[str, Any], tags: dict[str, str]) -> None:
        from mlflow.entities import Param, RunTag

        new = [Param(k, _param_value(v)) for k, v in params.items() if k not in self.params]
        tag_list = [RunTag(k, str(v)[:5000]) for k, v in tags.items()]
        for i in range(0, max(len(new), len(tag_list)), 100):
            self.client.log_batch(self.run_id, params=new[i : i + 100], tags=tag_list[i : i + 100])
        self.params.update(p.key for p in new)

    def metrics(self, batch: list[tuple[str, float, int, int]]) -> int:
        """(key, value, step, time in ms) each; a (key, step) the run held when this job connected is skipped
        (a resumed job replaying steps). Two system samples at one step are both sent. Returns how many."""
        from mlflow.entities import Metric

        todo = [Metric(k, v, t, s) for k, v, s, t in batch if (k, s) not in self.seen]
        for i in range(0, len(todo), 1000):
            self.client.log_batch(self.run_id, metrics=todo[i : i + 1000])
        return len(todo)

    def artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def replay(self, ops: list[dict[str, Any]]) -> dict[str, int]:
        """Send kept operations in order. A (key, step) kept by two attempts (a job resumed while the store was
        still unreachable replays steps after its checkpoint): the later attempt's values."""
        create = next((op for op in ops if op["op"] == "create"), None)
        self.connect(create)
        counts = {"metrics": 0, "artifacts": 0, "params": 0}
        latest: dict[tuple[str, int], tuple[int, list[tuple[float, int]]]] = {}
        attempt = 0
        for op in ops:
            if op["op"] == "attempt":
                attempt += 1
            elif op["op"] == "metrics":
                for k, v in op["values"].items():
                    key = (k, op["step"])
                    if key not in latest or latest[key][0] != attempt:
                        latest[key] = (attempt, [])
                    latest[key][1].append((v, op["time"]))
        ordered = sorted(latest.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        counts["metrics"] = self.metrics([(k, v, s, t) for (k, s), (_, values) in ordered for v, t in values])
        self.seen.update(latest)  # sent: a live job continuing after this replay does not send them again
        end = None
        for op in ops:
            if op["op"] == "params":
                n = len(self.params)
                self.params_and_tags(op.get("params") or {}, op.get("tags") or {})
                counts["params"] += len(self.params) - n
            elif op["op"] == "artifact":
                self.artifact(self.run_dir / op["path"], op.get("artifact_path"))
                counts["artifacts"] += 1
            elif op["op"] == "end":
                end = op["status"]
        if end:
            self.end(end)
        return counts


def send_pending(run_dir: str | Path, uri: str | None = None) -> dict[str, Any]:
    """Send what ``RUN/mlflow-pending.jsonl`` holds (``dlbox track sync``); the file is removed once all of
    it is in. Raises TrackingUnavailable when the store cannot take it (the file is kept)."""
    run_dir = Path(run_dir)
    ops = pending_ops(run_dir)
    doc = read_run_file(run_dir)
    uri = uri or doc.get("pending_uri") or doc.get("tracking_uri") or tracking_uri()
    sender = Sender(run_dir, uri)
    try:
        counts = sender.replay(ops) if ops else {"metrics": 0, "artifacts": 0, "params": 0}
        if not ops:
            sender.connect(None, running=False)
    except TrackingUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of the store or the network
        raise TrackingUnavailable(describe(e, uri)) from None
    (run_dir / PENDING_FILE).unlink(missing_ok=True)
    doc = read_run_file(run_dir)
    if doc.pop("pending_uri", None):
        write_run_file(run_dir, doc)
    return {"run_dir": str(run_dir), "run_id": sender.run_id, "tracking_uri": _display(uri), "sent": counts,
            "operations": len(ops)}  # fmt: skip


def describe(e: BaseException, uri: str) -> str:
    """One line for a failed request: the usual network causes in words, else the error's first line."""
    text = str(e)
    if "Connection refused" in text or "Failed to establish" in text:
        return f"MLflow at {uri} does not answer (connection refused)"
    if "timed out" in text.lower():
        return f"MLflow at {uri} did not answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    if "403" in text and "token" in text:
        return f"MLflow at {uri} refused the request: it needs its token (MLFLOW_TRACKING_TOKEN)"
    msg = text.strip().splitlines()[0][:200] if text.strip() else type(e).__name__
    return f"MLflow at {uri}: {type(e).__name__}: {msg}"


# --- the tracker ---------------------------------------------------------------------------------------------
class MlflowTracker(Tracker):
    """``--tracker mlflow``. Online, each call goes to the store at once; after the first failure (one
    warning) every call is appended to RUN/mlflow-pending.jsonl instead."""

    name = "mlflow"

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.sender: Sender | None = None
        self.offline = False
        self.tags: dict[str, str] = {}
        self._lock = threading.Lock()

    # the Tracker interface
    def start(self, run_dir: Path, cfg: Any, resumed: int | None) -> None:
        self.run_dir = Path(run_dir)
        uri = tracking_uri()
        self.sender = Sender(self.run_dir, uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or self.run_dir.parent.name or "dlbox"
        self.tags = run_tags(self.run_dir, cfg)
        create = {"op": "create", "experiment": experiment, "tags": self.tags}
        ops = pending_ops(self.run_dir)
        doc = read_run_file(self.run_dir)
        if ops or doc.get("pending_uri"):  # kept by an earlier attempt: first send those (resume)
            self._guard(lambda: self.sender.replay(ops), "sending the records kept in " + PENDING_FILE)
            if not self.offline:
                (self.run_dir / PENDING_FILE).unlink(missing_ok=True)
                doc = read_run_file(self.run_dir)
                if doc.pop("pending_uri", None):
                    write_run_file(self.run_dir, doc)
        if self.offline:
            return
        self._guard(lambda: self.sender.connect(create), "starting the MLflow run", fallback=[create])
        if not self.offline:
            log(f"mlflow: run {self.sender.run_id} in experiment {experiment!r} at {_display(uri)}")

    def log_params(self, params: dict[str, Any]) -> None:
        op = {"op": "params", "params": {k: _param_value(v) for k, v in params.items()}, "tags": self.tags}
        self._do(op, lambda: self.sender.params_and_tags(op["params"], op["tags"]))

    def log_metrics(self, record: dict[str, float], step: int) -> None:
        values = {metric_key(k): float(v) for k, v in record.items()}
        if not values:
            return
        now = int(time.time() * 1000)
        op = {"op": "metrics", "step": int(step), "time": now, "values": values}
        self._do(op, lambda: self.sender.metrics([(k, v, int(step), now) for k, v in values.items()]))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        try:
            rel = path.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            rel = str(path.resolve())
        op = {"op": "artifact", "path": rel, "artifact_path": artifact_path}
        self._do(op, lambda: self.sender.artifact(path, artifact_path))

    def finish(self, status: str) -> None:
        if self.sender is None:
            return
        op = {"op": "end", "status": STATUS.get(status, "FAILED")}
        if self.offline:  # one more try: a server that was restarted meanwhile takes everything now
            self._append(op)
            try:
                send_pending(self.run_dir, self.sender.uri)
                log(f"mlflow: the kept records reached {_display(self.sender.uri)}")
            except TrackingUnavailable:
                log(f"mlflow: records kept in {self.run_dir / PENDING_FILE} "
                    f"(send them with: dlbox track sync {self.run_dir})")  # fmt: skip
            return
        self._do(op, lambda: self.sender.end(op["status"]))

    # online, or kept for later
    def _do(self, op: dict[str, Any], send) -> None:
        with self._lock:
            if self.offline:
                self._append(op)
                return
            self._guard(send, f"sending {op['op']}", fallback=[op])

    def _guard(self, send, what: str, fallback: list[dict[str, Any]] | None = None) -> None:
        try:
            send()
        except Exception as e:  # noqa: BLE001 - tracking never breaks training
            self.offline = True
            log(f"warning: {describe(e, _display(self.sender.uri))} ({what}); training goes on, its MLflow records "
                f"are kept in {self.run_dir / PENDING_FILE} (sent on resume, or with: dlbox track sync "
                f"{self.run_dir})")  # fmt: skip
            doc = read_run_file(self.run_dir)
            doc["pending_uri"] = self.sender.uri
            write_run_file(self.run_dir, doc)
            self._append({"op": "attempt"})  # what this job keeps (see Sender.replay)
            for op in fallback or []:
                self._append(op)

    def _append(self, op: dict[str, Any]) -> None:
        with open(self.run_dir / PENDING_FILE, "a") as f:
            f.write(json.dumps(op) + "\n")


def _display(uri: str) -> str:
    """The URI without credentials (user:password@host)."""
    return re.sub(r"//[^/@]*@", "//", uri)
