"""Sample quality through the reference classifier: features, FD, the Inception-style score, precision and
recall, class accuracy, the memorization check, and ``evaluate_images`` (all of them at once)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

REFERENCE_CLASSIFIER = "classifier_mnist"
IMAGE_SHAPE = (1, 28, 28)

_CLASSIFIERS: dict[str, nn.Module] = {}
_REFERENCE_CACHE: dict[tuple, torch.Tensor] = {}
_TRAINING_IMAGES: dict[str, torch.Tensor] = {}


class MetricsError(ValueError):
    """Inputs a metric cannot use: wrong shape, wrong value range, too few samples."""


# --------------------------------------------------------------------------- inputs and the classifier


def load_classifier(device: str | torch.device = "auto") -> nn.Module:
    """The reference classifier (pretrained ``classifier_mnist``) in eval mode, loaded once per device.

    Example:
        >>> classifier = load_classifier("cpu")  # doctest: +SKIP
    """
    from .. import pretrained
    from ..core import get_device

    resolved = get_device(device)
    key = str(resolved)
    if key not in _CLASSIFIERS:
        if not pretrained.exists(REFERENCE_CLASSIFIER):
            raise pretrained.PretrainedError(
                f"the reference classifier {REFERENCE_CLASSIFIER!r} is not in {pretrained.WEIGHTS_DIR}; "
                f"train it (about 10 CPU minutes) with: python -m aigc_lessons.recipes {REFERENCE_CLASSIFIER}")
        _CLASSIFIERS[key] = pretrained.load(REFERENCE_CLASSIFIER, device=resolved)
    return _CLASSIFIERS[key]


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1)) -> torch.Tensor:
    """Check images and map them from ``value_range`` to ``[0, 1]``, shape ``(N, 1, 28, 28)``.

    Accepts ``(N, 1, 28, 28)``, ``(N, 28, 28)`` or flat ``(N, 784)`` tensors. Raises
    :class:`MetricsError` for other shapes, non-finite values or values outside
    ``value_range`` (a common mistake: tanh outputs in [-1, 1] scored as if in [0, 1]).

    Example:
        >>> to_unit_range(torch.full((2, 784), -1.0)).shape
        torch.Size([2, 1, 28, 28])
    """
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.dim() == 2 and images.shape[1] == 784:
        images = images.reshape(-1, *IMAGE_SHAPE)
    elif images.dim() == 3 and tuple(images.shape[1:]) == (28, 28):
        images = images.unsqueeze(1)
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise MetricsError(f"expected MNIST-sized images of shape (N, 1, 28, 28) (or (N, 28, 28), (N, 784)), "
                           f"got {tuple(images.shape)}.")
    if len(images) == 0:
        raise MetricsError("got an empty batch of images")
    unit = _scaled_to_unit(images, value_range, "the images")
    low = float(value_range[0])
    if low < 0 <= float(images.min()) and len(images) >= 10:
        warnings.warn(f"value_range=({low:g}, {float(value_range[1]):g}) but no pixel is below 0: these look like "
                      "images in [0, 1]; if so, pass value_range=(0, 1) or the metrics will see washed-out grey "
                      "digits.", stacklevel=3)
    return unit


def _scaled_to_unit(images: torch.Tensor, value_range: tuple[float, float], what: str) -> torch.Tensor:
    """``images`` (any shape) as float32 mapped from ``value_range`` to ``[0, 1]``, after checking that they
    are finite and really lie in ``value_range`` (with a small slack for rounding)."""
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise MetricsError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    images = images.float()
    if not torch.isfinite(images).all():
        raise MetricsError(f"{what} contain NaN or infinite values; check the model's output.")
    lowest, highest = float(images.min()), float(images.max())
    slack = 1e-3 * (high - low)
    if lowest < low - slack or highest > high + slack:
        raise MetricsError(f"{what} have values in [{lowest:.3g}, {highest:.3g}], outside value_range="
                           f"({low:g}, {high:g}). Pass the range they are really in, for example "
                           "value_range=(0, 1) for VAE means, (-1, 1) for tanh generators.")
    return ((images - low) / (high - low)).clamp_(0.0, 1.0)


@torch.no_grad()
def _classify(images: torch.Tensor, value_range, batch_size: int, device, progress: bool, desc: str
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``(N, F)`` and class probabilities ``(N, 10)``, both float32 on the CPU."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise MetricsError(f"batch_size must be positive, got {batch_size}")
    classifier = load_classifier(device)
    target = next(classifier.parameters()).device
    images = to_unit_range(images, value_range)
    features, probabilities = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress, leave=False):
        batch = images[start:start + batch_size].to(target)
        embedded = classifier.features(batch)
        features.append(embedded.cpu())
        probabilities.append(torch.softmax(classifier.head(embedded), dim=1).cpu())
    return torch.cat(features), torch.cat(probabilities)


def classifier_features(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1), batch_size: int = 500,
                        device: str | torch.device = "auto", progress: bool = False) -> torch.Tensor:
    """The reference classifier's penultimate features ``(N, 128)`` (float32, CPU) for ``images``.

    Example:
        >>> feats = classifier_features(torch.zeros(4, 1, 28, 28), value_range=(0, 1))  # doctest: +SKIP
        >>> feats.shape  # doctest: +SKIP
        torch.Size([4, 128])
    """
    return _classify(images, value_range, batch_size, device, progress, "features")[0]


def classifier_probabilities(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1),
                             batch_size: int = 500, device: str | torch.device = "auto",
                             progress: bool = False) -> torch.Tensor:
    """The reference classifier's class probabilities ``p(y | x)``, shape ``(N, 10)``."""
    return _classify(images, value_range, batch_size, device, progress, "classifier")[1]


