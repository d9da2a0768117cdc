"""Checks for the distributed-training chapter's coding exercises (``book/building/distributed.ipynb``)."""

from __future__ import annotations

from . import CheckResult, call_learner, report


def ring_all_reduce(tensors: list) -> tuple[list, list[int]]:
    """The sum of equal-length 1-D tensors by the ring algorithm, and the elements each rank sent.

    Each tensor (one per rank, length divisible by the number of ranks ``N``)
    is cut into ``N`` chunks. In ``N - 1`` steps of *reduce-scatter*, rank ``r``
    sends chunk ``(r - step) mod N`` to rank ``r + 1``, which adds it to its own;
    afterwards rank ``r`` holds the full sum of chunk ``(r + 1) mod N``. In
    ``N - 1`` steps of *all-gather* the finished chunks travel round the ring.
    Every rank sends ``2 (N - 1) / N`` times the tensor's length, whatever ``N``.

    Example:
        >>> import torch
        >>> results, sent = ring_all_reduce([torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0])])
        >>> results[1].tolist(), sent
        ([11.0, 22.0], [2, 2])
    """
    count = len(tensors)
    chunks = [list(t.clone().chunk(count)) for t in tensors]
    sent = [0] * count
    for step in range(count - 1):  # reduce-scatter
        # all messages of a step are computed before any is applied: the ranks send at the same time
        messages = [(rank, (rank - step) % count, chunks[rank][(rank - step) % count].clone())
                    for rank in range(count)]
        for rank, index, chunk in messages:
            chunks[(rank + 1) % count][index] += chunk
            sent[rank] += chunk.numel()
    for step in range(count - 1):  # all-gather
        messages = [(rank, (rank + 1 - step) % count, chunks[rank][(rank + 1 - step) % count].clone())
                    for rank in range(count)]
        for rank, index, chunk in messages:
            chunks[(rank + 1) % count][index] = chunk
            sent[rank] += chunk.numel()
    import torch

    return [torch.cat(parts) for parts in chunks], sent


def check_shard(learner_fn, exercise: str = "distributed-ex-1") -> CheckResult:
    """Check ``learner_fn(batch, rank, world_size)`` returns rank's contiguous slice of the global batch.

    Rank ``r`` of ``W`` gets rows ``r * n / W`` to ``(r + 1) * n / W`` of a batch of
    ``n`` rows; a batch that does not split evenly raises ``ValueError``.
    """
    import torch

    problems: list[str] = []
    cases = [(8, 2), (12, 3), (4, 4), (6, 1)]
    passed = 0
    for rows, world_size in cases:
        batch = torch.arange(rows * 2.0).reshape(rows, 2)
        shards = []
        for rank in range(world_size):
            label = f"a batch of {rows} rows, rank {rank} of {world_size}"
            value, problem = call_learner(learner_fn, label, batch.clone(), rank, world_size, expect_tensor=True)
            if problem:
                problems.append(problem)
                break
            shards.append(value)
        if len(shards) < world_size:
            continue
        size = rows // world_size
        wrong = [rank for rank, shard in enumerate(shards)
                 if not torch.equal(shard, batch[rank * size : (rank + 1) * size])]
        if wrong:
            shard = shards[wrong[0]]
            hint = ""
            if tuple(shard.shape) == (size, 2) and torch.equal(shard, batch[wrong[0]::world_size]):
                hint = (" (you took every W-th row, as DistributedSampler does: the same examples overall, "
                        "but this exercise asks for the contiguous slice)")
            elif tuple(shard.shape) != (size, 2):
                hint = f" (shape {tuple(shard.shape)}, expected {(size, 2)}: each rank gets n / W rows)"
            problems.append(f"a batch of {rows} rows in {world_size} shards: rank {wrong[0]}'s shard should "
                            f"be rows {wrong[0] * size} to {(wrong[0] + 1) * size - 1}{hint}")
            continue
        passed += 1
    try:
        uneven = learner_fn(torch.zeros(7, 2), 0, 2)
    except ValueError:
        passed += 1
    except Exception as error:  # the learner's code may raise anything
        problems.append(f"a batch of 7 rows in 2 shards should raise ValueError, got {type(error).__name__}")
    else:
        if uneven is not None:  # (None: the placeholder, already reported)
            problems.append("a batch of 7 rows in 2 shards should raise ValueError: unequal shards would make "
                            "the average of the ranks' mean gradients differ from the batch's mean gradient")
    return report(exercise, problems, partial=passed / (len(cases) + 1))


def check_ring_all_reduce(learner_fn, exercise: str = "distributed-ex-2") -> CheckResult:
    """Check ``learner_fn(tensors) -> (results, sent)``: each rank's sum, and the elements each rank sent.

    The reference is :func:`ring_all_reduce`: every result equals the sum, and
    every rank sends ``2 (N - 1) / N`` times the length of the tensor.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    problems: list[str] = []
    cases = [2, 3, 4, 5]
    passed = 0
    for count in cases:
        length = 6 * count
        tensors = [torch.randn(length, generator=generator) for _ in range(count)]
        label = f"{count} ranks, tensors of {length} elements"
        value, problem = call_learner(learner_fn, label, [t.clone() for t in tensors],
                                      returns="a pair (results, sent)")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(f"{label}: expected a pair (a list of {count} tensors, a list of {count} counts)")
            continue
        results, sent = value
        total = torch.stack(tensors).sum(0)
        if len(results) != count or not all(isinstance(r, torch.Tensor) and r.shape == total.shape
                                            and torch.allclose(r, total, atol=1e-5) for r in results):
            problems.append(f"{label}: every rank should end with the sum of all {count} tensors")
            continue
        expected = 2 * (count - 1) * length // count
        sent = [int(s) for s in sent]
        if sent != [expected] * count:
            hint = ""
            if sent and sent[0] == (count - 1) * length:
                hint = (" (each rank sent its whole tensor to every other rank: that is the naive all-reduce; "
                        "the ring sends one chunk of length / N per step, 2 (N - 1) steps)")
            problems.append(f"{label}: each rank should send {expected} elements, your ranks sent {sent}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_global_mean_gradient(learner_fn, exercise: str = "distributed-ex-3") -> CheckResult:
    """Check ``learner_fn(gradients, counts)`` returns the global batch's mean gradient from the ranks' means.

    Rank ``r`` averaged its gradient over ``counts[r]`` examples; the mean over
    the global batch weights each rank by its count: ``sum(n_r g_r) / sum(n_r)``.
    """
    import torch

    generator = torch.Generator().manual_seed(1)
    problems: list[str] = []
    cases = [[4, 4], [5, 3], [8, 1, 3], [2]]
    passed = 0
    for counts in cases:
        gradients = [torch.randn(3, generator=generator) for _ in counts]
        label = f"counts {counts}"
        value, problem = call_learner(learner_fn, label, [g.clone() for g in gradients], list(counts),
                                      expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        weights = torch.tensor(counts, dtype=torch.float32)
        expected = (torch.stack(gradients) * weights[:, None]).sum(0) / weights.sum()
        if value.shape != expected.shape or not torch.allclose(value, expected, atol=1e-6):
            hint = ""
            if value.shape == expected.shape and torch.allclose(value, torch.stack(gradients).mean(0), atol=1e-6):
                hint = (" (the plain mean of the ranks' gradients, which is what DDP computes: it is the batch's "
                        "mean gradient only when every rank has as many examples)")
            problems.append(f"{label}: got {[round(v, 4) for v in value.flatten().tolist()]}, expected "
                            f"{[round(v, 4) for v in expected.tolist()]}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
