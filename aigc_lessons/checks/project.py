"""Checks for the MNIST project chapters' coding exercises (Part III)."""

from __future__ import annotations

import math

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def check_scale_pixels(learner_fn, exercise: str = "project-plan-ex-2") -> CheckResult:
    """Check ``scale_pixels(pixels_uint8) -> float tensor in [-1, 1]`` (0 -> -1, 255 -> 1, linear)."""
    cases = {
        "black, grey, white": torch.tensor([0, 51, 255], dtype=torch.uint8),
        "an image batch (4, 1, 28, 28)": torch.randint(0, 256, (4, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                                                       dtype=torch.uint8),
    }
    problems: list[str] = []
    passed = 0
    for label, pixels in cases.items():
        value, problem = call_learner(learner_fn, label, pixels.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        shape = describe_shape(label, value.shape, pixels.shape)
        if shape:
            problems.append(shape)
            continue
        if not value.is_floating_point():
            problems.append(f"{label}: the result has dtype {value.dtype}; convert to float before scaling "
                            "(uint8 arithmetic wraps around)")
            continue
        expected = pixels.float() / 127.5 - 1.0
        worst = (value.float() - expected).abs().max().item()
        if worst > 1e-5:
            low, high = value.min().item(), value.max().item()
            hint = " (this is [0, 1]: also map 0.5 to 0)" if low >= 0 and high <= 1.0001 else ""
            problems.append(f"{label}: values differ from 2 * pixels / 255 - 1 by up to {worst:.3g}; "
                            f"your range is [{low:.3g}, {high:.3g}]{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_moving_average(learner_fn, exercise: str = "project-train-ex-2") -> CheckResult:
    """Check ``moving_average(values, smoothing)``: s_0 = x_0, s_t = a s_{t-1} + (1 - a) x_t."""

    def reference(values, a):
        out, s = [], None
        for x in values:
            s = x if s is None else a * s + (1 - a) * x
            out.append(s)
        return out

    cases = {
        "constant values stay constant": ([2.0, 2.0, 2.0], 0.9),
        "no smoothing returns the values": ([1.0, 5.0, -2.0], 0.0),
        "a step": ([0.0, 0.0, 1.0, 1.0, 1.0], 0.5),
        "noisy losses": ([1.3, 0.9, 1.1, 0.7, 1.6, 1.2], 0.8),
    }
    problems: list[str] = []
    passed = 0
    for label, (values, a) in cases.items():
        result, problem = call_learner(learner_fn, label, list(values), a, returns="a list")
        if problem:
            problems.append(problem)
            continue
        try:
            result = [float(v) for v in result]
        except (TypeError, ValueError):
            problems.append(f"{label}: expected a list of numbers, got {type(result).__name__}")
            continue
        expected = reference(values, a)
        if len(result) != len(expected):
            problems.append(f"{label}: got {len(result)} values, expected {len(expected)} (one per input value)")
            continue
        mismatch = next((describe_mismatch(f"{label}, position {i}", r, e, rel_tol=1e-6, abs_tol=1e-9)
                         for i, (r, e) in enumerate(zip(result, expected))
                         if describe_mismatch("", r, e, rel_tol=1e-6, abs_tol=1e-9)), None)
        if mismatch:
            problems.append(mismatch + " (start from the first value, then s = a * s + (1 - a) * x)")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_nearest_distances(learner_fn, exercise: str = "project-eval-ex-2") -> CheckResult:
    """Check ``nearest_distances(generated, training) -> (N,)`` Euclidean distances to the nearest training image."""
    g = torch.Generator().manual_seed(1)
    training = torch.rand(30, 1, 28, 28, generator=g)
    generated = torch.cat([training[:3], torch.rand(4, 1, 28, 28, generator=g)])  # 3 exact copies
    differences = generated.flatten(1)[:, None, :] - training.flatten(1)[None, :, :]
    expected = differences.pow(2).sum(dim=2).sqrt().min(dim=1).values  # exact, no matrix-product shortcut
    value, problem = call_learner(learner_fn, "result", generated.clone(), training.clone(), expect_tensor=True)
    if problem:
        return report(exercise, [problem])
    shape = describe_shape("result", value.shape, expected.shape)
    if shape:
        return report(exercise, [shape + " (one distance per generated image)"])
    problems: list[str] = []
    copies_ok = bool((value[:3].abs() < 0.02).all())  # torch.cdist's fast path is off by about 0.01
    if not copies_ok:
        problems.append(f"the first 3 generated images are exact copies of training images, so their distances "
                        f"should be 0; got {[round(float(v), 4) for v in value[:3]]}")
    worst = (value.float() - expected).abs().max().item()
    if worst > 0.02:
        ratio = float(value[3:].mean() / expected[3:].mean())
        hint = " (squared distances? take the square root)" if ratio > 5 else ""
        problems.append(f"distances differ from the reference by up to {worst:.3g}{hint}")
    return report(exercise, problems, partial=0.5 if copies_ok else 0.0)


def check_mean_and_standard_error(learner_fn, exercise: str = "project-study-ex-2") -> CheckResult:
    """Check ``mean_and_standard_error(values) -> (mean, standard error)`` with the n - 1 standard deviation."""
    cases = {
        "three seeds": [1.0, 2.0, 4.0],
        "identical values": [0.5, 0.5, 0.5, 0.5],
        "two values": [10.0, 12.0],
    }
    problems: list[str] = []
    passed = 0
    for label, values in cases.items():
        result, problem = call_learner(learner_fn, label, list(values), returns="a pair")
        if problem:
            problems.append(problem)
            continue
        try:
            mean, stderr = (float(v) for v in result)
        except (TypeError, ValueError):
            problems.append(f"{label}: expected a pair (mean, standard error), got {result!r}")
            continue
        n = len(values)
        expected_mean = sum(values) / n
        sd = math.sqrt(sum((v - expected_mean) ** 2 for v in values) / (n - 1))
        expected_se = sd / math.sqrt(n)
        mismatch = describe_mismatch(f"{label}: mean", mean, expected_mean)
        if not mismatch:
            mismatch = describe_mismatch(f"{label}: standard error", stderr, expected_se)
            if mismatch and expected_se and math.isclose(stderr, math.sqrt((n - 1) / n) * expected_se, rel_tol=1e-4):
                mismatch += " (divide by n - 1 in the standard deviation, not n)"
            elif mismatch and expected_se and math.isclose(stderr, sd, rel_tol=1e-4):
                mismatch += " (that is the standard deviation; divide it by sqrt(n))"
        if mismatch:
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_to_uint8(learner_fn, exercise: str = "project-audit-ex-2") -> CheckResult:
    """Check ``to_uint8(images)``: images in [-1, 1] to uint8 pixels, -1 -> 0, 1 -> 255, rounded, clamped."""
    cases = {
        "the ends and the middle": torch.tensor([-1.0, 0.0, 1.0]),
        "slightly outside [-1, 1]": torch.tensor([-1.2, 1.3]),
        "an image batch": torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1,
    }
    problems: list[str] = []
    passed = 0
    for label, images in cases.items():
        value, problem = call_learner(learner_fn, label, images.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        if value.dtype != torch.uint8:
            problems.append(f"{label}: dtype {value.dtype}, expected torch.uint8")
            continue
        shape = describe_shape(label, value.shape, images.shape)
        if shape:
            problems.append(shape)
            continue
        expected = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        worst = (value.int() - expected.int()).abs().max().item()
        if worst > 1:
            hint = ""
            if label == "slightly outside [-1, 1]":
                hint = " (clamp to [-1, 1] first: uint8 conversion wraps around)"
            elif int(value.flatten()[0]) != 0:
                hint = " (-1 should become 0: shift by 1 and scale by 127.5)"
            problems.append(f"{label}: pixels differ from the expected ones by up to {worst}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
