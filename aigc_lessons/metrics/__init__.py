"""Sample-quality metrics for MNIST generators, computed with the book's reference classifier.

Every metric here looks at images through :class:`~aigc_lessons.models.classifier.MnistClassifier`
(pretrained entry ``classifier_mnist``, over 99% test accuracy):

* ``frechet_distance`` of penultimate features (128-D): the Fréchet distance
  between two Gaussians fitted to real and generated features (Heusel et al., 2017).
  The book reports it as **FD (MNIST classifier features)**, key ``fd_mnist``.
  It is *not* FID and its values cannot be compared with published FID numbers:
  FID uses the 2048-D pool features of an Inception-v3 network trained on ImageNet,
  a different feature space with a different scale; FD numbers are only comparable
  with other FD numbers computed by this same classifier, on the same number of images.
* ``inception_score``: the Inception Score formula of Salimans et al. (2016),
  ``exp(E_x KL(p(y|x) || p(y)))``, with the MNIST classifier in place of Inception
  (key ``is_mnist``; at most 10, the number of classes).
* ``precision_recall``: k-nearest-neighbour manifold precision and recall
  (Kynkäänniemi et al., 2019): which fraction of generated samples fall inside the
  real data's manifold (quality) and which fraction of real samples fall inside the
  generated manifold (coverage).
* ``class_accuracy``: the fraction of conditional samples the classifier labels as requested.
* ``nearest_neighbour_distances``: pixel distance from each sample to its closest
  training image (a memorization check).

``evaluate_images`` computes them all at once; the command-line tool
(``aigc-lessons eval``) and the evaluation chapter use it.

The package has one module per concern, and every public name is re-exported
here (``from aigc_lessons.metrics import evaluate_images``):

* :mod:`~aigc_lessons.metrics.quality`: the reference classifier and the sample-quality metrics above;
* :mod:`~aigc_lessons.metrics.images`: PSNR and SSIM of image pairs, ROC/AUC of anomaly scores;
* :mod:`~aigc_lessons.metrics.table`: every pretrained generator sampled (its class's
  ``sample_for_evaluation``) and scored side by side; ``python -m aigc_lessons.metrics
  --count 10000 --out FILE`` writes the evaluation chapter's table.

Example:
    >>> import torch
    >>> from aigc_lessons.metrics import frechet_distance
    >>> a, b = torch.randn(500, 4), torch.randn(500, 4) + 1.0
    >>> round(frechet_distance(a, a), 6)
    0.0
    >>> 3.0 < frechet_distance(a, b) < 5.0  # the means differ by 1 in 4 dimensions
    True
"""

from __future__ import annotations

from .quality import (
    IMAGE_SHAPE,
    REFERENCE_CLASSIFIER,
    MetricsError,
    class_accuracy,
    classifier_features,
    classifier_probabilities,
    evaluate_images,
    frechet_distance,
    gaussian_frechet_distance,
    inception_score,
    inception_score_from_probabilities,
    load_classifier,
    nearest_neighbour_distances,
    precision_recall,
    reference_images,
    to_unit_range,
)
from .images import (
    psnr,
    roc_auc,
    ssim,
)
from .table import (
    format_results,
    generator_names,
    main,
    results_table,
    sample_pretrained,
)

__all__ = [
    "IMAGE_SHAPE",
    "MetricsError",
    "REFERENCE_CLASSIFIER",
    "class_accuracy",
    "classifier_features",
    "classifier_probabilities",
    "evaluate_images",
    "format_results",
    "frechet_distance",
    "gaussian_frechet_distance",
    "generator_names",
    "inception_score",
    "inception_score_from_probabilities",
    "load_classifier",
    "main",
    "nearest_neighbour_distances",
    "precision_recall",
    "psnr",
    "reference_images",
    "results_table",
    "roc_auc",
    "sample_pretrained",
    "ssim",
    "to_unit_range",
]
