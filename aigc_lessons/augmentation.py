"""Data augmentation and class balancing with a conditional generator: the study of the applications chapter.

The question: does a classifier trained on few labelled digits, or on a heavily
imbalanced set, get better when samples of a class-conditional generator
``G(z, y)`` are added to its training set? The study compares, over several
seeds (each seed changes the subset of real digits *and* the initialisation):

* real digits only;
* real digits with classic augmentation (a small random rotation and shift per image);
* real digits with class re-weighting or oversampling (imbalanced case);
* real digits plus samples of the shipped ``cgan_dcgan_mnist``, which was trained on all
  60 000 *labelled* training digits: it leaks label information the small set does not
  have, so its result is an upper bound, not a fair method;
* real digits plus samples of a small conditional GAN trained on the same small set only
  (the fair comparison);
* synthetic digits only.

Everything works on tensors (no DataLoader). Images are ``(N, 1, 28, 28)`` in ``[0, 1]``,
labels ``(N,)`` integers in ``[0, 10)``.

The recorded full run of the chapter is written by::

    python -m aigc_lessons.augmentation --out book/applications/augmentation_results.json

Example:
    >>> labels = torch.arange(10).repeat(5)
    >>> few_per_class_indices(labels, per_class=2, seed=0).shape
    torch.Size([20])
    >>> format_mean_sd([0.70, 0.72, 0.74])
    '0.720 ± 0.020'
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

NUM_CLASSES = 10
# The imbalanced set of the chapter: digits 0-4 common (1000 each), digits 5-9 rare (10 each).
IMBALANCED_COUNTS = (1000, 1000, 1000, 1000, 1000, 10, 10, 10, 10, 10)


# --------------------------------------------------------------------------- subsets of real digits

def _check_labels(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> None:
    if labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be a 1-D tensor of integer classes, got shape {tuple(labels.shape)} "
                         f"and dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got values from {int(labels.min())} "
                         f"to {int(labels.max())}")


def class_count_indices(labels: torch.Tensor, counts: Sequence[int], seed: int) -> torch.Tensor:
    """Indices of a random subset with exactly ``counts[c]`` examples of each class ``c``.

    The same ``seed`` gives the same subset; the indices come sorted by class, then at random.

    Example:
        >>> labels = torch.tensor([0, 1, 0, 1, 0, 1, 1])
        >>> idx = class_count_indices(labels, counts=[2, 3], seed=0)
        >>> torch.bincount(labels[idx]).tolist()
        [2, 3]
    """
    num_classes = len(counts)
    _check_labels(labels, num_classes)
    if any(int(count) < 0 for count in counts):
        raise ValueError(f"counts must be non-negative, got {list(counts)}")
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    chosen = []
    for digit, count in enumerate(counts):
        members = (labels == digit).nonzero().squeeze(1)
        if count > len(members):
            raise ValueError(f"class {digit} has {len(members)} examples, fewer than the {count} requested")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
    return torch.cat(chosen)


def few_per_class_indices(labels: torch.Tensor, per_class: int, seed: int,
                          num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Indices of ``per_class`` random examples of every class (``num_classes * per_class`` in all).

    Example:
        >>> labels = torch.arange(10).repeat(3)
        >>> torch.bincount(labels[few_per_class_indices(labels, 3, seed=1)]).tolist()
        [3, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    return class_count_indices(labels, [per_class] * num_classes, seed)


def balancing_counts(counts: Sequence[int]) -> list[int]:
    """How many synthetic examples each class needs to reach the largest class: ``max(counts) - counts[c]``.

    Example:
        >>> balancing_counts([1000, 10, 250])
        [0, 990, 750]
    """
    largest = max(counts)
    return [largest - int(count) for count in counts]


# --------------------------------------------------------------------------- synthetic digits

@torch.no_grad()
def synthetic_digits(generator: nn.Module, counts: Sequence[int], seed: int,
                     batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``counts[c]`` samples of class ``c`` from a conditional generator ``G(z, y)``.

    The generator writes images in ``[-1, 1]`` (tanh); they are returned in ``[0, 1]``,
    the classifier's range, on the CPU, with their requested labels.

    Example:
        >>> from aigc_lessons.models import ConditionalGenerator
        >>> images, labels = synthetic_digits(ConditionalGenerator(), counts=[2, 0, 1] + [0] * 7, seed=0)
        >>> images.shape, labels.tolist()
        (torch.Size([3, 1, 28, 28]), [0, 0, 2])
    """
    if len(counts) != generator.num_classes:
        raise ValueError(f"counts must give one number per class ({generator.num_classes}), got {len(counts)}")
    if any(int(count) < 0 for count in counts):
        raise ValueError(f"counts must be non-negative, got {list(counts)}")
    device = next(generator.parameters()).device
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor([int(c) for c in counts]))
    noise = torch.Generator().manual_seed(seed)
    was_training = generator.training
    generator.eval()  # batch norm in evaluation mode: samples do not depend on their batch-mates
    images = []
    for start in range(0, len(labels), batch_size):
        y = labels[start:start + batch_size]
        z = torch.randn(len(y), generator.latent_dim, generator=noise)
        images.append(generator(z.to(device), y.to(device)).cpu())
    generator.train(was_training)
    if not images:
        return torch.zeros(0, 1, 28, 28), labels
    return (torch.cat(images).clamp(-1, 1) + 1) / 2, labels


