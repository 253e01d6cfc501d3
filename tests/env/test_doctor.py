"""`dlbox env`: the doctor's report has what scripts rely on, parses CPU facts right, judges NVIDIA drivers by
NVIDIA's table, explains a missing GPU, and never needs CUDA, the network or the heavy frameworks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from dlbox.env import doctor
from tests.conftest import ROOT, cli_env

# Two sockets, two cores each, SMT on core 0 of socket 0: core ids repeat across sockets on purpose.
CPUINFO = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 3
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 1
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 4
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 1
core id\t\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni
"""

# An ARM kernel's text: no "model name", no topology, "Features" instead of "flags".
CPUINFO_ARM = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32

processor\t: 1
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32
"""


@pytest.fixture
def no_cuda_env(monkeypatch):
    """No CUDA_VISIBLE_DEVICES and no nvidia-smi, whatever the machine running the tests has."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(doctor, "_nvidia_smi", lambda: (None, None))


@pytest.fixture
def fake_gpu(monkeypatch, no_cuda_env):
    """One H100 as torch would describe it, on a CUDA 12.4 build with a current driver."""
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=int(79.6 * 2**30), major=9, minor=0)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(doctor, "_nvidia_smi", lambda: ("550.54.15", None))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(torch.cuda.nccl, "version", lambda: (2, 21, 5))
    cpu_check = doctor._matmul_problem

    def matmul_problem(t, device="cpu"):  # the real check on the CPU; the fake GPU multiplies fine
        return cpu_check(t) if device == "cpu" else None

    monkeypatch.setattr(doctor, "_matmul_problem", matmul_problem)


def test_report_has_the_required_keys_with_their_types(tmp_path):
    r = doctor.collect(data_dir=str(tmp_path), runs_dir=str(tmp_path))
    for key in ("python", "dlbox", "torch", "torchvision", "verdict"):
        assert isinstance(r[key], str) and r[key], key
    assert isinstance(r["cuda_available"], bool) and isinstance(r["ok"], bool)
    assert isinstance(r["problems"], list)
    cpu = r["cpu"]
    assert isinstance(cpu["model"], str) and cpu["model"]
    assert isinstance(cpu["cores"], int) and 1 <= cpu["cores"] <= cpu["logical_cores"]
    assert set(cpu["isa"]) <= set(doctor.ISA_FLAGS)
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert r["threads"]["intra_op"] == torch.get_num_threads()
    assert r["threads"]["inter_op"] == torch.get_num_interop_threads()
    assert "OMP_NUM_THREADS" in r["threads"]
    assert 0 < r["memory"]["available_gb"] <= r["memory"]["total_gb"]
    assert [set(d) >= {"path", "free_gb"} for d in r["disk"]] == [True, True]
    assert [f["name"] for f in r["frameworks"]] == list(doctor.FRAMEWORKS)
    cuda_keys = {"available", "reason", "built_with", "devices", "driver_version", "driver_compatible",
                 "cudnn", "nccl"}  # fmt: skip
    assert cuda_keys <= set(r["cuda"])


def test_report_survives_a_json_round_trip():
    r = doctor.collect()
    assert json.loads(json.dumps(r)) == r  # also catches tuples, which come back as lists


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_missing_cuda_is_reported_with_a_reason():
    r = doctor.collect()
    assert r["cuda_available"] is False and r["cuda"]["available"] is False
    assert r["cuda"]["reason"].strip()
    assert r["verdict"].startswith("ready: CPU only") and "no CUDA device" in r["verdict"]


def test_cuda_build_without_a_driver_says_so(monkeypatch, no_cuda_env):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert doctor.collect()["cuda"]["reason"] == "no NVIDIA driver/device found"


def test_cpu_only_torch_build_is_named_as_the_reason(monkeypatch, no_cuda_env):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    c = doctor.collect()["cuda"]
    assert c["reason"] == "torch was built without CUDA" and c["built_with"] is None


def test_hidden_devices_are_blamed_on_cuda_visible_devices(monkeypatch, no_cuda_env):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES" in doctor.collect()["cuda"]["reason"]


def test_too_old_driver_is_a_problem_with_advice(monkeypatch, no_cuda_env):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(doctor, "_nvidia_smi", lambda: ("470.82.01", None))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = doctor.collect()
    assert r["cuda"]["driver_compatible"] is False and r["ok"] is False
    assert r["verdict"].startswith("problem:") and "470.82.01" in r["verdict"]
    assert "update the driver" in r["cuda"]["advice"]


def test_a_gpu_makes_a_ready_verdict_naming_it(fake_gpu):
    r = doctor.collect()
    assert r["verdict"] == "ready: 1 CUDA device (NVIDIA H100 80GB HBM3)"
    assert r["cuda"]["devices"] == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_gb": 79.6,
                                     "capability": "9.0"}]  # fmt: skip
    assert (r["cuda"]["cudnn"], r["cuda"]["nccl"], r["cuda"]["driver_compatible"]) == (90100, "2.21.5", True)


def test_a_gpu_that_cannot_multiply_is_a_problem(fake_gpu, monkeypatch):
    def matmul_problem(t, device="cpu"):  # what a wheel without this GPU's architecture runs into
        return None if device == "cpu" else "no kernel image is available for execution on the device"

    monkeypatch.setattr(doctor, "_matmul_problem", matmul_problem)
    r = doctor.collect()
    assert r["ok"] is False and r["verdict"].startswith("problem: no kernel image")


