"""Peak FLOP/s from the CPU's instruction sets and the GPU table; the suite's plan follows the hardware."""

from __future__ import annotations

import pytest
import torch

from dlbox.bench.runner import suite_paths
from dlbox.runtime.hardware import CpuInfo, cpu_peak, gpu_peak, parse_cpuinfo

SAPPHIRE_RAPIDS = "\n\n".join(
    f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    f"cpu MHz\t\t: 2000.000\nphysical id\t: 0\ncore id\t\t: {i}\n"
    "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8 avx512_fp16"
    for i in range(2)
)
ZEN3 = CpuInfo(model="AMD EPYC", flags={"avx", "avx2", "fma"}, physical_cores=2, mhz=2450.0)


def test_cpuinfo_gives_model_flags_cores_and_clock():
    info = parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert info.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert info.physical_cores == 2 and info.mhz == 2000.0
    assert info.has("amx_bf16", "amx_int8", "avx512f")
    assert info.isa == "AVX-512 + AVX512-BF16 + AVX512-VNNI + AVX512-FP16 + AMX (bf16, int8)"


@pytest.mark.parametrize(("precision", "per_cycle", "unit"), [
    ("fp32", 64, "AVX-512 FMA"), ("bf16", 1024, "AMX-BF16"), ("int8", 2048, "AMX-INT8"),
    ("fp16", 128, "AVX512-FP16"),
])  # fmt: skip
def test_sapphire_rapids_peak_is_cores_times_clock_times_the_widest_unit(precision, per_cycle, unit):
    peak = cpu_peak(parse_cpuinfo(SAPPHIRE_RAPIDS), precision, threads=2)
    assert peak.flops == pytest.approx(2 * 2.0e9 * per_cycle)
    assert unit in peak.basis and "2 core(s) x 2.00 GHz" in peak.basis


def test_avx2_cpu_has_no_native_bf16_and_falls_back_to_the_fp32_rate():
    fp32, bf16 = cpu_peak(ZEN3, "fp32", 2), cpu_peak(ZEN3, "bf16", 2)
    assert fp32.flops == pytest.approx(2 * 2.45e9 * 32)
    assert bf16.flops == fp32.flops and "no native bf16" in bf16.basis


def test_peak_counts_only_the_cores_the_threads_use():
    assert cpu_peak(ZEN3, "fp32", threads=1).flops == pytest.approx(
        cpu_peak(ZEN3, "fp32", threads=2).flops / 2
    )


def test_unknown_clock_gives_an_unknown_peak_with_the_reason():
    peak = cpu_peak(CpuInfo(model="x", flags={"avx2", "fma"}), "fp32", 1)
    assert peak.flops is None and "clock unknown" in peak.basis


@pytest.mark.parametrize(("name", "precision", "tflops"), [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4), ("NVIDIA H100 PCIe", "bf16", 756), ("NVIDIA H200", "fp16", 989.4),
    ("NVIDIA A100-SXM4-80GB", "fp32", 156), ("Tesla V100-SXM2-16GB", "fp16", 125),
    ("Tesla P100-PCIE-16GB", "fp32", 9.3),
    ("Tesla T4", "fp32", 8.1), ("NVIDIA L4", "bf16", 121), ("NVIDIA GeForce RTX 4090", "bf16", 165.2),
])  # fmt: skip
def test_gpu_peaks_come_from_the_datasheet_table(name, precision, tflops):
    # fp32 rows of GPUs with TF32 are measured against TF32 (cuDNN's default for fp32 convolutions)
    assert gpu_peak(name, precision, tf32=True).flops == pytest.approx(tflops * 1e12)


def test_gpu_without_a_figure_or_unknown_gpu_has_an_unknown_peak():
    assert gpu_peak("Tesla P100-PCIE-16GB", "bf16").flops is None
    unknown = gpu_peak("Imaginary GPU 9000", "fp32")
    assert unknown.flops is None and "not in dlbox's GPU table" in unknown.basis


def test_suite_skips_bf16_and_fp16_on_a_cpu_without_native_units_and_says_why():
    plan = {spec.label: reason for spec, reason in suite_paths(torch.device("cpu"), ZEN3)}
    assert "no native bf16" in plan["bf16 channels_last eager"]
    assert "no native bf16" in plan["bf16 channels_last compile"]
    assert "no fast kernels here" in plan["fp16 channels_last eager"]
    assert plan["fp32 NCHW eager"] is None and plan["onnxruntime int8"] is None


def test_suite_runs_bf16_on_a_cpu_with_amx():
    plan = {
        spec.label: reason
        for spec, reason in suite_paths(torch.device("cpu"), parse_cpuinfo(SAPPHIRE_RAPIDS))
    }
    assert plan["bf16 channels_last compile"] is None and plan["bf16 channels_last eager"] is None
    # AVX512-FP16 without AMX-FP16: CPU fp16 autocast had no fast kernels (minutes a ResNet-50 step)
    assert "no AMX-FP16" in plan["fp16 channels_last eager"]
