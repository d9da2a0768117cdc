"""Checks for the anomaly-detection chapter's coding exercise."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, report


def _reference_auc(scores: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    from ..metrics import roc_auc

    return roc_auc(scores, is_anomaly)[0]


def check_auc(learner_fn, exercise: str = "anomaly-ex-2") -> CheckResult:
    """Check ``learner_fn(scores, is_anomaly)`` = the AUC as a probability of correct ranking.

    The expected value is the fraction of (anomaly, normal) pairs in which the anomaly has
    the higher score, ties counting one half; it equals the area under the ROC curve
    (compared with :func:`aigc_lessons.metrics.roc_auc`).
    """
    generator = torch.Generator().manual_seed(0)
    random_labels = (torch.rand(300, generator=generator) < 0.2).long()
    random_labels[:2] = torch.tensor([0, 1])
    random_scores = torch.randn(300, generator=generator) + 0.8 * random_labels
    cases = {
        "perfect ranking (every anomaly scores higher)": (torch.tensor([0.1, 0.2, 0.3, 0.9, 1.5]),
                                                          torch.tensor([0, 0, 0, 1, 1])),
        "reversed ranking (every anomaly scores lower)": (torch.tensor([2.0, 3.0, 0.5, 0.1]),
                                                          torch.tensor([0, 0, 1, 1])),
        "the text's small example": (torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])),
        "ties (all scores equal)": (torch.ones(6), torch.tensor([1, 0, 0, 1, 0, 0])),
        "ties between some anomalies and normals": (torch.tensor([1.0, 1.0, 2.0, 0.0, 1.0]),
                                                    torch.tensor([1, 0, 1, 0, 0])),
        "300 random scores": (random_scores, random_labels),
    }
    problems: list[str] = []
    passed = 0
    for label, (scores, labels) in cases.items():
        value, problem = call_learner(learner_fn, label, scores.clone(), labels.clone(), returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = _reference_auc(scores, labels)
        mismatch = describe_mismatch(f"{label}: AUC", value, expected, rel_tol=0, abs_tol=1e-6)
        if mismatch:
            hint = ""
            if abs(value - (1 - expected)) < 1e-6 and abs(expected - 0.5) > 1e-6:
                hint = " (you get 1 - AUC: count the pairs where the *anomaly* has the higher score)"
            elif "ties" in label:
                hint = " (a tie between an anomaly and a normal example counts one half)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
