"""Anomaly (novelty) detection with a VAE: train on nine MNIST digits, score the tenth.

The setting of the applications chapter "Anomaly detection with a VAE": a VAE
learns ``p_theta(x)`` from the training images of every digit except one (the
*held-out* digit); on the 10 000 test digits, the held-out digit is the positive
(anomalous) class and every other digit is normal. Each score below is larger
for an image the model finds less plausible, and is judged by the area under
the ROC curve (:func:`aigc_lessons.metrics.roc_auc`).

Scores (per image, in nats unless stated; higher = more anomalous):

* :func:`reconstruction_score`: ``-log p_theta(x | z = mu_phi(x))``, the Bernoulli
  reconstruction error at the encoder mean;
* :func:`negative_elbo_score`: ``-ELBO(x)``, reconstruction averaged over samples
  ``z ~ q_phi(z | x)`` plus ``KL(q_phi(z | x) || p(z))``;
* :func:`iwae_score`: minus the ``k``-sample importance-weighted bound, an estimate of
  ``-log p_theta(x)`` (Burda, Grosse and Salakhutdinov, 2016);
* :func:`complexity_corrected_score`: the IWAE score in bits minus the length of the
  image's PNG file, the input-complexity correction of Serra et al. (2020);
* :func:`nearest_neighbour_score`: the pixel distance to the nearest normal training
  image, a baseline with no generative model.

One command runs the experiment for every held-out digit and writes the table the
chapter shows::

    python -m aigc_lessons.anomaly --out book/applications/anomaly_results.json
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import platform
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from .image_tasks import ink  # one ink for the book; the anomaly chapter calls it anomaly.ink
from .losses.vae import bernoulli_log_likelihood, importance_weighted_log_likelihood, kl_normal_standard

# The book's setting (the pretrained entry vae_anomaly_mnist and the all-digit table use it).
MODEL_KWARGS = {"latent_dim": 20, "hidden": [256, 256], "likelihood": "bernoulli"}
EPOCHS = 8
ELBO_SAMPLES = 10
IWAE_K = 50
SCORE_NAMES = ("reconstruction", "negative_elbo", "iwae", "complexity_corrected", "nearest_neighbour")
SCORE_LABELS = {
    "reconstruction": "reconstruction error",
    "negative_elbo": "negative ELBO",
    "iwae": f"negative IWAE bound (k={IWAE_K})",
    "complexity_corrected": "IWAE bits minus PNG bits",
    "nearest_neighbour": "nearest-neighbour distance",
}


@dataclass
class AnomalySplit:
    """Training images of the normal digits, and test images with their anomaly labels."""

    digit: int
    train_images: torch.Tensor   # (N_train, 1, 28, 28) in [0, 1], no image of `digit`
    test_images: torch.Tensor    # (N_test, 1, 28, 28) in [0, 1], every digit
    test_labels: torch.Tensor    # (N_test,) digits 0..9
    is_anomaly: torch.Tensor     # (N_test,) 1 where test_labels == digit, else 0


def _check_digit(digit: int) -> int:
    if isinstance(digit, bool) or not isinstance(digit, numbers.Integral) or not 0 <= digit <= 9:
        raise ValueError(f"the held-out digit must be an integer 0..9, got {digit!r}")
    return int(digit)


def _check_labels(images: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"{name} images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if labels.shape != (len(images),):
        raise ValueError(f"{name} labels must have shape ({len(images)},), one per image, got {tuple(labels.shape)}")


def without_digit(images: torch.Tensor, labels: torch.Tensor, digit: int) -> torch.Tensor:
    """The images whose label is not ``digit`` (the normal training set).

    Example:
        >>> images, labels = torch.zeros(4, 1, 28, 28), torch.tensor([3, 1, 3, 0])
        >>> without_digit(images, labels, 3).shape
        torch.Size([2, 1, 28, 28])
    """
    _check_digit(digit)
    _check_labels(images, labels, "training")
    return images[labels != digit]


def anomaly_labels(labels: torch.Tensor, digit: int) -> torch.Tensor:
    """1 for the held-out ``digit`` (the anomalies), 0 for every other digit; int64, shape ``(N,)``.

    Example:
        >>> anomaly_labels(torch.tensor([7, 2, 7, 0]), 7).tolist()
        [1, 0, 1, 0]
    """
    _check_digit(digit)
    return (labels == digit).long()


def held_out_split(digit: int, train, test) -> AnomalySplit:
    """Build the experiment for one held-out digit from MNIST splits (``load_mnist`` results).

    The training set keeps every training image except those of ``digit``; the
    test set is the whole test split, with ``digit`` as the positive class.
    """
    _check_digit(digit)
    _check_labels(test.images, test.labels, "test")
    return AnomalySplit(digit, without_digit(train.images, train.labels, digit), test.images, test.labels,
                        anomaly_labels(test.labels, digit))


# --------------------------------------------------------------------------- scores


def _batched(function, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([function(images[start:start + batch_size]) for start in range(0, len(images), batch_size)])


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruction_score(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``-log p_theta(x | z = mu_phi(x))`` per image: the Bernoulli reconstruction error at the encoder mean.

    ``images`` are in ``[0, 1]`` (binarized for a true probability). Returns a CPU tensor ``(N,)``.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> reconstruction_score(VAE(latent_dim=2, hidden=(8,)), torch.rand(3, 1, 28, 28)).shape
        torch.Size([3])
    """
    model.eval()
    device = _model_device(model)

    def score(x):
        x = x.to(device)
        mu, _ = model.encode(x)
        return -bernoulli_log_likelihood(model.decode(mu), x).cpu()

    return _batched(score, images, batch_size)


