"""Checks for the GAN chapters' coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


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
        value, problem = call_learner(learner_fn, label, real.clone(), fake.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
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


def _js_reference(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> float:
    """JS(p || q) in nats by the trapezoidal rule, with 0 log 0 = 0."""
    m = 0.5 * (p + q)

    def kl_to_mixture(r: torch.Tensor) -> torch.Tensor:
        return torch.trapezoid(torch.where(r > 0, r * torch.log(r / m), torch.zeros_like(r)), x)

    return float(0.5 * kl_to_mixture(p) + 0.5 * kl_to_mixture(q))


def check_js_divergence(learner_fn, exercise: str = "gan-theory-ex-2") -> CheckResult:
    """Check a learner's ``js_divergence(p, q, x)`` (densities on a grid ``x``, trapezoidal rule).

    Cases with known answers: equal densities (0), densities with disjoint
    supports (log 2, and zeros that need the convention 0 log 0 = 0), two
    Gaussians (against a reference quadrature), and symmetry in ``p`` and ``q``.
    """
    import math

    x = torch.linspace(-15.0, 15.0, 30_001, dtype=torch.float64)

    def normal(mean: float, std: float) -> torch.Tensor:
        return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))

    # Two uniform densities on [-10, -5) and [5, 10): no overlap at all.
    left = ((x >= -10) & (x < -5)).double() / 5.0
    right = ((x >= 5) & (x < 10)).double() / 5.0
    cases = {
        "p = q = N(0, 1) (expected 0)": (normal(0, 1), normal(0, 1)),
        "disjoint uniform densities (expected log 2; zeros need 0 log 0 = 0)": (left, right),
        "N(0, 1) and N(2, 1.5^2)": (normal(0, 1), normal(2, 1.5)),
        "N(2, 1.5^2) and N(0, 1) (JS is symmetric)": (normal(2, 1.5), normal(0, 1)),
    }
    problems: list[str] = []
    passed = 0
    for label, (p, q) in cases.items():
        value, problem = call_learner(learner_fn, label, p.clone(), q.clone(), x.clone(), returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = _js_reference(p, q, x)
        if not math.isfinite(value):
            problems.append(f"{label}: got {value}; where a density is 0, the term 0 * log(0 / m) must count as 0 "
                            "(use torch.where, not p * torch.log(p / m) everywhere)")
            continue
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-6, abs_tol=1e-9)
        if mismatch:
            if math.isclose(value, 2 * expected, rel_tol=1e-3):
                mismatch += "; JS averages the two KL terms: 0.5 * KL(p || m) + 0.5 * KL(q || m)"
            elif value > math.log(2) + 1e-9:
                mismatch += "; JS can never exceed log 2: is m = (p + q) / 2, and is the log a natural log?"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_modes_covered(learner_fn, exercise: str = "mode-collapse-ex-2") -> CheckResult:
    """Check a learner's ``modes_covered(samples, centers, std)`` against :func:`aigc_lessons.toy2d.mode_coverage`.

    The definition of the chapter: a sample is high quality when it lies within
    ``3 * std`` of its nearest centre; a mode is covered when at least 2% of all
    samples are high-quality samples nearest to it.
    """
    from ..toy2d import mode_coverage, ring_centers, ring_mixture

    centers = ring_centers(8)
    std = 0.05
    rng = torch.Generator().manual_seed(0)
    all_modes = ring_mixture(800, std=std, generator=rng)
    one_mode = centers[2] + std * torch.randn(400, 2, generator=rng)
    between = torch.cat([(centers[k] + centers[(k + 1) % 8]) / 2 for k in range(8)]).view(8, 2).repeat(50, 1)
    # 3 modes with 30% each, plus 10% spread thinly over the other five (2% each: exactly at the bar is covered,
    # one point fewer is not).
    three = torch.cat([centers[k] + std * torch.randn(300, 2, generator=rng) * 0.5 for k in (0, 3, 5)])
    thin = torch.cat([centers[k].repeat(20, 1) for k in (1, 2)] + [centers[k].repeat(19, 1) for k in (4, 6, 7)])
    cases = {
        "samples from all 8 modes (expected 8)": all_modes,
        "samples from one mode (expected 1)": one_mode,
        "points half-way between neighbouring modes (expected 0: none is high quality)": between,
        "3 large modes plus a few points on the others (only modes with >= 2% of the samples count)": torch.cat(
            [three, thin]),
    }
    problems: list[str] = []
    passed = 0
    for label, samples in cases.items():
        value, problem = call_learner(learner_fn, label, samples.clone(), centers.clone(), std, returns="an int")
        if problem:
            problems.append(problem)
            continue
        try:
            value = int(value)
        except (TypeError, ValueError, RuntimeError):
            problems.append(f"{label}: expected an integer (or a 0-d tensor), got {type(value).__name__}")
            continue
        expected = mode_coverage(samples, centers, std).modes_covered
        if value != expected:
            hint = ""
            if value > expected:
                hint = (" (too many: count only high-quality samples, within 3 * std of their nearest centre, and only "
                        "modes with at least 2% of ALL samples)")
            else:
                hint = " (too few: a mode with exactly 2% of the samples counts; use >=)"
            problems.append(f"{label}: got {value}, expected {expected}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
