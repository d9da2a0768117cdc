"""Checks for the preferences chapter's coding exercises (``book/text/preferences.ipynb``).

* :func:`check_bradley_terry_loss`: ``loss(chosen_rewards, rejected_rewards)``, the mean of
  ``-log sigmoid(r_w - r_l)``;
* :func:`check_dpo_loss`: ``loss(policy_chosen, policy_rejected, reference_chosen,
  reference_rejected, beta)``, the mean of ``-log sigmoid(beta [(pi_w - ref_w) - (pi_l - ref_l)])``
  on log-probabilities.

Each check compares the learner's value with the closed form on hand-made cases, including
one with gaps of 1000 that a naive ``log(sigmoid(...))`` turns into ``inf``, and names the
usual mistakes (the arguments swapped, a sum instead of a mean, ``beta`` or the reference
left out).
"""

from __future__ import annotations

import math

from . import CheckResult, call_learner, describe_mismatch, report


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))  # log(1 + e^x), stable


def _cases_bradley_terry():
    return {
        "equal rewards [0, 0] vs [0, 0]": ([0.0, 0.0], [0.0, 0.0]),
        "chosen ahead: [2, 0.5] vs [0, 1]": ([2.0, 0.5], [0.0, 1.0]),
        "three pairs [1, -1, 3] vs [0, 2, -2]": ([1.0, -1.0, 3.0], [0.0, 2.0, -2.0]),
        "huge gaps [-1000, 1000] vs [1000, -1000]": ([-1000.0, 1000.0], [1000.0, -1000.0]),
    }


def check_bradley_terry_loss(learner_fn, exercise: str = "preferences-ex-2") -> CheckResult:
    """Check ``learner_fn(chosen, rejected)`` returns ``mean(-log sigmoid(chosen - rejected))``."""
    import torch

    problems: list[str] = []
    passed = 0
    cases = _cases_bradley_terry()
    for label, (chosen, rejected) in cases.items():
        value, problem = call_learner(learner_fn, label, torch.tensor(chosen),
                                      torch.tensor(rejected), returns="a 0-d tensor",
                                      expect_number=True)
        if problem:
            problems.append(problem)
            continue
        gaps = [w - l for w, l in zip(chosen, rejected)]
        expected = sum(_softplus(-gap) for gap in gaps) / len(gaps)
        mismatch = describe_mismatch(f"{label}: loss", value, expected)
        if mismatch:
            swapped = sum(_softplus(gap) for gap in gaps) / len(gaps)
            if math.isclose(value, swapped, rel_tol=1e-4):
                mismatch += (" (chosen and rejected swapped: the loss is small when the chosen "
                             "reward is the larger)")
            elif math.isclose(value, expected * len(gaps), rel_tol=1e-4) and len(gaps) > 1:
                mismatch += " (summed over the pairs: take the mean)"
            elif not math.isfinite(value):
                mismatch += (" (log(sigmoid(x)) overflows for large gaps: use "
                             "-F.softplus(-x) or F.logsigmoid(x))")
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_dpo_loss(learner_fn, exercise: str = "preferences-ex-3") -> CheckResult:
    """Check ``learner_fn(pi_w, pi_l, ref_w, ref_l, beta)`` returns the DPO loss (a mean over pairs)."""
    import torch

    cases = {
        "policy equal to the reference": ([-5.0, -7.0], [-6.0, -4.0], [-5.0, -7.0],
                                          [-6.0, -4.0], 0.1),
        "chosen made likelier, beta 0.5": ([-9.0, -3.0], [-10.0, -8.0], [-10.0, -4.0],
                                           [-10.0, -6.0], 0.5),
        "three pairs, beta 2": ([-1.0, -2.0, -3.0], [-2.0, -1.0, -5.0], [-1.5, -1.0, -2.0],
                                [-1.0, -1.5, -4.0], 2.0),
        "huge log-ratios, beta 1": ([-2000.0], [-10.0], [-10.0], [-10.0], 1.0),
    }
    problems: list[str] = []
    passed = 0
    for label, (pi_w, pi_l, ref_w, ref_l, beta) in cases.items():
        value, problem = call_learner(learner_fn, label, torch.tensor(pi_w), torch.tensor(pi_l),
                                      torch.tensor(ref_w), torch.tensor(ref_l), beta,
                                      returns="a 0-d tensor", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        margins = [beta * ((a - c) - (b - d)) for a, b, c, d in zip(pi_w, pi_l, ref_w, ref_l)]
        expected = sum(_softplus(-m) for m in margins) / len(margins)
        mismatch = describe_mismatch(f"{label}: loss", value, expected)
        if mismatch:
            hints = {
                "chosen and rejected swapped": [_softplus(m) for m in margins],
                "beta left out": [_softplus(-m / beta) for m in margins],
                "the reference log-probabilities left out":
                    [_softplus(-beta * (a - b)) for a, b in zip(pi_w, pi_l)],
                "summed over the pairs instead of the mean":
                    [_softplus(-m) * len(margins) for m in margins],
            }
            for hint, values in hints.items():
                if math.isclose(value, sum(values) / len(values), rel_tol=1e-4) \
                        and not math.isclose(value, expected, rel_tol=1e-4):
                    mismatch += f" ({hint}?)"
                    break
            else:
                if not math.isfinite(value):
                    mismatch += " (an overflow: write -log sigmoid(x) as F.softplus(-x))"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
