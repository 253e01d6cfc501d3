"""The background sampler and `dlbox env gpu`: GPU values exactly as a (fake) NVML reports them, CPU and RAM
only with one note where there is no NVIDIA, and scalars that TensorBoard reads back."""

from __future__ import annotations

import sys
import time
import types
from types import SimpleNamespace

import pytest

from dlbox.engine import monitor
from dlbox.engine.nvml import GIB
from tests.conftest import run_main


class NVMLError(Exception):
    pass


def fake_pynvml(gpus: int = 2, init_error: str | None = None) -> types.ModuleType:
    """The calls dlbox makes, with values that differ per GPU; GPU 1 cannot report its power."""
    nv = types.ModuleType("pynvml")
    nv.NVML_TEMPERATURE_GPU, nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM = 0, 1, 2
    nv.calls = {"init": 0, "shutdown": 0}

    def init():
        if init_error:
            raise NVMLError(init_error)
        nv.calls["init"] += 1

    def power(h):
        if h == 1:
            raise NVMLError("Not Supported")
        return 612_345  # milliwatts

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: nv.calls.__setitem__("shutdown", nv.calls["shutdown"] + 1)
    nv.nvmlDeviceGetCount = lambda: gpus
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda h: b"NVIDIA H200"
    nv.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=87 + h, memory=41 + h)
    nv.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=(10 + h) * GIB, total=141 * GIB, free=0)
    nv.nvmlDeviceGetPowerUsage = power
    nv.nvmlDeviceGetTemperature = lambda h, kind: 55 + h if kind == 0 else -1
    nv.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 3201}[kind] - h
    return nv


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    monkeypatch.setattr(monitor, "_noted", set())


def _records(n: int = 2, **kw) -> tuple[list[dict], list[str]]:
    records, notes = [], []
    with monitor.Monitor(records.append, interval_s=0.02, note=notes.append, **kw):
        deadline = time.monotonic() + 10
        while len(records) < n and time.monotonic() < deadline:
            time.sleep(0.01)
    return records, notes


def test_gpu_values_are_the_fakes(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    records, notes = _records()
    assert notes == [] and len(records) >= 3  # two in the loop, one more when it stops
    r = records[-1]
    assert (r["gpu0/util"], r["gpu1/util"], r["gpu0/mem_util"], r["gpu1/mem_util"]) == (87, 88, 41, 42)
    assert (r["gpu0/mem_used_gb"], r["gpu1/mem_used_gb"], r["gpu1/mem_total_gb"]) == (10, 11, 141)
    assert r["gpu0/power_w"] == pytest.approx(612.345)
    assert (r["gpu0/temp_c"], r["gpu1/temp_c"], r["gpu0/sm_clock_mhz"], r["gpu1/mem_clock_mhz"]) == (55, 56, 1980, 3200)
    assert "system/cpu_percent" in r and r["system/ram_gb"] > 0
    assert nv.calls == {"init": 1, "shutdown": 1}


def test_a_field_a_gpu_cannot_report_is_left_out_not_the_others(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    r = _records(1)[0][-1]
    assert "gpu0/power_w" in r and "gpu1/power_w" not in r and r["gpu1/util"] == 88


@pytest.mark.parametrize("nvml", [None, fake_pynvml(init_error="NVML Shared Library Not Found")],
                         ids=["no-pynvml", "no-driver"])  # fmt: skip
def test_without_nvidia_one_note_and_cpu_ram_only(monkeypatch, nvml):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # None: `import pynvml` raises ImportError
    records, notes = _records()
    again, notes_again = _records()
    assert len(notes) == 1 and "GPU monitoring off" in notes[0] and notes_again == []  # once per process
    keys = set().union(*records, *again)
    assert keys == {"system/cpu_percent", "system/ram_gb", "system/ram_percent", "system/proc_cpu_percent",
                    "system/proc_rss_gb"}  # fmt: skip
    assert all(0 <= r["system/cpu_percent"] <= 100 and r["system/proc_rss_gb"] > 0 for r in records)


def test_a_failing_callback_is_noted_once_and_never_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    notes = []
    m = monitor.Monitor(lambda r: 1 / 0, interval_s=0.01, note=notes.append).start()
    time.sleep(0.1)
    m.stop()
    assert len([n for n in notes if "ZeroDivisionError" in n]) == 1 and m.samples == 0


def test_env_gpu_without_a_gpu_is_one_plain_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    for args in (["env", "gpu"], ["env", "gpu", "--watch", "--interval", "0.01"]):
        res = run_main(capsys, *args)
        assert res.returncode == 0 and res.stderr == ""
        assert res.stdout.count("\n") == 1 and res.stdout.startswith("no NVIDIA GPU")


def test_env_gpu_prints_a_dmon_table_of_the_fake(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    lines = run_main(capsys, "env", "gpu", "--watch", "--count", "2", "--interval", "0.01").stdout.splitlines()
    assert lines[0].split() == ["#", "gpu", "pwr", "gtemp", "sm", "mem", "fb", "fbtot", "mclk", "pclk"]
    rows = [ln.split() for ln in lines if not ln.startswith("#")]
    assert rows == [["0", "612", "55", "87", "41", "10240", "144384", "3201", "1980"],
                    ["1", "-", "56", "88", "42", "11264", "144384", "3200", "1979"]] * 2  # fmt: skip
    doc = run_main(capsys, "env", "gpu", "--json").json()
    assert [g["util"] for g in doc["gpus"]] == [87, 88] and doc["gpus"][0]["name"] == "NVIDIA H200"


def test_cpu_and_ram_scalars_reach_tensorboard(monkeypatch, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dlbox.engine.metrics import MetricsLogger, read_jsonl

    monkeypatch.setitem(sys.modules, "pynvml", None)
    logger = MetricsLogger(tmp_path)
    steps = iter(range(1, 1000))
    with monitor.Monitor(lambda r: logger.log({"step": next(steps), **r}), interval_s=0.05, note=lambda m: None):
        time.sleep(0.3)
    logger.close()
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert {"system/cpu_percent", "system/ram_gb"} <= set(acc.Tags()["scalars"])
    ram = acc.Scalars("system/ram_gb")
    assert len(ram) == len(lines) >= 2 and [e.step for e in ram] == [r["step"] for r in lines]
    assert [e.value for e in ram] == pytest.approx([r["system/ram_gb"] for r in lines], rel=1e-6)
