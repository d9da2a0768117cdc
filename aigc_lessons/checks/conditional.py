"""Checks for the conditional-generation chapter's coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, describe_shape, report, run_learner_code


def check_one_hot_concat(learner_fn, exercise: str = "conditional-ex-2") -> CheckResult:
    """Check ``learner_fn(z, labels, num_classes)`` = ``[z, one_hot(labels)]`` concatenated along dimension 1."""
    z = torch.arange(12.0).view(3, 4) / 10
    labels = torch.tensor([2, 0, 9])
    value, error = run_learner_code(learner_fn, z.clone(), labels.clone(), 10)
    if error:
        return report(exercise, [error])
    if value is None:
        return report(exercise, ["the function returned None; write its body (it should return a tensor)"])
    if not isinstance(value, torch.Tensor):
        return report(exercise, [f"expected a torch.Tensor, got {type(value).__name__}"])
    shape_problem = describe_shape("result", value.shape, (3, 14))
    if shape_problem:
        return report(exercise, [shape_problem + " (noise of 4 numbers plus a one-hot vector of 10, per example)"])
    problems = []
    if not torch.allclose(value[:, :4].float(), z):
        problems.append("the first 4 columns should be the noise z unchanged (put z first, then the one-hot label)")
    expected = torch.nn.functional.one_hot(labels, 10).float()
    if not torch.allclose(value[:, 4:].float(), expected):
        rows = [i for i in range(3) if not torch.allclose(value[i, 4:].float(), expected[i])]
        problems.append(f"the one-hot part is wrong in row(s) {rows}: label {int(labels[rows[0]])} should give a 1 "
                        f"in position {int(labels[rows[0]])} of the last 10 columns and 0 elsewhere")
    if value.dtype != torch.float32:
        problems.append(f"the result should be float32 (network inputs), got {value.dtype}; use .float()")
    return report(exercise, problems, partial=(2 - len(problems)) / 2 if len(problems) < 2 else 0.0)
