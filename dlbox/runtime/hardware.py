"""What the hardware can do: CPU ISA, cores and clock, GPU name, and the peak FLOP/s each precision can reach.

Peak figures are theoretical (every core issuing its widest multiply-add every cycle); they are what the
"peak fraction" column divides by. Each estimate carries a ``basis`` string that says how it was computed,
so a reader can check or disagree with it.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class CpuInfo:
    model: str
    flags: set[str] = field(default_factory=set)
    physical_cores: int = 1
    logical_cores: int = 1
    mhz: float | None = None
    mhz_source: str = "unknown"

    def has(self, *names: str) -> bool:
        return all(n in self.flags for n in names)

    @property
    def isa(self) -> str:
        """The widest vector/matrix units, as a short label (e.g. 'AVX-512 + AMX (bf16, int8)')."""
        parts = []
        if self.has("avx512f"):
            parts.append("AVX-512")
        elif self.has("avx2"):
            parts.append("AVX2" + (" + FMA" if self.has("fma") else ""))
        elif self.has("avx"):
            parts.append("AVX")
        extras = [
            n
            for f, n in (
                ("avx512_bf16", "AVX512-BF16"),
                ("avx512_vnni", "AVX512-VNNI"),
                ("avx_vnni", "AVX-VNNI"),
                ("avx512_fp16", "AVX512-FP16"),
            )
            if f in self.flags
        ]
        amx = [
            t
            for f, t in (("amx_bf16", "bf16"), ("amx_int8", "int8"), ("amx_fp16", "fp16"))
            if f in self.flags
        ]
        if amx:
            extras.append(f"AMX ({', '.join(amx)})")
        return " + ".join(parts + extras) or platform.machine()


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name, all flags, physical/logical cores and the reported clock from /proc/cpuinfo text."""
    model, flags, mhz = "", set(), None
    cores: set[tuple[str | None, str | None]] = set()
    logical = 0
    phys = core = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if phys is not None or core is not None:
                cores.add((phys, core))
            phys = core = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and not model:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "cpu MHz" and mhz is None:
            try:
                mhz = float(value)
            except ValueError:
                pass
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
    return CpuInfo(model=model or platform.processor() or platform.machine(), flags=flags,
                   physical_cores=len(cores) or logical or 1, logical_cores=logical or 1,
                   mhz=mhz, mhz_source="/proc/cpuinfo 'cpu MHz'" if mhz else "unknown")  # fmt: skip


def cpu_info() -> CpuInfo:
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: no flags, so peaks are reported as unknown
        info = CpuInfo(model=platform.processor() or platform.machine(), logical_cores=os.cpu_count() or 1,
                       physical_cores=os.cpu_count() or 1)  # fmt: skip
    try:
        import psutil

        info.physical_cores = psutil.cpu_count(logical=False) or info.physical_cores
        freq = psutil.cpu_freq()
        # The rated maximum is a better peak clock than the momentary 'cpu MHz'; VMs often report max = 0.
        if freq is not None and freq.max and freq.max > (info.mhz or 0):
            info.mhz, info.mhz_source = float(freq.max), "psutil max frequency"
    except ImportError:
        pass
    return info


@dataclass
class Peak:
    flops: float | None  # FLOP/s (or int8 op/s); None when unknown
    basis: str  # how it was estimated, in words


def _cpu_per_cycle(info: CpuInfo, precision: str) -> tuple[int | None, str]:
    """FLOP (or int8 op) per cycle per core for the widest unit this CPU has for ``precision``.

    Assumes two FMA ports per core, true for server parts (Xeon Skylake-SP and later, AMD Zen 2 and later);
    some client parts have one 512-bit port and reach half.
    """
    fp32: tuple[int | None, str]
    if info.has("avx512f"):
        fp32 = 64, "AVX-512 FMA: 2 units x 16 fp32 lanes x 2"
    elif info.has("avx2", "fma"):
        fp32 = 32, "AVX2 FMA: 2 units x 8 fp32 lanes x 2"
    elif info.has("avx"):
        fp32 = 16, "AVX: 1 add + 1 mul unit x 8 fp32 lanes"
    elif info.flags:
        fp32 = 8, "SSE: 1 add + 1 mul unit x 4 fp32 lanes"
    else:
        return None, "CPU flags unknown"
    if precision == "bf16":
        if info.has("amx_bf16"):
            return 1024, "AMX-BF16: 1024 bf16 FLOP/cycle (TMUL 16x32 by 32x16 in 16 cycles)"
        if info.has("avx512_bf16"):
            return 128, "AVX512-BF16 dot products: 2 units x 16 lanes x 2 pairs x 2"
        return fp32[0], f"no native bf16: runs on the fp32 units ({fp32[1]})"
    if precision == "fp16":
        if info.has("amx_fp16"):
            return 1024, "AMX-FP16: 1024 fp16 FLOP/cycle"
        if info.has("avx512_fp16"):
            return 128, "AVX512-FP16 FMA: 2 units x 32 fp16 lanes x 2"
        return fp32[0], f"no native fp16: runs on the fp32 units ({fp32[1]})"
    if precision == "int8":
        if info.has("amx_int8"):
            return 2048, "AMX-INT8: 2048 int8 op/cycle"
        if info.has("avx512_vnni"):
            return 256, "AVX512-VNNI: 2 units x 64 u8*s8 pairs x 2"
        if info.has("avx_vnni"):
            return 128, "AVX-VNNI: 2 units x 32 u8*s8 pairs x 2"
        if info.has("avx2"):
            return 2 * fp32[0], "AVX2 int8 (vpmaddubsw, no VNNI): taken as 2x the fp32 rate"
        return fp32[0], f"no int8 dot-product unit: taken as the fp32 rate ({fp32[1]})"
    return fp32


