"""A small U-Net that predicts the noise in a noisy 28 x 28 image, for diffusion models.

Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models", 2020, train a
network eps_theta(x_t, t) to recover the Gaussian noise that was added to an
image at step t of the forward process. Their network is a U-Net (Ronneberger,
Fischer and Brox, 2015): an encoder that halves the resolution, a decoder that
doubles it back, and skip connections that hand each decoder level the encoder's
features of the same size, so that fine detail need not pass through the
bottleneck. Three ideas make it a *diffusion* U-Net:

* the step t enters every residual block: a sinusoidal embedding of t (as the
  Transformer's positions), passed through a small MLP, is added to the feature
  maps, so that one network serves every noise level;
* group normalisation instead of batch normalisation (the statistics of a batch
  mixing many noise levels say little about one image);
* for classifier-free guidance (Ho and Salimans, 2022), an optional class
  embedding is added to the time embedding; the extra index ``num_classes``
  stands for "no label", so that the same network also learns the unconditional
  model when labels are dropped during training.

This file follows the DDPM U-Net in spirit at MNIST size: two resolution steps
(28 -> 14 -> 7), one residual block per level, no attention layers (at 7 x 7 a
3 x 3 convolution already sees most of the image), about 0.5 M parameters.

Shapes: ``UNet(images (B, 1, 28, 28), steps (B,) int, labels (B,) int or None)``
-> predicted noise ``(B, 1, 28, 28)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_images, check_labels

__all__ = ["UNet", "timestep_embedding"]  # ResidualBlock is a building block

IMAGE_SHAPE = (1, 28, 28)


def timestep_embedding(steps: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of integer steps, ``(B,)`` -> ``(B, dim)``: sines and cosines of many frequencies.

    >>> timestep_embedding(torch.tensor([0, 10]), 4).shape
    torch.Size([2, 4])
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=steps.device) / half)
    angles = steps.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions with the step's embedding added in between, plus a skip connection."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.embed(embedding)[:, :, None, None]  # the same shift at every pixel
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """Noise predictor eps_theta(x_t, t[, y]) for 28 x 28 single-channel images.

    ``channels`` are the widths at 28, 14 and 7 pixels; ``num_classes=None`` gives an
    unconditional model, an integer a class-conditional one whose label ``num_classes``
    means "no label" (used for classifier-free guidance).
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 64), embed_dim: int = 128,
                 num_classes: int | None = None, groups: int = 8) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        c28, c14, c7 = self.channels
        self.time_mlp = nn.Sequential(nn.Linear(c28, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.label_embedding = nn.Embedding(num_classes + 1, embed_dim) if num_classes is not None else None

        self.stem = nn.Conv2d(1, c28, kernel_size=3, padding=1)
        # Encoder: a block at each resolution, a strided convolution between them.
        self.down28 = ResidualBlock(c28, c28, embed_dim, groups)
        self.to14 = nn.Conv2d(c28, c28, kernel_size=3, stride=2, padding=1)
        self.down14 = ResidualBlock(c28, c14, embed_dim, groups)
        self.to7 = nn.Conv2d(c14, c14, kernel_size=3, stride=2, padding=1)
        self.down7 = ResidualBlock(c14, c7, embed_dim, groups)
        self.middle = ResidualBlock(c7, c7, embed_dim, groups)
        # Decoder: each block reads its own input and the encoder's features of that size.
        self.up7 = ResidualBlock(c7 + c7, c14, embed_dim, groups)
        self.up_to14 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c14, c14, 3, padding=1))
        self.up14 = ResidualBlock(c14 + c14, c28, embed_dim, groups)
        self.up_to28 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c28, c28, 3, padding=1))
        self.up28 = ResidualBlock(c28 + c28, c28, embed_dim, groups)
        self.head = nn.Sequential(nn.GroupNorm(groups, c28), nn.SiLU(), nn.Conv2d(c28, 1, kernel_size=3, padding=1))
        nn.init.zeros_(self.head[-1].weight)  # start by predicting zero noise: a calm first step
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, images: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        name = type(self).__name__
        check_images(images, IMAGE_SHAPE, name)
        if steps.dim() != 1 or steps.shape[0] != images.shape[0] or steps.is_floating_point():
            raise ValueError(f"{name} expects integer steps of shape ({images.shape[0]},), got "
                             f"{tuple(steps.shape)} {steps.dtype}.")
        embedding = self.time_mlp(timestep_embedding(steps, self.channels[0]))
        if self.label_embedding is not None:
            if labels is None:
                raise ValueError(f"{name} is class-conditional: pass labels, with {self.num_classes} for 'no label'.")
            check_labels(labels, images.shape[0], self.num_classes + 1, name)
            embedding = embedding + self.label_embedding(labels)
        elif labels is not None:
            raise ValueError(f"{name} was built without classes (num_classes=None); do not pass labels.")

        h28 = self.down28(self.stem(images), embedding)
        h14 = self.down14(self.to14(h28), embedding)
        h7 = self.down7(self.to7(h14), embedding)
        h = self.middle(h7, embedding)
        h = self.up7(torch.cat([h, h7], dim=1), embedding)
        h = self.up14(torch.cat([self.up_to14(h), h14], dim=1), embedding)
        h = self.up28(torch.cat([self.up_to28(h), h28], dim=1), embedding)
        return self.head(h)
