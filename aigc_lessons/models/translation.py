"""Image-to-image translation networks for 28 x 28 images: a U-Net generator and a patch discriminator.

pix2pix (Isola, Zhu, Zhou and Efros, "Image-to-Image Translation with
Conditional Adversarial Networks", CVPR 2017) and CycleGAN (Zhu, Park, Isola
and Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017) use two kinds of network, scaled down here
from 256 x 256 photographs to MNIST:

* :class:`UNetGenerator`: an encoder-decoder with **skip connections**
  (Ronneberger, Fischer and Brox, 2015): the encoder goes 28 -> 14 -> 7, the
  decoder comes back 7 -> 14 -> 28, and at each resolution the decoder also
  receives the encoder's feature maps of the same size. Input and output share
  their layout (where the strokes are), and the skips carry that layout across
  without squeezing it through the 7 x 7 bottleneck.
* :class:`PatchDiscriminator`: a fully convolutional discriminator that
  returns a **map** of logits, one per overlapping image patch, instead of one
  logit per image ("PatchGAN"). Each logit sees an 18 x 18 pixel patch
  (:meth:`PatchDiscriminator.receptive_field` computes it from the layers).
  For pix2pix the discriminator sees the input and the output stacked as two
  channels (``in_channels=2``), so it judges whether the output fits *this*
  input; for CycleGAN it sees one image.
* :class:`CycleGenerators`: the two generators of CycleGAN, ``a_to_b`` (G) and
  ``b_to_a`` (F), in one module so that they are saved and loaded together.

Differences from the papers, for 28 x 28 images and CPU training: two
down-sampling steps instead of eight, 16 base channels instead of 64, no
dropout in the generator (pix2pix uses it as its only noise source and reports
that the generator largely ignores it), instance normalisation in the
generator and none in the discriminator (so that each patch logit depends only
on its patch).

Shapes: ``UNetGenerator``: ``(B, in_channels, 28, 28)`` -> ``(B, out_channels, 28, 28)`` in ``[0, 1]``
(sigmoid output, the pixel range of :mod:`aigc_lessons.image_tasks`);
``PatchDiscriminator``: ``(B, in_channels, 28, 28)`` -> ``(B, 7, 7)`` logits. This is the one
discriminator in the book whose output is not ``(B,)``: the losses average over the patches.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_images


OUTPUT_BIAS = -2.944  # logit of 0.05


def _down(in_channels: int, out_channels: int, normalize: bool = True) -> nn.Sequential:
    """Halve the resolution: 4 x 4 convolution with stride 2 (pix2pix's encoder block)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)]
    if normalize:
        layers.append(nn.InstanceNorm2d(out_channels, affine=True))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the resolution: 4 x 4 transposed convolution with stride 2 (pix2pix's decoder block)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(),
    )


def _merge(in_channels: int, out_channels: int) -> nn.Sequential:
    """Mix the up-sampled maps with the skipped encoder maps: 3 x 3 convolution at the same resolution."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(),
    )


class UNetGenerator(nn.Module):
    """U-Net for 28 x 28 images: encoder 28 -> 14 -> 7, decoder 7 -> 14 -> 28, skips at 28 and 14.

    Example:
        >>> UNetGenerator(channels=8)(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: int = 16) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.channels = in_channels, out_channels, channels
        c = channels
        # Encoder. No normalisation on the first layer (as in pix2pix): it sees raw pixels.
        self.encode28 = nn.Sequential(nn.Conv2d(in_channels, c, kernel_size=3, padding=1), nn.LeakyReLU(0.2))
        self.encode14 = _down(c, 2 * c)          # (2c, 14, 14)
        self.encode7 = _down(2 * c, 4 * c)       # (4c, 7, 7)
        self.bottleneck = _merge(4 * c, 4 * c)   # (4c, 7, 7): each position now sees most of the digit
        # Decoder: up-sample, concatenate the encoder's maps of the same size, mix.
        self.up14 = _up(4 * c, 2 * c)
        self.decode14 = _merge(2 * c + 2 * c, 2 * c)
        self.up28 = _up(2 * c, c)
        self.decode28 = _merge(c + c, c)
        self.to_image = nn.Conv2d(c, out_channels, kernel_size=1)
        # Start from an almost black image (sigmoid(-2.94) = 0.05): most pixels of a digit are background.
        # From a bias of 0 (grey 0.5), Adam, which moves a parameter by about eta = 2e-4 per step,
        # would need thousands of steps just to darken the background.
        nn.init.constant_(self.to_image.bias, OUTPUT_BIAS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, (self.in_channels, 28, 28), type(self).__name__)
        skip28 = self.encode28(images)
        skip14 = self.encode14(skip28)
        hidden = self.bottleneck(self.encode7(skip14))
        hidden = self.decode14(torch.cat([self.up14(hidden), skip14], dim=1))
        hidden = self.decode28(torch.cat([self.up28(hidden), skip28], dim=1))
        return torch.sigmoid(self.to_image(hidden))


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field (pixels per side) of a stack of convolutions given as ``(kernel, stride)`` pairs.

    Each layer widens the field by ``(kernel - 1)`` times the product of the strides before it
    (the distance between neighbouring positions of its input, measured in input pixels).

    Example:
        >>> receptive_field([(4, 2), (4, 2), (3, 1)])  # the PatchDiscriminator's three layers
        18
        >>> receptive_field([(4, 2)] * 3 + [(4, 1), (4, 1)])  # pix2pix's 70 x 70 PatchGAN
        70
    """
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


class PatchDiscriminator(nn.Module):
    """Logit map ``(B, 7, 7)``: 28 -> 14 -> 7 with stride-2 convolutions, then a 3 x 3 read-out per position.

    ``in_channels=2`` for pix2pix (input and output stacked), 1 for CycleGAN.

    Example:
        >>> PatchDiscriminator(in_channels=2, channels=8)(torch.rand(3, 2, 28, 28)).shape
        torch.Size([3, 7, 7])
    """

    def __init__(self, in_channels: int = 1, channels: int = 16) -> None:
        super().__init__()
        self.in_channels, self.channels = in_channels, channels
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * channels, 1, kernel_size=3, stride=1, padding=1),
        )

    def receptive_field(self) -> int:
        """Side, in input pixels, of the patch that each logit depends on (computed from the layers)."""
        convolutions = [m for m in self.layers if isinstance(m, nn.Conv2d)]
        return receptive_field([(m.kernel_size[0], m.stride[0]) for m in convolutions])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, (self.in_channels, 28, 28), type(self).__name__)
        return self.layers(images).squeeze(1)


class CycleGenerators(nn.Module):
    """CycleGAN's two generators: ``a_to_b`` (G: A -> B) and ``b_to_a`` (F: B -> A), saved as one entry.

    Example:
        >>> pair = CycleGenerators(channels=8)
        >>> pair.a_to_b(torch.rand(1, 1, 28, 28)).shape, pair.b_to_a(torch.rand(1, 1, 28, 28)).shape
        (torch.Size([1, 1, 28, 28]), torch.Size([1, 1, 28, 28]))
    """

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.a_to_b = UNetGenerator(channels=channels)
        self.b_to_a = UNetGenerator(channels=channels)

    def forward(self, images_a: torch.Tensor) -> torch.Tensor:
        """A round trip ``F(G(a))`` (translate to B and back)."""
        return self.b_to_a(self.a_to_b(images_a))
