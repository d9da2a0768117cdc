"""Checks for the evaluation chapter's coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, report


def check_inception_score(learner_fn, exercise: str = "evaluation-ex-2") -> CheckResult:
    """Check ``learner_fn(probabilities)`` = ``exp(mean_x KL(p(y|x) || p(y)))`` for rows of class probabilities."""
    from ..metrics import inception_score_from_probabilities

    mixed = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]])
    cases = {
        "confident and balanced (one-hot rows, every class once): the maximum, 10": torch.eye(10),
        "undecided (every row uniform): the minimum, 1": torch.full((6, 10), 0.1),
        "confident but always class 3 (no diversity): 1": torch.eye(10)[[3] * 8],
        "a general 4 x 3 case": mixed,
    }
    problems: list[str] = []
    passed = 0
    for label, probabilities in cases.items():
        value, problem = call_learner(learner_fn, label, probabilities.clone(), returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = inception_score_from_probabilities(probabilities)
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-4, abs_tol=1e-6)
        if mismatch:
            hint = ""
            if value != value:  # NaN
                hint = (" (a 0 * log 0 term gave NaN: count 0 log 0 as 0, for example by clamping p(y|x) "
                        "and p(y) to at least 1e-12 before taking logs)")
            elif abs(value - torch.log(torch.tensor(expected)).item()) < 1e-4:
                hint = " (this is the log of the score: apply exp to the mean KL)"
            elif "no diversity" in label:
                hint = " (p(y) must be the mean of the rows over the batch, not a uniform distribution)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
