"""Sanity checks of attribution maps (Adebayo et al., 2018) and how to compare two maps.

An explanation of a *model* must change when the model changes. The
*model-parameter randomisation test* re-initialises the trained network's layers
one at a time from the top (the logits) down, *cascading* (each stage keeps the
layers above randomised too), and compares each map of the damaged network with the
map of the trained one. A method whose maps barely change explains the input, not the
model: a plain edge detector, which never looks at the model, passes such a test
of "looking right" perfectly.

Two maps are compared by

* :func:`rank_correlation`: Spearman's rank correlation of their pixels, of the
  signed values or of their absolute values (the maps' magnitudes);
* :func:`map_ssim`: the structural similarity (Wang et al., 2004) of the
  magnitude maps, each scaled to [0, 1] by its largest value.

Example:
    >>> import torch
    >>> maps = torch.rand(2, 1, 28, 28)
    >>> rank_correlation(maps, 3 * maps + 1)
    tensor([1., 1.])
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .attributions import METHODS, ExplanationError, attribute, check_explanation_inputs
from .faithfulness import digit_mask

__all__ = ["RandomisationResult", "cascading_randomisation", "edge_map", "map_ssim", "randomisable_layers",
           "randomise_layers", "rank_correlation"]


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks (0 .. n-1) of each row's values, ties given their average rank."""
    values = values.double()
    order = values.argsort(dim=1)
    ranks = torch.empty_like(values)
    ranks.scatter_(1, order, torch.arange(values.shape[1], dtype=values.dtype).expand_as(values).contiguous())
    # average the ranks of ties (MNIST maps have many exact zeros on the background)
    result = torch.empty_like(ranks)
    for row in range(values.shape[0]):
        unique, inverse = values[row].unique(return_inverse=True)
        if len(unique) == values.shape[1]:
            result[row] = ranks[row]
        else:
            sums = torch.zeros(len(unique), dtype=values.dtype).index_add_(0, inverse, ranks[row])
            counts = torch.zeros(len(unique), dtype=values.dtype).index_add_(0, inverse, torch.ones_like(ranks[row]))
            result[row] = (sums / counts)[inverse]
    return result


def rank_correlation(first: torch.Tensor, second: torch.Tensor, absolute: bool = False,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps, ``(B,)``, in [-1, 1].

    The Pearson correlation of the pixels' ranks (ties get their average rank, as in
    :func:`scipy.stats.spearmanr`). With ``absolute=True`` the magnitudes are ranked,
    so a map and its negative correlate perfectly. A constant map has no ranking: its
    correlation is reported as 0. With a boolean ``mask`` of the maps' shape only the
    pixels it marks are ranked (for example the digit's, so that the background's
    shared zeros do not count as agreement).

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
        >>> rank_correlation(a, -a), rank_correlation(a, -a, absolute=True)
        (tensor([-1.]), tensor([1.]))
        >>> rank_correlation(a, torch.tensor([[4.0, 3.0, 5.0, 6.0]]), mask=a > 2)
        tensor([1.])
    """
    if not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor) or first.shape != second.shape \
            or first.dim() < 2 or first[0].numel() < 2:
        raise ExplanationError(f"rank_correlation needs two batches of maps of the same shape (B, ...), each map "
                               f"with at least 2 values; got {tuple(getattr(first, 'shape', ()))} and "
                               f"{tuple(getattr(second, 'shape', ()))}")
    if mask is not None:
        if getattr(mask, "shape", None) != first.shape:
            raise ExplanationError(f"mask must have the maps' shape {tuple(first.shape)}, got "
                                   f"{tuple(getattr(mask, 'shape', ()))}")
        mask = mask.detach().cpu().flatten(1).bool()
        return torch.cat([rank_correlation(a[m][None], b[m][None], absolute) if int(m.sum()) > 1
                          else torch.zeros(1) for a, b, m in zip(first.detach().cpu().flatten(1),
                                                                 second.detach().cpu().flatten(1), mask)])
    first, second = first.detach().cpu().flatten(1), second.detach().cpu().flatten(1)
    if absolute:
        first, second = first.abs(), second.abs()
    a, b = _ranks(first), _ranks(second)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    denominator = (a.norm(dim=1) * b.norm(dim=1))
    safe = denominator.clamp_min(1e-12)
    return torch.where(denominator > 0, (a * b).sum(1) / safe, torch.zeros_like(safe)).float()


def _unit_magnitude(maps: torch.Tensor) -> torch.Tensor:
    """``|maps|`` scaled per map to [0, 1] by its largest value (an all-zero map stays zero)."""
    magnitude = maps.detach().cpu().abs().float()
    largest = magnitude.flatten(1).max(1).values.clamp_min(1e-12)
    return magnitude / largest.view(-1, *[1] * (maps.dim() - 1))


def map_ssim(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """SSIM of each pair of magnitude maps ``(B, 1, H, W)``, each scaled to [0, 1] first, ``(B,)``.

    Example:
        >>> maps = torch.rand(2, 1, 28, 28)
        >>> map_ssim(maps, -2 * maps)     # same magnitudes up to scale
        tensor([1., 1.])
    """
    from ..metrics.images import ssim

    if not isinstance(first, torch.Tensor) or first.shape != getattr(second, "shape", None) or first.dim() != 4:
        raise ExplanationError(f"map_ssim needs two batches of maps (B, 1, H, W) of the same shape, got "
                               f"{tuple(getattr(first, 'shape', ()))} and {tuple(getattr(second, 'shape', ()))}")
    return ssim(_unit_magnitude(first), _unit_magnitude(second)).float()


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of each image, ``(B, 1, H, W)``: an "explanation" that ignores the model.

    Example:
        >>> image = torch.zeros(1, 1, 5, 5); image[..., 2:] = 1.0   # a vertical edge
        >>> (edge_map(image)[0, 0, 2] > 0).tolist()
        [False, True, True, False, False]
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1:
        raise ExplanationError(f"edge_map needs single-channel images (B, 1, H, W), got "
                               f"{tuple(getattr(images, 'shape', ()))}")
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype)
    kernels = torch.stack([sobel, sobel.T]).unsqueeze(1).to(images.device)
    gradients = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.pow(2).sum(1, keepdim=True).sqrt()


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold their own weights, from the top (output) down.

    Registration order is taken as the forward order, which holds for the book's
    classifiers (``conv`` before ``embed`` before ``head``).

    Example:
        >>> randomisable_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
        ['2', '0']
    """
    names = [name for name, module in model.named_modules()
             if name and any(True for _ in module.parameters(recurse=False)) and hasattr(module, "reset_parameters")]
    if not names:
        raise ExplanationError(f"{type(model).__name__} has no layers with weights to randomise")
    return names[::-1]


