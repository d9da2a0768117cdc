"""Checks for the image-to-image translation chapters' coding exercises."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from . import CheckResult, call_learner, describe_mismatch, report


def _reference_pix2pix_generator_loss(fake_logits, outputs, targets, l1_weight):
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return adversarial + l1_weight * (outputs - targets).abs().mean()


def check_pix2pix_generator_loss(learner_fn, exercise: str = "paired-translation-ex-2") -> CheckResult:
    """Check ``learner_fn(fake_logits, outputs, targets, l1_weight)`` = ``-mean log sigma(l) + l1_weight * mean|y_hat - y|``.

    ``fake_logits`` is the patch discriminator's ``(B, 7, 7)`` map on (input, output) pairs.
    """
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 7, generator=generator)
    outputs, targets = torch.rand(3, 1, 28, 28, generator=generator), torch.rand(3, 1, 28, 28, generator=generator)
    cases = {
        "l1_weight = 0 (adversarial term alone)": (logits, outputs, targets, 0.0),
        "outputs equal to targets (L1 term is 0)": (logits, targets, targets, 100.0),
        "general case, l1_weight = 100": (logits, outputs, targets, 100.0),
    }
    problems: list[str] = []
    passed = 0
    for label, (case_logits, case_outputs, case_targets, weight) in cases.items():
        value, problem = call_learner(learner_fn, label, case_logits.clone(), case_outputs.clone(),
                                      case_targets.clone(), weight, returns="a 0-d tensor")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{label}: expected one number (a 0-d tensor), got {shape}: average over the batch "
                            "and over the patches and pixels")
            continue
        expected = float(_reference_pix2pix_generator_loss(case_logits, case_outputs, case_targets, weight))
        mismatch = describe_mismatch(label, float(value), expected)
        if mismatch:
            hint = ""
            if weight == 0.0:
                wrong_sign = float(F.binary_cross_entropy_with_logits(case_logits, torch.zeros_like(case_logits)))
                if abs(float(value) - wrong_sign) < 1e-4 or abs(float(value) + wrong_sign) < 1e-4:
                    hint = (" (this is the loss against target 0: the generator wants D to call its outputs real, "
                            "target 1, the non-saturating loss -log sigma(l))")
                else:
                    hint = " (use binary_cross_entropy_with_logits on the logits, target 1, mean over all patches)"
            elif "general" in label:
                summed = float(F.binary_cross_entropy_with_logits(case_logits, torch.ones_like(case_logits))
                               + weight * (case_outputs - case_targets).abs().sum())
                if abs(float(value) - summed) < 1e-2 * abs(summed):
                    hint = " (the L1 term must be a mean over pixels, as in the paper's lambda = 100, not a sum)"
                else:
                    hint = " (L1 is the mean absolute difference |outputs - targets|, times l1_weight)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_cycle_loss(learner_fn, exercise: str = "unpaired-translation-ex-2") -> CheckResult:
    """Check ``learner_fn(real_a, real_b, to_b, to_a)`` = ``mean|F(G(a)) - a| + mean|G(F(b)) - b|``.

    ``to_b`` is G (A -> B) and ``to_a`` is F (B -> A), passed as plain functions.
    """
    generator = torch.Generator().manual_seed(1)
    real_a, real_b = torch.rand(4, 1, 28, 28, generator=generator), torch.rand(4, 1, 28, 28, generator=generator)

    def brighten(x):  # G: a simple invertible map on [0, 1]
        return x.sqrt()

    def darken(x):    # F: its exact inverse
        return x.pow(2)

    def halve(x):
        return 0.5 * x

    cases = {
        "F is the exact inverse of G (the cycle loss is 0)": (brighten, darken, 0.0),
        "G halves, F squares (the two directions differ)": (
            halve, darken,
            float((darken(halve(real_a)) - real_a).abs().mean() + (halve(darken(real_b)) - real_b).abs().mean())),
    }
    problems: list[str] = []
    passed = 0
    for label, (to_b, to_a, expected) in cases.items():
        value, problem = call_learner(learner_fn, label, real_a.clone(), real_b.clone(), to_b, to_a,
                                      returns="a 0-d tensor")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            problems.append(f"{label}: expected one number (a 0-d tensor), got {type(value).__name__}")
            continue
        mismatch = describe_mismatch(label, float(value), expected, abs_tol=1e-5)
        if mismatch:
            only_a = float((to_a(to_b(real_a)) - real_a).abs().mean())
            swapped = float((to_b(to_a(real_a)) - real_a).abs().mean() + (to_a(to_b(real_b)) - real_b).abs().mean())
            if abs(float(value) - only_a) < 1e-5:
                mismatch += " (only the A -> B -> A cycle: add the B -> A -> B cycle |G(F(b)) - b|)"
            elif abs(float(value) - swapped) < 1e-5:
                mismatch += " (the generators are applied in the wrong order: a goes through G first, then F)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
