"""The privacy chapter's exercise checks: the reference solutions pass, typical mistakes get their hint."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from aigc_lessons.checks.privacy import (check_exponential_probabilities, check_gaussian_noise_scale,
                                         check_membership_auc, check_smallest_group)


def _probabilities(utilities, sensitivity, epsilon):
    logits = epsilon * np.asarray(utilities) / (2 * sensitivity)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def test_exponential_check_passes_the_solution_and_names_the_missing_two():
    assert check_exponential_probabilities(_probabilities).passed
    result = check_exponential_probabilities(lambda u, s, e: _probabilities(u, s, 2 * e))
    assert not result.passed and any("the 2 in exp" in problem for problem in result.messages)


def test_exponential_check_reports_overflow_and_unnormalised_output():
    def overflowing(utilities, sensitivity, epsilon):
        weights = np.exp(epsilon * np.asarray(utilities) / (2 * sensitivity))
        return weights / weights.sum()

    with np.errstate(over="ignore", invalid="ignore"):
        result = check_exponential_probabilities(overflowing)
    assert not result.passed and any("overflowed" in problem for problem in result.messages)
    assert 0 < result.score < 1  # the small cases pass
    with np.errstate(over="ignore", invalid="ignore"):
        result = check_exponential_probabilities(lambda u, s, e: np.exp(e * np.asarray(u) / (2 * s)))
    assert any("sum to" in problem for problem in result.messages)


def test_exponential_check_handles_the_placeholder_and_exceptions():
    assert check_exponential_probabilities(lambda u, s, e: None).status == "not attempted"
    result = check_exponential_probabilities(lambda u, s, e: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in result.messages[0]


def _smallest(table, quasi):
    return min(Counter(tuple(row[key] for key in quasi) for row in table).values())


def test_smallest_group_check_passes_the_solution_and_explains_the_group_count():
    assert check_smallest_group(_smallest).passed
    result = check_smallest_group(lambda table, quasi: len({tuple(r[k] for k in quasi) for r in table}))
    assert not result.passed and any("number of groups" in problem for problem in result.messages)
    assert check_smallest_group(lambda table, quasi: None).status == "not attempted"


def _auc(member_losses, non_member_losses):
    members, others = np.asarray(member_losses)[:, None], np.asarray(non_member_losses)[None, :]
    return float(((members < others) + 0.5 * (members == others)).mean())


def test_membership_check_passes_the_solution_and_catches_the_flipped_sign():
    assert check_membership_auc(_auc).passed
    result = check_membership_auc(lambda m, n: 1 - _auc(m, n))
    assert not result.passed and any("1 - AUC" in problem for problem in result.messages)
    assert check_membership_auc(lambda m, n: None).status == "not attempted"


def _bisection_sigma(sensitivity, epsilon, delta):
    from aigc_lessons.privacy import gaussian_delta

    low, high = 1e-9, 100.0 * sensitivity
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if gaussian_delta(middle, sensitivity, epsilon) > delta else (low, middle)
    return high


def test_gaussian_check_passes_a_bisection_and_names_the_textbook_rule_and_a_broken_guarantee():
    assert check_gaussian_noise_scale(_bisection_sigma).passed
    textbook = check_gaussian_noise_scale(lambda s, e, d: s * math.sqrt(2 * math.log(1.25 / d)) / e)
    assert not textbook.passed and any("textbook rule" in message for message in textbook.messages)
    halved = check_gaussian_noise_scale(lambda s, e, d: _bisection_sigma(s, e, d) / 2)
    assert not halved.passed and any("not (ε, δ)-DP" in message for message in halved.messages)
    assert check_gaussian_noise_scale(lambda s, e, d: None).status == "not attempted"
