"""Image-to-image tasks built from MNIST, with a known answer for every test digit.

Real translation data sets (maps <-> aerial photos, horses <-> zebras) are
large, and for the unpaired ones nobody knows the correct output. Built from
MNIST, both problems disappear: a fixed image operation turns each digit into
its "other domain" version, so every translated test digit can be scored
against the true answer.

* :func:`thicken` (grey-level **dilation**: a ``size x size`` max filter) and
  :func:`thin` (grey-level **erosion**: a min filter) change the stroke width.
* :func:`edge_map` keeps only the outline of a shape: the Sobel gradient
  magnitude, thresholded to a binary edge image (the role played by the edge
  detector in pix2pix's edges -> shoes task). MNIST strokes are only 2 to 4
  pixels wide, so the two edges of a stroke merge and the edge map is close to
  a thickened copy of the digit: too easy a task, which is why the chapter uses
* :func:`skeleton`: the one-pixel-wide centre line of each stroke
  (scikit-image's ``skeletonize`` of the binarized digit), a "sketch" that has
  lost the stroke width and the grey levels.
* :func:`paired_skeletons` builds the paired task of the pix2pix chapter
  (input: skeleton, target: the digit); :func:`unpaired_stroke_domains` builds the
  unpaired task of the CycleGAN chapter (domain A: MNIST digits as written,
  domain B: thickened digits), drawn from **disjoint** halves of the training
  set, so that no digit appears in both domains.

Every function takes and returns images of shape ``(N, 1, H, W)`` with values
in ``[0, 1]`` (as :func:`aigc_lessons.data.load_mnist` returns them).

Example:
    >>> import torch
    >>> dot = torch.zeros(1, 1, 5, 5); dot[0, 0, 2, 2] = 1.0
    >>> int(thicken(dot).sum())  # a 3 x 3 max filter turns one pixel into nine
    9
    >>> int(thin(thicken(dot)).sum())  # erosion after dilation (a closing) gives the dot back
    1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def _check_unit_images(images: torch.Tensor, who: str) -> None:
    """Raise a clear error unless ``images`` is ``(N, 1, H, W)`` with values in ``[0, 1]``."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{who} expects single-channel images of shape (N, 1, H, W), got {shape}. "
                         "Add the channel axis with images.unsqueeze(1).")
    if images.numel() and (float(images.min()) < -1e-6 or float(images.max()) > 1 + 1e-6):
        raise ValueError(f"{who} expects pixel values in [0, 1], got values in "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]. "
                         "Load the digits with load_mnist(value_range=(0, 1)) or map x to (x + 1) / 2.")


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive integer (the filter is centred on each pixel), got {size!r}")


