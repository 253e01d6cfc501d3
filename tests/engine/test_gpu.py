"""On a CUDA GPU (skipped elsewhere, with the reason): training through the engine learns, a CUDA training
step matches the CPU's, bf16 autocast matches fp32 loosely, and NVML sees the GPU that torch uses."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from tests.conftest import run_cli

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lenet_learns_digits_on_cuda_through_the_engine(tmp_path, precision):
    res = run_cli("env", "test", "--framework", "torch", "--device", "cuda", "--precision", precision,
                  "--epochs", "8", "--seed", "0", "--runs-dir", tmp_path, "--name", precision, "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    row = res.json()["results"][0]
    assert row["status"] == "ok" and row["accuracy"] >= 0.9, row  # 8 epochs on CPU: ~0.95
    assert "cuda" in (tmp_path / "env-test" / precision / "config.yaml").read_text()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def test_cuda_training_steps_match_the_cpus():
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 against fp32 (TF32 would round to 10 bits)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 64, generator=g), torch.randint(0, 10, (256,), generator=g)
    models = {}
    for device in ("cpu", "cuda"):
        model = _mlp().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(20):
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        models[device] = model
    for p_cpu, p_cuda in zip(models["cpu"].parameters(), models["cuda"].parameters(), strict=True):
        assert p_cuda.is_cuda
        torch.testing.assert_close(p_cuda.cpu(), p_cpu, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_on_cuda_matches_fp32_loosely():
    import torchvision

    from dlbox.engine.device import autocast

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=100).cuda().eval().to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 96, 96, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x)
        with autocast(torch.device("cuda"), "bf16"):
            low = model(x)
    assert ref.dtype == torch.float32 and low.dtype == torch.bfloat16  # autocast really ran in bf16
    rel = (low.float() - ref).norm() / ref.norm()
    assert rel < 0.05, rel  # bf16 keeps 8 bits of mantissa: ~1% after 18 layers


def test_nvml_sees_the_gpu_torch_uses_and_the_monitor_records_it(monkeypatch):
    from dlbox.engine.nvml import Nvml
    from dlbox.env import monitor

    with Nvml.open() as nv:
        samples = nv.sample()
    assert len(samples) >= torch.cuda.device_count()  # NVML ignores CUDA_VISIBLE_DEVICES
    assert torch.cuda.get_device_name(0) in [s.name for s in samples]
    assert all(s.mem_total_gb > 1 and s.sm_clock_mhz > 0 and s.temp_c > 0 for s in samples)
    monkeypatch.setattr(monitor, "_noted", set())
    records, notes = [], []
    x = torch.randn(4096, 4096, device="cuda")
    with monitor.Monitor(records.append, interval_s=0.2, note=notes.append):
        t = time.monotonic()
        while time.monotonic() - t < 1.5:
            x = (x @ x).clamp_(-1, 1)  # keep the GPU busy so utilisation is above 0
        torch.cuda.synchronize()
    assert notes == [] and len(records) >= 3
    assert max(r["gpu0/util"] for r in records) > 0 and records[-1]["gpu0/mem_used_gb"] > 0.05


def test_env_gpu_lists_every_gpu(capsys):
    from tests.conftest import run_main

    doc = run_main(capsys, "env", "gpu", "--json").json()
    assert doc.get("note") is None and len(doc["gpus"]) >= torch.cuda.device_count()
    table = run_main(capsys, "env", "gpu").stdout.splitlines()
    assert len([ln for ln in table if not ln.startswith("#")]) == len(doc["gpus"])


def test_the_training_loop_never_waits_for_the_device_between_log_points(tmp_path):
    """CUDA's sync debug mode turns every synchronising call (a .item(), a float() of a device tensor, a
    blocking copy) into an error: one epoch of LeNet through the engine, from the second step on, must raise
    none. Epoch-end metrics are read after the loop, outside the guarded steps."""
    from dlbox.engine import trainer
    from dlbox.env.config import IntegrityConfig
    from dlbox.env.integrity import LeNetTask

    class Guarded(LeNetTask):
        steps = 0

        def train_step(self, model, batch):
            Guarded.steps += 1
            torch.cuda.set_sync_debug_mode("error" if Guarded.steps > 1 else "default")
            return super().train_step(model, batch)

        def eval_step(self, model, batch):
            torch.cuda.set_sync_debug_mode("default")
            return super().eval_step(model, batch)

    cfg = IntegrityConfig(epochs=1, batch_size=64, device="cuda", runs_dir=str(tmp_path), monitor_interval=0)
    real_floats = trainer._floats

    def unguarded(sums):  # the epoch's one read of the sums
        torch.cuda.set_sync_debug_mode("default")
        return real_floats(sums)

    trainer._floats = unguarded
    try:
        result = trainer.fit(Guarded(cfg), cfg)
    finally:
        trainer._floats = real_floats
        torch.cuda.set_sync_debug_mode("default")
    assert Guarded.steps > 10 and result.last["val/accuracy"] > 0.2