def train_subset_cgan(images: torch.Tensor, labels: torch.Tensor, steps: int, seed: int = 0,
                      channels: int = 16, batch_size: int = 64, device: str | torch.device = "cpu",
                      progress: bool = False) -> nn.Module:
    """Train a small convolutional cGAN on ``images`` in ``[0, 1]`` only (the fair generator); return G.

    The networks are the book's ``ConditionalGeneratorDCGAN`` / ``ConditionalDiscriminatorDCGAN``
    with ``channels`` feature maps, trained by ``train_cgan`` for about ``steps`` updates.
    """
    from .models import ConditionalDiscriminatorDCGAN, ConditionalGeneratorDCGAN
    from .train import CganConfig, train_cgan

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    batches_per_epoch = math.ceil(len(images) / batch_size)
    torch.manual_seed(seed)
    generator = ConditionalGeneratorDCGAN(latent_dim=64, embed_dim=16, channels=channels)
    discriminator = ConditionalDiscriminatorDCGAN(channels=channels)
    config = CganConfig(epochs=max(1, round(steps / batches_per_epoch)), batch_size=batch_size, seed=seed,
                        log_every=10_000)
    train_cgan(generator, discriminator, images * 2 - 1, labels, config, device=device, progress=progress)
    return generator.eval()


# --------------------------------------------------------------------------- classic augmentation

def random_shift_rotate(images: torch.Tensor, generator: torch.Generator, max_degrees: float = 10.0,
                        max_shift: float = 2.0) -> torch.Tensor:
    """Rotate each image by its own random angle in ``[-max_degrees, max_degrees]`` and shift it by up to
    ``max_shift`` pixels in each direction (bilinear, zero padding: MNIST's background is 0).

    torchvision's transforms draw *one* set of parameters per call, so a batch would move as a
    whole; here each image gets its own, in one batched ``affine_grid`` / ``grid_sample`` call.

    Example:
        >>> x = torch.rand(4, 1, 28, 28)
        >>> torch.allclose(random_shift_rotate(x, torch.Generator(), max_degrees=0, max_shift=0), x, atol=1e-5)
        True
    """
    count, _, height, width = images.shape
    angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * max_shift
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid works in normalised coordinates, [-1, 1] across the image: a shift of s pixels is 2 s / size.
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0] * 2 / width], dim=1),
                         torch.stack([sin, cos, shift[:, 1] * 2 / height], dim=1)], dim=1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# --------------------------------------------------------------------------- the classifier

