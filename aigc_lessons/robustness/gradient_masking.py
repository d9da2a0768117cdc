"""Sanity checks that tell a robust model from one that only hides its gradients.

A defence can look robust against gradient attacks because its gradients are
useless (zero, saturated, noisy or non-differentiable: *gradient masking*), not
because no adversarial example exists. Athalye, Carlini and Wagner (2018) list
the symptoms; each check below measures one of them:

1. accuracy falls monotonically as epsilon grows (a larger ball contains the smaller one);
2. the iterative attack is at least as strong as the one-step attack (PGD <= FGSM);
3. an unbounded attack (epsilon = 1: any image is reachable) drives accuracy to about 0;
4. more steps and restarts do not lower accuracy much further (the attack has converged);
5. a transfer attack, crafted on another model without this model's gradients, is
   not much stronger than the white-box attack.

:class:`ScaledLogits` builds the textbook masked model: multiplying the logits by a
large factor leaves every prediction unchanged, but saturates the softmax so that
the cross-entropy gradient of a confidently classified image is exactly 0 in
float32: gradient attacks fail, and checks 3 and 5 catch it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
    >>> x, y = torch.rand(16, 1, 2, 2), torch.randint(0, 2, (16,))
    >>> report = masking_checks(model, x, y, epsilons=[0.1, 0.2], steps=5, more_steps=10, restarts=2)
    >>> sorted(report.checks)
    ['converged_in_steps', 'fgsm_not_stronger', 'monotone_in_epsilon', 'unbounded_reaches_zero']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .attacks import AttackError, accuracy_under_attack, check_attack_inputs, pgd, predict

__all__ = ["MaskingReport", "ScaledLogits", "masking_checks", "transfer_accuracy"]


class ScaledLogits(nn.Module):
    """``scale * model(x)``: the same predictions, with the softmax saturated (a masked model).

    Example:
        >>> base = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x = torch.rand(3, 1, 2, 2)
        >>> bool((ScaledLogits(base, 1000)(x).argmax(1) == base(x).argmax(1)).all())
        True
    """

    def __init__(self, model: nn.Module, scale: float = 1000.0) -> None:
        super().__init__()
        self.model, self.scale = model, float(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.model(images)


def transfer_accuracy(model: nn.Module, surrogate: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      epsilon: float, steps: int = 20, seed: int = 0, batch_size: int = 500) -> float:
    """Accuracy of ``model`` on PGD examples crafted on ``surrogate`` (a black-box transfer attack).

    Example:
        >>> a = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
        >>> 0 <= transfer_accuracy(a, a, x, y, 0.1, steps=3) <= 1
        True
    """
    check_attack_inputs(model, images[:2], labels[:2], epsilon)
    generator = torch.Generator(device=images.device).manual_seed(seed)
    correct = 0
    for start in range(0, len(images), batch_size):
        batch, batch_labels = images[start:start + batch_size], labels[start:start + batch_size]
        adversarial = pgd(surrogate, batch, batch_labels, epsilon, steps=steps, generator=generator)
        correct += int((predict(model, adversarial) == batch_labels).sum())
    return correct / len(images)


@dataclass
class MaskingReport:
    """The measured numbers and, per check, whether it passed."""

    epsilons: list[float]
    fgsm: list[float]
    pgd: list[float]
    measurements: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check passed (no symptom of gradient masking was found)."""
        return all(self.checks.values())

    def __str__(self) -> str:
        lines = [f"{'epsilon':>8} {'FGSM':>6} {'PGD':>6}"]
        lines += [f"{e:>8.3f} {f:>6.1%} {p:>6.1%}" for e, f, p in zip(self.epsilons, self.fgsm, self.pgd)]
        lines += [f"{name}: {value:.1%}" for name, value in self.measurements.items()]
        lines += [f"[{'pass' if ok else 'FAIL'}] {name}" for name, ok in self.checks.items()]
        return "\n".join(lines)


def masking_checks(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons: list[float],
                   steps: int = 20, more_steps: int = 100, restarts: int = 5, surrogate: nn.Module | None = None,
                   tolerance: float = 0.05, unbounded_ceiling: float = 0.1, seed: int = 0) -> MaskingReport:
    """Run the gradient-masking checks at ``epsilons`` (the largest is the one of the threat model).

    ``tolerance`` is the slack allowed for the noise of a few hundred images;
    ``unbounded_ceiling`` the accuracy an unbounded attack must get under;
    ``surrogate`` (optional) is the model the transfer attack is crafted on.

    Example: see the module docstring.
    """
    epsilons = sorted(epsilons)
    if not epsilons or epsilons[0] <= 0:
        raise AttackError(f"epsilons must be numbers > 0, got {epsilons}")
    check_attack_inputs(model, images[:2], labels[:2], epsilons[0])
    run = dict(seed=seed)
    fgsm_curve = [accuracy_under_attack(model, images, labels, e, "fgsm", **run) for e in epsilons]
    pgd_curve = [accuracy_under_attack(model, images, labels, e, "pgd", steps=steps, **run) for e in epsilons]
    report = MaskingReport(epsilons, fgsm_curve, pgd_curve)
    top = epsilons[-1]
    report.measurements["clean"] = float((predict(model, images) == labels).float().mean())
    report.measurements["unbounded (epsilon = 1)"] = accuracy_under_attack(model, images, labels, 1.0, "pgd",
                                                                          steps=steps, **run)
    report.measurements[f"PGD-{more_steps}, {restarts} restarts"] = accuracy_under_attack(
        model, images, labels, top, "pgd", steps=more_steps, restarts=restarts, **run)
    report.checks["monotone_in_epsilon"] = all(b <= a + tolerance for a, b in zip(pgd_curve, pgd_curve[1:]))
    report.checks["fgsm_not_stronger"] = all(p <= f + tolerance for f, p in zip(fgsm_curve, pgd_curve))
    report.checks["unbounded_reaches_zero"] = report.measurements["unbounded (epsilon = 1)"] <= unbounded_ceiling
    report.checks["converged_in_steps"] = (
        pgd_curve[-1] - report.measurements[f"PGD-{more_steps}, {restarts} restarts"] <= tolerance)
    if surrogate is not None:
        report.measurements["transfer"] = transfer_accuracy(model, surrogate, images, labels, top, steps, seed)
        report.checks["transfer_not_stronger"] = report.measurements["transfer"] >= pgd_curve[-1] - tolerance
    return report
