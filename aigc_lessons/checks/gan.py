"""Checks for the GAN chapters' coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, describe_mismatch, describe_shape, report, run_learner_code


def check_discriminator_loss(learner_fn, exercise: str = "first-gan-ex-2") -> CheckResult:
    """Check a learner's ``discriminator_loss(real_logits, fake_logits)`` against the book's.

    The expected value is ``-mean(log sigmoid(real)) - mean(log(1 - sigmoid(fake)))``.
    """
    from ..losses import discriminator_loss

    cases = {
        "equal logits (D unsure)": (torch.zeros(4), torch.zeros(4)),
        "confident and right": (torch.full((3,), 5.0), torch.full((3,), -5.0)),
        "mixed logits": (torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.5, 0.0])),
        "very large logits (tests numerical stability)": (torch.tensor([80.0]), torch.tensor([-80.0, 90.0])),
    }
    problems: list[str] = []
    passed = 0
    for label, (real, fake) in cases.items():
        value, error = run_learner_code(learner_fn, real.clone(), fake.clone())
        if error:
            problems.append(f"{label}: {error}")
            continue
        if value is None:
            problems.append(f"{label}: the function returned None; write its body (it should return a tensor)")
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"{label}: expected a torch.Tensor, got {type(value).__name__}")
            continue
        shape_problem = describe_shape(f"{label}: result", value.shape, ())
        if shape_problem:
            problems.append(shape_problem + " (average over the batch, so the loss is a single number)")
            continue
        mismatch = describe_mismatch(label, float(value), float(discriminator_loss(real, fake)))
        if mismatch:
            if not torch.isfinite(value):
                mismatch += "; use binary_cross_entropy_with_logits instead of log(sigmoid(...))"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
