"""Model inversion: what a classifier reveals about its classes, recovered from its gradients.

Fredrikson, Jha and Ristenpart (2015) recovered recognisable faces from a face
classifier by gradient ascent on the input: find ``x`` that maximises the
classifier's confidence in class ``c``. On an ordinary network that ascent finds
high-frequency patterns that the classifier scores highly but that look like no
digit (the class visualisations of the feature-visualisation chapter); a prior
that keeps ``x`` on the data manifold is what turns it into an image of the class.
Here the prior is a generator: search the latent space, ``x = G(z)``, instead of
the pixels, with a penalty ``|z|^2 / 2`` that keeps ``z`` where the generator's
prior ``N(0, I)`` puts its mass.

* :func:`invert_in_pixels`: gradient ascent on the pixels (reuses
  :func:`aigc_lessons.feature_vis.visualize_class`, with its regularisers);
* :func:`invert_in_latent`: Adam on ``z`` maximising ``log p(c | G(z)) - w |z|^2 / 2``;
* :func:`score_inversion`: the attacked classifier's confidence, the judgement of
  a *different* classifier, distance to the nearest training digit and the share
  of high-frequency energy.

Example:
    >>> import torch
    >>> from aigc_lessons.models.robust_classifier import RobustMnistCNN
    >>> classifier = RobustMnistCNN().eval()
    >>> decode = lambda z: torch.sigmoid(z @ torch.ones(2, 784)).view(-1, 1, 28, 28)
    >>> invert_in_latent(classifier, decode, 2, [3, 7], steps=2).images.shape
    torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..feature_vis import Regularisers, high_frequency_fraction, visualize_class
from .attacks import AttackError, check_attack_inputs

__all__ = ["InversionResult", "invert_in_latent", "invert_in_pixels", "score_inversion", "vae_decoder"]


@dataclass
class InversionResult:
    """Recovered images ``(B, 1, 28, 28)`` in [0, 1], their target classes, and the latents when there are any."""

    images: torch.Tensor
    classes: torch.Tensor
    latents: torch.Tensor | None = None


def _classes(classes: list[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    classes = torch.as_tensor(classes, dtype=torch.long).flatten()
    if classes.numel() == 0 or int(classes.min()) < 0 or int(classes.max()) >= num_classes:
        raise AttackError(f"classes must be a non-empty list of indices in [0, {num_classes - 1}], "
                          f"got {classes.tolist()}")
    return classes


def _num_classes(classifier: nn.Module) -> int:
    device = next(classifier.parameters()).device
    return check_attack_inputs(classifier, torch.zeros(2, 1, 28, 28, device=device),
                               torch.zeros(2, dtype=torch.long, device=device)).shape[1]


def invert_in_pixels(classifier: nn.Module, classes: list[int] | torch.Tensor, steps: int = 200,
                     step_size: float = 0.02, regularisers: Regularisers | None = None,
                     seed: int = 0) -> InversionResult:
    """Pixel-space inversion: maximise each class's logit over images in [0, 1] (no prior).

    Example:
        >>> from aigc_lessons.models.robust_classifier import RobustMnistCNN
        >>> invert_in_pixels(RobustMnistCNN().eval(), [1], steps=2).images.shape
        torch.Size([1, 1, 28, 28])
    """
    classes = _classes(classes, _num_classes(classifier))
    ascent = visualize_class(classifier, classes, steps=steps, step_size=step_size, regularisers=regularisers,
                             seed=seed)
    return InversionResult(ascent.images, classes)


def vae_decoder(vae: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """``(decode, latent_dim)`` for a VAE of :mod:`aigc_lessons.models.vae`: mean images in [0, 1].

    Example:
        >>> from aigc_lessons.models.vae import VAE
        >>> decode, latent_dim = vae_decoder(VAE(latent_dim=4).eval())
        >>> decode(torch.zeros(1, latent_dim)).shape
        torch.Size([1, 1, 28, 28])
    """
    return (lambda z: vae.mean_image(vae.decode(z))), vae.latent_dim


def invert_in_latent(classifier: nn.Module, decode: Callable[[torch.Tensor], torch.Tensor], latent_dim: int,
                     classes: list[int] | torch.Tensor, steps: int = 200, lr: float = 0.05,
                     prior_weight: float = 0.01, seed: int = 0) -> InversionResult:
    """Latent-space inversion: Adam on ``z`` to maximise ``log p(c | decode(z)) - prior_weight |z|^2 / 2``.

    ``decode(z)`` must return images ``(B, 1, 28, 28)`` in [0, 1] (:func:`vae_decoder`
    builds it for a VAE). The search starts from ``N(0, I)`` draws (seeded); only
    ``z`` is optimised, never the networks.

    Example: see the module docstring.
    """
    classes = _classes(classes, _num_classes(classifier))
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise AttackError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
    if steps < 0 or lr <= 0 or prior_weight < 0:
        raise AttackError(f"need steps >= 0, lr > 0 and prior_weight >= 0, got {steps}, {lr}, {prior_weight}")
    device = next(classifier.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(len(classes), latent_dim, generator=generator).to(device).requires_grad_(True)
    targets = classes.to(device)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        images = decode(z)
        objective = -F.cross_entropy(classifier(images), targets, reduction="sum")
        loss = -objective + prior_weight * 0.5 * (z ** 2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        images = decode(z).clamp(0, 1)
    return InversionResult(images.detach(), classes, z.detach())


@torch.no_grad()
def score_inversion(classifier: nn.Module, result: InversionResult, judge: nn.Module | None = None,
                    train_images: torch.Tensor | None = None) -> dict[str, float]:
    """How well an inversion recovered its classes.

    ``confidence``: the mean probability the inverted classifier gives the target
    class (what the inversion maximised); ``judge_accuracy``: the share of images
    that a *different* classifier (``judge``, e.g. ``classifier_mnist``) labels as
    the target (an image that only fools the inverted network scores low);
    ``nn_distance``: mean pixel distance to the nearest of ``train_images``
    (:func:`aigc_lessons.metrics.nearest_neighbour_distances`; real test digits lie
    at about 5 to 6); ``high_frequency``: the mean share of spectral energy above
    0.25 cycles per pixel (:func:`aigc_lessons.feature_vis.high_frequency_fraction`).

    Example:
        >>> from aigc_lessons.models.robust_classifier import RobustMnistCNN
        >>> model = RobustMnistCNN().eval()
        >>> sorted(score_inversion(model, invert_in_pixels(model, [0], steps=1)))
        ['confidence', 'high_frequency']
    """
    from ..metrics.quality import nearest_neighbour_distances

    images = result.images.to(next(classifier.parameters()).device)
    targets = result.classes.to(images.device)
    probabilities = F.softmax(classifier(images), dim=1)
    scores = {"confidence": float(probabilities[torch.arange(len(images)), targets].mean()),
              "high_frequency": float(high_frequency_fraction(images).mean())}
    if judge is not None:
        judge_images = images.to(next(judge.parameters()).device)
        scores["judge_accuracy"] = float((judge(judge_images).argmax(1).cpu() == result.classes).float().mean())
    if train_images is not None:
        distances = nearest_neighbour_distances(images, train_images, value_range=(0, 1), device=images.device)
        scores["nn_distance"] = float(distances.mean())
    return scores
