"""Checks for the adversarial-robustness chapter's coding exercises (``book/responsible/adversarial.ipynb``)."""

from __future__ import annotations

from . import CheckResult, call_learner, report


def _cases():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, 1, 4, 4, generator=generator)
    images[0] = 0.0  # a black image and a white one: only a clipped step stays in [0, 1]
    images[1] = 1.0
    labels = torch.randint(0, 3, (6,), generator=generator)
    return model, images, labels


def check_project(learner_fn, exercise: str = "adversarial-ex-2") -> CheckResult:
    """Check ``learner_fn(candidate, images, epsilon)`` projects onto the epsilon-ball around ``images`` and [0, 1]."""
    import torch

    from ..robustness.attacks import _project

    _, images, _ = _cases()
    generator = torch.Generator().manual_seed(2)
    problems: list[str] = []
    passed = 0
    cases = {"a small move": (images + 0.05 * torch.randn(images.shape, generator=generator), 0.1),
             "a large move": (images + 0.8 * torch.randn(images.shape, generator=generator), 0.3),
             "epsilon 1 (only [0, 1] binds)": (images + 2 * torch.randn(images.shape, generator=generator), 1.0)}
    for label, (candidate, epsilon) in cases.items():
        value, problem = call_learner(learner_fn, label, candidate.clone(), images.clone(), epsilon,
                                      returns="the projected images", expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = _project(candidate, images, epsilon)
        if value.shape != expected.shape:
            problems.append(f"{label}: shape {tuple(value.shape)}, expected {tuple(expected.shape)}")
        elif not torch.allclose(value, expected, atol=1e-6):
            if value.min() < 0 or value.max() > 1:
                problems.append(f"{label}: pixels outside [0, 1] (clip to the valid range after the ball)")
            elif (value - images).abs().max() > epsilon + 1e-6:
                problems.append(f"{label}: a pixel moved by {float((value - images).abs().max()):.3f} > epsilon "
                                f"= {epsilon} (clip candidate - images to [-epsilon, epsilon])")
            else:
                problems.append(f"{label}: inside the set, but not the nearest point: clip each pixel, do not "
                                "rescale the whole perturbation")
        else:
            passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_fgsm(learner_fn, exercise: str = "adversarial-ex-3") -> CheckResult:
    """Check ``learner_fn(model, images, labels, epsilon)`` is FGSM: ``clip(x + epsilon sign(grad_x CE))``."""
    import torch

    from ..robustness.attacks import _input_gradient, fgsm

    model, images, labels = _cases()
    direction = _input_gradient(model, images, labels)[0].sign()
    problems: list[str] = []
    passed = 0
    for epsilon in (0.05, 0.3):
        label = f"epsilon = {epsilon}"
        value, problem = call_learner(learner_fn, label, model, images.clone(), labels, epsilon,
                                      returns="the adversarial images", expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = fgsm(model, images, labels, epsilon)
        value = value.detach()
        if value.shape != expected.shape:
            problems.append(f"{label}: shape {tuple(value.shape)}, expected {tuple(expected.shape)}")
        elif torch.allclose(value, expected, atol=1e-5):
            passed += 1
        elif torch.allclose(value, (images - epsilon * direction).clamp(0, 1), atol=1e-5):
            problems.append(f"{label}: the step goes down the loss (x - epsilon sign(g)); an attack climbs it")
        elif value.min() < 0 or value.max() > 1:
            problems.append(f"{label}: pixels outside [0, 1]; clamp the result to the valid range")
        elif (value - images).abs().max() < 0.5 * epsilon:
            problems.append(f"{label}: the pixels moved by less than epsilon: use the sign of the gradient, "
                            "not the gradient itself")
        else:
            problems.append(f"{label}: differs from x + epsilon * sign(grad_x CE(model(x), y)) clamped to [0, 1] "
                            f"by up to {float((value - expected).abs().max()):.3f}")
    return report(exercise, problems, partial=passed / 2)
