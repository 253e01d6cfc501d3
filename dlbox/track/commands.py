"""`dlbox track server|runs|register|sync`. Parsing only; the work is in dlbox.track modules."""

from __future__ import annotations

from dlbox.cliutil import Command, call, group, lazy
from dlbox.track import config

SERVER_HELP = (
    "Start `mlflow server` with a SQLite backend and an artifact folder under $DLBOX_HOME/mlflow\n"
    "(the store `--tracker mlflow` writes to when MLFLOW_TRACKING_URI is not set). It listens on\n"
    "127.0.0.1; with a non-local --ip (or --token) MLflow stays on loopback behind a token gate, the\n"
    "token printed once in the URL (clients: MLFLOW_TRACKING_TOKEN=TOKEN). Ctrl-C stops it. With --json:\n"
    "one line {url, token, pid, tracking_uri, ...} on stdout once it answers.\n"
    "Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 and train with --tracker mlflow."
)


def run_server(cfg: config.ServerArgs, as_json: bool) -> int:
    from dlbox.track import server

    return server.serve(cfg, as_json=as_json)


COMMANDS = [
    Command("server", "an MLflow tracking server (UI, REST API, model registry) over dlbox's store",
            "dlbox track server --port 5000", config.ServerArgs, run_server, streams=True, description=SERVER_HELP,
            json_help="print one line {url, token, pid, tracking_uri, ...} on stdout once it answers"),
    Command("runs", "tracked runs with their key metrics, best first with --sort",
            "dlbox track runs --experiment classify --sort val/top1",
            config.RunsArgs, call("dlbox.track.runs:runs"), lazy("dlbox.track.runs:render")),
    Command("register", "register a run's export as the next version of a named model",
            "dlbox track register runs/classify/demo --name digits",
            config.RegisterArgs, call("dlbox.track.registry:register"), lazy("dlbox.track.registry:render")),
    Command("sync", "send a run's records kept while the tracking server was unreachable (or a whole untracked run)",
            "dlbox track sync runs/classify/demo",
            config.SyncArgs, call("dlbox.track.sync:sync"), lazy("dlbox.track.sync:render")),
]  # fmt: skip


register = group("track", "experiment tracking and the model registry (MLflow): server, runs, register, sync",
                 "dlbox track runs --sort val/top1", COMMANDS,
                 description="Runs trained with --tracker mlflow go to MLFLOW_TRACKING_URI (default: a SQLite store\n"
                 "under $DLBOX_HOME/mlflow). `export --register NAME` makes an export the next version of NAME;\n"
                 "models:/NAME/VERSION and models:/NAME@ALIAS work wherever a model is taken. See docs/track.md.")  # fmt: skip
