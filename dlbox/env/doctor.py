"""The environment doctor behind `dlbox env`: what is installed, what the hardware can do, and a verdict.

It never touches the network and never imports the optional frameworks (their versions come from package
metadata), so it is fast and safe on an offline machine with CUDA absent. torch itself is imported inside
`collect`, not at module level, so that a broken torch install becomes a reported problem, not a crash.
Sizes are in GiB (2**30 bytes), rounded to 0.1.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from dlbox import __version__

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_bf16", "amx_int8")  # fmt: skip
FRAMEWORKS = ("numpy", "torch", "torchvision", "keras", "tensorflow", "jax", "onnx", "onnxruntime",
              "openvino", "tensorboard", "scikit-learn", "safetensors", "gensim", "pycocotools")  # fmt: skip

# Minimum Linux x86_64 driver of each CUDA toolkit release (NVIDIA's CUDA toolkit release notes, table "CUDA
# Toolkit and Corresponding Driver Versions"). torch.version.cuda says only major.minor: entries are the GA's.
TOOLKIT_MIN_DRIVER = {
    "10.0": "410.48", "10.1": "418.39", "10.2": "440.33",
    "11.0": "450.36.06", "11.1": "455.23", "11.2": "460.27.03", "11.3": "465.19.01", "11.4": "470.42.01",
    "11.5": "495.29.05", "11.6": "510.39.01", "11.7": "515.43.04", "11.8": "520.61.05",
    "12.0": "525.60.13", "12.1": "530.30.02", "12.2": "535.54.03", "12.3": "545.23.06", "12.4": "550.54.14",
    "12.5": "555.42.02", "12.6": "560.28.03", "12.8": "570.26", "12.9": "575.51.03",
    "13.0": "580.65.06", "13.1": "590.44.01", "13.2": "595.45.04",
}  # fmt: skip
# From CUDA 11 on, "minor-version compatibility" lets any driver of a major family run every runtime of that
# family (newer-driver-only features aside), so the family minimum is what decides whether torch can start.
MINOR_COMPAT_MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}

# What torch's dispatch level proves about the ISA, for platforms without /proc/cpuinfo.
_AVX2 = ("sse4_2", "avx", "avx2", "fma")
_ISA_FROM_TORCH = {"AVX2": _AVX2, "AVX512": (*_AVX2, "avx512f")}
LOW_DISK_GB = 1.0


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, known ISA flags, and core counts from Linux /proc/cpuinfo text.

    ``physical_cores`` counts unique (physical id, core id) pairs, so SMT siblings count once; it is None
    when the text has no topology (some VMs and ARM kernels omit it).
    """
    model, flags, pairs, logical = "", set(), set(), 0
    for block in re.split(r"\n\s*\n", text):  # one block per logical processor
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" not in fields:
            continue
        logical += 1
        model = model or fields.get("model name", "")
        flags |= set(fields.get("flags", "").split())
        if "physical id" in fields or "core id" in fields:
            pairs.add((fields.get("physical id"), fields.get("core id")))
    return {
        "model": model,
        "flags": [f for f in ISA_FLAGS if f in flags],
        "physical_cores": len(pairs) or None,
        "logical_cores": logical,
    }


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = tuple(int(x) for x in re.findall(r"\d+", v))
    if not parts:
        raise ValueError(f"not a version: {v!r}")
    return parts + (0,) * (3 - len(parts))  # "570.26" must equal "570.26.0", not sort below it


def _driver_minimums(cuda_runtime: str) -> tuple[str | None, str | None]:
    """(the runtime's own toolkit minimum, its family's minor-version-compatibility minimum)."""
    m = re.match(r"(\d+)\.(\d+)", cuda_runtime.strip())
    if not m:
        raise ValueError(f"not a CUDA runtime version: {cuda_runtime!r}")
    major, minor = m.groups()
    return TOOLKIT_MIN_DRIVER.get(f"{major}.{minor}"), MINOR_COMPAT_MIN_DRIVER.get(major)


