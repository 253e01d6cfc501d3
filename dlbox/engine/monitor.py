"""A background sampler of the machine during training: CPU and RAM (psutil) and, through NVML, every GPU's
utilisation, memory, power, temperature and clocks, handed as one flat record to a callback every
``interval_s`` seconds (the trainer's callback adds the step and writes it through MetricsLogger).

Keys: ``system/cpu_percent`` (whole machine), ``system/ram_gb`` / ``system/ram_percent`` (used),
``system/proc_cpu_percent`` / ``system/proc_rss_gb`` (this process), ``gpuN/util``, ``gpuN/mem_util``,
``gpuN/mem_used_gb``, ``gpuN/mem_total_gb``, ``gpuN/power_w``, ``gpuN/temp_c``, ``gpuN/sm_clock_mhz``,
``gpuN/mem_clock_mhz``. Without NVIDIA (no pynvml, no driver) the GPU part is off, with one note."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dlbox.engine.nvml import GIB, Nvml

_noted: set[str] = set()  # the no-GPU note is said once per process, not once per run


def _note_once(note: Callable[[str], None], message: str) -> None:
    if message not in _noted:
        _noted.add(message)
        note(message)


def _log(message: str) -> None:
    from dlbox.base.progress import log

    log(message)


class Monitor:
    """``Monitor(callback, interval_s).start()`` ... ``stop()``; also a context manager.

    A last sample is taken when it stops, so a run shorter than the interval still has one record; a
    failing callback is reported once and never stops training."""

    def __init__(self, callback: Callable[[dict[str, float]], Any], interval_s: float = 5.0, gpus: bool = True,
                 note: Callable[[str], None] = _log):  # fmt: skip
        import psutil

        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.callback, self.interval_s, self.note = callback, interval_s, note
        self._psutil = psutil
        self._proc = psutil.Process()
        self._nvml: Nvml | None = None
        self._want_gpus = gpus
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.samples = 0

    def start(self) -> Monitor:
        if self._want_gpus:
            try:
                self._nvml = Nvml.open()
            except Nvml.Unavailable as e:
                _note_once(self.note, f"note: GPU monitoring off: {e}; recording CPU and RAM only")
        # psutil's CPU percentages are since the previous call: this one sets the origin.
        self._psutil.cpu_percent(interval=None)
        self._proc.cpu_percent(interval=None)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dlbox-monitor", daemon=True)
        self._thread.start()
        return self

    def sample(self) -> dict[str, float]:
        """One record now (CPU percentages since the previous sample)."""
        vm = self._psutil.virtual_memory()
        record = {
            "system/cpu_percent": float(self._psutil.cpu_percent(interval=None)),
            "system/ram_gb": (vm.total - vm.available) / GIB,
            "system/ram_percent": float(vm.percent),
            "system/proc_cpu_percent": float(self._proc.cpu_percent(interval=None)),
            "system/proc_rss_gb": self._proc.memory_info().rss / GIB,
        }
        if self._nvml is not None:
            for gpu in self._nvml.sample():
                record.update(gpu.scalars())
        return record

    def _emit(self) -> None:
        with self._lock:  # the last sample from stop() must not interleave with the thread's
            try:
                self.callback(self.sample())
                self.samples += 1
            except Exception as e:  # monitoring must never break a training run
                _note_once(self.note, f"note: system monitor: {type(e).__name__}: {e}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._emit()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._emit()
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
