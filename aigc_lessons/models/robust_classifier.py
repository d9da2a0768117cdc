"""A small, fast MNIST CNN for adversarial training (the Responsible AIGC part).

Adversarial training multiplies the cost of every step (FGSM with a random start
costs two forward/backward passes per batch, PGD-k costs k + 1), so the robust
classifier of the book is smaller than the reference classifier
(:class:`~aigc_lessons.models.classifier.MnistClassifier`): two strided
convolutions and two linear layers, the MNIST network of Wong, Rice and Kolter
(2020), about 166 000 parameters and 7 times faster per image on a CPU.

conv 4x4 stride 2 (16) -> conv 4x4 stride 2 (32) -> linear 1568 -> 100 -> linear 100 -> 10

Input: ``(B, 1, 28, 28)`` with pixels in ``[0, 1]``: the attacks work in that
range, so any standardisation would have to live inside the model (this one
needs none: the first convolution's bias absorbs the mean).
Output: logits ``(B, 10)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_images

IMAGE_SHAPE = (1, 28, 28)


class RobustMnistCNN(nn.Module):
    """Two strided convolutions and two linear layers; logits for images in ``[0, 1]``.

    Example:
        >>> RobustMnistCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 100, num_classes: int = 10) -> None:
        super().__init__()
        first, second = channels
        self.num_classes = num_classes
        self.conv = nn.Sequential(
            nn.Conv2d(1, first, 4, stride=2, padding=1), nn.ReLU(),        # 28 -> 14
            nn.Conv2d(first, second, 4, stride=2, padding=1), nn.ReLU(),   # 14 -> 7
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(second * 7 * 7, hidden), nn.ReLU(),
                                  nn.Linear(hidden, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for images ``(B, 1, 28, 28)`` in ``[0, 1]``."""
        check_images(images, IMAGE_SHAPE, "RobustMnistCNN")
        return self.head(self.conv(images))
