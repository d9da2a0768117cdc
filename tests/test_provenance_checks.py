"""The provenance chapter's self-checks accept the reference solutions and explain typical mistakes."""

import math

import numpy as np

from aigc_lessons.checks.provenance import check_auc_by_pairs, check_normalised_correlation, check_threshold


def reference_threshold(scores, rate):
    scores = np.sort(np.asarray(scores))
    return float(scores[math.ceil((1 - rate) * len(scores) - 1e-9) - 1])


def reference_correlation(values, pattern):
    centred = values - values.mean(axis=1, keepdims=True)
    reference = pattern - pattern.mean()
    return centred @ reference / (np.linalg.norm(centred, axis=1) * np.linalg.norm(reference))


def reference_auc(real, generated):
    real, generated = np.asarray(real)[None, :], np.asarray(generated)[:, None]
    return float(((generated > real) + 0.5 * (generated == real)).mean())


def test_references_pass():
    for check, solution in ((check_threshold, reference_threshold),
                            (check_normalised_correlation, reference_correlation),
                            (check_auc_by_pairs, reference_auc)):
        result = check(solution)
        assert result.passed, str(result)


def test_placeholders_are_not_attempted():
    for check, arity in ((check_threshold, 2), (check_normalised_correlation, 2), (check_auc_by_pairs, 2)):
        result = check(lambda *args: None)
        assert result.status == "not attempted", str(result)


def test_threshold_mistakes_are_named():
    flipped = check_threshold(lambda scores, rate: float(np.quantile(scores, rate)))
    assert not flipped.passed and "(1 - rate) quantile" in str(flipped)
    too_high = check_threshold(lambda scores, rate: float(np.max(scores)) + 1)
    assert not too_high.passed and "larger than needed" in str(too_high)


def test_correlation_mistakes_are_named():
    dot = check_normalised_correlation(lambda values, pattern: values @ pattern)
    assert not dot.passed and "plain dot product" in str(dot)
    cosine = check_normalised_correlation(
        lambda values, pattern: values @ pattern / (np.linalg.norm(values, axis=1) * np.linalg.norm(pattern)))
    assert not cosine.passed and "subtract each row's mean" in str(cosine)


def test_auc_mistakes_are_named():
    flipped = check_auc_by_pairs(lambda real, generated: 1 - reference_auc(real, generated))
    assert not flipped.passed and "1 - AUC" in str(flipped)
    strict = check_auc_by_pairs(
        lambda real, generated: float((np.asarray(generated)[:, None] > np.asarray(real)[None, :]).mean()))
    assert not strict.passed and "one half" in str(strict)
    crash = check_auc_by_pairs(lambda real, generated: 1 / 0)
    assert "ZeroDivisionError" in str(crash) and crash.score == 0
