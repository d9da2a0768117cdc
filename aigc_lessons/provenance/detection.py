"""Detectors of generated digits: a small CNN tells real MNIST digits from a generator's.

The question of Wang et al. (2020, "CNN-generated images are surprisingly easy to
spot... for now"), asked on the book's own generators: a binary classifier trained on
real digits against one generator's samples, scored by its ROC AUC on held-out
digits, then on every *other* generator's samples (the cross-generator matrix).

Real digits come from the MNIST *test* split, which no generator was trained on,
split once into two disjoint halves: detectors train on the first, every AUC is
measured on the second. Generated digits for training and for evaluation are drawn
with different seeds. Shapes: images ``(N, 1, 28, 28)`` in [0, 1]; scores ``(N,)``,
higher meaning "generated".
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..family import Option, check_settings

GENERATORS = ("gan_mlp_mnist", "dcgan_mnist", "cgan_mnist", "vae_mnist", "ddpm_mnist")
"""The shipped MNIST generators the chapter attacks (names of :mod:`aigc_lessons.pretrained`)."""

DDPM_SAMPLING_STEPS = 10
"""DDIM steps for ``ddpm_mnist`` (its card's default): 1000 DDPM steps would be 100 times slower."""

REAL_POOL = 5000
"""The MNIST test split's 10 000 digits are shuffled once; the first half trains detectors."""


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """``images`` as a float tensor ``(N, 1, 28, 28)``; a ValueError unless every pixel is in [0, 1].

    Example:
        >>> check_images(torch.full((2, 1, 28, 28), 2.0))
        Traceback (most recent call last):
        ...
        ValueError: images must lie in [0, 1] (MNIST pixels as the book loads them), got values from 2 to 2
    """
    images = torch.as_tensor(images, dtype=torch.float32)
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if images.numel() and (not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] (MNIST pixels as the book loads them), got values "
                         f"from {float(images.min()):.4g} to {float(images.max()):.4g}")
    return images


def check_generator(name: str) -> str:
    """``name`` if it is one of :data:`GENERATORS`, else a ValueError listing them."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}")
    return name


def generated_digits(name: str, count: int, seed: int = 0, ddpm_steps: int = DDPM_SAMPLING_STEPS
                     ) -> torch.Tensor:
    """``count`` samples of the shipped generator ``name``, ``(count, 1, 28, 28)`` in [0, 1].

    ``ddpm_mnist`` is sampled by DDIM with ``ddpm_steps`` steps (fewer steps: faster, blurrier).
    """
    from .. import pretrained

    check_generator(name)
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    model = pretrained.load(name).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if name == "ddpm_mnist":
            if not isinstance(ddpm_steps, int) or ddpm_steps < 1:
                raise ValueError(f"ddpm_steps must be a positive integer, got {ddpm_steps!r}")
            model.sampling_steps = ddpm_steps
        images, _ = model.sample_for_evaluation(count, generator)
    return images.float().clamp(0, 1)


def real_digits(part: str, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` real MNIST test digits from the ``"train"`` or ``"eval"`` half (disjoint halves)."""
    from ..data import load_mnist

    if part not in ("train", "eval"):
        raise ValueError(f"part must be 'train' (detector training) or 'eval' (held out), got {part!r}")
    if not isinstance(count, int) or not 1 <= count <= REAL_POOL:
        raise ValueError(f"count must be an integer in 1..{REAL_POOL} (one half of the test split), got {count!r}")
    images = load_mnist("test").images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    half = order[:REAL_POOL] if part == "train" else order[REAL_POOL:]
    return images[half[:count]].float()


class DetectorCNN(nn.Module):
    """A small CNN with one output, the logit of "generated": ``(N, 1, 28, 28) -> (N,)``.

    Example:
        >>> DetectorCNN()(torch.zeros(3, 1, 28, 28)).shape
        torch.Size([3])
    """

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2),       # 14 x 14
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2),  # 7 x 7
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(2 * channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images)).squeeze(1)


