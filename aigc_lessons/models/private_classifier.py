"""A small MNIST CNN for differentially private training (the Responsible AIGC part).

DP-SGD (Abadi et al., 2016) clips each example's gradient, so a layer that mixes
the examples of a batch is not allowed: batch normalisation makes one example's
output depend on its batch-mates, and its per-example gradient is then not
defined. This network uses group normalisation (Wu and He, 2018), which
normalises each example on its own, and tanh activations, which Papernot et
al. (2021) and Tramèr and Boneh (2021) found train better than ReLU under
clipping and noise. The layout is the Opacus MNIST example's ``SampleConvNet``
(about 26 000 parameters): few parameters mean less noise in total.

conv 8x8 stride 2 (16) -> GroupNorm -> tanh -> maxpool 2 stride 1
-> conv 4x4 stride 2 (32) -> GroupNorm -> tanh -> maxpool 2 stride 1
-> linear 512 -> 32 -> tanh -> linear 32 -> 10

Input: ``(B, 1, 28, 28)`` with pixels in ``[0, 1]`` (standardised inside the model).
Output: logits ``(B, 10)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_images

IMAGE_SHAPE = (1, 28, 28)
# MNIST's pixel mean and standard deviation, the constants of the Opacus example
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class PrivateMnistCNN(nn.Module):
    """GroupNorm + tanh CNN that Opacus can train with per-example gradients.

    Example:
        >>> PrivateMnistCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 32, groups: int = 4,
                 num_classes: int = 10) -> None:
        super().__init__()
        first, second = channels
        if first % groups or second % groups:
            raise ValueError(f"groups ({groups}) must divide both channel counts {tuple(channels)}")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(1, first, 8, stride=2, padding=3), nn.GroupNorm(groups, first), nn.Tanh(),  # 28 -> 14
            nn.MaxPool2d(2, 1),                                                                  # 14 -> 13
            nn.Conv2d(first, second, 4, stride=2), nn.GroupNorm(groups, second), nn.Tanh(),      # 13 -> 5
            nn.MaxPool2d(2, 1),                                                                  # 5 -> 4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(second * 4 * 4, hidden), nn.Tanh(),
                                  nn.Linear(hidden, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for images ``(B, 1, 28, 28)`` in ``[0, 1]``."""
        check_images(images, IMAGE_SHAPE, "PrivateMnistCNN")
        return self.head(self.features((images - MNIST_MEAN) / MNIST_STD))
