"""Checks for the explanation chapter's coding exercises (``book/responsible/explanation.ipynb``)."""

from __future__ import annotations

from . import CheckResult, call_learner, report


def _smooth_model():
    """A small smooth network (tanh): the Riemann sum of integrated gradients converges fast on it."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).eval()
    images = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 1, 0])
    return model, images, targets


def _path_gradient(model, images, targets, steps):
    """The gradient of the target logit averaged over the midpoints of the path from black to ``images``."""
    import torch

    total = torch.zeros_like(images)
    for k in range(steps):
        point = ((k + 0.5) / steps * images).requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(point).gather(1, targets.view(-1, 1)).sum(), point)
        total += gradient
    return total / steps


def check_integrated_gradients(learner_fn, exercise: str = "explanation-ex-2") -> CheckResult:
    """Check ``learner_fn(model, images, targets, steps)`` is integrated gradients from a black baseline.

    It is compared with captum's integrated gradients (Gauss-Legendre, the same number of
    steps) on a small smooth network, where any Riemann rule with 64 steps agrees to
    about 1e-3; typical slips (no ``(x - baseline)`` factor, no division by ``steps``,
    the gradient of the wrong class) get their own message.
    """
    import torch

    from ..explain import attribute, integrated_gradients_riemann

    model, images, targets = _smooth_model()
    problems: list[str] = []
    passed = 0
    for steps in (64, 128):
        label = f"steps = {steps}"
        value, problem = call_learner(learner_fn, label, model, images.clone(), targets, steps,
                                      returns="the attribution maps", expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        value = value.detach()
        expected = attribute(model, images, targets, "integrated_gradients", steps=steps)
        scale = float(expected.abs().max())
        if value.shape != expected.shape:
            problems.append(f"{label}: shape {tuple(value.shape)}, expected {tuple(expected.shape)} "
                            "(one map per image)")
            continue
        error = float((value - expected).abs().max())
        if error <= 2e-3 * scale:
            passed += 1
            continue
        averaged = _path_gradient(model, images, targets, steps)
        other = integrated_gradients_riemann(model, images, (targets + 1) % 3, steps)
        if torch.allclose(value, averaged, rtol=1e-2, atol=1e-3 * scale):
            problems.append(f"{label}: this is the gradient averaged along the path; multiply it by "
                            "(images - baseline)")
        elif torch.allclose(value, steps * expected, rtol=1e-2, atol=1e-2 * scale):
            problems.append(f"{label}: {steps} times too large: divide the sum of gradients by the number of steps")
        elif torch.allclose(value, -expected, rtol=1e-2, atol=1e-2 * scale):
            problems.append(f"{label}: the sign is flipped; the path goes from the baseline to the image")
        elif torch.allclose(value, other, rtol=1e-2, atol=1e-2 * scale):
            problems.append(f"{label}: the gradient of the wrong class: take the logit of each image's target")
        else:
            total = float(value.flatten(1).sum(1).sub(expected.flatten(1).sum(1)).abs().max())
            problems.append(f"{label}: differs from captum's integrated gradients by up to {error:.3g} (the maps "
                            f"reach {scale:.3g}); the sums of the maps are off by up to {total:.3g}")
    return report(exercise, problems, partial=passed / 2)


def check_rank_correlation(learner_fn, exercise: str = "explanation-ex-3") -> CheckResult:
    """Check ``learner_fn(first, second)`` is Spearman's rank correlation of two 1-D tensors (no ties)."""
    import torch
    from scipy.stats import spearmanr

    generator = torch.Generator().manual_seed(3)
    base = torch.randn(200, generator=generator)
    cases = {"a monotone but non-linear pair": (base, base.exp() ** 3),
             "a noisy pair": (base, base + 0.8 * torch.randn(200, generator=generator)),
             "a reversed pair": (base, -base)}
    problems: list[str] = []
    passed = 0
    for label, (first, second) in cases.items():
        value, problem = call_learner(learner_fn, label, first.clone(), second.clone(), returns="one number",
                                      expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = float(spearmanr(first.numpy(), second.numpy()).statistic)
        pearson = float(torch.corrcoef(torch.stack([first, second]))[0, 1])
        if abs(value - expected) <= 1e-4:
            passed += 1
        elif abs(value - pearson) <= 1e-4:
            problems.append(f"{label}: got {value:.4f}, Pearson's correlation of the values; correlate their "
                            f"ranks instead (expected {expected:.4f})")
        elif abs(value - abs(expected)) <= 1e-4 and expected < 0:
            problems.append(f"{label}: got {value:.4f}, expected {expected:.4f}: a signed rank correlation; "
                            "do not take absolute values here")
        else:
            problems.append(f"{label}: got {value:.4f}, expected {expected:.4f} (scipy.stats.spearmanr); rank "
                            "each tensor (argsort of argsort), then take the Pearson correlation of the ranks")
    return report(exercise, problems, partial=passed / len(cases))


def check_randomise_top_layer(learner_fn, exercise: str = "explanation-ex-4") -> CheckResult:
    """Check ``learner_fn(model)`` returns a copy whose last weight layer only is re-initialised."""
    import torch

    from ..models.classifier import MnistClassifier

    torch.manual_seed(0)
    model = MnistClassifier().eval()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    value, problem = call_learner(learner_fn, "MnistClassifier", model, returns="the randomised copy")
    problems: list[str] = [problem] if problem else []
    if not problem:
        changed_original = [name for name, tensor in model.state_dict().items()
                            if not torch.equal(tensor, before[name])]
        if changed_original:
            problems.append(f"the original model changed ({', '.join(changed_original)}): randomise a copy "
                            "(copy.deepcopy(model)) so that the trained maps stay comparable")
        if not isinstance(value, torch.nn.Module):
            problems.append(f"expected an nn.Module, got {type(value).__name__}")
        else:
            after = value.state_dict()
            if set(after) != set(before):
                problems.append("the copy has different layers from the model; keep the architecture")
            else:
                changed = [name for name in before if not torch.equal(after[name], before[name])]
                top = {"head.1.weight", "head.1.bias"}
                if not changed:
                    problems.append("no weight changed: call reset_parameters() on the last layer of the copy")
                elif set(changed) - top:
                    problems.append(f"layers below the top changed too ({', '.join(sorted(set(changed) - top))}): "
                                    "the cascade's first stage randomises the output layer (head.1) only")
                elif "head.1.weight" not in changed:
                    problems.append("the output layer's weight did not change, only its bias")
                if value.training:
                    problems.append("the copy is in training mode (dropout): return it in eval mode")
    return report(exercise, problems)
