"""How a map relates to the digit and to the model: alignment measures and the deletion curve.

* :func:`alignment_scores`: two numbers that say how "perceptually aligned" a map
  is with the digit it explains: the share of its magnitude that lies on the stroke
  (the pixels of the digit and their neighbours), and the share of its spectral
  energy at high spatial frequencies (pixel noise has much; a stroke little).
* :func:`deletion_curve`: the pixel-removal test (Samek et al., 2017; Petsiuk,
  Das and Saenko, 2018): set the pixels the map ranks highest to black, a growing
  share at a time, and follow the probability of the explained class. A faithful map
  makes it fall faster than a random order does.

Example:
    >>> import torch
    >>> images = torch.zeros(1, 1, 28, 28); images[..., 10:18, 12:16] = 1.0
    >>> alignment_scores(images, images)["on_digit"]
    1.0
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attributions import ExplanationError, check_explanation_inputs

__all__ = ["alignment_scores", "deletion_curve", "digit_mask"]


def digit_mask(images: torch.Tensor, threshold: float = 0.1, grow: int = 1) -> torch.Tensor:
    """Pixels brighter than ``threshold`` and their neighbours up to ``grow`` pixels away, as a bool mask.

    Example:
        >>> image = torch.zeros(1, 1, 5, 5); image[0, 0, 2, 2] = 1.0
        >>> int(digit_mask(image).sum())    # the pixel and its 8 neighbours
        9
    """
    stroke = (images > threshold).float()
    if grow:
        stroke = F.max_pool2d(stroke, 2 * grow + 1, stride=1, padding=grow)
    return stroke > 0


def alignment_scores(maps: torch.Tensor, images: torch.Tensor) -> dict[str, float]:
    """Mean over the images of ``on_digit`` (share of ``|map|`` on :func:`digit_mask`) and ``high_frequency``.

    ``high_frequency`` is :func:`aigc_lessons.feature_vis.high_frequency_fraction` of
    ``|map|``: the share of its energy above 0.25 cycles per pixel.

    Example:
        >>> noise = torch.rand(8, 1, 28, 28)
        >>> images = torch.zeros(8, 1, 28, 28); images[..., 10:18, 12:16] = 1.0
        >>> scores = alignment_scores(noise, images)
        >>> round(scores["on_digit"], 1)     # the mask covers 10 x 6 of 784 pixels
        0.1
    """
    from ..feature_vis import high_frequency_fraction

    if not isinstance(maps, torch.Tensor) or maps.shape != getattr(images, "shape", None) or maps.dim() != 4:
        raise ExplanationError(f"maps and images must be batches of the same shape (B, 1, H, W), got "
                               f"{tuple(getattr(maps, 'shape', ()))} and {tuple(getattr(images, 'shape', ()))}")
    magnitude = maps.detach().abs()
    total = magnitude.flatten(1).sum(1).clamp_min(1e-12)
    on_digit = (magnitude * digit_mask(images)).flatten(1).sum(1) / total
    return {"on_digit": float(on_digit.mean()),
            "high_frequency": float(high_frequency_fraction(magnitude).mean())}


@torch.no_grad()
def deletion_curve(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                   fractions: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)) -> torch.Tensor:
    """Mean probability of the target class after blacking out the top ``fraction`` of pixels, per fraction.

    Pixels are ranked by the signed map, highest first (the pixels that the map says
    *support* the class). Returns a tensor with one value per fraction; its mean is
    the area under the curve (lower is more faithful). Rank by ``torch.rand_like(maps)``
    for the random-order baseline.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> images = torch.rand(3, 1, 2, 2)
        >>> curve = deletion_curve(model, images, torch.tensor([0, 1, 0]), torch.rand(3, 1, 2, 2), (0.0, 1.0))
        >>> curve.shape
        torch.Size([2])
    """
    check_explanation_inputs(model, images, targets)
    if not isinstance(maps, torch.Tensor) or maps.shape != images.shape:
        raise ExplanationError(f"maps must be shaped like the images {tuple(images.shape)}, got "
                               f"{tuple(getattr(maps, 'shape', ()))}")
    if not fractions or any(not 0.0 <= float(f) <= 1.0 for f in fractions):
        raise ExplanationError(f"fractions must be shares of the pixels in [0, 1], got {fractions!r}")
    flat = maps.flatten(1)
    order = flat.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1]).expand_as(order).contiguous())
    values = []
    for fraction in fractions:
        removed = (rank < round(float(fraction) * flat.shape[1])).view_as(images)
        probabilities = model(images.masked_fill(removed, 0.0)).softmax(1)
        values.append(float(probabilities.gather(1, targets.long().view(-1, 1)).mean()))
    return torch.tensor(values)