# --------------------------------------------------------------------------- Fréchet distance


def _as_features(features, name: str) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise MetricsError(f"{name} must be a 2-D array (samples, feature dimensions), got shape {array.shape}")
    if len(array) < 2:
        raise MetricsError(f"{name} needs at least 2 samples to estimate a covariance, got {len(array)}")
    if not np.isfinite(array).all():
        raise MetricsError(f"{name} contains NaN or infinite values")
    return array


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (tiny negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    ``|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a^{1/2} cov_b cov_a^{1/2})^{1/2})``; the trace of
    the matrix square root is computed from the eigenvalues of the symmetric matrix
    ``cov_a^{1/2} cov_b cov_a^{1/2}``, which is stabler than ``sqrtm(cov_a @ cov_b)``.

    Example:
        >>> eye = np.eye(3)
        >>> gaussian_frechet_distance(np.zeros(3), eye, np.ones(3), 4 * eye)  # 3 + 3 * (1 + 4 - 2 * 2)
        6.0
    """
    mean_a, mean_b = np.atleast_1d(mean_a).astype(np.float64), np.atleast_1d(mean_b).astype(np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (len(mean_a), len(mean_a)):
        raise MetricsError(f"shapes do not match: means {mean_a.shape}, {mean_b.shape}; covariances "
                           f"{cov_a.shape}, {cov_b.shape}")
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(distance, 0.0)


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N_a, F)`` and ``(N_b, F)``.

    With classifier features this is the book's ``fd_mnist``: FID's formula on a
    different feature space, so its values are **not comparable** with Inception FID.
    Like FID it is biased upward for small samples (the covariance estimates are
    noisy): compare models only at the same number of images.

    Example:
        >>> x = torch.randn(1000, 2)
        >>> round(frechet_distance(x, x), 6)
        0.0
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise MetricsError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


# --------------------------------------------------------------------------- classifier score


def inception_score_from_probabilities(probabilities: torch.Tensor) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean of the rows.

    Example:
        >>> round(inception_score_from_probabilities(torch.eye(10)), 4)  # confident and balanced: the maximum
        10.0
        >>> round(inception_score_from_probabilities(torch.full((5, 10), 0.1)), 4)  # undecided: the minimum
        1.0
    """
    p = probabilities.double().clamp_min(1e-12)
    marginal = p.mean(dim=0, keepdim=True)
    kl = (p * (p.log() - marginal.log())).sum(dim=1)
    return float(torch.exp(kl.mean()))


def inception_score(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1), splits: int = 1,
                    batch_size: int = 500, device: str | torch.device = "auto", progress: bool = False) -> float:
    """Inception-style score with the MNIST classifier (``is_mnist``): between 1 and 10.

    High when each sample is classified confidently *and* the classes are used
    evenly. It never looks at real data, so a generator that draws one perfect
    digit per class scores 10 while copying the training set; values are not
    comparable with the Inception Score of natural-image papers. ``splits > 1``
    averages the score over that many disjoint chunks, as Salimans et al. did.

    Example:
        >>> score = inception_score(real_test_images, value_range=(0, 1))  # doctest: +SKIP
    """
    probabilities = classifier_probabilities(images, value_range, batch_size, device, progress)
    if splits < 1 or splits > len(probabilities):
        raise MetricsError(f"splits must be between 1 and the number of images ({len(probabilities)}), got {splits}")
    return float(np.mean([inception_score_from_probabilities(chunk) for chunk in probabilities.chunk(splits)]))


