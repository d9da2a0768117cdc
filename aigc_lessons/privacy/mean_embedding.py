"""A private generator from one noisy release: DP-MERF (Harder, Adamczewski and Park, AISTATS 2021).

DP-SGD pays for privacy at every step: a generator trained with it for more steps
gets more noise per step. DP-MERF touches the data once. It releases, with the
Gaussian mechanism, the mean of a fixed feature map of the training images per
class, and then trains a generator, for as many steps as it likes, to match that
release. Everything after the release is post-processing, so it costs no privacy.

The features are *random Fourier features* (Rahimi and Recht, 2007): with
``D`` frequencies ``w_j ~ N(0, I / ℓ²)``::

    φ(x) = [cos(w_1·x), ..., cos(w_D·x), sin(w_1·x), ..., sin(w_D·x)] / sqrt(D)

so that ``φ(x)·φ(x') ≈ exp(-|x - x'|² / (2 ℓ²))``, the Gaussian kernel, and the squared
distance between two feature means estimates the squared maximum mean discrepancy
(MMD) between the two distributions. Every ``φ(x)`` has norm exactly 1.

What is released: the sum over the training set of ``v(x, y) = [φ(x) ⊗ e_y, e_y] / sqrt(2)``
(``e_y`` the one-hot label), a vector of norm exactly 1 for every example. Adding or
removing one person moves the sum by at most 1 in L2 norm, so Gaussian noise of scale
``σ = gaussian_noise_scale(1, ε, δ)`` makes the release ``(ε, δ)``-DP. The noisy class
counts give the class proportions, the noisy sums divided by them the class means.

* :class:`MerfConfig` and :func:`train_dp_merf`: the release and the training of a
  :class:`~aigc_lessons.models.ConditionalGeneratorDCGAN` against it.
* :func:`private_class_embeddings`: the release alone (a :class:`PrivateEmbedding`).
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..models.conditional import ConditionalGeneratorDCGAN
from .dp_training import DELTA, DPRun, check_unit_images
from .mechanisms import PrivacyError, check_delta, check_epsilon, gaussian_noise_scale


@dataclass
class MerfConfig:
    """The release (ε, δ, the features) and the generator's training.

    Example:
        >>> MerfConfig().target_epsilon, MerfConfig().features
        (10.0, 5000)
    """

    target_epsilon: float = 10.0
    delta: float = DELTA
    features: int = 5000  # D random frequencies: 2 D features (a cosine and a sine each)
    length_scale: float = 10.0  # ℓ: about the median distance between two MNIST digits in [0, 1]
    latent_dim: int = 16
    channels: int = 32
    steps: int = 2000
    per_class: int = 50  # generated images of each class in every step
    lr: float = 1e-3
    seed: int = 0
    subset: int | None = None

    def __post_init__(self) -> None:
        check_epsilon(self.target_epsilon, "target_epsilon")
        check_delta(self.delta)
        for name in ("features", "latent_dim", "channels", "steps", "per_class"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PrivacyError(f"{name} must be a positive integer, got {value!r}")
        for name in ("length_scale", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise PrivacyError(f"{name} must be a finite number > 0, got {value!r}")


class RandomFourierFeatures(nn.Module):
    """``φ(x) = [cos(xW), sin(xW)] / sqrt(D)`` with ``W ~ N(0, I / ℓ²)``: fixed, drawn from ``seed``.

    The frequencies depend on no data (they are public); the generator's training
    draws the same ones again from the seed.

    Example:
        >>> phi = RandomFourierFeatures(784, 100, length_scale=10.0, seed=0)
        >>> round(float(phi(torch.rand(3, 1, 28, 28)).norm(dim=1)[0]), 4)
        1.0
    """

    def __init__(self, inputs: int, features: int, length_scale: float, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", torch.randn(inputs, features, generator=generator) / length_scale)
        self.features = features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        projections = images.flatten(1) @ self.frequencies
        return torch.cat([projections.cos(), projections.sin()], dim=1) / math.sqrt(self.features)


@dataclass
class PrivateEmbedding:
    """The released class means of ``φ`` and class proportions, and the noise that protects them."""

    class_means: torch.Tensor  # (classes, 2 D)
    proportions: torch.Tensor  # (classes,), sums to 1
    sigma: float  # standard deviation of the noise added to the sum of the v(x, y)
    epsilon: float
    delta: float


@torch.no_grad()
def private_class_embeddings(images: torch.Tensor, labels: torch.Tensor, features: RandomFourierFeatures,
                             epsilon: float, delta: float, num_classes: int = 10, seed: int | None = None,
                             batch_size: int = 5000) -> PrivateEmbedding:
    """Release the sum of ``v(x, y) = [φ(x) ⊗ e_y, e_y] / sqrt(2)`` with Gaussian noise: ``(ε, δ)``-DP.

    Each ``v`` has norm 1, so the sum's sensitivity to adding or removing one
    example is 1. Class proportions and means are computed from the noisy sum only.

    The guarantee assumes nobody can predict the noise. With ``seed=None`` (the default)
    the noise generator is seeded from the operating system's secure source and the seed
    is kept nowhere; a given ``seed`` makes the release reproducible, as the book's runs
    are, and anyone who knows it can subtract the noise.

    Example:
        >>> phi = RandomFourierFeatures(784, 50, 10.0)
        >>> x, y = torch.rand(100, 1, 28, 28), torch.arange(10).repeat(10)
        >>> release = private_class_embeddings(x, y, phi, epsilon=10.0, delta=1e-5)
        >>> tuple(release.class_means.shape), round(float(release.proportions.sum()), 4)
        ((10, 100), 1.0)
    """
    check_unit_images(images, "training images")
    epsilon, delta = check_epsilon(epsilon), check_delta(delta)
    if labels.shape != (len(images),) or labels.dtype not in (torch.int64, torch.int32) \
            or (len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes)):
        raise PrivacyError(f"labels must be {len(images)} integers in [0, {num_classes}), got shape "
                           f"{tuple(labels.shape)} and dtype {labels.dtype}")
    device = features.frequencies.device
    sums = torch.zeros(num_classes, 2 * features.features, dtype=torch.float64, device=device)
    counts = torch.zeros(num_classes, dtype=torch.float64, device=device)
    for start in range(0, len(images), batch_size):
        batch_labels = labels[start:start + batch_size].to(device).long()
        sums.index_add_(0, batch_labels, features(images[start:start + batch_size].to(device)).double())
        counts += torch.bincount(batch_labels, minlength=num_classes).double()
    sigma = gaussian_noise_scale(1.0, epsilon, delta)
    noise = torch.Generator(device=device).manual_seed(secrets.randbits(63) if seed is None else seed)
    noisy_sums = sums / math.sqrt(2) + sigma * torch.randn(sums.shape, generator=noise, dtype=sums.dtype,
                                                           device=device)
    noisy_counts = counts / math.sqrt(2) + sigma * torch.randn(counts.shape, generator=noise,
                                                               dtype=counts.dtype, device=device)
    noisy_counts = noisy_counts.clamp(min=1.0)  # post-processing: a count cannot be below one
    return PrivateEmbedding((noisy_sums / noisy_counts[:, None]).float(),
                            (noisy_counts / noisy_counts.sum()).float(), sigma, epsilon, delta)


def embedding_distance(generated: torch.Tensor, release: PrivateEmbedding) -> torch.Tensor:
    """``Σ_c p_c |m_c - mean φ(G(z, c))|²``: the class-weighted squared MMD estimate, from ``(classes, 2 D)`` means."""
    return ((generated - release.class_means) ** 2).sum(dim=1) @ release.proportions


def train_dp_merf(config: MerfConfig | None = None, train=None, progress: bool = False,
                  device: str | torch.device = "cpu") -> DPRun:
    """Release the private embedding of ``train``, then train a conditional generator to match it.

    The history's step 0 is the release (its seconds). Each step draws ``per_class`` images of every class, maps ``(G(z, c) + 1) / 2`` through
    the same features and descends :func:`embedding_distance` (Adam, cosine decay).
    The returned run's ``epsilon`` is the release's (exact: the analytic Gaussian
    mechanism), ``noise_multiplier`` its ``σ``; ``accuracy`` is ``nan``: score the
    generator with :func:`~aigc_lessons.privacy.synthetic_training_accuracy`.

    Example:
        >>> run = train_dp_merf(MerfConfig(steps=2, features=10, subset=100))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from ..data import load_mnist

    config = config or MerfConfig()
    if train is None:
        data = load_mnist("train", subset=config.subset)
        train = (data.images, data.labels)
    check_unit_images(train[0], "training images")
    started, cpu_started = time.perf_counter(), time.process_time()
    features = RandomFourierFeatures(28 * 28, config.features, config.length_scale, config.seed).to(device)
    # A seeded release, so that the shipped weights can be retrained exactly: see private_class_embeddings
    release = private_class_embeddings(train[0], train[1], features, config.target_epsilon, config.delta,
                                       seed=config.seed + 1)
    release_seconds = time.perf_counter() - started

    torch.manual_seed(config.seed)
    model = ConditionalGeneratorDCGAN(latent_dim=config.latent_dim, channels=config.channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    classes = len(release.proportions)
    labels = torch.arange(classes, device=device).repeat_interleave(config.per_class)
    history, total = [{"step": 0, "embedding_distance": None, "seconds": round(release_seconds, 1)}], 0.0
    report_every = max(config.steps // 10, 1)
    for step in tqdm(range(1, config.steps + 1), desc="DP-MERF", disable=not progress, leave=False):
        images = (model(torch.randn(len(labels), config.latent_dim, device=device), labels) + 1) / 2
        generated = features(images).view(classes, config.per_class, -1).mean(dim=1)
        loss = embedding_distance(generated, release)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        total += float(loss.detach())
        if step % report_every == 0 or step == config.steps:
            history.append({"step": step, "embedding_distance": round(total / report_every, 6),
                            "seconds": round(time.perf_counter() - started, 1)})
            total = 0.0
    return DPRun(model.cpu().eval(), math.nan, release.epsilon, release.sigma, time.perf_counter() - started,
                 config.steps, history, time.process_time() - cpu_started)


__all__ = ["MerfConfig", "PrivateEmbedding", "RandomFourierFeatures", "embedding_distance",
           "private_class_embeddings", "train_dp_merf"]
