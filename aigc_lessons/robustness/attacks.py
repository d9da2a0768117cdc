"""White-box L-infinity attacks on an image classifier: FGSM and PGD, written out.

An *adversarial example* for a classifier ``f`` at an image ``x`` with label ``y``
is an image ``x'`` with ``|x' - x|_inf <= epsilon`` (every pixel moved by at most
``epsilon``) that ``f`` labels wrongly (Szegedy et al., 2014). The attacks look for
one by maximising the classification loss inside that ball:

* **FGSM** (Goodfellow, Shlens and Szegedy, 2015): one step of size ``epsilon`` along
  the sign of the input gradient, ``x' = clip(x + epsilon * sign(grad_x L))``: the
  maximiser of the loss's *linear* approximation over the ball.
* **PGD** (Madry et al., 2018): projected gradient ascent, ``steps`` signed steps of
  size ``step_size``, each followed by the projection back onto the ball and onto
  the valid pixel range ``[0, 1]``, from a random start in the ball; ``restarts``
  independent runs, keeping per image the worst one found.

Images are ``(B, C, H, W)`` tensors with pixels in ``[0, 1]`` (``load_mnist``'s
default ``value_range``): a model that expects standardised input must standardise
inside its ``forward`` (as ``MnistClassifier`` does), otherwise ``epsilon`` would
be measured in the wrong units. The model must be in eval mode (dropout or batch
norm in training mode would make the attack chase noise) and return *logits*
``(B, num_classes)``; every public function checks this and raises
:class:`AttackError` with what to do. The package ``torchattacks`` would do the
same, but pins an old ``requests`` that conflicts with the book's stack.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
    >>> images, labels = torch.full((3, 1, 2, 2), 0.5), torch.tensor([0, 1, 0])
    >>> adversarial = pgd(model, images, labels, epsilon=0.1, steps=5)
    >>> bool((adversarial - images).abs().max() <= 0.1 + 1e-6)
    True
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..core import check_classifier_inputs

__all__ = ["AttackError", "accuracy_under_attack", "accuracy_vs_epsilon", "check_attack_inputs", "fgsm", "pgd",
           "predict"]


class AttackError(ValueError):
    """A bad argument to an attack: epsilon <= 0, images outside [0, 1], a model that is not fit to attack."""


# --------------------------------------------------------------------------- input checks


def _check_number(value: float, name: str, above: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= above:
        raise AttackError(f"{name} must be a finite number > {above:g}, got {value!r}")
    return float(value)


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AttackError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_attack_inputs(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        epsilon: float | None = None) -> torch.Tensor:
    """Check everything an attack needs and return the model's logits on ``images``.

    Raises :class:`AttackError` when ``epsilon`` is not > 0, the images are not a
    float ``(B, C, H, W)`` tensor in ``[0, 1]``, the labels are not ``B`` class
    indices, the model is in training mode, or it does not return logits
    ``(B, num_classes)`` (a model that ends in a softmax returns probabilities,
    whose gradients vanish where the model is confident: remove the softmax).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> check_attack_inputs(model, torch.zeros(2, 1, 2, 2), torch.tensor([0, 2]), 0.1).shape
        torch.Size([2, 3])
    """
    if epsilon is not None:
        _check_number(epsilon, "epsilon")
    logits = check_classifier_inputs(model, images, labels, error=AttackError, purpose="attacking it",
                                     range_hint=" and put any normalisation inside the model, so that "
                                                "epsilon is measured in pixel units")
    rows = logits.sum(dim=1)
    if bool((logits >= 0).all() and (logits <= 1).all() and torch.allclose(rows, torch.ones_like(rows), atol=1e-4)):
        raise AttackError("the model returns probabilities (each row sums to 1), not logits: the attack's "
                          "cross-entropy needs logits; remove the final softmax")
    return logits


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's predicted classes for ``images``, in batches.

    Example:
        >>> predict(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval(), torch.zeros(5, 1, 2, 2)).shape
        torch.Size([5])
    """
    return torch.cat([model(images[start:start + batch_size]).argmax(dim=1)
                      for start in range(0, len(images), batch_size)])


# --------------------------------------------------------------------------- the attacks


def _input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the summed cross-entropy with respect to the images, and the logits."""
    images = images.detach().requires_grad_(True)
    logits = model(images)
    # summed, not averaged: the sign is the same and the gradient of one image does
    # not shrink with the batch size
    loss = F.cross_entropy(logits, labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, images)
    return gradient, logits.detach()


def _project(candidate: torch.Tensor, images: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Nearest point of the epsilon-ball around ``images`` intersected with [0, 1] (clip per pixel)."""
    return torch.minimum(torch.maximum(candidate, images - epsilon), images + epsilon).clamp(0.0, 1.0)


