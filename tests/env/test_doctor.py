"""`dlbox env`: the doctor's report has what scripts rely on, parses CPU facts right, and never needs CUDA."""

from __future__ import annotations

import json

import torch

from dlbox.env import doctor

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
physical id\t: 0
core id\t\t: 0

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
physical id\t: 0
core id\t\t: 0

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
physical id\t: 0
core id\t\t: 1
"""


def test_report_has_the_keys_scripts_read():
    r = doctor.collect()
    assert {"python", "torch", "cuda_available", "cpu", "verdict"} <= set(r)
    assert {"model", "cores", "isa"} <= set(r["cpu"])
    assert isinstance(r["cpu"]["cores"], int) and r["cpu"]["cores"] >= 1
    json.dumps(r)  # serialisable as is


def test_cuda_absent_is_said_plainly():
    r = doctor.collect()
    assert r["cuda_available"] is torch.cuda.is_available()
    if not r["cuda_available"]:
        assert r["cuda"]["reason"] and "no CUDA device" in r["verdict"]


def test_cpuinfo_parsing_counts_physical_cores_and_isa():
    parsed = doctor.parse_cpuinfo(CPUINFO)
    assert parsed["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert parsed["physical_cores"] == 2 and parsed["logical_cores"] == 3
    assert {"avx512f", "avx512_bf16", "amx_bf16", "amx_int8"} <= set(parsed["flags"])


def test_driver_compatibility_follows_the_cuda_major_minimums():
    assert doctor.driver_compatible("12.4", "550.54.14")
    assert not doctor.driver_compatible("12.1", "470.82.01")
    assert doctor.driver_compatible("11.8", "470.82.01")
    assert not doctor.driver_compatible("13.0", "575.57.08")


def test_disk_entry_for_a_path_not_yet_created_uses_its_parent(tmp_path):
    r = doctor.collect(data_dir=str(tmp_path / "a" / "b"), runs_dir=str(tmp_path / "runs"))
    assert r["disk"][0]["checked"] == str(tmp_path) and r["disk"][0]["free_gb"] > 0


def test_uninstalled_frameworks_are_listed_as_such():
    names = {f["name"]: f for f in doctor.collect()["frameworks"]}
    assert names["torch"]["installed"] and names["torch"]["version"]
    assert all(f["installed"] == (f["version"] is not None) for f in names.values())


def test_render_ends_with_the_verdict():
    r = doctor.collect()
    text = doctor.render(r)
    assert text.splitlines()[-1] == f"verdict: {r['verdict']}"
    for section in ("Software", "CPU", "Memory and disk", "CUDA"):
        assert section in text
