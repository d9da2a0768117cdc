"""Deep convolutional GAN (DCGAN) for 28 x 28 images.

Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", 2015 (ICLR 2016), turned the
fully connected GAN into a convolutional one with a few rules that made
training reliable, which this file follows:

* no pooling: the discriminator downsamples with strided convolutions and the
  generator upsamples with strided *transposed* convolutions;
* batch normalisation in both networks, except the generator's output layer and
  the discriminator's input layer;
* no fully connected hidden layers: the generator's first layer only projects
  ``z`` to a small stack of feature maps, the discriminator's last layer only
  reads its feature maps out to one logit;
* ReLU in the generator (``tanh`` at the output), LeakyReLU (slope 0.2) in the
  discriminator; weights initialised from ``N(0, 0.02)``.

The paper's networks are for 64 x 64 images; for MNIST two resolution steps
(7 -> 14 -> 28) suffice, and ``channels`` sets the width (the book uses 32, so
that an epoch fits on a CPU).

Options for the stabilisation chapter: ``DiscriminatorDCGAN(batch_norm=False)``
(needed by WGAN-GP, whose per-example gradient penalty is meaningless when
batch statistics couple the examples of a batch) and ``spectral_norm=True``
(Miyato et al., 2018: every weight matrix divided by its largest singular
value, via ``torch.nn.utils.parametrizations.spectral_norm``).

Shapes: ``GeneratorDCGAN``: ``(B, latent_dim)`` -> ``(B, 1, 28, 28)`` in ``[-1, 1]``;
``DiscriminatorDCGAN``: ``(B, 1, 28, 28)`` -> ``(B,)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ._checks import check_images, check_latent
from ._sampling import noise_to_unit_images

IMAGE_SHAPE = (1, 28, 28)


def _init_dcgan_weights(module: nn.Module) -> None:
    """The paper's initialisation: weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GeneratorDCGAN(nn.Module):
    """Maps noise ``z ~ N(0, I)`` to an image in ``[-1, 1]``: project to 7x7 maps, then upsample twice."""

    def __init__(self, latent_dim: int = 100, channels: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.channels = channels
        wide = 2 * channels
        # z -> (2c, 7, 7). A projection (one matrix product), not a hidden layer.
        self.project = nn.Sequential(
            nn.Linear(latent_dim, wide * 7 * 7, bias=False),  # bias is redundant before batch norm
            nn.BatchNorm1d(wide * 7 * 7),
            nn.ReLU(),
        )
        # Kernel 4, stride 2, padding 1 doubles the resolution exactly: 7 -> 14 -> 28.
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(wide, channels, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        )
        self.apply(_init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        maps = self.project(z).view(-1, 2 * self.channels, 7, 7)
        return self.upsample(maps)

    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` images in [0, 1] on the CPU, and ``None`` (no labels); see ``models._sampling``."""
        return noise_to_unit_images(self, count, generator, conditional=False)


class DiscriminatorDCGAN(nn.Module):
    """Scores an image with strided convolutions (28 -> 14 -> 7) and one linear read-out: a logit per image.

    ``batch_norm=False`` removes the batch normalisation (WGAN-GP needs it off);
    ``spectral_norm=True`` divides every weight by its largest singular value
    (one power-iteration step per forward pass in training mode).
    """

    def __init__(self, channels: int = 32, batch_norm: bool = True, spectral_norm: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.batch_norm = batch_norm
        self.spectral_norm = spectral_norm
        wide = 2 * channels
        first = nn.Conv2d(1, channels, kernel_size=4, stride=2, padding=1)  # no batch norm on the input layer
        second = nn.Conv2d(channels, wide, kernel_size=4, stride=2, padding=1, bias=not batch_norm)
        readout = nn.Linear(wide * 7 * 7, 1)
        for layer in (first, second, readout):
            _init_dcgan_weights(layer)
        if spectral_norm:
            first, second, readout = (_spectral_norm(layer) for layer in (first, second, readout))
        self.features = nn.Sequential(
            first,
            nn.LeakyReLU(0.2),
            second,
            nn.BatchNorm2d(wide) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        if batch_norm:
            _init_dcgan_weights(self.features[3])
        self.readout = readout

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, IMAGE_SHAPE, type(self).__name__)
        return self.readout(self.features(images)).squeeze(1)
