"""Graceful stop: the first SIGINT, SIGTERM or SIGUSR1 asks the loop to save a checkpoint and stop; a second
SIGINT stops at once.

SIGUSR1 is SLURM's warning before a time limit or a preemption (``sbatch --signal=USR1@90``), SIGTERM what
Kubernetes sends a pod it evicts. The process then exits with 128 + the signal's number (138 for SIGUSR1,
143 for SIGTERM): the code a job script requeues on (SLURM) and that a PyTorchJob's ``restartPolicy: ExitCode``
treats as retryable. ``catch_early()`` holds such a signal that arrives before the loop started (while the data
loads, while the process group forms): the loop then saves at its first step instead of the process dying.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
REQUEUE_EXIT_CODES = {128 + signal.SIGUSR1, 128 + signal.SIGTERM}  # 138, 143

_pending: int | None = None  # a stop signal caught by catch_early() before the loop started


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint it can resume from."""

    def __init__(self, run_dir: str, epoch: int, step: int, signum: int):
        self.run_dir, self.epoch, self.step, self.signum = run_dir, epoch, step, signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} at epoch {epoch + 1}, step {step}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _early(signum, frame):
    global _pending
    if _pending is not None and signum == signal.SIGINT:
        raise KeyboardInterrupt
    _pending = signum


def catch_early(signals=(signal.SIGTERM, signal.SIGUSR1)) -> None:
    """From now on, hold SIGTERM/SIGUSR1 for the training loop (``GracefulStop``) instead of dying of them.
    Called by the engine in a cluster, where a scheduler may signal a job that is still starting."""
    if threading.current_thread() is threading.main_thread():
        for s in signals:
            signal.signal(s, _early)


def ignore_in_launcher(signals=(signal.SIGUSR1,)) -> None:
    """In a process that only launches local workers: SLURM signals every process of the step, and the
    workers checkpoint and report it; the launcher must not die of the signal first."""
    if threading.current_thread() is threading.main_thread():
        for s in signals:
            signal.signal(s, signal.SIG_IGN)


class GracefulStop:
    def __init__(self):
        global _pending
        self.signum: int | None = _pending
        _pending = None
        self._old: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False
