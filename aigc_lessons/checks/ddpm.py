"""Checks for the DDPM chapter's coding exercises (``book/diffusion/ddpm.ipynb``)."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def _linear_schedule(steps: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Betas and alpha bars of a short linear schedule (float64), the checks' test case."""
    betas = torch.linspace(1e-3, 0.2, steps, dtype=torch.float64)
    return betas, torch.cumprod(1 - betas, dim=0)


def _first_mismatch(label: str, value: torch.Tensor, expected: torch.Tensor, rel_tol: float = 1e-4,
                    abs_tol: float = 1e-6) -> str | None:
    """The first element of ``value`` that is not close to ``expected``, described; None if all are."""
    for index, (v, e) in enumerate(zip(value.detach().double().flatten().tolist(),
                                       expected.double().flatten().tolist())):
        problem = describe_mismatch(f"{label}, element {index}", v, e, rel_tol=rel_tol, abs_tol=abs_tol)
        if problem:
            return problem
    return None


def check_add_noise(learner_fn, exercise: str = "ddpm-ex-2") -> CheckResult:
    """Check ``learner_fn(x0, t, noise, alpha_bars)`` = ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    ``x0`` and ``noise`` are ``(B, d)``, ``t`` a ``(B,)`` tensor of integer steps ``0 .. T-1``
    (one per row) and ``alpha_bars`` the ``(T,)`` cumulative products.
    """
    _, alpha_bars = _linear_schedule()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    noise = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    cases = {
        "t = 0 for every row (almost no noise)": torch.zeros(4, dtype=torch.long),
        "the last step t = T-1 for every row": torch.full((4,), len(alpha_bars) - 1),
        "a different step per row": torch.tensor([0, 7, 23, 49]),
    }
    problems: list[str] = []
    passed = 0
    for label, steps in cases.items():
        value, problem = call_learner(learner_fn, label, x0.clone(), steps.clone(), noise.clone(),
                                      alpha_bars.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        abar = alpha_bars[steps][:, None]
        expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (index alpha_bars by t, then view it as (B, 1) to broadcast)")
            continue
        mismatch = _first_mismatch(label, value, expected)
        if mismatch:
            hint = ""
            shifted = alpha_bars[steps - 1][:, None]  # what alpha_bars[t - 1] reads (t = 0 wraps to the end)
            if torch.allclose(value.double(), shifted.sqrt() * x0 + (1 - shifted).sqrt() * noise, atol=1e-6):
                hint = " (alpha_bars[t - 1]: the steps here are numbered 0 .. T-1, so use alpha_bars[t])"
            elif torch.allclose(value.double(), abar * x0 + (1 - abar) * noise, atol=1e-6):
                hint = " (the coefficients are the square roots of abar_t and 1 - abar_t)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def _posterior(x0: torch.Tensor, x_t: torch.Tensor, t: int, betas: torch.Tensor):
    alpha_bars = torch.cumprod(1 - betas, dim=0)
    abar_t, abar_prev = alpha_bars[t], (alpha_bars[t - 1] if t > 0 else torch.tensor(1.0, dtype=betas.dtype))
    mean = (abar_prev.sqrt() * betas[t] / (1 - abar_t)) * x0 + ((1 - betas[t]).sqrt() * (1 - abar_prev)
                                                                / (1 - abar_t)) * x_t
    return mean, (1 - abar_prev) / (1 - abar_t) * betas[t]


def check_posterior(learner_fn, exercise: str = "ddpm-ex-3") -> CheckResult:
    """Check ``learner_fn(x0, x_t, t, betas)`` returns the mean and variance of q(x_{t-1} | x_t, x_0).

    ``t`` is a Python integer in ``1 .. T-1`` (steps numbered from 0, so ``abar_{t-1}`` is
    ``alpha_bars[t - 1]``); the mean has the shape of ``x0``, the variance is one number.
    """
    betas, _ = _linear_schedule()
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 2, generator=generator, dtype=torch.float64)
    x_t = torch.randn(3, 2, generator=generator, dtype=torch.float64)
    problems: list[str] = []
    passed, cases = 0, (1, 10, 49)
    for t in cases:
        label = f"t = {t}"
        value, problem = call_learner(learner_fn, label, x0.clone(), x_t.clone(), t, betas.clone(),
                                      returns="a pair (mean, variance)")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(f"{label}: expected a pair (mean, variance), got {type(value).__name__}")
            continue
        mean, variance = value
        expected_mean, expected_variance = _posterior(x0, x_t, t, betas)
        if not isinstance(mean, torch.Tensor):
            problems.append(f"{label}: the mean should be a torch.Tensor, got {type(mean).__name__}")
            continue
        shape_problem = describe_shape(f"{label}: mean", mean.shape, expected_mean.shape)
        if shape_problem:
            problems.append(shape_problem)
            continue
        try:
            variance = float(variance)
        except (TypeError, ValueError, RuntimeError):
            problems.append(f"{label}: the variance should be one number (beta tilde_t), got {type(variance).__name__}")
            continue
        variance_problem = describe_mismatch(f"{label}: variance", variance, float(expected_variance))
        if variance_problem:
            if abs(variance - float(betas[t])) < 1e-9:
                variance_problem += " (that is beta_t; the posterior's variance is (1 - abar_{t-1}) / (1 - abar_t) beta_t)"
            problems.append(variance_problem)
            continue
        mean_problem = _first_mismatch(f"{label}: mean", mean, expected_mean)
        if mean_problem:
            swapped, _ = _posterior(x_t, x0, t, betas)
            if torch.allclose(mean.double(), swapped, atol=1e-6):
                mean_problem += " (the coefficients of x_0 and x_t are swapped)"
            problems.append(mean_problem)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_noise_to_score(learner_fn, exercise: str = "ddpm-ex-4") -> CheckResult:
    """Check ``learner_fn(eps, alpha_bar)`` = the score ``-eps / sqrt(1 - alpha_bar)``.

    ``eps`` is ``(B, d)``, ``alpha_bar`` a ``(B,)`` tensor (one value per row). The test
    case's data are Gaussian, where the exact score is known: if x_0 ~ N(0, s^2 I), then
    x_t ~ N(0, (abar s^2 + 1 - abar) I), whose score is -x_t / (abar s^2 + 1 - abar), and the
    best noise prediction is sqrt(1 - abar) x_t / (abar s^2 + 1 - abar).
    """
    generator = torch.Generator().manual_seed(2)
    alpha_bar = torch.tensor([0.99, 0.5, 0.1, 1e-3], dtype=torch.float64)
    x_t = torch.randn(4, 2, generator=generator, dtype=torch.float64)
    variance = (alpha_bar * 0.25 + 1 - alpha_bar)[:, None]  # data variance s^2 = 0.25
    best_eps = (1 - alpha_bar).sqrt()[:, None] * x_t / variance
    expected = -x_t / variance
    value, problem = call_learner(learner_fn, "Gaussian data", best_eps.clone(), alpha_bar.clone(),
                                  expect_tensor=True)
    if problem:
        return report(exercise, [problem])
    shape_problem = describe_shape("score", value.shape, expected.shape)
    if shape_problem:
        return report(exercise, [shape_problem + " (view alpha_bar as (B, 1) so that it scales each row)"])
    mismatch = _first_mismatch("score", value, expected)
    if mismatch:
        if torch.allclose(value.double(), -best_eps / (1 - alpha_bar)[:, None], atol=1e-6):
            mismatch += " (divide by the standard deviation sqrt(1 - abar), not by the variance)"
        elif torch.allclose(value.double(), -best_eps / alpha_bar.sqrt()[:, None], atol=1e-6):
            mismatch += " (the noise's scale in x_t is sqrt(1 - abar), not sqrt(abar))"
        return report(exercise, [mismatch])
    return report(exercise, [])