DETECTOR_RULES = {
    "epochs": Option(5, minimum=1),
    "batch_size": Option(64, minimum=1),
    "lr": Option(1e-3, above=0.0),
    "channels": Option(16, minimum=1),
    "seed": Option(0, minimum=0),
}


@dataclass
class DetectorConfig:
    """How a detector trains: epochs over the real + generated training digits, batch size, Adam's lr.

    Every setting is checked against :data:`DETECTOR_RULES` on creation.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    channels: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(asdict(self), DETECTOR_RULES)


def train_detector(real: torch.Tensor, generated: torch.Tensor, config: DetectorConfig | None = None
                   ) -> DetectorCNN:
    """Train a :class:`DetectorCNN` by binary cross-entropy: label 0 for ``real``, 1 for ``generated``."""
    config = config or DetectorConfig()
    real, generated = check_images(real, "real"), check_images(generated, "generated")
    images = torch.cat([real, generated])
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(generated))])
    torch.manual_seed(config.seed)
    model = DetectorCNN(config.channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=shuffle)
        for start in range(0, len(images), config.batch_size):
            batch = order[start:start + config.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def detector_scores(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """The detector's logits (higher = "generated") for ``images``, as a NumPy array ``(N,)``."""
    images = check_images(images)
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]).numpy()


def detection_auc(model: nn.Module, real: torch.Tensor, generated: torch.Tensor) -> float:
    """ROC AUC of the detector on held-out digits (:func:`sklearn.metrics.roc_auc_score`).

    The probability that a random generated digit scores above a random real one; 0.5 is chance.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([detector_scores(model, real), detector_scores(model, generated)])
    truth = np.concatenate([np.zeros(len(real)), np.ones(len(generated))])
    return float(roc_auc_score(truth, scores))


def cross_generator_study(generators: tuple[str, ...] = GENERATORS, train_count: int = 3000,
                          test_count: int = 1500, config: DetectorConfig | None = None,
                          seed: int = 0, progress: bool = False, ddpm_steps: int = DDPM_SAMPLING_STEPS
                          ) -> dict:
    """One detector per generator, each scored on every generator's held-out samples.

    ``train_count`` real and as many generated digits train each detector; ``test_count``
    of each evaluate. The result holds ``rows`` (per generator: ``auc`` on its own held-out
    samples, seconds to sample and to train) and ``cross`` (per training generator, the AUC
    on each generator's samples against the same held-out real digits).
    """
    config = config or DetectorConfig(seed=seed)
    for name in generators:
        check_generator(name)
    real_train = real_digits("train", train_count, seed)
    real_eval = real_digits("eval", test_count, seed)
    samples, rows, detectors = {}, [], {}
    for index, name in enumerate(generators):
        started = time.perf_counter()
        train_fake = generated_digits(name, train_count, 1000 + seed, ddpm_steps)
        samples[name] = generated_digits(name, test_count, 2000 + seed, ddpm_steps)  # other seeds: held out
        sampled = time.perf_counter()
        detectors[name] = train_detector(real_train, train_fake, config)
        trained = time.perf_counter()
        rows.append({"generator": name, "auc": round(detection_auc(detectors[name], real_eval, samples[name]), 4),
                     "sampling_seconds": round(sampled - started, 1),
                     "training_seconds": round(trained - sampled, 1)})
        if progress:
            print(f"[{index + 1}/{len(generators)}] {name}: AUC {rows[-1]['auc']:.4f}", flush=True)
    cross = [{"trained_on": trained_on,
              **{name: round(detection_auc(detectors[trained_on], real_eval, samples[name]), 4)
                 for name in generators}}
             for trained_on in generators]
    return {"generators": list(generators), "train_count": train_count, "test_count": test_count,
            "ddpm_sampling_steps": ddpm_steps, "config": asdict(config), "rows": rows,
            "cross": cross}
