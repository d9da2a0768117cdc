"""The serving chapter's exercise checks: right answers pass, typical mistakes get their hint."""

from __future__ import annotations

import math

from aigc_lessons.checks.serving import (
    check_latency_percentiles,
    check_plan_batches,
    nearest_rank,
    plan_batches_reference,
)


def _percentiles(latencies):
    ordered = sorted(latencies)
    return {f"p{q}": ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] for q in (50, 95, 99)}


def test_nearest_rank_known_answers():
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert nearest_rank([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert [nearest_rank(values, q) for q in (50, 95, 99)] == [50.0, 95.0, 99.0]


def test_percentiles_check_passes_a_correct_answer_and_explains_a_reversed_sort():
    assert check_latency_percentiles(_percentiles).score == 1.0

    def reversed_sort(latencies):
        ordered = sorted(latencies, reverse=True)
        return {f"p{q}": ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] for q in (50, 95, 99)}

    result = check_latency_percentiles(reversed_sort)
    assert result.score < 1.0 and any("slowest end" in m for m in result.messages), result.messages


def test_percentiles_check_handles_none_and_exceptions():
    assert check_latency_percentiles(lambda latencies: None).score == 0.0
    assert check_latency_percentiles(lambda latencies: 1 / 0).score == 0.0


def test_plan_batches_reference_known_answers():
    assert plan_batches_reference([1, 1, 1, 1], 2) == [[0, 1], [2, 3]]
    assert plan_batches_reference([64, 64, 1, 64], 128) == [[0, 1], [2, 3]]
    assert plan_batches_reference([], 4) == []


def test_plan_batches_check_passes_the_reference_and_flags_reordering():
    assert check_plan_batches(plan_batches_reference).score == 1.0

    def largest_first(sizes, max_items):
        order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
        return plan_batches_reference([sizes[i] for i in order], max_items) and [
            [order[i] for i in batch] for batch in plan_batches_reference([sizes[i] for i in order], max_items)]

    result = check_plan_batches(largest_first)
    assert result.score < 1.0 and any("reordered" in m for m in result.messages), result.messages
    assert check_plan_batches(lambda sizes, max_items: [[i] for i in range(len(sizes))]).score < 1.0
