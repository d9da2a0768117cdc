"""Fully connected GAN for 28 x 28 images (the source project's network, corrected).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, introduced the
adversarial game; this multilayer-perceptron pair follows the layer sizes of the
MNIST project that the book audits (generator 100-256-512-1024-784,
discriminator 784-1024-512-256-1 with dropout), with two corrections:

* the generator ends in ``tanh``, so it can reach data scaled to ``[-1, 1]``
  (the published code ended in a sigmoid and could never match the data);
* the discriminator returns a *logit* (no sigmoid), to be used with
  ``BCEWithLogitsLoss``, which is numerically stable.

Shapes: ``GeneratorMLP``: ``(B, latent_dim)`` -> ``(B, 1, 28, 28)`` in ``[-1, 1]``;
``DiscriminatorMLP``: ``(B, 1, 28, 28)`` -> ``(B,)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_images, check_latent
from ._sampling import noise_to_unit_images

IMAGE_SHAPE = (1, 28, 28)


class GeneratorMLP(nn.Module):
    """Maps noise ``z ~ N(0, I)`` to an image in ``[-1, 1]``."""

    def __init__(self, latent_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024)) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2)]
            width = size
        layers += [nn.Linear(width, 28 * 28), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        return self.net(z).view(-1, *IMAGE_SHAPE)

    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` images in [0, 1] on the CPU, and ``None`` (no labels); see ``models._sampling``."""
        return noise_to_unit_images(self, count, generator, conditional=False)


class DiscriminatorMLP(nn.Module):
    """Scores an image: a large logit means "looks real"."""

    def __init__(self, hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, IMAGE_SHAPE, type(self).__name__)
        return self.net(images).squeeze(1)
