"""The environment doctor behind `dlbox env`: what is installed, what the hardware can do, and a verdict.

Never touches the network and never imports the heavy optional frameworks (versions come from package
metadata), so it is fast and safe on an offline machine with CUDA absent.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

from dlbox import __version__

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
FRAMEWORKS = ("numpy", "torch", "torchvision", "keras", "tensorflow", "jax", "onnx", "onnxruntime", "openvino",
              "tensorboard", "scikit-learn", "safetensors", "gensim", "pycocotools")  # fmt: skip
# Minimum Linux driver for each CUDA runtime (NVIDIA's CUDA toolkit release notes, table 3: minor-version
# compatibility lets any driver of the same major family run newer minor runtimes).
MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, ISA flags and physical core count from /proc/cpuinfo text."""
    model, flags, cores, logical = "", set(), set(), 0
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
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
    return {
        "model": model,
        "flags": [f for f in ISA_FLAGS if f in flags],
        "physical_cores": len(cores) or logical,
        "logical_cores": logical,
    }


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def driver_compatible(cuda_runtime: str, driver: str) -> bool:
    """Whether an NVIDIA driver can run a given CUDA runtime (e.g. '12.4' with '550.54.14')."""
    minimum = MIN_DRIVER.get(cuda_runtime.split(".")[0])
    if minimum is None:
        return False
    return _version_tuple(driver) >= _version_tuple(minimum)


def _cpu() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(), "isa": [], "cores": os.cpu_count() or 1,
                            "logical_cores": os.cpu_count() or 1}  # fmt: skip
    try:
        parsed = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        info.update(model=parsed["model"] or info["model"], isa=parsed["flags"],
                    cores=parsed["physical_cores"], logical_cores=parsed["logical_cores"])  # fmt: skip
    except OSError:  # not Linux
        pass
    try:
        import psutil

        info["cores"] = psutil.cpu_count(logical=False) or info["cores"]
    except ImportError:
        pass
    info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def _frameworks() -> list[dict[str, Any]]:
    out = []
    for name in FRAMEWORKS:
        try:
            out.append({"name": name, "version": importlib.metadata.version(name), "installed": True})
        except importlib.metadata.PackageNotFoundError:
            out.append({"name": name, "version": None, "installed": False})
    return out


def _free(path: Path) -> dict[str, Any]:
    probe = path.expanduser().resolve()
    while not probe.exists():
        probe = probe.parent
    return {"path": str(path), "checked": str(probe), "free_gb": round(shutil.disk_usage(probe).free / 2**30, 1)}


def _nvidia_smi_driver() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=5)  # fmt: skip
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _cuda() -> dict[str, Any]:
    built = torch.version.cuda
    info: dict[str, Any] = {"available": False, "built_with": built, "devices": [], "driver_version": None,
                            "driver_compatible": None, "cudnn": None, "nccl": None, "reason": None, "advice": None}  # fmt: skip
    if built is None:
        info["reason"] = "this torch build has no CUDA support (CPU-only wheel)"
        info["advice"] = "install a CUDA build of torch to use an NVIDIA GPU"
        return info
    info["driver_version"] = _nvidia_smi_driver()
    if info["driver_version"]:
        info["driver_compatible"] = driver_compatible(built, info["driver_version"])
        if not info["driver_compatible"]:
            info["advice"] = (f"driver {info['driver_version']} is older than CUDA {built} needs "
                              f"({MIN_DRIVER.get(built.split('.')[0], '?')}+): update the NVIDIA driver, or install "
                              "a torch build for an older CUDA")  # fmt: skip
    try:
        available = torch.cuda.is_available()
    except Exception as e:  # a broken driver install raises here
        available, info["reason"] = False, f"CUDA initialisation failed: {e}"
    if not available:
        info["reason"] = info["reason"] or (
            "no NVIDIA driver or device found" if not info["driver_version"] else "the driver cannot run this CUDA build"
        )
        return info
    info["available"] = True
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        info["devices"].append({"index": i, "name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                                "capability": f"{p.major}.{p.minor}"})  # fmt: skip
    info["cudnn"] = torch.backends.cudnn.version()
    try:
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception:  # NCCL absent from this build
        info["nccl"] = None
    return info


def _torch_works() -> str | None:
    try:
        a = torch.ones(8, 8)
        if float((a @ a).sum()) != 512.0:
            return "a tiny matrix product gave a wrong result"
    except Exception as e:
        return f"torch cannot run a tiny matrix product: {e}"
    return None


def collect(data_dir: str | None = None, runs_dir: str = "runs") -> dict[str, Any]:
    import torchvision

    data = Path(data_dir or os.environ.get("DLBOX_HOME") or Path.home() / ".cache" / "dlbox")
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "dlbox": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "frameworks": _frameworks(),
        "cpu": _cpu(),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},  # fmt: skip
    }
    try:
        import psutil

        vm = psutil.virtual_memory()
        report["memory"] = {"total_gb": round(vm.total / 2**30, 1), "available_gb": round(vm.available / 2**30, 1)}
    except ImportError:
        report["memory"] = {"total_gb": None, "available_gb": None}
    report["disk"] = [dict(_free(data), role="data (DLBOX_HOME)"), dict(_free(Path(runs_dir)), role="runs")]
    cuda = _cuda()
    report["cuda"] = cuda
    report["cuda_available"] = cuda["available"]
    problems = []
    if (err := _torch_works()) is not None:
        problems.append(err)
    if cuda["driver_compatible"] is False:
        problems.append(cuda["advice"])
    for d in report["disk"]:
        if d["free_gb"] < 1:
            problems.append(f"less than 1 GB free for {d['role']} at {d['checked']}")
    report["problems"] = problems
    report["ok"] = not problems
    report["verdict"] = _verdict(report)
    return report


