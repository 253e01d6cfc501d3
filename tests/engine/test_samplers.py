"""Training samplers: every sample once per epoch, the same steps on every rank, resumable, length buckets."""

from __future__ import annotations

import dataclasses
import random

import pytest

from dlbox.engine.distributed import DistContext
from dlbox.engine.samplers import BucketBatchSampler


def ctx(rank: int = 0, world: int = 1) -> DistContext:
    import torch

    return DistContext(rank=rank, world_size=world, local_rank=rank, local_world_size=world,
                       device=torch.device("cpu"))  # fmt: skip


_rng = random.Random(0)
LENGTHS = [_rng.uniform(1.0, 10.0) for _ in range(1000)]  # durations in seconds


def padding(batches: list[list[int]]) -> float:
    """The share of a padded batch that is padding, over all batches."""
    padded = sum(max(LENGTHS[i] for i in b) * len(b) for b in batches)
    return 1 - sum(LENGTHS[i] for b in batches for i in b) / padded


@pytest.mark.parametrize("n", [1000, 37, 5])
def test_every_sample_is_in_exactly_one_batch_per_epoch(n):
    s = BucketBatchSampler(LENGTHS[:n], batch_size=16, ctx=ctx(), seed=0, pool_batches=10)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert len(batches) == len(s) == s.batches_per_epoch()


def test_batches_of_similar_length_pad_far_less_than_random_batches():
    s = BucketBatchSampler(LENGTHS, batch_size=16, ctx=ctx(), seed=0)
    order = list(range(len(LENGTHS)))
    random.Random(1).shuffle(order)
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert padding(list(s)) < 0.05 < 0.3 < padding(random_batches)


def test_the_order_depends_on_seed_and_epoch_only():
    a, b = (BucketBatchSampler(LENGTHS, 16, ctx(), seed=0) for _ in range(2))
    a.start(epoch=3, skip_batches=0)
    b.start(epoch=3, skip_batches=0)
    assert list(a) == list(b)
    b.start(epoch=4, skip_batches=0)
    assert list(a) != list(b)


def test_a_resumed_epoch_skips_exactly_the_batches_already_run():
    s = BucketBatchSampler(LENGTHS, 16, ctx(), seed=0)
    s.start(epoch=2, skip_batches=0)
    whole = list(s)
    s.start(epoch=2, skip_batches=7)
    assert list(s) == whole[7:] and len(s) == len(whole) - 7


@pytest.mark.parametrize("n", [1000, 37])
def test_ranks_run_the_same_number_of_steps_and_cover_every_sample(n):
    parts = [list(BucketBatchSampler(LENGTHS[:n], 16, ctx(r, 3), seed=0, pool_batches=4)) for r in range(3)]
    assert len({len(p) for p in parts}) == 1  # DDP: the same number of steps everywhere
    assert all(len(p) == BucketBatchSampler(LENGTHS[:n], 16, ctx(0, 3), 0, 4).batches_per_epoch() for p in parts)
    assert {i for p in parts for b in p for i in b} == set(range(n))


def test_loader_workers_default_to_none_on_cpu_and_several_per_gpu(monkeypatch):
    import torch

    from dlbox.engine.config import EngineConfig
    from dlbox.engine.device import loader_workers

    gpu = dataclasses.replace(ctx(0, 2), device=torch.device("cuda", 0))
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert loader_workers(EngineConfig(), ctx()) == 0  # the CPU's cores already run torch's threads
    assert loader_workers(EngineConfig(), gpu) == 7  # 16 cores for 2 GPU processes, one each left to it
    assert loader_workers(EngineConfig(workers=3), gpu) == 3
