"""Attribution maps of an image classifier: which pixels its answer depends on.

An *attribution* of a class score ``f_c(x)`` to the pixels of ``x`` is a map of the
same shape as ``x``. Three gradient methods, computed with the ``captum`` library
(Kokhlikyan et al., 2020):

* **saliency** (Simonyan, Vedaldi and Zisserman, 2014): the gradient
  ``d f_c / d x``, how much the score moves per unit change of each pixel;
* **gradient x input** (Shrikumar et al., 2016): ``x * d f_c / d x``, the
  first-order contribution of each pixel relative to a black image;
* **integrated gradients** (Sundararajan, Taly and Yan, 2017):
  ``(x - x') * integral_0^1 d f_c / d x (x' + a (x - x')) da``, the gradient
  averaged along the straight path from a baseline ``x'`` (black by default) to
  ``x``. Its attributions add up to ``f_c(x) - f_c(x')`` (*completeness*); captum
  approximates the integral with a Gauss-Legendre rule of ``steps`` points, and
  :func:`integrated_gradients_riemann` writes out the Riemann sum.

Images are ``(B, C, H, W)`` float tensors with pixels in ``[0, 1]``; the model is in
eval mode and returns logits ``(B, num_classes)``; the score explained is the logit of
``targets`` (one class index per image). Bad input raises :class:`ExplanationError`
(a ``ValueError``) that says what to fix.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
    >>> images = torch.full((1, 1, 2, 2), 0.5)
    >>> maps = attribute(model, images, torch.tensor([1]), "gradient_x_input")
    >>> torch.allclose(maps.flatten(), 0.5 * model[1].weight[1])
    True
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import check_classifier_inputs

__all__ = ["METHODS", "ExplanationError", "attribute", "check_explanation_inputs", "completeness_error",
           "integrated_gradients_riemann", "target_scores"]

METHODS = ("saliency", "gradient_x_input", "integrated_gradients")


class ExplanationError(ValueError):
    """A bad argument to an attribution method: wrong shapes, pixels outside [0, 1], an unknown method."""


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ExplanationError(f"steps must be an integer >= 1, got {steps!r}")
    return steps


def check_explanation_inputs(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> None:
    """Raise :class:`ExplanationError` unless the model, images and target classes fit together.

    The model must be an ``nn.Module`` in eval mode (dropout in training mode would
    explain a different network at every call); images a float ``(B, C, H, W)`` tensor
    in ``[0, 1]``; targets ``B`` class indices within the model's outputs.

    Example (the doctest's ``...`` stands for the rest of the message):
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> check_explanation_inputs(model, torch.zeros(2, 1, 2, 2), torch.tensor([0, 2]))
        >>> check_explanation_inputs(model, torch.zeros(2, 4), torch.tensor([0, 2]))
        Traceback (most recent call last):
        ...
        aigc_lessons.explain.attributions.ExplanationError: images must be a float tensor (batch, ...
    """
    check_classifier_inputs(model, images, targets, error=ExplanationError, purpose="explaining it",
                            labels_name="targets", range_hint=": the baseline (a black image) and the "
                                                              "model's own standardisation assume that range")


def target_scores(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The logit of each image's target class, ``(B,)``: the score the attributions explain.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(1, 2, bias=False)).eval()
        >>> model[1].weight.data = torch.tensor([[1.0], [-1.0]])
        >>> target_scores(model, torch.full((2, 1, 1, 1), 0.5), torch.tensor([0, 1]))
        tensor([ 0.5000, -0.5000])
    """
    with torch.no_grad():
        return model(images).gather(1, targets.view(-1, 1)).squeeze(1)


def attribute(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, method: str,
              steps: int = 50, baseline: torch.Tensor | None = None,
              return_delta: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attribution maps ``(B, C, H, W)`` of the target logits by ``method`` (one of :data:`METHODS`).

    ``steps`` and ``baseline`` (default: a black image) concern integrated gradients
    only. With ``return_delta=True`` integrated gradients also returns captum's
    *convergence delta* per image, ``sum(attributions) - (f(x) - f(baseline))``,
    the completeness error of the quadrature; the other methods return zeros there.
    Maps are signed; take ``.abs()`` for the magnitude the figures usually show.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Tanh()).eval()
        >>> images = torch.rand(3, 1, 2, 2)
        >>> maps, delta = attribute(model, images, torch.tensor([0, 1, 0]), "integrated_gradients",
        ...                         steps=64, return_delta=True)
        >>> maps.shape, bool(delta.abs().max() < 1e-4)
        (torch.Size([3, 1, 2, 2]), True)
    """
    try:
        from captum.attr import InputXGradient, IntegratedGradients, Saliency
    except ModuleNotFoundError as error:  # the book's environment has it; a bare install may not
        raise ModuleNotFoundError('attribute() needs the captum library: pip install "captum>=0.7"') from error

    if method not in METHODS:
        raise ExplanationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_steps(steps)
    check_explanation_inputs(model, images, targets)
    if baseline is None:
        baseline = torch.zeros_like(images)
    elif not isinstance(baseline, torch.Tensor) or baseline.shape not in (images.shape, images.shape[1:]):
        raise ExplanationError(f"baseline must be a tensor shaped like the images {tuple(images.shape)} or one "
                               f"image {tuple(images.shape[1:])}, got {tuple(getattr(baseline, 'shape', ()))}")
    inputs = images.detach().clone().requires_grad_(True)
    targets = targets.long()
    delta = torch.zeros(len(images))
    if method == "saliency":
        maps = Saliency(model).attribute(inputs, target=targets, abs=False)
    elif method == "gradient_x_input":
        maps = InputXGradient(model).attribute(inputs, target=targets)
    else:
        baseline = baseline.expand_as(images).to(images)
        maps, delta = IntegratedGradients(model).attribute(inputs, baselines=baseline, target=targets,
                                                           n_steps=steps, return_convergence_delta=True)
    maps = maps.detach()
    return (maps, delta.detach()) if return_delta else maps


def integrated_gradients_riemann(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                                 steps: int = 50, baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Integrated gradients by the midpoint Riemann sum, written out (no captum).

    ``(x - x') * (1/m) * sum_k grad f_c(x' + a_k (x - x'))`` with ``a_k = (k - 1/2)/m``,
    ``k = 1..m`` (``m = steps``): the gradient averaged at the midpoints of ``m`` equal
    pieces of the path. Its error in the integral falls like ``1/m**2`` for a smooth
    score, like ``1/m`` at worst for a piecewise-linear (ReLU) network.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()   # linear: exact for any m
        >>> images = torch.rand(2, 1, 2, 2)
        >>> maps = integrated_gradients_riemann(model, images, torch.tensor([0, 1]), steps=1)
        >>> torch.allclose(maps.flatten(1).sum(1), target_scores(model, images, torch.tensor([0, 1]))
        ...                - model(torch.zeros(2, 1, 2, 2)).detach()[[0, 1], [0, 1]], atol=1e-6)
        True
    """
    _check_steps(steps)
    check_explanation_inputs(model, images, targets)
    baseline = torch.zeros_like(images) if baseline is None else baseline.expand_as(images).to(images)
    total = torch.zeros_like(images)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        point = (baseline + alpha * (images - baseline)).detach().requires_grad_(True)
        score = model(point).gather(1, targets.long().view(-1, 1)).sum()
        (gradient,) = torch.autograd.grad(score, point)
        total += gradient
    return ((images - baseline) * total / steps).detach()


def completeness_error(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                       baseline: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, ``sum(maps) - (f_c(x) - f_c(baseline))``: zero for exact integrated gradients.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
        >>> images, targets = torch.rand(2, 1, 2, 2), torch.tensor([1, 0])
        >>> maps = attribute(model, images, targets, "gradient_x_input")  # = IG for a linear model
        >>> bool(completeness_error(model, images, targets, maps).abs().max() < 1e-5)
        True
    """
    check_explanation_inputs(model, images, targets)
    baseline = torch.zeros_like(images) if baseline is None else baseline.expand_as(images).to(images)
    if maps.shape != images.shape:
        raise ExplanationError(f"maps must be shaped like the images {tuple(images.shape)}, got {tuple(maps.shape)}")
    difference = target_scores(model, images, targets) - target_scores(model, baseline, targets)
    return maps.flatten(1).sum(1) - difference
