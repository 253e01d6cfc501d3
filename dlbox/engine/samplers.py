"""Which samples each rank trains on, in which order: resumable, sharded, optionally bucketed by length.

Every training sampler here depends only on (seed, epoch), so a run resumed mid-epoch can skip the batches it
already trained on and see exactly what the uninterrupted run would have seen, on every rank."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler, Sampler

from dlbox.engine.distributed import DistContext


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose order depends only on (seed, epoch), and which can skip the first batches
    of an epoch. A last batch of one sample is left out (BatchNorm cannot train on one value per channel);
    the shuffle leaves out another sample each epoch, and the count is the same on every rank."""

    def __init__(self, dataset, ctx: DistContext, batch_size: int, shuffle: bool, seed: int):
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        self.skip = 0  # samples
        n = self.num_samples
        self.kept = n - 1 if n > 1 and n % batch_size == 1 else n  # samples per epoch

    def start(self, epoch: int, skip_batches: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip_batches * self.batch_size

    def batches_per_epoch(self) -> int:
        return math.ceil(self.kept / self.batch_size)

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip : self.kept])

    def __len__(self) -> int:
        return max(self.kept - self.skip, 0)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of samples of similar length (utterances of similar duration), so little of a batch is padding.

    Per epoch: shuffle all indices with (seed, epoch); cut them into pools of ``pool_batches`` batches; sort each
    pool by length and cut it into batches (a last batch of one sample joins the one before it: BatchNorm cannot
    train on it); shuffle the batch order. Pools keep the epoch random (a global sort
    would give every epoch the same batches), sorting inside a pool keeps the padding low. Ranks take every
    world_size-th batch, the list first padded with its own first batches so every rank runs the same number
    of steps (DDP needs that, as DistributedSampler pads samples)."""

    def __init__(self, lengths: Sequence[float], batch_size: int, ctx: DistContext, seed: int,
                 pool_batches: int = 50):  # fmt: skip
        if len(lengths) == 0:
            raise ValueError("no samples to batch")
        self.lengths = torch.as_tensor([float(x) for x in lengths], dtype=torch.float64)
        self.batch_size, self.seed, self.pool = batch_size, seed, pool_batches * batch_size
        self.rank, self.world_size = ctx.rank, ctx.world_size
        self.epoch, self.skip = 0, 0  # skip: batches

    def start(self, epoch: int, skip_batches: int) -> None:
        self.epoch, self.skip = epoch, skip_batches

    def _all_batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            # Stable sort: ties keep the shuffled order, so equal lengths still mix between epochs.
            pool = pool[torch.sort(self.lengths[pool], stable=True).indices]
            batches += [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:  # a batch of one (BatchNorm): joins the one before it
            batches[-2] = batches[-2] + batches.pop()
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        per_rank = math.ceil(len(batches) / self.world_size)
        padded = (batches * math.ceil(per_rank * self.world_size / len(batches)))[: per_rank * self.world_size]
        return padded[self.rank :: self.world_size]

    def batches_per_epoch(self) -> int:
        n = len(self.lengths)  # every pool is full but the last; each gives ceil(size / batch) batches
        full, rest = divmod(n, self.pool)
        total = full * math.ceil(self.pool / self.batch_size) + math.ceil(rest / self.batch_size)
        total -= 1 if total > 1 and rest % self.batch_size == 1 else 0  # a batch of one joined the one before it
        return math.ceil(total / self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._all_batches()[self.skip :])

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.skip


class ShardSampler(Sampler[int]):
    """Evaluation sharding without padding, so metrics over all ranks count every sample exactly once."""

    def __init__(self, n: int, ctx: DistContext):
        self.indices = list(range(ctx.rank, n, ctx.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