def randomise_layers(model: nn.Module, names: list[str], seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the layers ``names`` re-initialised (PyTorch's default init), in eval mode.

    Example:
        >>> _ = torch.manual_seed(0); model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).eval()
        >>> copy = randomise_layers(model, ["1"])
        >>> torch.equal(copy[0].weight, model[0].weight), torch.equal(copy[1].weight, model[1].weight)
        (True, False)
    """
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    unknown = [name for name in names if name not in modules]
    if unknown:
        raise ExplanationError(f"no layers named {unknown} in the model; randomisable_layers(model) lists them")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in names:
            modules[name].reset_parameters()
    return randomised.eval()


@dataclass
class RandomisationResult:
    """The cascading randomisation test: per method, the similarity to the trained maps at each stage.

    ``layers`` lists the layers top down; stage ``k`` (1-based) has ``layers[:k]``
    randomised, stage 0 is the trained network. ``scores[method][measure]`` is a list
    with one mean over the images per stage (stage 0 included: 1 by definition), for
    the measures ``spearman``, ``spearman_abs``, ``spearman_abs_on_digit`` (ranked on
    the stroke's pixels only, ``digit_mask(images, grow=0)``)
    and ``ssim``; ``maps[method]`` holds the
    maps of the first ``keep`` images at every stage, ``(stages + 1, keep, C, H, W)``.
    """

    layers: list[str]
    scores: dict[str, dict[str, list[float]]]
    maps: dict[str, torch.Tensor] = field(repr=False)

    def final(self, method: str, measure: str) -> float:
        """The similarity after every layer has been randomised."""
        return self.scores[method][measure][-1]


def _maps_of(model, images, targets, method, steps):
    if method == "edge_detector":
        return edge_map(images)
    return attribute(model, images, targets, method, steps=steps)


def cascading_randomisation(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                            methods: tuple[str, ...] = METHODS + ("edge_detector",), steps: int = 32,
                            seed: int = 0, keep: int = 4) -> RandomisationResult:
    """Run the cascading model-parameter randomisation test of Adebayo et al. (2018).

    ``methods`` are names from :data:`~aigc_lessons.explain.attributions.METHODS` and
    ``"edge_detector"`` (:func:`edge_map`, the model-independent control). ``steps``
    is the number of integrated-gradients steps.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
        >>> result = cascading_randomisation(model, torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]),
        ...                                  methods=("saliency", "edge_detector"))
        >>> result.layers, result.final("edge_detector", "spearman")
        (['3', '1'], 1.0)
    """
    known = METHODS + ("edge_detector",)
    unknown = [method for method in methods if method not in known]
    if unknown or not methods:
        raise ExplanationError(f"unknown methods {unknown or methods}; choose from {', '.join(known)}")
    check_explanation_inputs(model, images, targets)
    layers = randomisable_layers(model)
    trained = {method: _maps_of(model, images, targets, method, steps) for method in methods}
    on_digit = digit_mask(images, grow=0)  # the stroke itself: no shared zeros
    measures = ("spearman", "spearman_abs", "spearman_abs_on_digit", "ssim")
    scores = {method: {measure: [1.0] for measure in measures} for method in methods}
    kept = {method: [trained[method][:keep]] for method in methods}
    for stage in range(1, len(layers) + 1):
        damaged = randomise_layers(model, layers[:stage], seed=seed)
        for method in methods:
            maps = _maps_of(damaged, images, targets, method, steps)
            scores[method]["spearman"].append(float(rank_correlation(trained[method], maps).mean()))
            scores[method]["spearman_abs"].append(float(rank_correlation(trained[method], maps, True).mean()))
            scores[method]["spearman_abs_on_digit"].append(
                float(rank_correlation(trained[method], maps, True, mask=on_digit).mean()))
            similarity = map_ssim(trained[method], maps) if images.shape[-1] >= 11 else torch.tensor([float("nan")])
            scores[method]["ssim"].append(float(similarity.mean()))
            kept[method].append(maps[:keep])
    return RandomisationResult(layers, scores, {method: torch.stack(kept[method]) for method in methods})