@torch.no_grad()
def negative_elbo_score(model: nn.Module, images: torch.Tensor, samples: int = ELBO_SAMPLES, seed: int = 0,
                        batch_size: int = 1000) -> torch.Tensor:
    """``-ELBO(x)`` per image: ``E_q[-log p(x | z)]`` (``samples`` draws of ``z ~ q(z | x)``) + ``KL(q || p(z))``.

    Averaging several draws makes the score less noisy than the one-sample
    training loss; its expectation is the same. Returns a CPU tensor ``(N,)``.
    """
    if samples < 1:
        raise ValueError(f"samples must be a positive number of draws, got {samples}")
    model.eval()
    device = _model_device(model)
    generator = torch.Generator().manual_seed(seed)

    def score(x):
        x = x.to(device)
        mu, logvar = model.encode(x)
        reconstruction = torch.zeros(len(x), device=device)
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator).to(device)
            z = mu + (0.5 * logvar).exp() * eps
            reconstruction -= bernoulli_log_likelihood(model.decode(z), x)
        return (reconstruction / samples + kl_normal_standard(mu, logvar)).cpu()

    return _batched(score, images, batch_size)


@torch.no_grad()
def iwae_score(model: nn.Module, images: torch.Tensor, k: int = IWAE_K, seed: int = 0,
               batch_size: int = 500) -> torch.Tensor:
    """Minus the ``k``-sample importance-weighted bound per image: an estimate of ``-log p_theta(x)``.

    ``k = 1`` is a one-sample negative ELBO; the estimate decreases towards
    ``-log p_theta(x)`` as ``k`` grows. Returns a CPU tensor ``(N,)``.
    """
    model.eval()
    device = _model_device(model)
    generator = torch.Generator().manual_seed(seed)
    return _batched(lambda x: -importance_weighted_log_likelihood(model, x.to(device), k, generator=generator).cpu(),
                    images, batch_size)