def driver_compatible(cuda_runtime: str, driver: str) -> bool:
    """Whether Linux NVIDIA driver ``driver`` ('550.54.14') can run CUDA runtime ``cuda_runtime`` ('12.4').

    True when the driver meets the runtime's own minimum, or, from CUDA 11 on, its family's minor-version
    compatibility minimum. Raises ValueError for a runtime this table does not know (e.g. a future major).
    """
    toolkit, family = _driver_minimums(cuda_runtime)
    if toolkit is None and family is None:
        raise ValueError(f"no driver requirement known for CUDA {cuda_runtime}")
    have = _version_tuple(driver)
    return any(m is not None and have >= _version_tuple(m) for m in (toolkit, family))


def _gib(n_bytes: int) -> float:
    return round(n_bytes / 2**30, 1)


def _import_torch() -> tuple[Any, str | None]:
    try:
        import torch

        return torch, None
    except Exception as e:  # a half-installed or ABI-broken torch: report it, do not crash the doctor
        return None, f"torch cannot be imported: {type(e).__name__}: {e}"


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _frameworks() -> list[dict[str, Any]]:
    # Package metadata only: importing tensorflow or jax would take seconds and may grab a GPU.
    versions = {name: _dist_version(name) for name in FRAMEWORKS}
    return [{"name": n, "version": v, "installed": v is not None} for n, v in versions.items()]


def _cpu(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"model": "", "cores": None, "logical_cores": os.cpu_count() or 1, "isa": [],
                            "isa_source": None}  # fmt: skip
    try:
        parsed = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux
        parsed = None
    if parsed and parsed["logical_cores"]:
        info.update(model=parsed["model"], cores=parsed["physical_cores"],
                    logical_cores=parsed["logical_cores"], isa=parsed["flags"],
                    isa_source="/proc/cpuinfo")  # fmt: skip
    elif sys.platform == "darwin":
        info["model"] = _run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=2) or ""
    # platform.processor() may spawn `uname -p`, so it is only the last resort.
    info["model"] = info["model"] or platform.processor() or platform.machine() or "unknown"
    if info["cores"] is None:
        try:
            import psutil

            info["cores"] = psutil.cpu_count(logical=False)
        except ImportError:
            pass
    info["cores"] = int(info["cores"] or info["logical_cores"])
    # The cores this process may use: containers and taskset pin fewer than the machine has.
    affinity = getattr(os, "sched_getaffinity", None)
    info["usable_cores"] = len(affinity(0)) if affinity else info["logical_cores"]
    cap = None
    if torch is not None and hasattr(torch.backends, "cpu"):
        cap = torch.backends.cpu.get_cpu_capability()
    info["torch_capability"] = cap
    if info["isa_source"] is None and cap in _ISA_FROM_TORCH:
        info.update(isa=list(_ISA_FROM_TORCH[cap]), isa_source="torch capability")
    return info


def _disk(path: str | Path, role: str) -> dict[str, Any]:
    # abspath, not resolve: report the path as the user gave it, with ".." folded, symlinks left alone.
    target = Path(os.path.abspath(os.path.expanduser(str(path))))
    probe = target
    try:
        while not probe.exists():  # not created yet: its nearest existing parent is the disk it will land on
            probe = probe.parent
        free = _gib(shutil.disk_usage(probe).free)
    except OSError:  # e.g. a parent we may not stat
        free = None
    return {"path": str(target), "role": role, "checked": str(probe), "free_gb": free}


