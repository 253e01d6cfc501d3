"""NVIDIA GPUs through NVML (the library behind nvidia-smi; Python module ``pynvml`` from ``nvidia-ml-py``):
utilisation, memory, power, temperature and clocks of every GPU, and a table in the manner of
``nvidia-smi dmon``. Torch-free, and cheap enough to call every second.

NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES, as nvidia-smi does."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIB = 1024**2
GIB = 1024**3


@dataclass
class GpuSample:
    index: int
    name: str
    util: float | None = None  # % of time a kernel ran in the last sample period
    mem_util: float | None = None  # % of time device memory was read or written
    mem_used_gb: float | None = None
    mem_total_gb: float | None = None
    power_w: float | None = None
    temp_c: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """``gpuN/util``, ``gpuN/mem_used_gb``... for the metrics (fields NVML did not report are left out)."""
        return {f"gpu{self.index}/{k}": v for k, v in asdict(self).items() if k not in ("index", "name") and v is not None}


class Nvml:
    """``Nvml.open()`` returns a reader, or raises ``Unavailable`` with the reason (no pynvml, no driver)."""

    class Unavailable(Exception):
        pass

    def __init__(self, pynvml):
        self.nv = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self.names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self.handles]

    @classmethod
    def open(cls) -> Nvml:
        try:
            import pynvml
        except ImportError:
            raise cls.Unavailable("nvidia-ml-py (pynvml) is not installed") from None
        try:
            pynvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...: no usable NVIDIA driver
            raise cls.Unavailable(f"no NVIDIA driver ({_text(str(e)) or type(e).__name__})") from None
        try:
            reader = cls(pynvml)
        except Exception as e:
            pynvml.nvmlShutdown()
            raise cls.Unavailable(f"NVML cannot list the GPUs ({e})") from None
        if not reader.handles:
            reader.close()
            raise cls.Unavailable("the NVIDIA driver sees no GPU")
        return reader

    def sample(self) -> list[GpuSample]:
        out = []
        for i, h in enumerate(self.handles):
            s = GpuSample(index=i, name=self.names[i])
            rates = self._try(self.nv.nvmlDeviceGetUtilizationRates, h)
            if rates is not None:
                s.util, s.mem_util = float(rates.gpu), float(rates.memory)
            mem = self._try(self.nv.nvmlDeviceGetMemoryInfo, h)
            if mem is not None:
                s.mem_used_gb, s.mem_total_gb = mem.used / GIB, mem.total / GIB
            power = self._try(self.nv.nvmlDeviceGetPowerUsage, h)  # milliwatts
            s.power_w = None if power is None else power / 1000.0
            temp = self._try(self.nv.nvmlDeviceGetTemperature, h, getattr(self.nv, "NVML_TEMPERATURE_GPU", 0))
            s.temp_c = None if temp is None else float(temp)
            sm = self._try(self.nv.nvmlDeviceGetClockInfo, h, getattr(self.nv, "NVML_CLOCK_SM", 1))
            s.sm_clock_mhz = None if sm is None else float(sm)
            mclk = self._try(self.nv.nvmlDeviceGetClockInfo, h, getattr(self.nv, "NVML_CLOCK_MEM", 2))
            s.mem_clock_mhz = None if mclk is None else float(mclk)
            out.append(s)
        return out

    @staticmethod
    def _try(fn, *args):
        """One field a GPU does not support (power on some boards) must not lose the others."""
        try:
            return fn(*args)
        except Exception:
            return None

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except Exception:
            pass

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# (header, unit, field, scale, format) in nvidia-smi dmon's spirit: one line per GPU per sample.
COLUMNS = [
    ("gpu", "Idx", "index", 1, "{:>5.0f}"),
    ("pwr", "W", "power_w", 1, "{:>6.0f}"),
    ("gtemp", "C", "temp_c", 1, "{:>6.0f}"),
    ("sm", "%", "util", 1, "{:>5.0f}"),
    ("mem", "%", "mem_util", 1, "{:>5.0f}"),
    ("fb", "MiB", "mem_used_gb", GIB / MIB, "{:>8.0f}"),
    ("fbtot", "MiB", "mem_total_gb", GIB / MIB, "{:>8.0f}"),
    ("mclk", "MHz", "mem_clock_mhz", 1, "{:>6.0f}"),
    ("pclk", "MHz", "sm_clock_mhz", 1, "{:>6.0f}"),
]


def table_header() -> str:
    widths = [len(fmt.format(0)) for *_, fmt in COLUMNS]
    names = " ".join(h.rjust(w) for (h, *_), w in zip(COLUMNS, widths, strict=True))
    units = " ".join(u.rjust(w) for (_, u, *_), w in zip(COLUMNS, widths, strict=True))
    return f"#{names[1:]}\n#{units[1:]}"


def table_rows(samples: list[GpuSample]) -> str:
    lines = []
    for s in samples:
        cells = []
        for _, _, key, scale, fmt in COLUMNS:
            v = getattr(s, key)
            width = len(fmt.format(0))
            cells.append("-".rjust(width) if v is None else fmt.format(v * scale))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def snapshot() -> dict[str, Any]:
    """``{"gpus": [GpuSample dicts], "note": None}``, or no GPUs and the one-line reason."""
    try:
        with Nvml.open() as nv:
            return {"gpus": [s.to_dict() for s in nv.sample()], "note": None}
    except Nvml.Unavailable as e:
        return {"gpus": [], "note": f"no NVIDIA GPU to show: {e}"}


def watch(interval_s: float = 1.0, count: int | None = None, as_json: bool = False, out=None) -> int:
    """Print a sample of every GPU each ``interval_s`` seconds (``count`` times, or until Ctrl-C): the dmon
    table, or one JSON document per line. Without a GPU: one plain line. Exit code 0."""
    import json
    import sys
    import time

    out = out or sys.stdout
    try:
        nv = Nvml.open()
    except Nvml.Unavailable as e:
        note = f"no NVIDIA GPU to show: {e}"
        print(json.dumps({"gpus": [], "note": note}) if as_json else note, file=out, flush=True)
        return 0
    done = 0
    try:
        while count is None or done < count:
            samples = nv.sample()
            if as_json:
                print(json.dumps({"time": round(time.time(), 3), "gpus": [s.to_dict() for s in samples]}), file=out)
            else:
                if done % 20 == 0:  # the header again every 20 samples, as dmon does
                    print(table_header(), file=out)
                print(table_rows(samples), file=out)
            out.flush()
            done += 1
            if count is None or done < count:
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        nv.close()
    return 0