def _random_start(images: torch.Tensor, epsilon: float, generator: torch.Generator | None) -> torch.Tensor:
    noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return _project(images + (2 * noise - 1) * epsilon, images, epsilon)


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
         random_start: bool = False, step_size: float | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast gradient sign method: one signed gradient step, projected onto the ball and [0, 1].

    ``x' = clip(x + epsilon * sign(grad_x CE(f(x), y)))``. With ``random_start=True``
    the step starts from a uniform point of the ball and has size ``step_size``
    (default ``1.25 * epsilon``, Wong, Rice and Kolter 2020): the attack used by
    fast adversarial training.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x = torch.full((1, 1, 2, 2), 0.5)
        >>> float((fgsm(model, x, torch.tensor([0]), 0.1) - x).abs().max())  # doctest: +ELLIPSIS
        0.1...
    """
    check_attack_inputs(model, images, labels, epsilon)
    if step_size is None:
        step_size = 1.25 * epsilon if random_start else epsilon
    _check_number(step_size, "step_size")
    start = _random_start(images, epsilon, generator) if random_start else images
    gradient, _ = _input_gradient(model, start, labels)
    return _project(start + step_size * gradient.sign(), images, epsilon).detach()


def _worse(new_fooled: torch.Tensor, new_loss: torch.Tensor, old_fooled: torch.Tensor,
           old_loss: torch.Tensor) -> torch.Tensor:
    """Where the new candidate is the better attack: it fools and the old did not, or the loss is higher."""
    return (new_fooled & ~old_fooled) | ((new_fooled == old_fooled) & (new_loss > old_loss))


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float, steps: int = 20,
        step_size: float | None = None, restarts: int = 1, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent on the loss (ascent), L-infinity ball, with random restarts.

    Each run: start uniformly in the ball (or at ``x`` when ``random_start=False``),
    then ``steps`` times ``x <- Proj(x + step_size * sign(grad))``. The default step
    is ``2.5 * epsilon / steps`` (Madry et al. 2018), so that a run can cross the
    ball and still refine. Per image, the worst iterate of every run is kept (one
    that is misclassified, else the one of highest loss): accuracy on the result is
    an upper bound on the true robust accuracy that only goes down with more steps
    or restarts.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 1, 0])
        >>> bool(((pgd(model, x, y, 0.05, steps=3, restarts=2) - x).abs() <= 0.05 + 1e-6).all())
        True
    """
    check_attack_inputs(model, images, labels, epsilon)
    _check_count(steps, "steps")
    _check_count(restarts, "restarts")
    step_size = _check_number(2.5 * epsilon / steps if step_size is None else step_size, "step_size")
    images = images.detach()
    best = images.clone()
    with torch.no_grad():
        logits = model(images)
    best_loss = F.cross_entropy(logits, labels, reduction="none")
    best_fooled = logits.argmax(dim=1) != labels
    for _ in range(restarts):
        current = _random_start(images, epsilon, generator) if random_start else images.clone()
        for step in range(steps + 1):
            if step < steps:
                gradient, logits = _input_gradient(model, current, labels)
            else:  # one last forward pass to score the final iterate
                with torch.no_grad():
                    logits = model(current)
            loss = F.cross_entropy(logits, labels, reduction="none")
            fooled = logits.argmax(dim=1) != labels
            better = _worse(fooled, loss, best_fooled, best_loss)
            best[better], best_loss[better], best_fooled[better] = current[better], loss[better], fooled[better]
            if step < steps:
                current = _project(current + step_size * gradient.sign(), images, epsilon)
    return best


# --------------------------------------------------------------------------- accuracy under attack

Attack = Callable[..., torch.Tensor]
ATTACKS: dict[str, Attack] = {"fgsm": fgsm, "pgd": pgd}


def accuracy_under_attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
                          attack: str | Attack = "pgd", batch_size: int = 500, seed: int = 0, **options) -> float:
    """Fraction of ``images`` still classified correctly after ``attack`` at ``epsilon``.

    ``attack`` is ``"fgsm"``, ``"pgd"`` or a function with the signature of
    :func:`pgd`; ``options`` go to it (``steps=20``, ``restarts=10``, ...). The
    random starts are seeded (``seed``), so the number is reproducible.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
        >>> 0 <= accuracy_under_attack(model, x, y, 0.1, "fgsm") <= 1
        True
    """
    if isinstance(attack, str):
        if attack not in ATTACKS:
            raise AttackError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
        attack = ATTACKS[attack]
    check_attack_inputs(model, images[:2], labels[:2], epsilon)
    _check_count(batch_size, "batch_size")
    generator = torch.Generator(device=images.device).manual_seed(seed)
    correct = 0
    for start in range(0, len(images), batch_size):
        batch, batch_labels = images[start:start + batch_size], labels[start:start + batch_size]
        if attack is pgd or attack is fgsm:
            options = {**options, "generator": generator}
        adversarial = attack(model, batch, batch_labels, epsilon, **options)
        correct += int((predict(model, adversarial) == batch_labels).sum())
    return correct / len(images)


def accuracy_vs_epsilon(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilons: list[float],
                        attack: str | Attack = "pgd", **options) -> list[float]:
    """Accuracy under ``attack`` at each epsilon (``0`` gives the clean accuracy).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
        >>> len(accuracy_vs_epsilon(model, x, y, [0, 0.1, 0.2], "fgsm"))
        3
    """
    results = []
    for epsilon in epsilons:
        if epsilon == 0:
            check_attack_inputs(model, images[:2], labels[:2])
            results.append(float((predict(model, images) == labels).float().mean()))
        else:
            results.append(accuracy_under_attack(model, images, labels, epsilon, attack, **options))
    return results
