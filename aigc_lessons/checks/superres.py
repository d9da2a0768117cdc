"""Checks for the super-resolution chapter's coding exercises."""

from __future__ import annotations

import math

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def _reference_psnr(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    mse = (outputs.double() - targets.double()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse)


def check_psnr(learner_fn, exercise: str = "superres-ex-2") -> CheckResult:
    """Check ``learner_fn(outputs, targets)`` = per-image PSNR in dB for images in [0, 1], shape ``(N,)``.

    The expected value is ``10 log10(1 / MSE_i)`` with ``MSE_i`` the mean squared
    error over the pixels of image ``i`` (not over the whole batch).
    """
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(4, 1, 6, 6, generator=generator)
    noise_levels = torch.tensor([0.01, 0.05, 0.1, 0.3]).view(4, 1, 1, 1)
    outputs = targets + noise_levels * torch.randn(4, 1, 6, 6, generator=generator)
    cases = {
        "uniform error 0.1 on one image (MSE 0.01, so 20 dB)": (torch.full((1, 1, 4, 4), 0.6), torch.full((1, 1, 4, 4), 0.5)),
        "four images with different noise levels": (outputs, targets),
    }
    problems: list[str] = []
    passed = 0
    for label, (out, tgt) in cases.items():
        value, problem = call_learner(learner_fn, label, out.clone(), tgt.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = _reference_psnr(out, tgt)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            hint = " (one PSNR per image: average the squared error over each image's pixels only)"
            if value.dim() == 0:
                hint = " (a single number: the squared error was averaged over the whole batch; keep one value per image)"
            problems.append(shape_problem + hint)
            continue
        mismatches = [describe_mismatch(f"{label}, image {i}", float(v), float(e), rel_tol=1e-4)
                      for i, (v, e) in enumerate(zip(value, expected))]
        mismatches = [m for m in mismatches if m]
        if mismatches:
            hint = ""
            first = float(value.flatten()[0])
            if math.isclose(first, float(expected[0]) / 2, rel_tol=1e-3):
                hint = " (half the expected value: PSNR uses 10 log10 of 1/MSE, or 20 log10 of 1/RMSE)"
            elif math.isclose(first, float(expected[0]) * math.log(10), rel_tol=1e-3):
                hint = " (use log10, not the natural logarithm)"
            problems.append(mismatches[0] + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_pixel_shuffle(learner_fn, exercise: str = "superres-ex-3") -> CheckResult:
    """Check ``learner_fn(features, r)`` rearranges ``(B, C r^2, H, W)`` into ``(B, C, H r, W r)`` like ``nn.PixelShuffle``."""
    cases = {
        "one channel, r = 2": (torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(2, 4, 3, 3), 2),
        "three channels, r = 2": (torch.randn(1, 12, 2, 5, generator=torch.Generator().manual_seed(1)), 2),
        "one channel, r = 3": (torch.arange(9 * 2 * 2, dtype=torch.float32).view(1, 9, 2, 2), 3),
    }
    problems: list[str] = []
    passed = 0
    for label, (features, r) in cases.items():
        value, problem = call_learner(learner_fn, label, features.clone(), r, expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = torch.nn.functional.pixel_shuffle(features, r)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (channels divide by r*r, height and width multiply by r)")
            continue
        if not torch.equal(value, expected):
            hint = ""
            if torch.equal(torch.sort(value.flatten()).values, torch.sort(expected.flatten()).values):
                hint = (" (the right values in the wrong places: view the channels as (C, r, r), then order the "
                        "dimensions as (B, C, H, r, W, r) before the final reshape)")
            problems.append(f"{label}: the values differ from nn.PixelShuffle's{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
