"""Feature visualization and DeepDream: gradient ascent on the *input* of a trained classifier.

Nothing here trains a network. The weights of the model stay fixed; the image is
the variable. Starting from an image ``x``, each step moves it along the gradient
of an objective ``a(x)`` computed by the network:

    x <- clip(x + eta * g / mean|g|),   g = grad_x [a(x) - regularisers(x)]

* ``visualize_class``: ``a`` is one class logit (the "class model" visualisation of
  Simonyan, Vedaldi and Zisserman, 2014), with an L2 penalty on the pixels;
* ``visualize_channel``: ``a`` is the mean activation of one channel (or unit) of a
  hidden layer (feature visualization, Olah, Mordvintsev and Schubert, 2017);
* ``deep_dream``: ``a`` is half the mean squared activation of a whole layer, started
  from a real image and run over several scales ("octaves"): whatever the layer
  already detects in the image is amplified (Mordvintsev, Olah and Tyka, 2015).

Regularisers that keep the result image-like: an L2 penalty, a total-variation
penalty, random jitter (shift the image before each step) and Gaussian blur.
The step is divided by the mean absolute gradient of each image, as in the
reference DeepDream notebook, so that ``step_size`` is in pixel units.

Images are ``(B, 1, H, W)`` tensors with pixels in ``[0, 1]``, the convention of
``MnistClassifier`` (which standardises its input itself). Layers are named as
``model.named_modules()`` names them (``"conv.1"``, ``"embed.3"``, ...);
:func:`layer_names` lists them and a wrong name raises an error that lists them too.
Activations are read with a forward hook that is always removed (``try/finally``):
the model is never modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


class FeatureVisError(ValueError):
    """A bad argument to a feature-visualization function (unknown layer, wrong image shape, ...)."""


# --------------------------------------------------------------------------- reading activations


def layer_names(model: nn.Module) -> list[str]:
    """Names of the model's sub-modules that a hook can read, in forward order of definition.

    Example:
        >>> from aigc_lessons.models.classifier import MnistClassifier
        >>> layer_names(MnistClassifier())[:3]
        ['conv', 'conv.0', 'conv.1']
    """
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, layer_name: str) -> nn.Module:
    """The sub-module called ``layer_name``; a clear error listing the known names otherwise."""
    modules = dict(model.named_modules())
    if not isinstance(layer_name, str) or not layer_name or layer_name not in modules:
        known = ", ".join(repr(name) for name in layer_names(model))
        raise FeatureVisError(f"unknown layer {layer_name!r} for {type(model).__name__}; "
                              f"known layers: {known}")
    return modules[layer_name]


def check_images(images: torch.Tensor, who: str = "images") -> None:
    """Raise :class:`FeatureVisError` unless ``images`` is a float ``(B, C, H, W)`` tensor."""
    if not isinstance(images, torch.Tensor):
        raise FeatureVisError(f"{who} must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise FeatureVisError(f"{who} must have shape (B, C, H, W), e.g. (B, 1, 28, 28) for MNIST; "
                              f"got {tuple(images.shape)} (add a batch dimension with images[None]?)")
    if not images.is_floating_point():
        raise FeatureVisError(f"{who} must be floating point with pixels in [0, 1], got dtype {images.dtype}")


def activation(model: nn.Module, layer_name: str, images: torch.Tensor) -> torch.Tensor:
    """The output of layer ``layer_name`` when ``model`` runs on ``images``.

    The result keeps its autograd graph, so gradients can flow back to ``images``.
    The forward hook that catches the output is removed even if the forward pass fails.

    Example:
        >>> from aigc_lessons.models.classifier import MnistClassifier
        >>> activation(MnistClassifier().eval(), "conv.1", torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 32, 28, 28])
    """
    check_images(images)
    layer = get_layer(model, layer_name)
    caught: list[torch.Tensor] = []

    def catch_output(module, inputs, output):
        caught.append(output)

    handle = layer.register_forward_hook(catch_output)
    try:
        model(images)
    finally:
        handle.remove()
    if not caught:
        raise FeatureVisError(f"layer {layer_name!r} did not run during the forward pass of {type(model).__name__}")
    return caught[-1]


# --------------------------------------------------------------------------- regularisers and image statistics


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image: the sum of absolute differences of neighbouring pixels, ``(B,)``.

    Example:
        >>> total_variation(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))
        tensor([2.])
    """
    check_images(images)
    horizontal = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).sum(1)
    vertical = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).sum(1)
    return horizontal + vertical


