"""A small generator and discriminator for two-dimensional toy data.

The 2-D lab of the GAN chapter trains these on a ring of Gaussians, where
samples can be plotted directly and mode collapse is visible at a glance.
The architecture follows the toy experiments of Metz et al., "Unrolled
Generative Adversarial Networks", ICLR 2017, and Gulrajani et al., "Improved
Training of Wasserstein GANs", NeurIPS 2017: fully connected layers with
ReLU activations, no normalisation layers (batch normalisation would mix
examples within a batch and change the WGAN-GP critic's gradient).

Shapes: ``GeneratorToy``: ``(B, latent_dim)`` -> ``(B, data_dim)`` (no output
activation: points can lie anywhere in the plane); ``DiscriminatorToy``:
``(B, data_dim)`` -> ``(B,)`` logits (or unbounded critic scores for WGAN).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_latent


def _mlp(width_in: int, hidden: int, depth: int, width_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = width_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, width_out))
    return nn.Sequential(*layers)


class GeneratorToy(nn.Module):
    """Maps noise ``z ~ N(0, I)`` to a point in the plane (or in ``data_dim`` dimensions)."""

    def __init__(self, latent_dim: int = 2, hidden: int = 128, depth: int = 3, data_dim: int = 2) -> None:
        super().__init__()
        if depth < 1 or hidden < 1:
            raise ValueError(f"depth and hidden must be positive, got depth={depth}, hidden={hidden}")
        self.latent_dim = latent_dim
        self.data_dim = data_dim
        self.net = _mlp(latent_dim, hidden, depth, data_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        return self.net(z)


class DiscriminatorToy(nn.Module):
    """Scores a point: a large logit means "looks real".

    ``minibatch_std=True`` adds the *minibatch standard deviation* feature of
    Karras et al., "Progressive Growing of GANs", ICLR 2018: before the last
    hidden layer, the standard deviation of every feature across the batch is
    averaged into one number and appended to each example's features. A batch
    of samples that all sit on one mode has a small spread, which the
    discriminator can now see and punish, so the generator is pushed to spread
    out. The score of an example then depends on the rest of its batch: score
    real and generated batches in separate calls, and do not combine this
    option with the gradient penalty, which needs one independent score per
    example.
    """

    def __init__(self, hidden: int = 128, depth: int = 3, data_dim: int = 2, minibatch_std: bool = False) -> None:
        super().__init__()
        if depth < 1 or hidden < 1:
            raise ValueError(f"depth and hidden must be positive, got depth={depth}, hidden={hidden}")
        self.data_dim = data_dim
        self.minibatch_std = minibatch_std
        if minibatch_std:
            # depth - 1 hidden layers, the spread feature, then the last hidden layer and the output.
            self.body = _mlp(data_dim, hidden, depth - 1, hidden)[:-1] if depth > 1 else nn.Identity()
            width = hidden if depth > 1 else data_dim
            self.head = nn.Sequential(nn.Linear(width + 1, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        else:
            self.net = _mlp(data_dim, hidden, depth, 1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.dim() != 2 or points.shape[1] != self.data_dim:
            raise ValueError(
                f"{type(self).__name__} expects points of shape (batch, {self.data_dim}), got {tuple(points.shape)}."
            )
        if not self.minibatch_std:
            return self.net(points).squeeze(1)
        if points.shape[0] < 2:
            raise ValueError("the minibatch standard deviation needs a batch of at least 2 points")
        features = self.body(points)
        spread = features.std(dim=0, unbiased=False).mean().expand(features.shape[0], 1)
        return self.head(torch.cat([features, spread], dim=1)).squeeze(1)