@dataclass
class ClassifierConfig:
    """The small classifier of the study and how it is trained (a fixed number of steps for every condition)."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    channels: tuple[int, int] = (8, 16)
    feature_dim: int = 32


def train_classifier(images: torch.Tensor, labels: torch.Tensor, config: ClassifierConfig | None = None, *,
                     seed: int = 0, augment: bool = False, class_weighted: bool = False, oversample: bool = False,
                     device: str | torch.device = "cpu") -> nn.Module:
    """Train a small ``MnistClassifier`` on tensors for ``config.steps`` Adam steps (cosine decay).

    Each step draws a batch at random (with replacement): uniformly, or, with ``oversample``,
    with probability proportional to ``1 / count(class)`` so that every class is drawn equally
    often. ``class_weighted`` weights the cross-entropy of class ``c`` by ``N / (K count(c))``
    instead. ``augment`` applies :func:`random_shift_rotate` to every batch.

    Example:
        >>> x, y = torch.rand(20, 1, 28, 28), torch.arange(10).repeat(2)
        >>> model = train_classifier(x, y, ClassifierConfig(steps=2, batch_size=8))
        >>> model(x).shape
        torch.Size([20, 10])
    """
    from .models.classifier import MnistClassifier

    config = config or ClassifierConfig()
    _check_labels(labels)
    if images.shape[1:] != (1, 28, 28) or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"expected images (N, 1, 28, 28) with N = len(labels) > 0, got {tuple(images.shape)} "
                         f"and {len(labels)} labels")
    if oversample and class_weighted:
        raise ValueError("choose oversample or class_weighted, not both (each corrects the imbalance on its own)")
    torch.manual_seed(seed)
    model = MnistClassifier(channels=tuple(config.channels), feature_dim=config.feature_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    images, labels = images.to(device), labels.to(device)
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float()
    present = counts > 0
    loss_weight = None
    if class_weighted:
        loss_weight = torch.where(present, len(labels) / (int(present.sum()) * counts.clamp(min=1)), 0.0)
    draw_weight = (1.0 / counts.clamp(min=1))[labels] if oversample else None
    batches = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(config.steps):
        if draw_weight is None:
            index = torch.randint(len(labels), (config.batch_size,), generator=batches)
        else:
            index = torch.multinomial(draw_weight.cpu(), config.batch_size, replacement=True, generator=batches)
        x, y = images[index.to(device)], labels[index.to(device)]
        if augment:
            x = random_shift_rotate(x, batches)
        loss = F.cross_entropy(model(x), y, weight=loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def per_class_recall(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Recall of each class: the fraction of its examples predicted as that class (NaN for an absent class).

    Example:
        >>> per_class_recall(torch.tensor([0, 0, 1, 0]), torch.tensor([0, 0, 1, 1]), num_classes=2).tolist()
        [1.0, 0.5]
    """
    correct = torch.bincount(labels[predicted == labels], minlength=num_classes).float()
    total = torch.bincount(labels, minlength=num_classes).float()
    return correct / total


def balanced_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> float:
    """Mean of the per-class recalls over the classes present in ``labels``.

    Example:
        >>> balanced_accuracy(torch.tensor([0, 0, 1, 0]), torch.tensor([0, 0, 1, 1]), num_classes=2)
        0.75
    """
    recall = per_class_recall(predicted, labels, num_classes)
    return float(recall[~recall.isnan()].mean())


@torch.no_grad()
def evaluate_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        batch_size: int = 1000) -> dict:
    """Accuracy, balanced accuracy and per-class recall of ``model`` on ``images`` in ``[0, 1]``."""
    model.eval()
    device = next(model.parameters()).device
    predicted = torch.cat([model(images[start:start + batch_size].to(device)).argmax(dim=1).cpu()
                           for start in range(0, len(images), batch_size)])
    labels = labels.cpu()
    return {"accuracy": float((predicted == labels).float().mean()),
            "balanced_accuracy": balanced_accuracy(predicted, labels),
            "recall": [round(float(r), 4) for r in per_class_recall(predicted, labels)]}


# --------------------------------------------------------------------------- the study