def _verdict(r: dict[str, Any]) -> str:
    if r["problems"]:
        return "problem: " + "; ".join(r["problems"])
    cpu, isa = r["cpu"], set(r["cpu"]["isa"])
    fast = []
    if "amx_bf16" in isa:
        fast.append("AMX (bf16 fast path)")
    elif "avx512_bf16" in isa:
        fast.append("AVX512-BF16")
    elif "avx512f" in isa:
        fast.append("AVX-512")
    elif "avx2" in isa:
        fast.append("AVX2")
    cpu_part = f"{cpu['cores']} physical core(s){', ' + fast[0] if fast else ''}"
    if r["cuda_available"]:
        devs = r["cuda"]["devices"]
        names = ", ".join(sorted({d["name"] for d in devs}))
        return f"ready: {len(devs)} CUDA device(s) ({names}); CPU {cpu_part}"
    return f"ready: CPU only, {cpu_part}; no CUDA device ({r['cuda']['reason']})"


def render(r: dict[str, Any]) -> str:
    def table(rows: list[tuple[str, str]]) -> list[str]:
        width = max(len(k) for k, _ in rows)
        return [f"  {k.ljust(width)}  {v}" for k, v in rows]

    lines = ["Software"]
    lines += table([("python", r["python"]), ("dlbox", r["dlbox"]), ("platform", r["platform"])] +
                   [(f["name"], f["version"] or "not installed") for f in r["frameworks"]])  # fmt: skip
    cpu = r["cpu"]
    lines += ["", "CPU"]
    lines += table([
        ("model", cpu["model"] or "unknown"),
        ("cores", f"{cpu['cores']} physical, {cpu['logical_cores']} logical"),
        ("ISA", " ".join(cpu["isa"]) or "unknown"),
        ("torch kernels", str(cpu.get("torch_capability"))),
        ("threads", f"intra-op {r['threads']['intra_op']}, inter-op {r['threads']['inter_op']}, "
                    f"OMP_NUM_THREADS={r['threads']['OMP_NUM_THREADS'] or 'unset'}"),
    ])  # fmt: skip
    lines += ["", "Memory and disk"]
    mem = r["memory"]
    rows = [("RAM", f"{mem['total_gb']} GB total, {mem['available_gb']} GB available")]
    rows += [(d["role"], f"{d['free_gb']} GB free at {d['checked']}") for d in r["disk"]]
    lines += table(rows)
    c = r["cuda"]
    lines += ["", "CUDA"]
    rows = [("available", "yes" if c["available"] else f"no: {c['reason']}"), ("torch built with", c["built_with"] or "no CUDA")]
    rows += [(f"cuda:{d['index']}", f"{d['name']}, {d['memory_gb']} GB, compute {d['capability']}") for d in c["devices"]]
    if c["driver_version"]:
        ok = {True: "compatible", False: "NOT compatible", None: "unknown"}[c["driver_compatible"]]
        rows.append(("driver", f"{c['driver_version']} ({ok} with CUDA {c['built_with']})"))
    if c["available"]:
        rows += [("cuDNN", str(c["cudnn"])), ("NCCL", str(c["nccl"]))]
    if c["advice"]:
        rows.append(("advice", c["advice"]))
    lines += table(rows)
    lines += ["", f"verdict: {r['verdict']}"]
    return "\n".join(lines)