def _run(cmd: list[str], timeout: float) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _nvidia_smi() -> tuple[str | None, str | None]:
    """(driver version, why it could not be read); (None, None) when nvidia-smi is not installed."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None, None
    try:
        query = [exe, "--query-gpu=driver_version", "--format=csv,noheader"]
        out = subprocess.run(query, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None, "nvidia-smi did not answer within 5 s"
    except OSError as e:
        return None, f"nvidia-smi could not run: {e}"
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        msg = (out.stdout + out.stderr).strip().splitlines()
        return None, f"nvidia-smi failed: {msg[0] if msg else f'exit code {out.returncode}'}"
    return lines[0].strip(), None  # one line per GPU; a machine has one driver


def _matmul_problem(torch: Any, device: str = "cpu") -> str | None:
    """None when torch computes right on ``device``, else what went wrong.

    The CPU gets a tiny matrix product (the BLAS path every model takes). A GPU gets an element-wise sum: it
    proves this wheel has kernels for the device without paying cuBLAS start-up on every `dlbox env`.
    """
    what = "a tiny matrix product" if device == "cpu" else "a tiny kernel"
    try:
        a = torch.ones(8, 8, device=device)
        result, expected = (a @ a, 512.0) if device == "cpu" else (a + a, 128.0)
        if float(result.sum()) != expected:
            return f"{what} on {device} gave a wrong result"
    except Exception as e:  # e.g. "no kernel image is available": the wheel lacks this GPU's architecture
        return f"torch cannot run {what} on {device}: {str(e).strip().splitlines()[0]}"
    return None


def _cuda(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"available": False, "reason": None, "built_with": None, "hip": None,
                            "devices": [], "driver_version": None, "driver_compatible": None,
                            "driver_minimum": None, "cudnn": None, "nccl": None, "advice": None}  # fmt: skip
    if torch is None:
        info["reason"] = "torch could not be imported"
        return info
    built, hip = torch.version.cuda, getattr(torch.version, "hip", None)
    info.update(built_with=built, hip=hip)
    if built is None and hip is None:
        info["reason"] = "torch was built without CUDA"
        info["advice"] = "install a CUDA build of torch (see pytorch.org/get-started) to use an NVIDIA GPU"
        return info
    driver, smi_error = _nvidia_smi() if built else (None, None)  # nvidia-smi means nothing to a ROCm build
    info["driver_version"] = driver
    toolkit = None
    if built and driver:
        try:
            toolkit, family = _driver_minimums(built)
            info["driver_minimum"] = family or toolkit
            info["driver_compatible"] = driver_compatible(built, driver)
        except ValueError:  # a CUDA newer than this table, or an odd version string: say so, do not guess
            info["advice"] = f"cannot judge driver {driver} for CUDA {built}; see NVIDIA's CUDA release notes"
        if info["driver_compatible"] is False:
            info["advice"] = (
                f"NVIDIA driver {driver} is too old for CUDA {built} (needs >= {info['driver_minimum']}): "
                f"update the driver, or install a torch build for an older CUDA that this driver runs"
            )
        elif info["driver_compatible"] and toolkit and _version_tuple(driver) < _version_tuple(toolkit):
            info["advice"] = (
                f"driver {driver} runs CUDA {built} through minor-version compatibility; features that "
                f"need a newer driver (e.g. PTX JIT for newer GPUs) want >= {toolkit}"
            )
    init_errors: list[str] = []
    # torch warns on CUDA init failures; catch them so the reason lands in the report, not on stderr.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            available = torch.cuda.is_available()
        except Exception as e:  # a broken driver install can raise here
            available, init_errors = False, [str(e)]
    if not available:
        info["reason"] = _no_cuda_reason(info, smi_error, init_errors + [str(w.message) for w in caught])
        return info
    info["available"] = True
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        info["devices"].append({"index": i, "name": p.name, "memory_gb": _gib(p.total_memory),
                                "capability": f"{p.major}.{p.minor}"})  # fmt: skip
    try:
        info["cudnn"] = torch.backends.cudnn.version()  # loads libcudnn, so only worth it with a GPU present
    except Exception:  # cuDNN missing from the install
        info["cudnn"] = None
    try:
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception:  # NCCL absent from this build (Windows, ROCm variants)
        info["nccl"] = None
    return info


def _no_cuda_reason(info: dict[str, Any], smi_error: str | None, init_messages: list[str]) -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every device"
    if info["driver_compatible"] is False:
        return f"the NVIDIA driver {info['driver_version']} is too old for CUDA {info['built_with']}"
    if smi_error:
        return smi_error
    if init_messages:
        return "CUDA initialisation failed: " + init_messages[0].strip().splitlines()[0]
    if info["hip"] and not info["built_with"]:
        return "no ROCm device found"
    if info["driver_version"] is None:
        return "no NVIDIA driver/device found"
    return "torch found no usable CUDA device"


def collect(data_dir: str | None = None, runs_dir: str = "runs") -> dict[str, Any]:
    """A JSON-serialisable report of this machine for deep learning; see the module docstring."""
    torch, import_error = _import_torch()
    torchvision = sys.modules.get("torchvision")  # its own __version__ if loaded; importing it costs seconds
    data = data_dir or os.environ.get("DLBOX_HOME") or str(Path.home() / ".cache" / "dlbox")
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "dlbox": __version__,
        "torch": torch.__version__ if torch is not None else _dist_version("torch"),
        "torchvision": torchvision.__version__ if torchvision is not None else _dist_version("torchvision"),
        "platform": platform.platform(),
        "frameworks": _frameworks(),
        "cpu": _cpu(torch),
        "threads": {
            "intra_op": torch.get_num_threads() if torch is not None else None,
            "inter_op": torch.get_num_interop_threads() if torch is not None else None,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
    }
    try:
        import psutil

        vm = psutil.virtual_memory()
        report["memory"] = {"total_gb": _gib(vm.total), "available_gb": _gib(vm.available)}
    except ImportError:
        report["memory"] = {"total_gb": None, "available_gb": None}
    report["disk"] = [_disk(data, "data"), _disk(runs_dir, "runs")]
    cuda = _cuda(torch)
    report["cuda"] = cuda
    report["cuda_available"] = cuda["available"]
    mps = getattr(torch.backends, "mps", None) if torch is not None else None
    report["mps_available"] = bool(mps and mps.is_available())
    report["problems"], report["warnings"] = _findings(torch, import_error, report)
    report["ok"] = not report["problems"]
    report["verdict"] = _verdict(report)
    return report


def _findings(torch: Any, import_error: str | None, r: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems that stop work, warnings worth fixing)."""
    problems: list[str] = []
    if import_error:
        problems.append(import_error)
    elif err := _matmul_problem(torch, "cpu"):
        problems.append(err)
    warns = [f"only {d['free_gb']} GiB free for {d['role']} at {d['checked']}" for d in r["disk"]
             if d["free_gb"] is not None and d["free_gb"] < LOW_DISK_GB]  # fmt: skip
    cuda = r["cuda"]
    gpu_error = _matmul_problem(torch, "cuda:0") if cuda["available"] else None
    if gpu_error:
        problems.append(gpu_error)
    if cuda["driver_compatible"] is False:
        if cuda["available"] and not gpu_error:  # the table says no, yet it runs: a forward-compat package
            warns.append(f"driver {cuda['driver_version']} is below CUDA {cuda['built_with']}'s minimum but "
                         "works here (CUDA forward-compatibility package?)")  # fmt: skip
        else:
            problems.append(cuda["advice"])
    cpu, intra = r["cpu"], r["threads"]["intra_op"]
    if intra and intra > cpu["usable_cores"]:  # oversubscription: threads fight over too few cores
        warns.append(f"torch uses {intra} threads but this process may run on {cpu['usable_cores']} cores; "
                     f"set OMP_NUM_THREADS={cpu['usable_cores']}")  # fmt: skip
    # The CPU could do better than torch's kernels: usually ATEN_CPU_CAPABILITY forcing a lower level.
    if "avx2" in cpu["isa"] and cpu["isa_source"] == "/proc/cpuinfo" and cpu["torch_capability"] == "DEFAULT":
        warns.append("the CPU has AVX2 but torch uses its DEFAULT kernels (is ATEN_CPU_CAPABILITY set?)")
    return problems, warns


