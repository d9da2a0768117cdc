"""The distributed-training chapter's exercise checks, and the ring all-reduce they compare with."""

from __future__ import annotations

import torch

from aigc_lessons.checks.distributed import (
    check_global_mean_gradient,
    check_ring_all_reduce,
    check_shard,
    ring_all_reduce,
)
from aigc_lessons.runs.distributed import ShardedBatches


def test_ring_all_reduce_sums_and_sends_2_n_minus_1_over_n():
    for count in (1, 2, 3, 7):
        tensors = [torch.randn(4 * count) for _ in range(count)]
        results, sent = ring_all_reduce([t.clone() for t in tensors])
        total = torch.stack(tensors).sum(0)
        assert all(torch.allclose(r, total, atol=1e-5) for r in results)
        assert sent == [2 * (count - 1) * 4] * count  # 2 (N - 1) / N of 4N elements
    assert all(torch.equal(a, b) for a, b in zip(tensors, [t.clone() for t in tensors]))  # inputs unchanged


def _shard(batch, rank, world_size):
    if len(batch) % world_size:
        raise ValueError("uneven")
    size = len(batch) // world_size
    return batch[rank * size : (rank + 1) * size]


def test_shard_check():
    assert check_shard(_shard).passed
    # the package's sharding of one global batch is the same slice
    batch = torch.arange(12.0)
    shards = [next(iter(ShardedBatches(batch, batch_size=4, rank=r, world_size=3, shuffle=False)))[0]
              for r in range(3)]
    assert all(torch.equal(s, _shard(batch, r, 3)) for r, s in enumerate(shards))
    strided = check_shard(lambda b, r, w: _shard(b, 0, 1)[r::w] if len(b) % w == 0 else _shard(b, r, w))
    assert not strided.passed and "DistributedSampler" in " ".join(strided.messages)
    silent = check_shard(lambda b, r, w: b[r * (len(b) // w) : (r + 1) * (len(b) // w)])
    assert not silent.passed and "should raise ValueError" in " ".join(silent.messages) and silent.score > 0
    assert check_shard(lambda b, r, w: None).status == "not attempted"


def test_ring_all_reduce_check():
    assert check_ring_all_reduce(ring_all_reduce).passed

    def naive(tensors):
        total = torch.stack(tensors).sum(0)
        return [total.clone() for _ in tensors], [(len(tensors) - 1) * len(tensors[0])] * len(tensors)

    result = check_ring_all_reduce(naive)
    assert not result.passed and "naive all-reduce" in " ".join(result.messages)
    wrong_sum = check_ring_all_reduce(lambda ts: ring_all_reduce(ts[:1] * len(ts)))
    assert not wrong_sum.passed and "sum of all" in " ".join(wrong_sum.messages)
    assert check_ring_all_reduce(lambda ts: None).status == "not attempted"


def test_global_mean_gradient_check():
    def weighted(gradients, counts):
        weights = torch.tensor(counts, dtype=torch.float32)
        return (torch.stack(gradients) * weights[:, None]).sum(0) / weights.sum()

    assert check_global_mean_gradient(weighted).passed
    plain = check_global_mean_gradient(lambda gradients, counts: torch.stack(gradients).mean(0))
    assert not plain.passed and "what DDP computes" in " ".join(plain.messages)
    assert 0 < plain.score < 1  # equal counts and one rank are right with the plain mean
    assert check_global_mean_gradient(lambda g, c: None).status == "not attempted"
