"""Metrics of image pairs (PSNR, SSIM) and of anomaly scores (ROC and its AUC)."""

from __future__ import annotations

import numpy as np
import torch

from .quality import MetricsError, _scaled_to_unit


def _paired_unit_images(outputs: torch.Tensor, targets: torch.Tensor, value_range: tuple[float, float]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Check two batches of single-channel images of equal shape; return both as float64 arrays in [0, 1]."""
    outputs, targets = torch.as_tensor(outputs), torch.as_tensor(targets)
    if outputs.dim() == 3:
        outputs, targets = outputs.unsqueeze(1), targets.unsqueeze(1) if targets.dim() == 3 else targets
    if outputs.shape != targets.shape or outputs.dim() != 4 or outputs.shape[1] != 1 or len(outputs) == 0:
        raise MetricsError(f"outputs and targets must be non-empty batches of the same shape (N, 1, H, W); "
                           f"got {tuple(outputs.shape)} and {tuple(targets.shape)}")
    return tuple(_scaled_to_unit(images.detach().cpu(), value_range, f"the {name}")[:, 0].double().numpy()
                 for name, images in (("outputs", outputs), ("targets", targets)))


def psnr(outputs: torch.Tensor, targets: torch.Tensor, value_range: tuple[float, float] = (0, 1)) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each output against its target, shape ``(N,)``.

    ``PSNR = 10 log10(1 / MSE)`` with both images mapped to [0, 1]. Higher is better; identical
    images give ``inf``. Average the per-image values (as super-resolution papers do), not the MSEs.

    Example:
        >>> target = torch.zeros(1, 1, 4, 4)
        >>> psnr(target + 0.1, target).round(decimals=3)  # MSE 0.01 -> 20 dB
        tensor([20.], dtype=torch.float64)
    """
    from skimage.metrics import peak_signal_noise_ratio

    outputs, targets = _paired_unit_images(outputs, targets, value_range)
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(target, output, data_range=1.0) for output, target in zip(outputs, targets)]
    return torch.tensor(values, dtype=torch.float64)


def ssim(outputs: torch.Tensor, targets: torch.Tensor, value_range: tuple[float, float] = (0, 1)) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of each output with its target, shape ``(N,)``.

    Computed by :func:`skimage.metrics.structural_similarity` with the paper's settings:
    an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1. Values lie in
    [-1, 1]; 1 means identical. Images need at least 11 pixels a side (MNIST's 28 is fine).

    Example:
        >>> target = torch.rand(2, 1, 28, 28)
        >>> ssim(target, target)
        tensor([1., 1.], dtype=torch.float64)
    """
    from skimage.metrics import structural_similarity

    outputs, targets = _paired_unit_images(outputs, targets, value_range)
    if min(outputs.shape[1:]) < 11:
        raise MetricsError(f"SSIM needs images at least 11 pixels a side, got {outputs.shape[1:]}")
    values = [structural_similarity(target, output, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
              for output, target in zip(outputs, targets)]
    return torch.tensor(values, dtype=torch.float64)


def roc_auc(scores, is_anomaly) -> tuple[float, np.ndarray, np.ndarray]:
    """Area under the ROC curve of anomaly ``scores`` (higher = more anomalous), with the curve.

    ``is_anomaly`` holds 1 (or True) for the positives. Returns ``(auc, false_positive_rate,
    true_positive_rate)`` from :func:`sklearn.metrics.roc_curve`. An AUC of 0.5 is chance;
    1.0 ranks every anomaly above every normal example.

    Example:
        >>> auc, fpr, tpr = roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        >>> auc
        0.75
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.asarray(torch.as_tensor(scores).detach().cpu(), dtype=np.float64).ravel()
    labels = np.asarray(torch.as_tensor(is_anomaly).detach().cpu()).astype(int).ravel()
    if scores.shape != labels.shape:
        raise MetricsError(f"need one label per score; got {scores.shape[0]} scores and {labels.shape[0]} labels")
    if not np.isfinite(scores).all():
        raise MetricsError("the anomaly scores contain NaN or infinite values")
    if set(np.unique(labels)) != {0, 1}:
        raise MetricsError("the labels must contain both normal (0) and anomalous (1) examples")
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
    return float(roc_auc_score(labels, scores)), false_positive_rate, true_positive_rate