def _cpu_summary(cpu: dict[str, Any]) -> str:
    isa = set(cpu["isa"])
    if "avx512f" in isa:
        simd = "AVX-512 + AMX" if "amx_bf16" in isa else "AVX-512"
    elif "avx2" in isa:
        simd = "AVX2"
    else:
        simd = "no AVX2 (slow kernels)" if cpu["isa_source"] else ""
    if isa & {"amx_bf16", "avx512_bf16"}:
        simd += " (bf16 fast path available)"
    cores = f"{cpu['cores']} physical core{'s' if cpu['cores'] != 1 else ''}"
    return f"{cores}, {simd}" if simd else cores


def _verdict(r: dict[str, Any]) -> str:
    if r["problems"]:
        return "problem: " + "; ".join(r["problems"])
    if r["cuda_available"]:
        devs = r["cuda"]["devices"]
        names = ", ".join(n if k == 1 else f"{k} x {n}" for n, k in Counter(d["name"] for d in devs).items())
        return f"ready: {len(devs)} CUDA device{'s' if len(devs) != 1 else ''} ({names})"
    mps = "; Apple MPS available" if r.get("mps_available") else ""
    return f"ready: CPU only, {_cpu_summary(r['cpu'])}; no CUDA device{mps}"


def render(report: dict[str, Any]) -> str:
    """The report as aligned plain-text sections, ending with the line ``verdict: ...``."""
    r, sections = report, []
    software = [("python", r["python"]), ("dlbox", r["dlbox"]), ("platform", r.get("platform", ""))]
    software += [(f["name"], f["version"] or "not installed") for f in r["frameworks"]]
    sections.append(("Software", software))

    cpu, th = r["cpu"], r["threads"]
    cores = f"{cpu['cores']} physical, {cpu['logical_cores']} logical, {cpu.get('usable_cores', '?')} usable"
    threads = (f"intra-op {th['intra_op']}, inter-op {th['inter_op']}, "
               f"OMP_NUM_THREADS={th['OMP_NUM_THREADS'] or 'unset'}")  # fmt: skip
    isa = " ".join(cpu["isa"]) or "none of those checked"
    sections.append(("CPU", [("model", cpu["model"] or "unknown"), ("cores", cores), ("ISA", isa),
                             ("torch kernels", str(cpu.get("torch_capability"))),
                             ("threads", threads)]))  # fmt: skip

    mem = r["memory"]
    rows = [("RAM", f"{mem['total_gb']} GiB total, {mem['available_gb']} GiB available")]
    for d in r["disk"]:
        where = d["path"]
        if d["checked"] != d["path"]:
            where += f" (not created yet; checked {d['checked']})"
        rows.append((f"disk ({d['role']})", f"{d['free_gb']} GiB free at {where}"))
    sections.append(("Memory and disk", rows))

    c = r["cuda"]
    built = "no CUDA"
    if c["built_with"] or c.get("hip"):
        built = f"CUDA {c['built_with']}" if c["built_with"] else f"ROCm {c['hip']}"
    rows = [("available", "yes" if c["available"] else f"no: {c['reason']}"), ("torch built with", built)]
    for d in c["devices"]:
        rows.append((f"cuda:{d['index']}", f"{d['name']}, {d['memory_gb']} GiB, compute {d['capability']}"))
    if c["driver_version"]:
        verdict = {True: "compatible", False: "NOT compatible"}.get(c["driver_compatible"], "unknown")
        rows.append(("driver", f"{c['driver_version']} ({verdict} with CUDA {c['built_with']})"))
    if c["available"]:
        rows += [("cuDNN", str(c["cudnn"])), ("NCCL", str(c["nccl"]))]
    if c["advice"]:
        rows.append(("advice", c["advice"]))
    sections.append(("CUDA", rows))

    findings = [("problem", p) for p in r["problems"]] + [("warning", w) for w in r.get("warnings", [])]
    if findings:
        sections.append(("Findings", findings))

    width = max(len(k) for _, rows in sections for k, _ in rows)  # one value column for the whole page
    lines: list[str] = []
    for title, rows in sections:
        lines += [title, *(f"  {k.ljust(width)}  {v}" for k, v in rows), ""]
    lines.append(f"verdict: {r['verdict']}")
    return "\n".join(lines)