@dataclass(frozen=True)
class Condition:
    """One way of building the training set (and of training on it).

    ``synthetic``: ``None``, ``"pretrained"`` (``cgan_dcgan_mnist``, trained on all 60 000 labelled
    digits: leaks labels) or ``"subset"`` (a cGAN trained on this seed's real subset only).
    ``synthetic_per_class``: a number per class, or ``"balance"`` to fill every class up to the largest.
    """

    name: str
    real: bool = True
    synthetic: str | None = None
    synthetic_per_class: int | str = 0
    augment: bool = False
    class_weighted: bool = False
    oversample: bool = False

    def __post_init__(self) -> None:
        if self.synthetic not in (None, "pretrained", "subset"):
            raise ValueError(f"synthetic must be None, 'pretrained' or 'subset', got {self.synthetic!r}")
        if not self.real and self.synthetic is None:
            raise ValueError(f"condition {self.name!r} has neither real nor synthetic digits")


@dataclass
class StudySetting:
    """Which real subset every seed draws, and the budgets of the classifier and of the fair cGAN."""

    subset_counts: tuple[int, ...]
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cgan_steps: int = 500
    cgan_channels: int = 16
    test_count: int | None = None  # None: the whole test set (10 000 digits)


FEW_LABELS_CONDITIONS = (
    Condition("real only"),
    Condition("real + shifts/rotations", augment=True),
    Condition("real + cGAN trained on the subset", synthetic="subset", synthetic_per_class=500),
    Condition("real + cGAN trained on all labels (leaky)", synthetic="pretrained", synthetic_per_class=500),
    Condition("cGAN trained on all labels only (leaky)", real=False, synthetic="pretrained",
              synthetic_per_class=500),
)

IMBALANCED_CONDITIONS = (
    Condition("real only"),
    Condition("real, oversampled", oversample=True),
    Condition("real, class-weighted loss", class_weighted=True),
    Condition("real, oversampled + shifts/rotations", oversample=True, augment=True),
    Condition("real + cGAN trained on the subset", synthetic="subset", synthetic_per_class="balance"),
    Condition("real + cGAN trained on all labels (leaky)", synthetic="pretrained", synthetic_per_class="balance"),
)


def _synthetic_counts(condition: Condition, real_counts: Sequence[int]) -> list[int]:
    if condition.synthetic_per_class == "balance":
        return balancing_counts(real_counts)
    if isinstance(condition.synthetic_per_class, int):
        return [condition.synthetic_per_class] * len(real_counts)
    raise ValueError(f"synthetic_per_class must be an int or 'balance', got {condition.synthetic_per_class!r}")


