"""Super-resolution of small grey-scale images: the degradation model and an EDSR-style network.

Lim, Son, Kim, Nah and Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution" (EDSR), CVPR Workshops 2017, simplified the SRResNet generator
of Ledig et al. (2017) into the network this file follows:

* a head convolution from the image to ``channels`` feature maps;
* residual blocks ``x + s * conv(relu(conv(x)))`` **without batch normalisation**
  (batch norm normalises away the range of the features, which a regression
  network needs, and costs memory) and with a *residual scaling* ``s`` that keeps
  the sum of many blocks stable (EDSR uses 0.1 for its wide model);
* one more convolution and a long skip connection around the whole body;
* upsampling by sub-pixel convolution (Shi et al., 2016): a convolution makes
  ``r^2`` times as many maps, ``nn.PixelShuffle(r)`` rearranges them into an
  image ``r`` times larger in each direction;
* a tail convolution back to one channel.

Optionally (``global_skip=True``, the book's default) the network adds its
output to the bicubic upsample of the input, so that it only has to learn the
detail that bicubic interpolation misses.

The SRGAN-style model of the chapter is this same network trained with an added
adversarial loss (see :mod:`aigc_lessons.train.superres`); its discriminator is
the book's :class:`~aigc_lessons.models.dcgan.DiscriminatorDCGAN`.

Shapes: ``degrade``: ``(B, 1, H, W)`` -> ``(B, 1, H/scale, W/scale)``;
``EDSR(scale)``: ``(B, 1, h, w)`` -> ``(B, 1, scale*h, scale*w)``, pixels in ``[0, 1]``
(the output is not clamped: clamp it with :func:`clamp_unit` before measuring).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SCALES = (2, 3, 4)

# ResidualBlock is a building block of EDSR, not a model of its own (models.MODEL_CLASSES lists __all__'s classes).
__all__ = ["EDSR", "SCALES", "clamp_unit", "degrade", "upscale_bicubic"]


def _check_scale(scale: int) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES} (the upscaling factor), got {scale!r}")


def _check_batch(images: torch.Tensor, who: str, what: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{who} expects {what} of shape (batch, 1, height, width), got {shape}. "
                         "A single image needs its batch and channel dimensions: image[None, None].")


def degrade(high_res: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation model: bicubic downsampling with antialiasing by ``scale``.

    ``high_res`` has shape ``(B, 1, H, W)`` with ``H`` and ``W`` divisible by ``scale``.
    The antialiasing filter widens the bicubic kernel by ``scale`` (it averages the
    pixels that fall into one low-resolution pixel instead of picking a few of them),
    as MATLAB's ``imresize`` and most super-resolution benchmarks do.

    Example:
        >>> degrade(torch.rand(2, 1, 28, 28), scale=4).shape
        torch.Size([2, 1, 7, 7])
    """
    _check_scale(scale)
    _check_batch(high_res, "degrade", "high-resolution images")
    height, width = high_res.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"degrade: image size {height}x{width} is not divisible by scale {scale}; "
                         "crop the images first (28x28 works for scales 2 and 4).")
    return F.interpolate(high_res, size=(height // scale, width // scale), mode="bicubic",
                         antialias=True, align_corners=False)


def upscale_bicubic(low_res: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: bicubic interpolation by ``scale`` (not clamped; bicubic can overshoot [0, 1]).

    Example:
        >>> upscale_bicubic(torch.rand(2, 1, 7, 7), scale=4).shape
        torch.Size([2, 1, 28, 28])
    """
    _check_scale(scale)
    _check_batch(low_res, "upscale_bicubic", "low-resolution images")
    return F.interpolate(low_res, scale_factor=scale, mode="bicubic", align_corners=False)


def clamp_unit(images: torch.Tensor) -> torch.Tensor:
    """Clip to the valid pixel range [0, 1] (what a saved image would hold)."""
    return images.clamp(0.0, 1.0)


class ResidualBlock(nn.Module):
    """``x + residual_scale * conv(relu(conv(x)))``: EDSR's block, no batch normalisation."""

    def __init__(self, channels: int, residual_scale: float = 0.1) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scale * self.body(x)


def _upsampler(channels: int, scale: int) -> nn.Sequential:
    """Sub-pixel convolution: conv to ``r^2 * channels`` maps, then PixelShuffle(r); x4 is two x2 steps."""
    steps = [2, 2] if scale == 4 else [scale]
    layers: list[nn.Module] = []
    for factor in steps:
        layers += [nn.Conv2d(channels, factor * factor * channels, kernel_size=3, padding=1), nn.PixelShuffle(factor)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """EDSR-style super-resolution network for one-channel images in [0, 1].

    ``scale`` is 2, 3 or 4; ``channels`` and ``blocks`` set width and depth (the book
    uses 32 and 4: about 0.1 million parameters, against 43 million in EDSR's largest model).
    """

    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 4, residual_scale: float = 0.1,
                 global_skip: bool = True) -> None:
        super().__init__()
        _check_scale(scale)
        if channels < 1 or blocks < 0:
            raise ValueError(f"channels must be positive and blocks non-negative, got {channels} and {blocks}")
        self.scale, self.channels, self.blocks = scale, channels, blocks
        self.residual_scale, self.global_skip = residual_scale, global_skip
        self.head = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(channels, residual_scale) for _ in range(blocks)],
                                  nn.Conv2d(channels, channels, kernel_size=3, padding=1))
        self.upsample = _upsampler(channels, scale)
        self.tail = nn.Conv2d(channels, 1, kernel_size=3, padding=1)

    def forward(self, low_res: torch.Tensor) -> torch.Tensor:
        _check_batch(low_res, type(self).__name__, "low-resolution images")
        features = self.head(low_res)
        features = features + self.body(features)  # EDSR's long skip around the residual blocks
        output = self.tail(self.upsample(features))
        if self.global_skip:  # learn only what bicubic interpolation misses
            output = output + upscale_bicubic(low_res, self.scale)
        return output
