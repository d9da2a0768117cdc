"""Class-conditional GAN with fully connected networks, for 28 x 28 images.

Mirza and Osindero, "Conditional Generative Adversarial Nets" (2014), feed the
label ``y`` to both players: ``G(z, y)`` and ``D(x, y)``. Here the label enters

* the generator through a learned embedding concatenated with the noise;
* the discriminator in one of two ways (``mode=``):

  - ``"concat"``: a label embedding concatenated with the flattened image at the input;
  - ``"projection"``: the projection discriminator of Miyato and Koyama,
    "cGANs with Projection Discriminator", ICLR 2018: the logit is
    ``l(x, y) = psi(phi(x)) + embed(y) . phi(x)``, an unconditional score plus
    the inner product of a class embedding with the image features.

``ConditionalGeneratorDCGAN`` and ``ConditionalDiscriminatorDCGAN`` do the same with the
convolutional networks of :mod:`aigc_lessons.models.dcgan` (embedding + concatenation into the
generator, projection on the discriminator's convolutional features).

Shapes: ``ConditionalGenerator``: ``z (B, latent_dim), labels (B,)`` -> ``(B, 1, 28, 28)`` in
``[-1, 1]``; ``ConditionalDiscriminator``: ``images (B, 1, 28, 28), labels (B,)`` -> ``(B,)`` logits.
Labels are integers in ``[0, num_classes)``; anything else raises a ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_images, check_labels, check_latent
from ._sampling import noise_to_unit_images
from .dcgan import DiscriminatorDCGAN, GeneratorDCGAN

IMAGE_SHAPE = (1, 28, 28)
DISCRIMINATOR_MODES = ("concat", "projection")


class ConditionalGenerator(nn.Module):
    """``G(z, y)``: noise and a label embedding, concatenated, through an MLP ending in tanh."""

    def __init__(self, latent_dim: int = 64, num_classes: int = 10, embed_dim: int = 16,
                 hidden: tuple[int, ...] = (256, 512, 1024)) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        width = latent_dim + embed_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2)]
            width = size
        layers += [nn.Linear(width, 28 * 28), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        check_labels(labels, z.shape[0], self.num_classes, type(self).__name__)
        h = torch.cat([z, self.embed(labels.long())], dim=1)
        return self.net(h).view(-1, *IMAGE_SHAPE)

    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` images in [0, 1] on the CPU for labels ``i % 10``, and those labels; see ``models._sampling``."""
        return noise_to_unit_images(self, count, generator, conditional=True)


class ConditionalDiscriminator(nn.Module):
    """``D(x, y)`` as a logit, with the label entering by concatenation or by projection."""

    def __init__(self, num_classes: int = 10, mode: str = "projection", embed_dim: int = 16,
                 hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3) -> None:
        super().__init__()
        if mode not in DISCRIMINATOR_MODES:
            raise ValueError(f"mode must be one of {DISCRIMINATOR_MODES}, got {mode!r}")
        self.num_classes, self.mode = num_classes, mode
        width = 28 * 28
        if mode == "concat":
            self.embed = nn.Embedding(num_classes, embed_dim)
            width += embed_dim
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = size
        self.features = nn.Sequential(*layers)  # phi(x) (or phi(x, y) in concat mode)
        self.score = nn.Linear(width, 1)  # psi
        if mode == "projection":
            self.embed = nn.Embedding(num_classes, width)  # one vector per class, in feature space

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_images(images, IMAGE_SHAPE, type(self).__name__)
        check_labels(labels, images.shape[0], self.num_classes, type(self).__name__)
        x = images.flatten(1)
        if self.mode == "concat":
            features = self.features(torch.cat([x, self.embed(labels.long())], dim=1))
            return self.score(features).squeeze(1)
        features = self.features(x)
        projection = (self.embed(labels.long()) * features).sum(dim=1)
        return self.score(features).squeeze(1) + projection



class ConditionalGeneratorDCGAN(nn.Module):
    """``G(z, y)`` with the DCGAN generator: the label embedding joins the noise before the projection."""

    def __init__(self, latent_dim: int = 64, num_classes: int = 10, embed_dim: int = 16, channels: int = 32) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = GeneratorDCGAN(latent_dim=latent_dim + embed_dim, channels=channels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        check_labels(labels, z.shape[0], self.num_classes, type(self).__name__)
        return self.body(torch.cat([z, self.embed(labels.long())], dim=1))

    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` images in [0, 1] on the CPU for labels ``i % 10``, and those labels; see ``models._sampling``."""
        return noise_to_unit_images(self, count, generator, conditional=True)


class ConditionalDiscriminatorDCGAN(nn.Module):
    """Projection discriminator on the DCGAN discriminator: ``l(x, y) = psi(phi(x)) + embed(y) . phi(x)``."""

    def __init__(self, num_classes: int = 10, channels: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = DiscriminatorDCGAN(channels=channels)  # phi = body.features, psi = body.readout
        self.embed = nn.Embedding(num_classes, 2 * channels * 7 * 7)
        nn.init.normal_(self.embed.weight, std=0.02)  # start close to the unconditional discriminator

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_images(images, IMAGE_SHAPE, type(self).__name__)
        check_labels(labels, images.shape[0], self.num_classes, type(self).__name__)
        features = self.body.features(images)
        projection = (self.embed(labels.long()) * features).sum(dim=1)
        return self.body.readout(features).squeeze(1) + projection
