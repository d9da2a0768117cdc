"""Detecting, marking and labelling generated images (``book/responsible/provenance.ipynb``).

* :mod:`~aigc_lessons.provenance.detection`: a small CNN that tells real MNIST digits
  from a shipped generator's, its ROC AUC, and the cross-generator matrix;
* :mod:`~aigc_lessons.provenance.watermark`: a keyed spread-spectrum watermark, detected by normalised
  correlation (with the image or its high-pass residual) above a threshold for a target
  false-positive rate, and the attacks (noise, blur, crop, shift, JPEG);
* ``python -m aigc_lessons.provenance study --out book/responsible/provenance_full.json``
  writes the chapter's record (:mod:`~aigc_lessons.provenance.study`).

Importing this package is cheap: the submodules load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "detection": ("GENERATORS", "DDPM_SAMPLING_STEPS", "DetectorCNN", "DetectorConfig", "check_images",
                  "check_generator", "generated_digits", "real_digits", "train_detector", "detector_scores",
                  "detection_auc", "cross_generator_study"),
    "watermark": ("DETECTORS", "HIGHPASS_SIGMA", "ATTACKS", "as_images", "watermark_pattern", "embed_watermark",
                  "normalised_correlation", "watermark_scores", "gaussian_threshold", "calibrate_threshold",
                  "gaussian_noise", "gaussian_blur", "crop_and_pad", "shift", "jpeg", "psnr",
                  "watermark_study", "amplitude_sweep"),
    "study": ("full_study", "FULL_SETTING", "FAST_SETTING"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
