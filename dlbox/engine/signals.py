"""Graceful stop: the first SIGINT/SIGTERM asks the loop to save and stop; a second SIGINT stops at once."""

from __future__ import annotations

import signal
import threading


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint it can resume from."""

    def __init__(self, run_dir: str, epoch: int, step: int, signum: int):
        self.run_dir, self.epoch, self.step, self.signum = run_dir, epoch, step, signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} at epoch {epoch + 1}, step {step}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulStop:
    def __init__(self):
        self.signum: int | None = None
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
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False
