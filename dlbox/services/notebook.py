"""`dlbox notebook`: JupyterLab from dlbox's environment, its kernel importing this dlbox, bound to localhost
unless told otherwise, with a token generated for each start, printed once and never written to a log."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dlbox.services import server
from dlbox.services.config import NotebookConfig

MARKER = ".dlbox-notebooks"  # in the working folder: the examples were copied once, never again
KERNEL = "dlbox"


def shipped_notebooks() -> list[Path]:
    """The notebooks that ship with dlbox: package data of an installed wheel (dlbox/notebooks/), which in
    a source checkout is a link to the repository's notebooks/."""
    import dlbox

    here = Path(dlbox.__file__).resolve().parent
    for folder in (here / "notebooks", here.parent / "notebooks"):
        found = sorted(folder.glob("*.ipynb"))
        if found:
            return found
    return []


def prepare_workdir(folder: str | Path) -> list[str]:
    """Create the working folder; on its first start copy the shipped notebooks in (files the user already
    has there are never overwritten). The names copied."""
    from dlbox.base.fileio import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MARKER).exists():
        return []
    copied = []
    for nb in shipped_notebooks():
        if not (folder / nb.name).exists():
            shutil.copyfile(nb, folder / nb.name)
            copied.append(nb.name)
    atomic_write_text(folder / MARKER, "dlbox copied its example notebooks here once; delete this file to copy "
                                       "the missing ones again.\n")  # fmt: skip
    return copied


def write_kernelspec(data_dir: Path) -> Path:
    """A kernel named 'dlbox' running this interpreter (found through JUPYTER_PATH; a user's own 'python3'
    kernelspec cannot shadow it)."""
    spec = data_dir / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    env = {"PYTHONPATH": server.child_env()["PYTHONPATH"]}
    doc = {"argv": argv, "display_name": "Python (dlbox)", "language": "python", "env": env}
    (spec / "kernel.json").write_text(json.dumps(doc, indent=1))
    return spec


def start(cfg: NotebookConfig) -> server.Service:
    """Start JupyterLab and return once it answers; ``service.url`` holds the token. Stop with ``stop()``."""
    port, token = server.opening(cfg, "JupyterLab", ("jupyterlab", "ipykernel"), not cfg.no_token)
    copied = prepare_workdir(cfg.dir)
    # Runtime files (they hold the token) and the kernelspec live in a private folder removed at the end.
    private = Path(tempfile.mkdtemp(prefix="dlbox-notebook-"))
    write_kernelspec(private / "data")
    env = server.child_env({
        "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
        "JUPYTER_PATH": os.pathsep.join(p for p in (str(private / "data"), os.environ.get("JUPYTER_PATH")) if p),
    })  # fmt: skip
    env.pop("JUPYTER_TOKEN", None)
    if token:
        # From the environment, not the command line (visible in ps); Jupyter then shows it as '...' in logs.
        env["JUPYTER_TOKEN"] = token
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        f"--ServerApp.ip={cfg.ip}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={Path(cfg.dir).resolve()}", f"--MappingKernelManager.default_kernel_name={KERNEL}",
        # No network unless asked: no update check, no news feed.
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
    ]  # fmt: skip
    if not token:
        argv.append("--IdentityProvider.token=")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers and CI run as root
    host = server.probe_host(cfg.ip)
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        proc = server.launch("JupyterLab", argv, env, f"http://{host}:{port}/api/status", headers, cfg.timeout)
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise
    base = f"http://{server.display_host(cfg.ip)}:{port}/lab"
    info = {"dir": str(Path(cfg.dir).resolve()), "copied": copied, "port": port, "api": f"http://{host}:{port}/api"}
    return server.Service("JupyterLab", base, token, proc, [lambda: shutil.rmtree(private, ignore_errors=True)], info)


def serve(cfg: NotebookConfig, as_json: bool = False) -> int:
    """Start, print the URL once, run until Ctrl-C."""
    service = start(cfg)
    if not as_json:
        copied = service.info["copied"]
        note = f" (copied {len(copied)} example notebooks: {', '.join(copied)})" if copied else ""
        sys.stderr.write(f"working folder: {service.info['dir']}{note}\n")
    return server.serve(service, as_json)