def cpu_peak(info: CpuInfo, precision: str, threads: int) -> Peak:
    """Peak of the cores the benchmark uses: min(threads, physical cores) x clock x FLOP/cycle/core."""
    per_cycle, how = _cpu_per_cycle(info, precision)
    if per_cycle is None or not info.mhz:
        return Peak(None, f"unknown ({how if per_cycle is None else 'CPU clock unknown'})")
    cores = max(1, min(threads, info.physical_cores))
    unit = "op" if precision == "int8" else "FLOP"
    flops = cores * info.mhz * 1e6 * per_cycle
    ghz = f"{info.mhz / 1000:.2f} GHz ({info.mhz_source})"
    return Peak(flops, f"{cores} core(s) x {ghz} x {per_cycle} {unit}/cycle [{how}]")


# Dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets; fp16/bf16 with fp32 accumulation (what
# PyTorch uses). Matched against torch.cuda.get_device_name() in order, so the more specific names come first.
GPU_SPECS: list[tuple[str, str, dict[str, float]]] = [
    (r"H200", "H200", {"fp32": 67, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "int8": 1979}),
    (r"H100.*NVL", "H100 NVL", {"fp32": 60, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "int8": 1671}),
    (r"H100.*PCI", "H100 PCIe", {"fp32": 51, "tf32": 378, "bf16": 756, "fp16": 756, "int8": 1513}),
    (r"H100", "H100 SXM", {"fp32": 67, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "int8": 1979}),
    (r"A100", "A100", {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312, "int8": 624}),
    (r"L40S", "L40S", {"fp32": 91.6, "tf32": 183, "bf16": 362, "fp16": 362, "int8": 733}),
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121, "int8": 242}),
    (r"\bA10\b", "A10", {"fp32": 31.2, "tf32": 62.5, "bf16": 125, "fp16": 125, "int8": 250}),
    (r"V100.*PCI", "V100 PCIe", {"fp32": 14, "fp16": 112}),
    (r"V100", "V100 SXM2", {"fp32": 15.7, "fp16": 125}),
    (r"P100.*PCI", "P100 PCIe", {"fp32": 9.3, "fp16": 18.7}),
    (r"P100", "P100 SXM2", {"fp32": 10.6, "fp16": 21.2}),
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65, "int8": 130}),
    (r"RTX 4090", "RTX 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "int8": 660.6}),
    (r"RTX 3090", "RTX 3090", {"fp32": 35.6, "tf32": 35.6, "bf16": 71, "fp16": 71, "int8": 284}),
]


def gpu_spec(name: str) -> tuple[str, dict[str, float]] | None:
    for pattern, label, spec in GPU_SPECS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return label, spec
    return None


def gpu_peak(name: str, precision: str, tf32: bool | None = None) -> Peak:
    """Dense peak of a GPU by name. fp32 convolutions run on TF32 tensor cores when cuDNN allows it
    (PyTorch's default), so the fp32 row is measured against the TF32 peak then."""
    found = gpu_spec(name)
    if found is None:
        return Peak(None, f"unknown: {name!r} is not in dlbox's GPU table")
    label, spec = found
    if tf32 is None:
        tf32 = torch.backends.cudnn.allow_tf32
    key = "tf32" if precision == "fp32" and tf32 and "tf32" in spec else precision
    if key not in spec:
        return Peak(None, f"unknown: no {precision} tensor-core figure for {label}")
    unit = "TOP/s" if key == "int8" else "TFLOP/s"
    return Peak(spec[key] * 1e12, f"{label} datasheet, dense {key}: {spec[key]:g} {unit}")


def gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else ""


def peak(device: torch.device, precision: str, threads: int, info: CpuInfo | None = None) -> Peak:
    if device.type == "cuda":
        return gpu_peak(gpu_name(device), precision)
    return cpu_peak(info or cpu_info(), precision, threads)
