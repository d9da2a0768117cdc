"""Checks for the sampling-and-guidance chapter's coding exercises (the DDIM step, the guidance mix)."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_shape, report


def _max_error(value: torch.Tensor, expected: torch.Tensor) -> float:
    return float((value.detach().float() - expected.float()).abs().max())


def check_ddim_step(learner_fn, exercise: str = "sampling-ex-2") -> CheckResult:
    """Check ``learner_fn(x_t, eps, abar_t, abar_s, eta, noise)`` against the DDIM update.

    Expected: ``sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma noise`` with
    ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` and
    ``sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)``.
    """
    from ..diffusion_lab import ddim_step

    generator = torch.Generator().manual_seed(0)
    x_t, eps, noise = (torch.randn(4, 3, generator=generator) for _ in range(3))
    cases = {
        "eta = 0, from abar_t = 0.3 to abar_s = 0.6": (torch.tensor(0.3), torch.tensor(0.6), 0.0),
        "eta = 0, the last step (abar_s = 1)": (torch.tensor(0.5), torch.tensor(1.0), 0.0),
        "eta = 1, from abar_t = 0.2 to abar_s = 0.5 (adds sigma * noise)": (torch.tensor(0.2), torch.tensor(0.5), 1.0),
        "eta = 0.5, from abar_t = 0.05 to abar_s = 0.4": (torch.tensor(0.05), torch.tensor(0.4), 0.5),
    }
    problems: list[str] = []
    passed = 0
    for label, (abar_t, abar_s, eta) in cases.items():
        value, problem = call_learner(learner_fn, label, x_t.clone(), eps.clone(), abar_t, abar_s, eta,
                                      noise.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = ddim_step(x_t, eps, abar_t, abar_s, eta, noise)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem)
            continue
        error = _max_error(value, expected)
        if error < 1e-4:
            passed += 1
            continue
        x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
        hint = ""
        if _max_error(value, abar_s.sqrt() * x0_hat) < 1e-4:
            hint = " (the result is sqrt(abar_s) x0_hat alone: add back the noise direction sqrt(1 - abar_s - sigma^2) eps)"
        elif eta > 0 and _max_error(value, ddim_step(x_t, eps, abar_t, abar_s, 0.0)) < 1e-4:
            hint = " (this is the eta = 0 step: with eta > 0, sigma shrinks the eps term and sigma * noise is added)"
        elif _max_error(value, x0_hat) < 1e-4:
            hint = " (this is x0_hat: the step should move to step s, not jump to x_0)"
        problems.append(f"{label}: largest difference from the DDIM step {error:.4g}{hint}")
    return report(exercise, problems, partial=passed / len(cases))


class _ToyConditionalModel(torch.nn.Module):
    """A stand-in noise predictor whose output depends on x, the step and the label (10 = no label)."""

    num_classes = 10

    def forward(self, x: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = torch.full_like(steps, 10) if labels is None else labels
        shape = (-1,) + (1,) * (x.dim() - 1)
        return 0.5 * x + (labels.float().view(shape) - 4.5) / 3 + steps.float().view(shape) / 1000


def check_guided_noise(learner_fn, exercise: str = "sampling-ex-3") -> CheckResult:
    """Check ``learner_fn(model, x, steps, labels, w)`` = ``(1 + w) eps(x, y) - w eps(x, no label)``.

    The model's "no label" index is ``model.num_classes``; at ``w = 0`` the result must be the
    conditional estimate.
    """
    model = _ToyConditionalModel()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, 4, 4, generator=generator)
    steps = torch.tensor([0, 100, 200, 500, 800, 999])
    labels = torch.tensor([0, 1, 3, 5, 7, 9])
    conditional = model(x, steps, labels)
    unconditional = model(x, steps, torch.full_like(labels, 10))
    problems: list[str] = []
    passed = 0
    weights = (0.0, 1.0, 3.0)
    for w in weights:
        label = f"guidance weight w = {w:g}"
        value, problem = call_learner(learner_fn, label, model, x.clone(), steps.clone(), labels.clone(), w,
                                      expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = (1 + w) * conditional - w * unconditional
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem)
            continue
        error = _max_error(value, expected)
        if error < 1e-5:
            passed += 1
            continue
        hint = ""
        if w > 0 and _max_error(value, unconditional + w * (conditional - unconditional)) < 1e-5:
            hint = (" (this is eps_u + w (eps_c - eps_u), the 'scale' convention: in this book's convention "
                    "w = 0 is the conditional model, so use (1 + w) eps_c - w eps_u)")
        elif w > 0 and _max_error(value, (1 + w) * unconditional - w * conditional) < 1e-5:
            hint = " (conditional and unconditional are swapped: the label's estimate gets the weight 1 + w)"
        elif _max_error(value, unconditional) < 1e-5:
            hint = " (this is the unconditional estimate: pass the labels for eps(x, y))"
        problems.append(f"{label}: largest difference from the guided estimate {error:.4g}{hint}")
    return report(exercise, problems, partial=passed / len(weights))
