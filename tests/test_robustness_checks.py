"""The adversarial-robustness chapter's exercise checks: the reference passes, the usual mistakes are named."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from aigc_lessons.checks.robustness import check_fgsm, check_project


def _project(candidate, images, epsilon):
    return torch.min(torch.max(candidate, images - epsilon), images + epsilon).clamp(0, 1)


def _fgsm(model, images, labels, epsilon, sign=1.0, clamp=True, use_sign=True):
    images = images.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model(images), labels), images)
    step = gradient.sign() if use_sign else gradient
    out = images.detach() + sign * epsilon * step
    return out.clamp(0, 1) if clamp else out


def test_the_reference_solutions_pass():
    assert check_project(_project).passed
    assert check_fgsm(_fgsm).passed


def test_the_usual_projection_mistakes_are_named():
    no_range = check_project(lambda c, x, e: torch.min(torch.max(c, x - e), x + e))
    assert not no_range.passed and "[0, 1]" in str(no_range)
    no_ball = check_project(lambda c, x, e: c.clamp(0, 1))
    assert not no_ball.passed and "epsilon" in str(no_ball)
    rescaled = check_project(lambda c, x, e: (x + (c - x) * e / (c - x).abs().amax().clamp_min(e)).clamp(0, 1))
    assert not rescaled.passed and "nearest point" in str(rescaled)


def test_the_usual_fgsm_mistakes_are_named():
    descent = check_fgsm(lambda m, x, y, e: _fgsm(m, x, y, e, sign=-1.0))
    assert not descent.passed and "down the loss" in str(descent)
    unclamped = check_fgsm(lambda m, x, y, e: _fgsm(m, x, y, e, clamp=False))
    assert not unclamped.passed and "outside [0, 1]" in str(unclamped)
    raw_gradient = check_fgsm(lambda m, x, y, e: _fgsm(m, x, y, e, use_sign=False))
    assert not raw_gradient.passed and "sign of the gradient" in str(raw_gradient)


def test_a_placeholder_and_an_exception_are_reported():
    assert "not attempted" in str(check_fgsm(lambda m, x, y, e: None)).lower() or \
        not check_fgsm(lambda m, x, y, e: None).passed
    crashed = check_project(lambda c, x, e: 1 / 0)
    assert not crashed.passed and "ZeroDivisionError" in str(crashed)