def high_frequency_fraction(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Share of each image's spectral energy (mean removed) at spatial frequencies above ``cutoff``, ``(B,)``.

    Frequencies are in cycles per pixel; the highest one a pixel grid can hold (Nyquist)
    is 0.5, so ``cutoff=0.25`` counts the upper half. Pixel noise puts most of its energy
    there; a handwritten stroke, a few pixels wide, very little. A constant image gives 0.

    Example:
        >>> checkerboard = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
        >>> high_frequency_fraction(checkerboard.float()[None, None])
        tensor([1.])
    """
    check_images(images)
    centred = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(centred).abs() ** 2
    height, width = images.shape[-2:]
    fy = torch.fft.fftfreq(height, device=images.device)[:, None]
    fx = torch.fft.fftfreq(width, device=images.device)[None, :]
    high = (fy ** 2 + fx ** 2).sqrt() > cutoff
    total = power.flatten(1).sum(1)
    return torch.where(total > 0, (power * high).flatten(1).sum(1) / total.clamp_min(1e-12), torch.zeros_like(total))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel with a Gaussian of standard deviation ``sigma`` pixels (reflect padding).

    Example:
        >>> gaussian_blur(torch.ones(1, 1, 5, 5), 1.0).allclose(torch.ones(1, 1, 5, 5))
        True
    """
    check_images(images)
    if sigma <= 0:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, min(images.shape[-2:]) - 1)  # reflect padding needs radius < size
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def jitter(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Roll the whole batch by a random shift of up to ``max_shift`` pixels in each direction.

    Example:
        >>> jitter(torch.arange(4.0).view(1, 1, 2, 2), 0).flatten().tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    if max_shift <= 0:
        return images
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlations of a feature map, averaged over positions: ``(B, C, C)``.

    ``G[b, i, j] = (1 / (H W)) * sum_p F[b, i, p] F[b, j, p]``: the statistic that neural
    style transfer (Gatys et al., 2016) matches between a style image and the output. It
    forgets *where* a feature fired, which is why it describes texture and not layout.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 3, 3))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """
    check_images(features, "features")
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


# --------------------------------------------------------------------------- gradient ascent


@dataclass
class Regularisers:
    """How an ascent keeps the image image-like; all off by default.

    ``l2`` and ``tv`` weigh penalties subtracted from the objective (per image, on pixels in
    [0, 1]); ``jitter`` is the largest random shift in pixels applied before each step;
    ``blur_sigma`` blurs the image after every ``blur_every`` steps.
    """

    l2: float = 0.0
    tv: float = 0.0
    jitter: int = 0
    blur_sigma: float = 0.0
    blur_every: int = 1

    def penalty(self, images: torch.Tensor) -> torch.Tensor:
        """The penalty per image ``(B,)`` subtracted from the objective."""
        penalty = torch.zeros(images.shape[0], dtype=images.dtype, device=images.device)
        if self.l2:
            penalty = penalty + self.l2 * (images ** 2).flatten(1).sum(1)
        if self.tv:
            penalty = penalty + self.tv * total_variation(images)
        return penalty


@dataclass
class AscentResult:
    """The optimised images ``(B, C, H, W)`` in ``[0, 1]`` and the objective per image at each step."""

    images: torch.Tensor
    history: list[torch.Tensor] = field(default_factory=list)  # each (B,), before the step, without penalties

    @property
    def objective(self) -> torch.Tensor:
        """History as a ``(steps, B)`` tensor."""
        return torch.stack(self.history) if self.history else torch.empty(0)


def gradient_ascent(objective: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, steps: int,
                    step_size: float = 0.02, regularisers: Regularisers | None = None,
                    generator: torch.Generator | None = None) -> AscentResult:
    """Maximise ``objective(images) -> (B,)`` over images in ``[0, 1]`` by normalised gradient ascent.

    Each step: jitter the image, compute ``objective - penalty`` per image, take its gradient
    ``g`` with respect to the pixels, move each image by ``step_size * g / mean|g|``, clip to
    ``[0, 1]``, and blur when asked. The objective recorded in ``history`` is the raw one
    (no penalty, no jitter), measured before each step and once more at the end.

    Example:
        >>> result = gradient_ascent(lambda x: x.flatten(1).sum(1), torch.zeros(1, 1, 4, 4), steps=5, step_size=0.1)
        >>> [round(float(v), 2) for v in result.objective[:, 0]]
        [0.0, 1.6, 3.2, 4.8, 6.4, 8.0]
    """
    check_images(start, "start")
    if steps < 0:
        raise FeatureVisError(f"steps must be >= 0, got {steps}")
    regularisers = regularisers or Regularisers()
    images = start.detach().clone().clamp(0, 1)
    history: list[torch.Tensor] = []
    for step in range(steps):
        images.requires_grad_(True)
        shifted = jitter(images, regularisers.jitter, generator)
        value = objective(shifted)
        if value.shape != (images.shape[0],):
            raise FeatureVisError(f"the objective must return one value per image, shape ({images.shape[0]},); "
                                  f"got {tuple(value.shape)}")
        (gradient,) = torch.autograd.grad((value - regularisers.penalty(images)).sum(), images)
        with torch.no_grad():
            history.append(objective(images).detach() if regularisers.jitter else value.detach())
            scale = gradient.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            images = (images + step_size * gradient / scale).clamp(0, 1)
            if regularisers.blur_sigma > 0 and (step + 1) % regularisers.blur_every == 0:
                images = gaussian_blur(images, regularisers.blur_sigma)
        images = images.detach()
    with torch.no_grad():
        history.append(objective(images).detach())
    return AscentResult(images, history)


def _start_images(model: nn.Module, count: int, start: torch.Tensor | None, image_shape: tuple[int, int, int],
                  generator: torch.Generator | None) -> torch.Tensor:
    device = next(model.parameters()).device
    if start is None:  # faint noise around a dark background, like an empty MNIST canvas
        return (0.1 * torch.rand(count, *image_shape, generator=generator)).to(device)
    check_images(start, "start")
    if start.shape[0] != count:
        raise FeatureVisError(f"start has {start.shape[0]} images, expected {count} (one per target)")
    return start.to(device)


def visualize_class(model: nn.Module, classes: list[int] | torch.Tensor, steps: int = 200, step_size: float = 0.02,
                    regularisers: Regularisers | None = None, start: torch.Tensor | None = None,
                    image_shape: tuple[int, int, int] = (1, 28, 28), seed: int = 0) -> AscentResult:
    """One image per requested class that maximises that class's logit (Simonyan et al.'s class model).

    The objective is the unnormalised score (logit) ``l_c(x)``, not the softmax probability,
    so that the ascent raises the evidence for ``c`` instead of lowering the other classes.

    Example:
        >>> from aigc_lessons.models.classifier import MnistClassifier
        >>> visualize_class(MnistClassifier().eval(), [3, 7], steps=2).images.shape
        torch.Size([2, 1, 28, 28])
    """
    classes = torch.as_tensor(classes, dtype=torch.long).flatten()
    num_classes = getattr(model, "num_classes", None)
    if classes.numel() == 0 or (num_classes is not None and (classes.min() < 0 or classes.max() >= num_classes)):
        raise FeatureVisError(f"classes must be a non-empty list of indices in [0, {num_classes}), got {classes.tolist()}")
    generator = torch.Generator().manual_seed(seed)
    images = _start_images(model, len(classes), start, image_shape, generator)
    rows = torch.arange(len(classes), device=images.device)
    targets = classes.to(images.device)
    return gradient_ascent(lambda x: model(x)[rows, targets], images, steps, step_size, regularisers, generator)


def visualize_channel(model: nn.Module, layer_name: str, channels: list[int] | torch.Tensor, steps: int = 200,
                      step_size: float = 0.02, regularisers: Regularisers | None = None,
                      start: torch.Tensor | None = None, image_shape: tuple[int, int, int] = (1, 28, 28),
                      seed: int = 0) -> AscentResult:
    """One image per requested channel of ``layer_name`` that maximises that channel's mean activation.

    For a convolutional layer ``(B, C, H, W)`` the objective is the channel's mean over positions;
    for a fully connected layer ``(B, C)`` it is the unit itself.

    Example:
        >>> from aigc_lessons.models.classifier import MnistClassifier
        >>> visualize_channel(MnistClassifier().eval(), "conv.4", [0, 5], steps=2).images.shape
        torch.Size([2, 1, 28, 28])
    """
    get_layer(model, layer_name)  # fail early, with the list of known names
    channels = torch.as_tensor(channels, dtype=torch.long).flatten()
    generator = torch.Generator().manual_seed(seed)
    images = _start_images(model, len(channels), start, image_shape, generator)
    with torch.no_grad():
        width = activation(model, layer_name, images[:1]).shape[1]
    if channels.numel() == 0 or channels.min() < 0 or channels.max() >= width:
        raise FeatureVisError(f"layer {layer_name!r} has {width} channels; got channel indices {channels.tolist()}")
    rows = torch.arange(len(channels), device=images.device)
    targets = channels.to(images.device)

    def channel_mean(x: torch.Tensor) -> torch.Tensor:
        output = activation(model, layer_name, x)
        per_channel = output.flatten(2).mean(2) if output.dim() > 2 else output
        return per_channel[rows, targets]

    return gradient_ascent(channel_mean, images, steps, step_size, regularisers, generator)


def layer_energy(model: nn.Module, layer_name: str, images: torch.Tensor) -> torch.Tensor:
    """DeepDream's objective per image: half the mean squared activation of the layer, ``(B,)``."""
    output = activation(model, layer_name, images)
    return 0.5 * (output ** 2).flatten(1).mean(1)


