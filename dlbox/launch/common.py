"""What the SLURM script and the Kubernetes manifests share: the training command, its run directory, where the
job file goes, and how it is submitted."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from dlbox.base.errors import UserError
from dlbox.launch.config import LaunchArgs


def option_value(cmd: list[str], flag: str) -> str | None:
    """The value of ``--flag V`` or ``--flag=V`` in a command line (the last one), or None."""
    value = None
    for i, a in enumerate(cmd):
        if a == flag and i + 1 < len(cmd):
            value = cmd[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def task_of(cmd: list[str]) -> str:
    """"dlbox classify train ..." -> "classify" (the command's area, for the job's name)."""
    words = cmd[3:] if cmd[1:3] == ["-m", "dlbox"] else cmd[1:]
    return words[0] if words and not words[0].startswith("-") else "train"


def training_command(c: LaunchArgs, runs_dir: str, extra: list[str] | None = None) -> list[str]:
    """The user's command with what the job needs: the shared run directory, the interface, ``extra``."""
    cmd = list(c.command)
    if option_value(cmd, "--runs-dir") is None:
        cmd += ["--runs-dir", runs_dir]
    if c.iface and option_value(cmd, "--iface") is None:
        cmd += ["--iface", c.iface]
    return cmd + (extra or [])


def runs_dir_of(c: LaunchArgs, default: str) -> str:
    given = option_value(c.command, "--runs-dir")
    if c.runs_dir and given and c.runs_dir != given:
        raise UserError(f"--runs-dir {c.runs_dir} of dlbox launch and --runs-dir {given} of the command differ",
                        "give it once")  # fmt: skip
    return c.runs_dir or given or default


def shell_join(cmd: list[str]) -> str:
    return shlex.join(cmd)


def write_or_show(c: LaunchArgs, text: str, default_out: Path) -> Path | None:
    """Write the job file atomically (None with --dry-run)."""
    if c.dry_run:
        return None
    from dlbox.base.fileio import atomic_write_text

    out = Path(c.out) if c.out else default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out


def submit(argv: list[str], what: str, hint: str, timeout: float = 120) -> str:
    """Run the scheduler's client; its output, or one line saying why it failed."""
    if shutil.which(argv[0]) is None:
        raise UserError(f"{argv[0]} is not installed here, so the {what} cannot be submitted", hint)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"{' '.join(argv[:2])} did not answer within {timeout:g} s", hint) from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[-1]
        raise UserError(f"{argv[0]} refused the {what}: {last[:300]}", hint)
    return proc.stdout.strip()