def run_study(conditions: Sequence[Condition], seeds: Sequence[int], setting: StudySetting, *,
              train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
              test_labels: torch.Tensor, pretrained_generator: nn.Module | None = None,
              device: str | torch.device = "cpu", progress: bool = True,
              on_subset_generator: Callable[[int, nn.Module], None] | None = None) -> list[dict]:
    """Train and score one classifier per (seed, condition); return one row per pair.

    For each seed: draw the real subset (``setting.subset_counts``), train the fair cGAN on it when
    a condition needs one, then build each condition's training set and train a classifier with
    the same seed. A row holds ``seed``, ``condition``, the training-set size, the test metrics of
    :func:`evaluate_classifier` and the seconds it took. ``on_subset_generator(seed, generator)``, when
    given, is called with each fair cGAN once it is trained (to score it or keep its samples).
    """
    from tqdm.auto import tqdm

    if not seeds:
        raise ValueError("run_study needs at least one seed")
    if any(c.synthetic == "pretrained" for c in conditions) and pretrained_generator is None:
        raise ValueError("a condition asks for 'pretrained' samples: pass pretrained_generator "
                         "(pretrained.load('cgan_dcgan_mnist'))")
    if setting.test_count is not None:
        test_images, test_labels = test_images[:setting.test_count], test_labels[:setting.test_count]
    rows = []
    bar = tqdm(total=len(seeds) * len(conditions), desc="study", disable=not progress)
    for seed in seeds:
        index = class_count_indices(train_labels, setting.subset_counts, seed)
        real_images, real_labels = train_images[index], train_labels[index]
        subset_generator, cgan_seconds = None, 0.0
        drawn: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        if any(c.synthetic == "subset" for c in conditions):
            started = time.perf_counter()
            subset_generator = train_subset_cgan(real_images, real_labels, setting.cgan_steps, seed=seed,
                                                 channels=setting.cgan_channels, device=device)
            cgan_seconds = time.perf_counter() - started
            if on_subset_generator is not None:
                on_subset_generator(seed, subset_generator)
        for condition in conditions:
            started = time.perf_counter()
            parts_x, parts_y = [], []
            if condition.real:
                parts_x.append(real_images)
                parts_y.append(real_labels)
            if condition.synthetic is not None:
                counts = _synthetic_counts(condition, setting.subset_counts)
                key = (condition.synthetic, tuple(counts))
                if key not in drawn:  # conditions of one seed that ask for the same samples share them
                    source = pretrained_generator if condition.synthetic == "pretrained" else subset_generator
                    drawn[key] = synthetic_digits(source, counts, seed=10_000 + seed)
                fake_x, fake_y = drawn[key]
                parts_x.append(fake_x.to(real_images.device))
                parts_y.append(fake_y.to(real_labels.device))
            images, labels = torch.cat(parts_x), torch.cat(parts_y)
            model = train_classifier(images, labels, setting.classifier, seed=seed, augment=condition.augment,
                                     class_weighted=condition.class_weighted, oversample=condition.oversample,
                                     device=device)
            metrics = evaluate_classifier(model, test_images, test_labels)
            rows.append({"seed": seed, "condition": condition.name, "train_size": len(labels),
                         "synthetic": int(len(labels) - (len(real_labels) if condition.real else 0)),
                         **metrics, "seconds": round(time.perf_counter() - started, 1),
                         **({"cgan_seconds": round(cgan_seconds, 1)} if condition.synthetic == "subset" else {})})
            bar.update(1)
    bar.close()
    return rows


# --------------------------------------------------------------------------- summaries

def mean_and_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (divisor n - 1; NaN for a single value).

    Example:
        >>> mean_and_sd([1.0, 2.0, 3.0])
        (2.0, 1.0)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_and_sd needs at least one value")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_mean_sd(values: Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    """``"mean ± sd"`` over seeds, rounded to ``digits`` decimals (``scale=100`` for percentages).

    Example:
        >>> format_mean_sd([0.5, 0.7], scale=100, digits=1)
        '60.0 ± 14.1'
        >>> format_mean_sd([0.5])
        '0.500 (1 seed)'
    """
    mean, sd = mean_and_sd([v * scale for v in values])
    if math.isnan(sd):
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def summarize(rows: Sequence[dict], metric: str = "accuracy") -> dict[str, tuple[float, float, int]]:
    """``condition -> (mean, sd, number of seeds)`` of ``metric``, in the order the conditions first appear."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row["condition"], []).append(row[metric])
    return {name: (*mean_and_sd(values), len(values)) for name, values in groups.items()}