def _pad_to(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre smaller images on a black canvas of ``size`` (the classifier only accepts its own input size)."""
    missing_h, missing_w = size[0] - images.shape[-2], size[1] - images.shape[-1]
    if missing_h == 0 and missing_w == 0:
        return images
    top, left = missing_h // 2, missing_w // 2
    return F.pad(images, (left, missing_w - left, top, missing_h - top))


def deep_dream(model: nn.Module, images: torch.Tensor, layer_name: str, steps: int = 20, octaves: int = 3,
               octave_scale: float = 1.4, step_size: float = 0.01, regularisers: Regularisers | None = None,
               seed: int = 0, min_size: int = 10) -> AscentResult:
    """Amplify what ``layer_name`` already detects in real ``images`` (DeepDream), over several scales.

    The images are shrunk ``octaves - 1`` times by ``octave_scale``. The ascent starts on the
    smallest version; after each octave the *detail* it added (dreamed minus the original at
    that scale) is enlarged and added to the original at the next scale, where the ascent
    continues. Large patterns grow at coarse scales, fine ones at the full size. A network
    that only accepts one input size (such as ``MnistClassifier``, 28 x 28) sees a shrunken
    image centred on a black canvas of the full size, like MNIST's own 20 x 20 digits in
    their 28 x 28 frame. The history records the objective at full size before the first
    step and after each octave.

    Example:
        >>> from aigc_lessons.models.classifier import MnistClassifier
        >>> dream = deep_dream(MnistClassifier().eval(), torch.rand(2, 1, 28, 28), "conv.4", steps=2, octaves=2)
        >>> dream.images.shape, bool(dream.images.min() >= 0 and dream.images.max() <= 1)
        (torch.Size([2, 1, 28, 28]), True)
    """
    check_images(images)
    get_layer(model, layer_name)
    if octaves < 1:
        raise FeatureVisError(f"octaves must be >= 1, got {octaves}")
    if octave_scale <= 1:
        raise FeatureVisError(f"octave_scale must be > 1, got {octave_scale}")
    if float(images.min()) < 0 or float(images.max()) > 1:
        raise FeatureVisError(f"images must have pixels in [0, 1], got values from {float(images.min()):.3g} "
                              f"to {float(images.max()):.3g}")
    device = next(model.parameters()).device
    original = images.detach().to(device)
    height, width = original.shape[-2:]
    sizes = [(height, width)]
    for _ in range(octaves - 1):
        smaller = (max(min_size, round(sizes[-1][0] / octave_scale)), max(min_size, round(sizes[-1][1] / octave_scale)))
        sizes.append(smaller)
    sizes.reverse()  # coarse to fine

    def objective(x: torch.Tensor) -> torch.Tensor:
        return layer_energy(model, layer_name, _pad_to(x, (height, width)))

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        history = [objective(original)]
    detail = torch.zeros(original.shape[0], original.shape[1], *sizes[0], device=device)
    dreamed = original
    for size in sizes:
        base = original if size == (height, width) else F.interpolate(original, size=size, mode="bilinear",
                                                                        align_corners=False, antialias=True)
        if detail.shape[-2:] != size:
            detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        result = gradient_ascent(objective, (base + detail).clamp(0, 1), steps, step_size, regularisers, generator)
        dreamed = result.images
        detail = dreamed - base
        with torch.no_grad():
            at_full_size = dreamed if size == (height, width) else F.interpolate(
                dreamed, size=(height, width), mode="bilinear", align_corners=False)
            history.append(objective(at_full_size.clamp(0, 1)))
    return AscentResult(dreamed.clamp(0, 1), history)