def thicken(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Grey-level dilation: each pixel becomes the maximum of its ``size x size`` neighbourhood.

    Dilation only adds ink: the result is at least the input everywhere, and
    a stroke grows by ``(size - 1) / 2`` pixels on each side.

    Example:
        >>> x = torch.rand(2, 1, 28, 28)
        >>> bool((thicken(x) >= x).all())
        True
    """
    _check_unit_images(images, "thicken")
    _check_size(size)
    return F.max_pool2d(images, kernel_size=size, stride=1, padding=size // 2)


def thin(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Grey-level erosion: each pixel becomes the minimum of its ``size x size`` neighbourhood.

    Written as ``-maxpool(-x)``; the border counts as ink-free (value 0), as MNIST's is.
    Erosion only removes ink: the result is at most the input everywhere.

    Example:
        >>> x = torch.rand(2, 1, 28, 28)
        >>> bool((thin(x) <= x).all())
        True
    """
    _check_unit_images(images, "thin")
    _check_size(size)
    padded = F.pad(images, [size // 2] * 4, value=0.0)  # outside the image there is no ink
    return -F.max_pool2d(-padded, kernel_size=size, stride=1)


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Length of the Sobel gradient ``sqrt(gx^2 + gy^2)`` at every pixel (zero padding), same shape as the input.

    Example:
        >>> float(sobel_magnitude(torch.full((1, 1, 5, 5), 0.5))[0, 0, 2, 2])  # flat inside: no gradient
        0.0
    """
    _check_unit_images(images, "sobel_magnitude")
    kernels = torch.stack([SOBEL_X, SOBEL_X.T]).unsqueeze(1).to(images)  # (2, 1, 3, 3): d/dx and d/dy
    gradients = F.conv2d(images, kernels, padding=1)
    return gradients.pow(2).sum(dim=1, keepdim=True).sqrt()


def edge_map(images: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """Binary edges: 1 where the Sobel gradient magnitude exceeds ``threshold``, else 0.

    The Sobel magnitude of a step from 0 to 1 is 4 at the step, so ``threshold=1``
    keeps every clear edge and drops the faint anti-aliasing ramps. The edge image
    keeps the outline of each stroke and loses its grey levels and, for strokes
    wider than about three pixels, its inside.

    Example:
        >>> square = torch.zeros(1, 1, 9, 9); square[..., 2:7, 2:7] = 1.0
        >>> edges = edge_map(square)
        >>> int(edges[0, 0, 4, 4]), int(edges[0, 0, 4, 2])  # centre of the square, its left side
        (0, 1)
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be positive (0 would mark every pixel as an edge), got {threshold!r}")
    return (sobel_magnitude(images) > threshold).to(images.dtype)


def ink(images: torch.Tensor) -> torch.Tensor:
    """Total ink per image (sum of pixel values), shape ``(N,)``, on the CPU: a simple measure of stroke width.

    The translation chapters compare stroke widths with it; the anomaly chapter
    (``aigc_lessons.anomaly.ink``, the same function) counts the "on" pixels of
    binarized digits.

    Example:
        >>> ink(torch.ones(2, 1, 3, 3)).tolist()
        [9.0, 9.0]
    """
    _check_unit_images(images, "ink")
    return images.flatten(1).float().sum(dim=1).cpu()


def skeleton(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """One-pixel-wide centre lines: ``skeletonize(images > threshold)``, as 0/1 floats of the input's shape.

    The skeleton keeps the digit's shape (which strokes, where they bend and
    meet) and drops the stroke width and the grey levels, which the translation
    must invent back.

    Example:
        >>> bar = torch.zeros(1, 1, 9, 9); bar[..., 3:6, 1:8] = 1.0  # a horizontal bar, 3 pixels thick
        >>> lines = skeleton(bar)[0, 0]
        >>> int(lines.sum()), bool((lines.sum(dim=0) <= 1).all())  # at most one pixel per column
        (6, True)
    """
    import numpy as np
    from skimage.morphology import skeletonize

    _check_unit_images(images, "skeleton")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold!r}")
    binary = (images[:, 0] > threshold).cpu().numpy()
    lines = np.stack([skeletonize(image) for image in binary]) if len(binary) else binary
    return torch.from_numpy(lines).unsqueeze(1).to(images.device, images.dtype)


@dataclass
class PairedImages:
    """Aligned inputs and targets (``(N, 1, H, W)`` in ``[0, 1]``) and the digits' labels."""

    inputs: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.inputs)


def paired_skeletons(images: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5) -> PairedImages:
    """The pix2pix chapter's task: input ``skeleton(digit)``, target the digit itself.

    Example:
        >>> pairs = paired_skeletons(torch.rand(4, 1, 28, 28), torch.arange(4))
        >>> pairs.inputs.shape == pairs.targets.shape, len(pairs)
        (True, 4)
    """
    _check_unit_images(images, "paired_skeletons")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), one per image, got {tuple(labels.shape)}")
    return PairedImages(skeleton(images, threshold), images, labels)


@dataclass
class UnpairedDomains:
    """Two training domains without pairs, and the indices (into the source set) they were drawn from."""

    domain_a: torch.Tensor
    domain_b: torch.Tensor
    labels_a: torch.Tensor
    labels_b: torch.Tensor
    indices_a: torch.Tensor
    indices_b: torch.Tensor


def unpaired_stroke_domains(images: torch.Tensor, labels: torch.Tensor, size: int = 3, seed: int = 0
                            ) -> UnpairedDomains:
    """The CycleGAN chapter's task: A = digits as written, B = thickened digits, from disjoint halves.

    The images are shuffled (seeded) and split in two halves: the first half
    forms domain A unchanged, the second half is thickened with
    :func:`thicken` and forms domain B. No digit is in both domains, so no
    pair ``(a, thicken(a))`` exists in the training data. The labels are kept
    only for evaluation (the translation never sees them).

    Example:
        >>> d = unpaired_stroke_domains(torch.rand(10, 1, 28, 28), torch.arange(10))
        >>> len(d.domain_a), len(d.domain_b), len(set(d.indices_a.tolist()) & set(d.indices_b.tolist()))
        (5, 5, 0)
    """
    _check_unit_images(images, "unpaired_stroke_domains")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), one per image, got {tuple(labels.shape)}")
    if len(images) < 2:
        raise ValueError(f"need at least 2 images to split into two domains, got {len(images)}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).to(images.device)
    half = len(images) // 2
    indices_a, indices_b = order[:half], order[half:2 * half]
    return UnpairedDomains(
        domain_a=images[indices_a],
        domain_b=thicken(images[indices_b], size),
        labels_a=labels[indices_a],
        labels_b=labels[indices_b],
        indices_a=indices_a.cpu(),
        indices_b=indices_b.cpu(),
    )