def results_table(rows: Sequence[dict], metrics: Sequence[str] = ("accuracy", "balanced_accuracy")) -> str:
    """A Markdown table: one line per condition, ``mean ± sd`` in percent for each metric."""
    titles = {"accuracy": "accuracy (%)", "balanced_accuracy": "balanced accuracy (%)",
              "rare_recall": "recall of rare digits (%)"}
    conditions = list(dict.fromkeys(row["condition"] for row in rows))
    lines = ["| training set | seeds | " + " | ".join(titles.get(m, m) for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for name in conditions:
        group = [row for row in rows if row["condition"] == name]
        cells = [format_mean_sd([row[m] for row in group], digits=1, scale=100) for m in metrics]
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_rare_recall(rows: list[dict], counts: Sequence[int]) -> list[dict]:
    """Add ``rare_recall``: the mean recall over the classes with the smallest count in ``counts``."""
    rare = [digit for digit, count in enumerate(counts) if count == min(counts)]
    for row in rows:
        row["rare_recall"] = sum(row["recall"][d] for d in rare) / len(rare)
    return rows


# --------------------------------------------------------------------------- the recorded run

SAMPLES_PER_DIGIT = 8


def encode_images(images: torch.Tensor) -> str:
    """Images in ``[0, 1]`` as one base64 string of 8-bit pixels (to keep a few samples in a JSON record).

    Example:
        >>> x = torch.rand(3, 1, 28, 28)
        >>> (decode_images(encode_images(x)) - x).abs().max() <= 0.5 / 255 + 1e-6
        tensor(True)
    """
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return base64.b64encode(pixels.tobytes()).decode("ascii")


def decode_images(text: str) -> torch.Tensor:
    """The inverse of :func:`encode_images`: ``(N, 1, 28, 28)`` float images in ``[0, 1]``."""
    pixels = torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)
    return pixels.view(-1, 1, 28, 28).float() / 255


def study_settings(fast: bool) -> dict[str, StudySetting]:
    """The two experiments of the chapter, in the full or the fast setting."""
    classifier = ClassifierConfig(steps=80 if fast else 300)
    cgan_steps, test_count = (40, 1000) if fast else (500, None)
    return {
        "few_labels": StudySetting(subset_counts=(10,) * NUM_CLASSES, classifier=classifier,
                                   cgan_steps=cgan_steps, test_count=test_count),
        "imbalanced": StudySetting(subset_counts=IMBALANCED_COUNTS, classifier=classifier,
                                   cgan_steps=cgan_steps, test_count=test_count),
    }


def run_chapter_study(fast: bool, seeds: Sequence[int], device: str | torch.device = "cpu",
                      progress: bool = True) -> dict:
    """Both experiments of the chapter; returns the JSON-ready record (settings, rows, timings)."""
    from . import pretrained
    from .data import load_mnist

    train = load_mnist("train")
    test = load_mnist("test")
    generator = pretrained.load("cgan_dcgan_mnist", device=device)
    settings = study_settings(fast)
    conditions = {"few_labels": FEW_LABELS_CONDITIONS, "imbalanced": IMBALANCED_CONDITIONS}
    record = {"command": "python -m aigc_lessons.augmentation" + (" --fast" if fast else ""),
              "setting": "fast" if fast else "full", "seeds": list(seeds),
              "hardware": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
              "experiments": {}}
    judge = pretrained.load("classifier_mnist", device=device).eval()
    for name, setting in settings.items():
        generators: dict = {"class_accuracy": {}}

        def score_generator(seed: int, subset_generator: nn.Module) -> None:
            # How often the reference classifier reads the requested digit (100 samples per digit).
            images, labels = synthetic_digits(subset_generator, [100] * NUM_CLASSES, seed=20_000 + seed)
            generators["class_accuracy"][seed] = evaluate_classifier(judge, images, labels)["recall"]
            if "samples" not in generators:  # a few samples of the first seed's generator, for the chapter
                grid, _ = synthetic_digits(subset_generator, [SAMPLES_PER_DIGIT] * NUM_CLASSES, seed=0)
                generators["samples"] = encode_images(grid)

        started = time.perf_counter()
        rows = run_study(conditions[name], seeds, setting, train_images=train.images, train_labels=train.labels,
                         test_images=test.images, test_labels=test.labels, pretrained_generator=generator,
                         device=device, progress=progress, on_subset_generator=score_generator)
        add_rare_recall(rows, setting.subset_counts)
        record["experiments"][name] = {
            "setting": {**asdict(setting), "conditions": [asdict(c) for c in conditions[name]]},
            "seconds": round(time.perf_counter() - started, 1),
            "rows": rows,
            "subset_cgan": generators,
        }
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the augmentation chapter's study and write its results.")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--fast", action="store_true", help="the fast setting (for a quick try)")
    args = parser.parse_args(argv)
    record = run_chapter_study(args.fast, list(range(args.seeds)))
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for name, experiment in record["experiments"].items():
        print(f"\n{name} ({experiment['seconds']} s)")
        print(results_table(experiment["rows"], ("accuracy", "balanced_accuracy", "rare_recall")
                            if name == "imbalanced" else ("accuracy", "balanced_accuracy")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