def png_bits(images: torch.Tensor) -> torch.Tensor:
    """Length in bits of each image saved as a PNG file (8-bit grey, maximum compression), shape ``(N,)``.

    A generic lossless compressor's code length ``L(x)`` is ``-log2 p_0(x)`` for the
    distribution ``p_0`` that the compressor implicitly assumes; it measures how
    *complex* an image is (Serra et al., 2020), with no knowledge of digits.
    The exact numbers depend a little on the zlib version under Pillow.

    Example:
        >>> bits = png_bits(torch.stack([torch.zeros(1, 28, 28), torch.rand(1, 28, 28).round()]))
        >>> bool(bits[0] < bits[1])  # a blank image compresses better than noise
        True
    """
    import io

    import numpy as np
    from PIL import Image

    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    pixels = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    lengths = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image[0]), mode="L").save(buffer, format="PNG", optimize=True)
        lengths.append(8 * len(buffer.getvalue()))
    return torch.tensor(lengths, dtype=torch.float32)


def complexity_corrected_score(negative_log_likelihood: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``S(x) = -log2 p_theta(x) - L(x)`` in bits: the model's code length minus the PNG code length.

    ``negative_log_likelihood`` is ``-log p_theta(x)`` in nats (for example :func:`iwae_score`);
    ``images`` are the same images (as scored by the model). ``S(x) = log2(p_0(x) / p_theta(x))``
    is a likelihood ratio against the compressor's generic model ``p_0``: large when the VAE
    explains ``x`` *worse* than a compressor that knows nothing about digits does.
    """
    if negative_log_likelihood.shape != (len(images),):
        raise ValueError(f"need one negative log-likelihood per image: got {tuple(negative_log_likelihood.shape)} "
                         f"for {len(images)} images")
    return negative_log_likelihood.cpu() / math.log(2) - png_bits(images)


def nearest_neighbour_score(images: torch.Tensor, train_images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Euclidean pixel distance from each image to its nearest training image (both in ``[0, 1]``), shape ``(N,)``.

    Example:
        >>> train = torch.rand(20, 1, 28, 28)
        >>> nearest_neighbour_score(train[:2], train).tolist()
        [0.0, 0.0]
    """
    from .metrics import nearest_neighbour_distances

    return nearest_neighbour_distances(images, train_images, value_range=(0, 1), batch_size=batch_size,
                                       device=images.device)


def nearest_distances_by_digit(images: torch.Tensor, train_images: torch.Tensor, train_labels: torch.Tensor
                               ) -> torch.Tensor:
    """Distance from each image to the nearest training image *of each digit*, shape ``(N, 10)``.

    One pass over the training set serves every held-out digit: the nearest
    *normal* image when digit ``k`` is held out is the minimum over the other nine
    columns (see :func:`nearest_neighbour_from_table`).
    """
    _check_labels(train_images, train_labels, "training")
    columns = [nearest_neighbour_score(images, train_images[train_labels == digit]) for digit in range(10)]
    return torch.stack(columns, dim=1)


def nearest_neighbour_from_table(distances_by_digit: torch.Tensor, digit: int) -> torch.Tensor:
    """The nearest-neighbour score with ``digit`` held out: the minimum over the other nine columns.

    Example:
        >>> table = torch.tensor([[0.5, 3.0, 2.0] + [9.0] * 7])
        >>> nearest_neighbour_from_table(table, 0).tolist()
        [2.0]
    """
    _check_digit(digit)
    keep = [column for column in range(10) if column != digit]
    return distances_by_digit[:, keep].min(dim=1).values


def score_images(model: nn.Module, binary_images: torch.Tensor, *, iwae_k: int = IWAE_K,
                 elbo_samples: int = ELBO_SAMPLES, seed: int = 0) -> dict[str, torch.Tensor]:
    """The VAE's anomaly scores for (binarized) images: a dict name -> ``(N,)`` CPU tensor.

    Holds ``reconstruction``, ``negative_elbo``, ``iwae`` (nats) and ``complexity_corrected``
    (bits); add the model-free ``nearest_neighbour`` score with :func:`nearest_neighbour_score`.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> scores = score_images(VAE(latent_dim=2, hidden=(8,)), torch.rand(3, 1, 28, 28).round(), iwae_k=2)
        >>> sorted(scores), scores["iwae"].shape
        (['complexity_corrected', 'iwae', 'negative_elbo', 'reconstruction'], torch.Size([3]))
    """
    scores = {
        "reconstruction": reconstruction_score(model, binary_images),
        "negative_elbo": negative_elbo_score(model, binary_images, samples=elbo_samples, seed=seed),
        "iwae": iwae_score(model, binary_images, k=iwae_k, seed=seed),
    }
    scores["complexity_corrected"] = complexity_corrected_score(scores["iwae"], binary_images)
    return scores


def auc_table(scores: dict[str, torch.Tensor], is_anomaly: torch.Tensor) -> dict[str, float]:
    """AUC of every score against the anomaly labels, rounded to 4 decimals.

    Example:
        >>> auc_table({"good": torch.tensor([0.1, 0.9]), "bad": torch.tensor([0.9, 0.1])}, torch.tensor([0, 1]))
        {'good': 1.0, 'bad': 0.0}
    """
    from .metrics import roc_auc

    return {name: round(roc_auc(values, is_anomaly)[0], 4) for name, values in scores.items()}


# --------------------------------------------------------------------------- training and the experiment


def train_anomaly_vae(train_images: torch.Tensor, epochs: int = EPOCHS, seed: int = 0, device="cpu",
                      progress: bool = False, model_kwargs: dict | None = None):
    """Train the chapter's VAE on the normal training images (dynamic binarization, Adam 1e-3, batch 128).

    Returns ``(model, history, config)``; the model is in eval mode.
    """
    from .models import VAE
    from .train import VaeConfig, train_vae

    kwargs = dict(MODEL_KWARGS if model_kwargs is None else model_kwargs)
    torch.manual_seed(seed)
    model = VAE(**{**kwargs, "hidden": tuple(kwargs["hidden"])})
    config = VaeConfig(epochs=epochs, batch_size=128, lr=1e-3, binarize=True, seed=seed)
    history = train_vae(model, train_images, config, device=device, progress=progress)
    model.eval()
    return model, history, config


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def run_held_out_digit(digit: int, train, test, *, epochs: int = EPOCHS, iwae_k: int = IWAE_K, device="cpu",
                       progress: bool = False, seed: int = 0, distances_by_digit: torch.Tensor | None = None
                       ) -> tuple[nn.Module, dict]:
    """Train on every digit but ``digit``, score the test set; return ``(model, row)`` with AUCs and timings.

    ``distances_by_digit`` (from :func:`nearest_distances_by_digit`) saves the nearest-neighbour
    search when several digits are run; without it the search is done here.
    """
    from .train import binarize

    split = held_out_split(digit, train, test)
    started = time.perf_counter()
    model, history, config = train_anomaly_vae(split.train_images, epochs, seed, device, progress)
    training_seconds = time.perf_counter() - started
    binary = binarize(split.test_images, seed=0)
    started = time.perf_counter()
    scores = score_images(model, binary, iwae_k=iwae_k, seed=seed)
    if distances_by_digit is None:
        scores["nearest_neighbour"] = nearest_neighbour_score(split.test_images, split.train_images)
    else:
        scores["nearest_neighbour"] = nearest_neighbour_from_table(distances_by_digit, digit)
    scoring_seconds = time.perf_counter() - started
    anomalies = split.is_anomaly.bool().cpu()
    ink_counts = ink(binary)
    row = {
        "held_out_digit": digit,
        "train_images": len(split.train_images),
        "test_images": len(split.test_images),
        "test_anomalies": int(anomalies.sum()),
        "auc": auc_table(scores, split.is_anomaly),
        "mean_score_normal": {name: round(float(v[~anomalies].mean()), 2) for name, v in scores.items()},
        "mean_score_anomalous": {name: round(float(v[anomalies].mean()), 2) for name, v in scores.items()},
        "mean_ink_normal": round(float(ink_counts[~anomalies].mean()), 1),
        "mean_ink_anomalous": round(float(ink_counts[anomalies].mean()), 1),
        "correlation_iwae_ink": round(_correlation(scores["iwae"], ink_counts), 3),
        "final_training_loss": round(float(history.rows[-1]["loss"]), 2),
        "training_seconds": round(training_seconds, 1),
        "scoring_seconds": round(scoring_seconds, 1),
    }
    return model, row


def settings(epochs: int = EPOCHS, iwae_k: int = IWAE_K, train_subset=None, test_subset=None) -> dict:
    """The experiment's settings, as recorded in the results file and the model card."""
    return {
        "model": "VAE " + "-".join(["784", *map(str, MODEL_KWARGS["hidden"]), str(MODEL_KWARGS["latent_dim"])])
                 + " (aigc_lessons.models.VAE, Bernoulli decoder)",
        "model_kwargs": MODEL_KWARGS,
        "training": {"epochs": epochs, "batch_size": 128, "lr": 1e-3, "optimizer": "Adam", "seed": 0,
                     "data": "MNIST training images of the nine normal digits, dynamically binarized"},
        "test": "MNIST test images, binarized once with seed 0 for the VAE scores (grey levels for the "
                "nearest-neighbour distance); the held-out digit is the positive (anomalous) class",
        "train_subset": train_subset, "test_subset": test_subset,
        "scores": {name: SCORE_LABELS[name] for name in SCORE_NAMES},
        "elbo_samples": ELBO_SAMPLES, "iwae_k": iwae_k,
    }


def run_all_digits(digits=range(10), *, epochs: int = EPOCHS, iwae_k: int = IWAE_K, train_subset=None,
                   test_subset=None, device="cpu", progress: bool = True) -> dict:
    """Run :func:`run_held_out_digit` for each digit; return the settings, one row per digit, the mean AUCs."""
    from .data import load_mnist

    train = load_mnist("train", device=device, subset=train_subset)
    test = load_mnist("test", device=device, subset=test_subset)
    started = time.perf_counter()
    distances = nearest_distances_by_digit(test.images, train.images, train.labels)
    search_seconds = time.perf_counter() - started
    rows = []
    for digit in digits:
        _, row = run_held_out_digit(int(digit), train, test, epochs=epochs, iwae_k=iwae_k, device=device,
                                    distances_by_digit=distances)
        rows.append(row)
        if progress:
            aucs = "  ".join(f"{name} {value:.3f}" for name, value in row["auc"].items())
            print(f"held-out {digit}: {aucs}  ({row['training_seconds'] + row['scoring_seconds']:.0f} s)", flush=True)
    return {
        "settings": settings(epochs, iwae_k, train_subset, test_subset),
        "rows": rows,
        "mean_auc": {name: round(sum(row["auc"][name] for row in rows) / len(rows), 4) for name in SCORE_NAMES},
        "nearest_neighbour_search_seconds": round(search_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s), shared machine",
        "torch": torch.__version__,
        "command": "OMP_NUM_THREADS=1 python -m aigc_lessons.anomaly --out book/applications/anomaly_results.json",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="VAE anomaly detection on MNIST, one held-out digit at a time.")
    parser.add_argument("--out", required=True, help="JSON file for the results table")
    parser.add_argument("--digits", type=int, nargs="*", default=list(range(10)))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--iwae-k", type=int, default=IWAE_K)
    parser.add_argument("--fast", action="store_true",
                        help="a quick check: 1 epoch, 2048 training and 1000 test images")
    args = parser.parse_args(argv)
    subsets = {"train_subset": 2048, "test_subset": 1000} if args.fast else {}
    results = run_all_digits(args.digits, epochs=1 if args.fast else args.epochs, iwae_k=args.iwae_k, **subsets)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    print(f"wrote {args.out}: mean AUC " + ", ".join(f"{k} {v:.3f}" for k, v in results["mean_auc"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