def test_torch_failing_a_tiny_matmul_is_a_problem(monkeypatch, no_cuda_env):
    def crash(*args, **kwargs):
        raise RuntimeError("illegal instruction")

    monkeypatch.setattr(torch, "ones", crash)
    r = doctor.collect()
    assert r["ok"] is False
    assert r["verdict"] == "problem: torch cannot run a tiny matrix product on cpu: illegal instruction"


def test_a_broken_torch_install_is_reported_not_raised(monkeypatch):
    error = "torch cannot be imported: ImportError: libc10.so"
    monkeypatch.setattr(doctor, "_import_torch", lambda: (None, error))
    r = doctor.collect()
    assert r["ok"] is False and r["verdict"] == f"problem: {error}"
    assert r["cuda_available"] is False and r["threads"]["intra_op"] is None
    assert doctor.render(r).endswith(f"verdict: {r['verdict']}")


def test_cpuinfo_physical_cores_count_unique_socket_core_pairs():
    parsed = doctor.parse_cpuinfo(CPUINFO)
    assert (parsed["physical_cores"], parsed["logical_cores"]) == (4, 5)


def test_cpuinfo_keeps_only_the_isa_flags_of_interest_in_table_order():
    parsed = doctor.parse_cpuinfo(CPUINFO)
    assert parsed["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert parsed["flags"] == list(doctor.ISA_FLAGS)  # fpu and sha_ni dropped


def test_cpuinfo_without_topology_leaves_physical_cores_unknown():
    parsed = doctor.parse_cpuinfo(CPUINFO_ARM)
    assert parsed == {"model": "", "flags": [], "physical_cores": None, "logical_cores": 2}


def test_cpu_only_verdict_names_avx512_amx_and_the_bf16_fast_path():
    cpu = {"cores": 56, "isa": list(doctor.ISA_FLAGS), "isa_source": "/proc/cpuinfo"}
    assert doctor._cpu_summary(cpu) == "56 physical cores, AVX-512 + AMX (bf16 fast path available)"


@pytest.mark.parametrize(
    ("runtime", "driver", "ok"),
    [
        ("11.8", "520.61.05", True),  # exactly the toolkit's own minimum
        ("11.8", "470.82.01", True),  # below it, but within 11.x minor-version compatibility (>= 450.80.02)
        ("11.0", "450.51.05", True),  # 11.0 GA shipped before the 11.x compatibility driver
        ("11.2", "450.36.06", False),  # older than the 11.x compatibility minimum
        ("12.4", "550.54.14", True),
        ("12.1", "470.82.01", False),  # an 11.x driver cannot run 12.x
        ("12.8", "525.60.13", True),  # the 12.x compatibility minimum itself
        ("12.8", "570.26", True),  # a two-part version, as NVIDIA writes some
        ("13.0", "575.57.08", False),  # the newest 12.x driver cannot run 13.x
        ("13.0", "580.65.06", True),
        ("10.2", "418.39", False),  # no minor-version compatibility before CUDA 11
    ],
)
def test_driver_compatibility_follows_nvidias_table(runtime, driver, ok):
    assert doctor.driver_compatible(runtime, driver) is ok


def test_driver_compatibility_refuses_to_guess_for_an_unknown_cuda():
    with pytest.raises(ValueError):
        doctor.driver_compatible("14.0", "600.10")


def test_disk_entry_for_a_path_not_yet_created_uses_its_nearest_existing_parent(tmp_path):
    r = doctor.collect(data_dir=str(tmp_path / "a" / "b"), runs_dir=str(tmp_path / "runs"))
    data = r["disk"][0]
    assert data["path"] == str(tmp_path / "a" / "b") and data["checked"] == str(tmp_path)
    assert data["free_gb"] > 0


def test_data_dir_defaults_to_dlbox_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DLBOX_HOME", str(tmp_path / "home"))
    assert doctor.collect()["disk"][0]["path"] == str(tmp_path / "home")


def test_frameworks_not_installed_have_no_version():
    names = {f["name"]: f for f in doctor.collect()["frameworks"]}
    assert names["torch"]["installed"] and names["torch"]["version"]
    assert all(f["installed"] == (f["version"] is not None) for f in names.values())


def test_collect_imports_none_of_the_heavy_frameworks():
    # A fresh interpreter: this test process may have imported them already for other tests.
    code = ("import sys; from dlbox.env import doctor; doctor.collect(); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'onnx', 'onnxruntime', 'openvino', "
            "'sklearn', 'torchvision', 'gensim') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True,
                         text=True, timeout=300, check=True)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_collect_never_opens_a_network_connection(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("collect() tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert doctor.collect()["verdict"]


def test_render_ends_with_the_verdict_after_the_four_sections():
    r = doctor.collect()
    text = doctor.render(r)
    assert text.splitlines()[-1] == f"verdict: {r['verdict']}"
    positions = [text.index(f"\n{s}\n") if s != "Software" else text.index("Software\n") for s in
                 ("Software", "CPU", "Memory and disk", "CUDA")]  # fmt: skip
    assert positions == sorted(positions)


def test_render_aligns_every_value_in_one_column():
    text = doctor.render(doctor.collect())
    rows = [line for line in text.splitlines() if line.startswith("  ")]
    # Keys have single spaces at most ("torch kernels"), so the value starts after the first double space.
    columns = {len(row) - len(row[2:].split("  ", 1)[1].lstrip(" ")) for row in rows}
    assert len(rows) > 20 and len(columns) == 1
    assert "\x1b[" not in text  # plain text, no colour codes
