"""Checks for the serving chapter's coding exercises (``book/building/serving.ipynb``)."""

from __future__ import annotations

import math

from . import CheckResult, call_learner, describe_mismatch, report


def nearest_rank(latencies: list[float], q: float) -> float:
    """The ``q``-th percentile by nearest rank: the smallest value with at least q% at or below it.

    Example:
        >>> nearest_rank([40.0, 10.0, 20.0, 30.0], 50)
        20.0
    """
    ordered = sorted(latencies)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1])


def plan_batches_reference(sizes: list[int], max_items: int) -> list[list[int]]:
    """First come, first served: each batch takes requests in order until the next does not fit."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if current and total + size > max_items:
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += size
    if current:
        batches.append(current)
    return batches


def check_latency_percentiles(learner_fn, exercise: str = "serving-ex-2") -> CheckResult:
    """Check ``learner_fn(latencies_ms)`` returns ``{"p50": ..., "p95": ..., "p99": ...}`` by nearest rank."""
    cases = {
        "ten values 1..10": [float(v) for v in range(10, 0, -1)],
        "one value": [7.5],
        "a slow tail": [5.0] * 97 + [100.0, 200.0, 300.0],
        "two hundred values": [float((37 * i) % 200) for i in range(200)],
    }
    problems: list[str] = []
    passed = 0
    for label, latencies in cases.items():
        value, problem = call_learner(learner_fn, label, list(latencies), returns="a dict with p50, p95, p99")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, dict) or not {"p50", "p95", "p99"} <= set(value):
            problems.append(f"{label}: expected a dict with keys p50, p95, p99, got {value!r:.80}")
            continue
        wrong = []
        for key, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            expected = nearest_rank(latencies, q)
            mismatch = describe_mismatch(f"{label}: {key}", float(value[key]), expected)
            if mismatch:
                ordered = sorted(latencies)
                if float(value[key]) == float(sorted(latencies, reverse=True)[
                        max(1, math.ceil(q / 100 * len(ordered))) - 1]):
                    mismatch += " (counted from the slowest end: sort in increasing order)"
                wrong.append(mismatch)
        if wrong:
            problems.extend(wrong)
        else:
            passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_plan_batches(learner_fn, exercise: str = "serving-ex-3") -> CheckResult:
    """Check ``learner_fn(sizes, max_items)`` packs requests in arrival order, never over ``max_items``."""
    cases = [([1, 1, 1, 1], 2), ([64, 64, 1, 64], 128), ([3, 5, 2, 7, 1, 1], 8), ([10], 10), ([], 4),
             ([4, 1, 4, 1, 4], 5)]
    problems: list[str] = []
    passed = 0
    for sizes, max_items in cases:
        label = f"sizes {sizes}, max_items {max_items}"
        value, problem = call_learner(learner_fn, label, list(sizes), max_items, returns="a list of lists")
        if problem:
            problems.append(problem)
            continue
        expected = plan_batches_reference(sizes, max_items)
        try:
            got = [list(map(int, batch)) for batch in value]
        except (TypeError, ValueError):
            problems.append(f"{label}: expected a list of lists of request indexes, got {value!r:.80}")
            continue
        if got == expected:
            passed += 1
            continue
        flat = [i for batch in got for i in batch]
        if sorted(flat) != list(range(len(sizes))):
            problems.append(f"{label}: every request must be in exactly one batch; got {got}")
        elif flat != list(range(len(sizes))):
            problems.append(f"{label}: requests were reordered ({got}); a fair queue serves them in "
                            "arrival order, or a large request could wait forever")
        elif any(sum(sizes[i] for i in batch) > max_items for batch in got):
            problems.append(f"{label}: a batch holds more than {max_items} images: {got}")
        else:
            problems.append(f"{label}: expected {expected} (close a batch only when the next request "
                            f"does not fit), got {got}")
    return report(exercise, problems, partial=passed / len(cases))
