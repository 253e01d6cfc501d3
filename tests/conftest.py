"""Shared helpers: run the CLI in a child process exactly as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# TensorBoard's readers (EventAccumulator) would import all of TensorFlow into the test process when it is
# installed: seconds per process, and TF's bundled libraries then crash a later import of triton (torch's
# optimisers import it lazily). TensorBoard's own stub reads event files just as well.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share two cores: OpenMP threads that spin while waiting would take the core the other
    # worker's threads need (a step 10x slower). Passive waiting yields it. Set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DLBOX_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("OMP_NUM_THREADS", None)
    for k in [k for k in env if k.startswith(("SLURM_", "PET_"))]:  # a suite run inside a cluster job: the
        del env[k]  # commands it starts must not take the job's variables for theirs (dlbox.engine.cluster)
    return env


def run_cli(*args: str, cwd: str | Path | None = None, timeout: float = 1200) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "dlbox", *map(str, args)],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_main(capsys, *args) -> Result:
    """`dlbox ARGS` in this process through dlbox.cli.main (faster than a subprocess), with what it printed."""
    from dlbox.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse errors
        rc = e.code
    out = capsys.readouterr()
    return Result(rc, out.out, out.err)


TINY_ASR_TOKENS = ["<blank>", "<unk>", " ", "a", "b", "c", "d", "e"]


def write_tiny_asr_run(run: Path, wav: Path) -> None:
    """An untrained fixed-seed tiny CTC recogniser as a run directory, and a 1 s WAV of two tones: enough for
    tests of equality with the run (serving, the registry), which need no learning."""
    import numpy as np
    import soundfile
    import torch

    from dlbox.engine import checkpoint
    from dlbox.tasks.asr.data import Vocab
    from dlbox.tasks.asr.model import build

    hparams = {"vocab_size": len(TINY_ASR_TOKENS), "feat_dim": 80, "d_model": 32, "layers": 1, "heads": 2,
               "kernel": 7, "dropout": 0.0, "channels": 8}  # fmt: skip
    torch.manual_seed(0)
    model = build(hparams).eval()
    with torch.no_grad():
        model.head.bias[0] = -2.0  # less blank: an untrained model then emits a few tokens
    checkpoint.save({"task": "asr", "model": model.state_dict(),
                     "task_state": {"tokens": TINY_ASR_TOKENS, "hparams": hparams, "cmvn_mode": "global"}},
                    run / "checkpoints" / "best.pt")  # fmt: skip
    Vocab(TINY_ASR_TOKENS).save(run / "tokens.txt")
    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.5) + 0.3 * np.sin(2 * np.pi * 880 * t) * (t >= 0.5)
    wave += 0.02 * np.random.default_rng(0).standard_normal(len(t))
    soundfile.write(wav, wave.astype(np.float32), 16000, subtype="PCM_16")


@contextlib.contextmanager
def dlbox_home(path: str | Path):
    """$DLBOX_HOME (where `dlbox bench --auto` saves fast paths) set to ``path`` for a while: read by fastpath in
    this process and by the CLI processes it starts."""
    old = os.environ.get("DLBOX_HOME")
    os.environ["DLBOX_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DLBOX_HOME", None)
        else:
            os.environ["DLBOX_HOME"] = old


def all_exit_0(procs: list[subprocess.Popen], n: int, timeout: float = 240, tail: int = 2000) -> list[tuple[str, str]]:
    """Wait for every process (each is killed if the wait fails), assert there are ``n`` and each exited 0 (the
    stderr tails say why not); their (stdout, stderr)."""
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * n, [o[1][-tail:] for o in outs]
    return outs


def run_notebook(name: str, tmp_path: Path, monkeypatch, prepend: list[str] = ()) -> list:
    """Execute notebooks/NAME top to bottom in a real Jupyter kernel (working directory ``tmp_path``), with
    ``prepend`` code cells first; the outputs of its code cells, after checking none is an error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    # The kernel is a child process: it must see this checkout and use this interpreter.
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("DLBOX_PROGRESS", "0")
    (tmp_path / "tmp").mkdir(exist_ok=True)  # the notebooks' own mkdtemp() folders: here, not left in /tmp
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    nb.cells[:0] = [nbformat.v4.new_code_cell(src) for src in prepend]
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def assert_user_error(res: Result, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr starting with 'error:', no traceback, and the fragments in it."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in res.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


@pytest.fixture
def cli():
    return run_cli


# Folders whose tests share session fixtures (a trained model, a generated corpus): under pytest-xdist each
# runs in one worker, so those are made once. Elsewhere each file is its own group.
SHARED_SESSION = ("cluster", "engine", "hub", "serve", "tasks/asr", "tasks/detect", "tasks/face", "tasks/text")


def _xdist_group(item) -> str:
    rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests").as_posix()
    return next((d for d in SHARED_SESSION if rel.startswith(d + "/")), rel)


# What the whole suite holds on disk at its peak (runs, checkpoints, generated corpora), measured with a
# sampler of `du` over the base temporary folder during a full run on 2 workers (see the README's Tests).
SUITE_PEAK_GB = 2.0


def pytest_sessionstart(session):
    """A disk too full for the suite is one line before any test runs, not checkpoints and corpora failing to
    be written in tests all over the suite (as a CI run on a shared, full disk once did)."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return  # xdist workers: the controller checked
    import shutil
    import tempfile

    where = Path(config.option.basetemp or tempfile.gettempdir())
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free / 1e9
    if free < 1.5 * SUITE_PEAK_GB:
        pytest.exit(f"only {free:.1f} GB free under {where}; the suite writes up to {SUITE_PEAK_GB:g} GB there "
                    f"at its peak (hint: free some space, or run with --basetemp=DIR on a larger disk)", returncode=2)


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu need CUDA; elsewhere they are skipped with the reason (the only skips allowed).
    Every test gets its xdist group (``--dist loadgroup``, see the Makefile)."""
    loadgroup = bool(getattr(config.option, "loadgroup", False))
    for item in items:
        group = _xdist_group(item)
        item.add_marker(pytest.mark.xdist_group(group))
        if loadgroup and "@" not in item.nodeid:
            # What xdist's own hook does with the marker; it may run before this one and find none.
            item._nodeid = f"{item.nodeid}@{group}"
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    reason = pytest.mark.skip(reason=f"needs a CUDA GPU; torch {torch.__version__} sees none on this machine")
    for item in gpu_items:
        item.add_marker(reason)


def fill_disk_after(monkeypatch, module, nbytes: int = 0) -> None:
    """Where no tmpfs can be mounted: ``module.write_all`` (dlbox's one write path) fails with ENOSPC once
    ``nbytes`` have been written, as a full disk would. In this process only: run the command in-process."""
    import errno

    real, written = module.write_all, [0]

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write_all(fh, data, path, kept):
        written[0] += len(data)
        real(Full() if written[0] > nbytes else fh, data, path, kept)

    monkeypatch.setattr(module, "write_all", write_all)


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk("1m")``: a tmpfs of that size, mounted where this machine allows it (CI runs as root),
    for tests of a full disk; None where it does not (the test then injects the same OSError)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path | None:
        mnt = tmp_path / f"disk-{len(mounted)}"
        mnt.mkdir()
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
        except FileNotFoundError:  # no mount command
            return None
        if proc.returncode != 0:
            return None
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