# --------------------------------------------------------------------------- precision and recall


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048):
    """Yield ``(start, distances (chunk, len(b)))`` for rows of ``a``, Euclidean, float32."""
    b_squared = (b * b).sum(1)
    for start in range(0, len(a), chunk):
        rows = a[start:start + chunk]
        squared = (rows * rows).sum(1, keepdim=True) + b_squared - 2.0 * rows @ b.T
        yield start, squared.clamp_min_(0.0).sqrt_()


def _knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set."""
    radii = torch.empty(len(points))
    for start, distances in _pairwise_distances(points, points):
        # the k+1 smallest include the point itself at distance 0
        radii[start:start + len(distances)] = distances.topk(k + 1, dim=1, largest=False).values[:, -1]
    return radii


def _inside_manifold(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each query: is it within ``radii[j]`` of some ``points[j]``?"""
    inside = torch.empty(len(queries), dtype=torch.bool)
    for start, distances in _pairwise_distances(queries, points):
        inside[start:start + len(distances)] = (distances <= radii).any(dim=1)
    return inside


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-nearest-neighbour manifolds.

    The real manifold is the union of balls around each real feature vector with
    radius the distance to its k-th nearest real neighbour (likewise for the fake
    manifold). Precision: the fraction of fake samples inside the real manifold
    (are samples realistic?). Recall: the fraction of real samples inside the fake
    manifold (does the model cover the data?). Use the same number of real and fake
    samples: the radii shrink as a set grows.

    Example:
        >>> real = torch.randn(500, 2)
        >>> precision, recall = precision_recall(real, real + 100.0)  # far apart: neither overlaps
        >>> precision, recall
        (0.0, 0.0)
    """
    real = torch.as_tensor(_as_features(real_features, "real_features"), dtype=torch.float32)
    fake = torch.as_tensor(_as_features(fake_features, "fake_features"), dtype=torch.float32)
    if real.shape[1] != fake.shape[1]:
        raise MetricsError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    if not 1 <= k < min(len(real), len(fake)):
        raise MetricsError(f"k must be between 1 and the smaller set size minus one "
                           f"({min(len(real), len(fake)) - 1}), got {k}")
    precision = float(_inside_manifold(fake, real, _knn_radii(real, k)).float().mean())
    recall = float(_inside_manifold(real, fake, _knn_radii(fake, k)).float().mean())
    return precision, recall


# --------------------------------------------------------------------------- conditional samples, memorization


def class_accuracy(images: torch.Tensor, labels: torch.Tensor, value_range: tuple[float, float] = (-1, 1),
                   batch_size: int = 500, device: str | torch.device = "auto") -> float:
    """Fraction of conditional samples that the reference classifier assigns to the requested label.

    Example:
        >>> class_accuracy(cgan_images, requested_labels)  # doctest: +SKIP
        0.97
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or len(labels) != len(images):
        raise MetricsError(f"labels must have shape ({len(images)},), one per image, got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or (len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9)):
        raise MetricsError("labels must be integer digits 0..9")
    probabilities = classifier_probabilities(images, value_range, batch_size, device)
    return float((probabilities.argmax(dim=1) == labels.cpu()).float().mean())


@torch.no_grad()
def nearest_neighbour_distances(images: torch.Tensor, train_images: torch.Tensor,
                                value_range: tuple[float, float] = (-1, 1), return_indices: bool = False,
                                batch_size: int = 1000, device: str | torch.device = "auto",
                                progress: bool = False, train_value_range: tuple[float, float] = (0, 1)):
    """Euclidean pixel distance (images mapped to [0, 1]) from each image to its nearest training image.

    ``images`` are in ``value_range``; ``train_images`` in ``train_value_range``,
    by default ``(0, 1)`` as ``load_mnist`` returns them. A generator that memorizes its training
    set has many distances near 0; for reference, real MNIST test digits lie about
    5 to 6 units from their nearest training digit (the chapter measures it).
    With ``return_indices=True`` also returns the index of each nearest training image.

    Example:
        >>> train = torch.rand(50, 1, 28, 28)
        >>> nearest_neighbour_distances(train[:3] * 2 - 1, train, value_range=(-1, 1))
        tensor([0., 0., 0.])
    """
    from tqdm.auto import tqdm

    from ..core import get_device

    target = get_device(device)
    queries = to_unit_range(images, value_range).flatten(1).to(target)
    reference = to_unit_range(train_images, train_value_range).flatten(1).to(target)
    reference_squared = (reference * reference).sum(1)
    distances, indices = [], []
    for start in tqdm(range(0, len(queries), batch_size), desc="nearest neighbours", disable=not progress,
                      leave=False):
        rows = queries[start:start + batch_size]
        squared = (rows * rows).sum(1, keepdim=True) + reference_squared - 2.0 * rows @ reference.T
        where = squared.argmin(dim=1)
        # recompute the winner's distance directly: the expansion above loses precision near 0
        distances.append((rows - reference[where]).norm(dim=1).cpu())
        indices.append(where.cpu())
    distances = torch.cat(distances)
    return (distances, torch.cat(indices)) if return_indices else distances


# --------------------------------------------------------------------------- everything at once


def reference_images(split: str = "test", count: int | None = None, device: str | torch.device = "cpu",
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST images in [0, 1] and their labels: ``count`` images drawn at random (seeded) from ``split``.

    A random subset, not the first ``count`` images: the MNIST test set is ordered
    (its first 5 000 digits come from the cleaner NIST writers, the last 5 000 from
    the harder ones), so a prefix is not a sample of the whole split. ``count=None``
    (or the split's size) returns the whole split in its usual order.

    Example:
        >>> images, labels = reference_images("test", 1000)  # doctest: +SKIP
    """
    from ..data import load_mnist

    data = load_mnist(split, value_range=(0, 1), device=device)
    if count is None or count >= len(data):
        return data.images, data.labels
    if count < 1:
        raise MetricsError(f"count must be positive, got {count}")
    chosen = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count].to(data.images.device)
    return data.images[chosen], data.labels[chosen]


def _reference_features(split: str, count: int, device, progress: bool) -> torch.Tensor:
    key = (split, count, str(device))
    if key not in _REFERENCE_CACHE:
        images, _ = reference_images(split, count)
        _REFERENCE_CACHE[key] = classifier_features(images, (0, 1), device=device, progress=progress)
    return _REFERENCE_CACHE[key]


def evaluate_images(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1),
                    labels: torch.Tensor | None = None, reference: str = "test", count: int | None = None,
                    device: str | torch.device = "auto", progress: bool = True, k: int = 3,
                    train_images: torch.Tensor | None = None,
                    train_value_range: tuple[float, float] = (0, 1)) -> dict:
    """All the chapter's metrics for a batch of generated images, against real MNIST.

    Uses the first ``count`` generated images and ``count`` images of the
    ``reference`` split (``"test"`` or ``"train"``) drawn at random with a fixed seed
    (:func:`reference_images`); ``count=None`` means as many as there are images
    (at most the split's size). Returns a dict with ``fd_mnist``
    (Fréchet distance of classifier features: *not* Inception FID), ``is_mnist``,
    ``precision``, ``recall`` (k-NN manifolds, ``k``), ``nn_distance_mean`` (mean
    pixel distance to the nearest of the 60 000 training images, or of
    ``train_images``, in ``train_value_range``, when given), ``class_accuracy`` when ``labels`` are given,
    and ``count``.

    Example:
        >>> scores = evaluate_images(generator_samples, value_range=(-1, 1), count=1000)  # doctest: +SKIP
        >>> sorted(scores)  # doctest: +SKIP
        ['count', 'fd_mnist', 'is_mnist', 'nn_distance_mean', 'precision', 'recall']
    """
    from ..core import get_device

    if reference not in ("test", "train"):
        raise MetricsError(f"reference must be 'test' or 'train', got {reference!r}")
    limit = 10_000 if reference == "test" else 60_000
    count = min(len(images), limit) if count is None else count
    if not 2 <= count <= min(len(images), limit):
        raise MetricsError(f"count must be between 2 and min(number of images, size of the {reference} split) = "
                           f"{min(len(images), limit)}, got {count}")
    device = get_device(device)
    images = to_unit_range(images[:count], value_range)
    fake_features, fake_probabilities = _classify(images, (0, 1), 500, device, progress, "classifier")
    real_features = _reference_features(reference, count, device, progress)
    precision, recall = precision_recall(real_features, fake_features, k=min(k, count - 1))
    if train_images is None:
        if "train" not in _TRAINING_IMAGES:  # 60 000 x 784 floats: read once, reused by every evaluation
            _TRAINING_IMAGES["train"] = reference_images("train")[0]
        train_images = _TRAINING_IMAGES["train"]
    distances = nearest_neighbour_distances(images, train_images, (0, 1), device=device, progress=progress,
                                            train_value_range=train_value_range)
    scores = {
        "fd_mnist": frechet_distance(real_features, fake_features),
        "is_mnist": inception_score_from_probabilities(fake_probabilities),
        "precision": precision,
        "recall": recall,
        "nn_distance_mean": float(distances.mean()),
        "count": count,
    }
    if labels is not None:
        labels = torch.as_tensor(labels)[:count]
        if len(labels) != count:
            raise MetricsError(f"got {len(labels)} labels for {count} images")
        scores["class_accuracy"] = float((fake_probabilities.argmax(dim=1) == labels.cpu()).float().mean())
    return scores
