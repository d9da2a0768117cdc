"""A keyed spread-spectrum watermark for digits, its detector, and the attacks it meets.

The scheme of Cox et al. (1997) in its simplest form. A secret integer key seeds a
pseudo-random pattern ``p`` of ±1 values, one per pixel. Marking adds
``amplitude * p`` and clips the result to [0, 1]; detection computes the *normalised
correlation*

    rho(y, p) = <y - mean(y), p - mean(p)> / (||y - mean(y)|| ||p - mean(p)||)

of the image (or of its high-pass residual, below) with the pattern and says "marked"
above a threshold. On an unmarked image the pattern is independent of the content, so
rho is about ``N(0, 1/n)`` for ``n = 784`` pixels: the threshold for a false-positive
rate ``f`` is near ``Phi^-1(1 - f) / sqrt(n)`` (:func:`gaussian_threshold`), and
:func:`calibrate_threshold` measures it on unmarked images instead.

The digit itself is the detector's noise: its pixels enter the correlation too. The
*high-pass* detector (``highpass=0.7``) first subtracts a Gaussian blur of the image,
which removes most of the digit's smooth strokes and little of the white pattern.

Images are ``(N, 1, 28, 28)`` or ``(N, 28, 28)`` tensors or arrays in [0, 1]; the
functions return NumPy arrays.
"""

from __future__ import annotations

import io
import math
import numbers

import numpy as np

SIZE = 28
HIGHPASS_SIGMA = 0.7
"""The blur (in pixels) that the high-pass detector subtracts; chosen on the calibration digits."""
DETECTORS = {"plain": None, "highpass": HIGHPASS_SIGMA}
"""The two detectors of the chapter's table, by name: their ``highpass`` argument."""


def _check_key(key) -> int:
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise ValueError(f"the key must be an integer (it seeds the pattern), got {type(key).__name__} {key!r}")
    if key < 0:
        raise ValueError(f"the key must be a non-negative integer, got {key}")
    return int(key)


def as_images(images, name: str = "images") -> np.ndarray:
    """``images`` as a float64 array ``(N, 28, 28)``; a ValueError unless every value is in [0, 1].

    Example:
        >>> as_images(np.zeros((2, 1, 28, 28))).shape
        (2, 28, 28)
        >>> as_images(np.full((1, 28, 28), 255.0))
        Traceback (most recent call last):
        ...
        ValueError: images must lie in [0, 1], got values from 255 to 255 (divide 8-bit images by 255)
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"{name} must have shape (N, 1, 28, 28) or (N, 28, 28), got {np.shape(images)}")
    if array.size and (not np.isfinite(array).all() or array.min() < 0 or array.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1], got values from {array.min():.4g} to {array.max():.4g} "
                         "(divide 8-bit images by 255)")
    return array


def watermark_pattern(key: int) -> np.ndarray:
    """The key's ±1 pattern, ``(28, 28)``: the same key always gives the same pattern.

    Example:
        >>> pattern = watermark_pattern(42)
        >>> pattern.shape, sorted(set(pattern.ravel().tolist()))
        ((28, 28), [-1.0, 1.0])
        >>> bool((watermark_pattern(42) == pattern).all()), bool((watermark_pattern(43) == pattern).all())
        (True, False)
    """
    key = _check_key(key)
    return (np.random.default_rng(key).integers(0, 2, size=(SIZE, SIZE)) * 2.0 - 1.0)


def _check_amplitude(amplitude) -> float:
    if isinstance(amplitude, bool) or not isinstance(amplitude, numbers.Real) or not amplitude > 0:
        raise ValueError(f"amplitude must be a number > 0 (the change of a pixel, in [0, 1] units), "
                         f"got {amplitude!r}")
    return float(amplitude)


def embed_watermark(images, key: int, amplitude: float = 0.03) -> np.ndarray:
    """The images plus ``amplitude`` times the key's pattern, clipped to [0, 1]: ``(N, 28, 28)``.

    0.03 is about 8 of 255 grey levels. Clipping removes the negative half of the pattern on
    black background pixels (and the positive half on white ones).

    Example:
        >>> marked = embed_watermark(np.full((1, 28, 28), 0.5), key=7, amplitude=0.1)
        >>> sorted(set(np.round(marked.ravel(), 6).tolist()))
        [0.4, 0.6]
    """
    images = as_images(images)
    amplitude = _check_amplitude(amplitude)
    return np.clip(images + amplitude * watermark_pattern(key), 0.0, 1.0)


def normalised_correlation(values: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """rho of each row of ``values`` ``(N, n)`` with ``pattern`` ``(n,)``, in [-1, 1]; 0 for a flat row.

    Example:
        >>> pattern = np.array([1.0, -1.0, 1.0, -1.0])
        >>> normalised_correlation(np.array([[3.0, 1.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0]]), pattern)
        array([1., 0.])
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    pattern = np.asarray(pattern, dtype=np.float64).ravel()
    centred = values - values.mean(axis=1, keepdims=True)
    reference = pattern - pattern.mean()
    norms = np.linalg.norm(centred, axis=1) * np.linalg.norm(reference)
    return np.divide(centred @ reference, norms, out=np.zeros(len(values)), where=norms > 0)


def watermark_scores(images, key: int, highpass: float | None = None) -> np.ndarray:
    """The detector's statistic, ``(N,)``: rho of each image with the key's pattern.

    ``highpass`` (a blur in pixels, e.g. :data:`HIGHPASS_SIGMA`) correlates the residual
    ``image - blur(image)`` instead, which removes most of the digit and keeps the pattern.
    """
    images = as_images(images)
    if highpass is not None:
        from scipy.ndimage import gaussian_filter

        if not highpass > 0:
            raise ValueError(f"highpass must be None or a blur > 0 pixels, got {highpass!r}")
        images = images - gaussian_filter(images, sigma=(0, highpass, highpass), mode="constant")
    return normalised_correlation(images.reshape(len(images), -1), watermark_pattern(key).ravel())


def _check_rate(false_positive_rate: float) -> float:
    if isinstance(false_positive_rate, bool) or not isinstance(false_positive_rate, numbers.Real) \
            or not 0 < false_positive_rate < 1:
        raise ValueError(f"the target false-positive rate must be a number in (0, 1), got {false_positive_rate!r}")
    return float(false_positive_rate)


def gaussian_threshold(false_positive_rate: float, coefficients: int) -> float:
    """The threshold if rho on unmarked images were ``N(0, 1/n)``: ``Phi^-1(1 - f) / sqrt(n)``.

    Example:
        >>> round(gaussian_threshold(0.01, 784), 4)
        0.0831
    """
    from statistics import NormalDist

    _check_rate(false_positive_rate)
    return NormalDist().inv_cdf(1 - false_positive_rate) / math.sqrt(coefficients)


def calibrate_threshold(unmarked_scores, false_positive_rate: float = 0.01) -> float:
    """The smallest threshold that at most ``false_positive_rate`` of ``unmarked_scores`` exceed.

    "Marked" means score > threshold, so the threshold is the ``ceil((1 - f) m)``-th smallest
    of the ``m`` unmarked scores. Needs ``m >= 1 / f`` scores to mean anything.

    Example:
        >>> calibrate_threshold(np.arange(100) / 100, 0.05)
        0.94
    """
    rate = _check_rate(false_positive_rate)
    scores = np.sort(np.asarray(unmarked_scores, dtype=np.float64).ravel())
    if len(scores) < math.ceil(1 / rate):
        raise ValueError(f"{len(scores)} unmarked scores cannot calibrate a false-positive rate of {rate}: "
                         f"use at least {math.ceil(1 / rate)}")
    rank = math.ceil((1 - rate) * len(scores) - 1e-9)
    return float(scores[rank - 1])


# The attacks: each takes images (N, 28, 28) in [0, 1] and returns the same shape in [0, 1].

def gaussian_noise(images, sigma: float, seed: int = 0) -> np.ndarray:
    """Add ``N(0, sigma^2)`` to each pixel and clip."""
    images = as_images(images)
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    return np.clip(images + np.random.default_rng(seed).normal(0, sigma, images.shape), 0, 1)


def gaussian_blur(images, sigma: float) -> np.ndarray:
    """Blur each image with a Gaussian of standard deviation ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    images = as_images(images)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    return np.clip(gaussian_filter(images, sigma=(0, sigma, sigma), mode="constant"), 0, 1)


def crop_and_pad(images, border: int) -> np.ndarray:
    """Crop ``border`` pixels from each side and pad back with black, in place (no shift)."""
    images = as_images(images)
    if not isinstance(border, int) or not 0 <= border < SIZE // 2:
        raise ValueError(f"border must be an integer in 0..{SIZE // 2 - 1}, got {border!r}")
    kept = np.zeros_like(images)
    kept[:, border:SIZE - border, border:SIZE - border] = images[:, border:SIZE - border, border:SIZE - border]
    return kept


def shift(images, pixels: int) -> np.ndarray:
    """Move each image ``pixels`` to the right (black enters on the left): desynchronises the pattern."""
    images = as_images(images)
    if not isinstance(pixels, int) or not 0 <= pixels < SIZE:
        raise ValueError(f"pixels must be an integer in 0..{SIZE - 1}, got {pixels!r}")
    moved = np.zeros_like(images)
    moved[:, :, pixels:] = images[:, :, :SIZE - pixels]
    return moved


def jpeg(images, quality: int) -> np.ndarray:
    """Round-trip each image through Pillow's JPEG encoder at ``quality`` (1..95), 8-bit grey."""
    from PIL import Image

    images = as_images(images)
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be an integer in 1..95 (Pillow's useful range), got {quality!r}")
    decoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(buffer, "JPEG", quality=int(quality))
        buffer.seek(0)
        decoded.append(np.asarray(Image.open(buffer), dtype=np.float64) / 255)
    return np.stack(decoded) if decoded else images.copy()


ATTACKS = {
    "clean": lambda images: as_images(images),
    "noise_sigma_0.02": lambda images: gaussian_noise(images, 0.02),
    "noise_sigma_0.05": lambda images: gaussian_noise(images, 0.05),
    "blur_sigma_0.5": lambda images: gaussian_blur(images, 0.5),
    "blur_sigma_1": lambda images: gaussian_blur(images, 1.0),
    "crop_2_repad": lambda images: crop_and_pad(images, 2),
    "crop_6_repad": lambda images: crop_and_pad(images, 6),
    "shift_1": lambda images: shift(images, 1),
    "jpeg_q90": lambda images: jpeg(images, 90),
    "jpeg_q75": lambda images: jpeg(images, 75),
    "jpeg_q50": lambda images: jpeg(images, 50),
}
"""The attacks of the chapter's table, by name: noise, blur, crop with a re-pad, a shift, JPEG."""


def psnr(marked, original) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each marked image against its original (peak 1)."""
    marked, original = as_images(marked), as_images(original)
    mse = ((marked - original) ** 2).mean(axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1.0 / mse)


def watermark_study(images, key: int = 2026, amplitude: float = 0.03, false_positive_rate: float = 0.01,
                    detectors: dict | None = None, attacks: dict | None = None,
                    calibration: int | None = None) -> dict:
    """Mark, attack and detect: the detection rate and false-positive rate under each attack.

    The first ``calibration`` images (half by default) stay unmarked and set each detector's
    threshold for ``false_positive_rate``; the others are split in two: one half is marked,
    the other stays unmarked and measures the false-positive rate actually reached, under
    each attack too (an attack that made unmarked images look marked would be a forgery).
    """
    images = as_images(images)
    _check_key(key)
    _check_amplitude(amplitude)
    _check_rate(false_positive_rate)
    detectors = DETECTORS if detectors is None else detectors
    attacks = ATTACKS if attacks is None else attacks
    calibration = len(images) // 2 if calibration is None else calibration
    rest = images[calibration:]
    to_mark, unmarked = rest[: len(rest) // 2], rest[len(rest) // 2:]
    marked = embed_watermark(to_mark, key, amplitude)
    result = {"amplitude": amplitude, "target_false_positive_rate": false_positive_rate,
              "calibration_images": calibration, "marked_images": len(to_mark),
              "unmarked_images": len(unmarked), "psnr_db": round(float(np.mean(psnr(marked, to_mark))), 2),
              "gaussian_threshold": round(gaussian_threshold(false_positive_rate, SIZE * SIZE), 4),
              "detectors": {}}
    for detector, highpass in detectors.items():
        threshold = calibrate_threshold(watermark_scores(images[:calibration], key, highpass), false_positive_rate)
        rows = []
        for name, attack in attacks.items():
            marked_scores = watermark_scores(attack(marked), key, highpass)
            unmarked_scores = watermark_scores(attack(unmarked), key, highpass)
            rows.append({"attack": name, "detection_rate": round(float((marked_scores > threshold).mean()), 4),
                         "false_positive_rate": round(float((unmarked_scores > threshold).mean()), 4),
                         "median_score": round(float(np.median(marked_scores)), 4)})
        result["detectors"][detector] = {"highpass": highpass, "threshold": round(threshold, 4), "rows": rows}
    return result


def amplitude_sweep(images, amplitudes=(0.01, 0.02, 0.03, 0.05, 0.08), key: int = 2026,
                    false_positive_rate: float = 0.01, highpass: float | None = HIGHPASS_SIGMA) -> list[dict]:
    """The visibility cost against the detection rate: PSNR and detection (clean, JPEG 75) per amplitude."""
    images = as_images(images)
    calibration = len(images) // 2
    threshold = calibrate_threshold(watermark_scores(images[:calibration], key, highpass), false_positive_rate)
    rows = []
    for amplitude in amplitudes:
        marked = embed_watermark(images[calibration:], key, amplitude)
        rows.append({"amplitude": amplitude, "psnr_db": round(float(np.mean(psnr(marked, images[calibration:]))), 2),
                     "detection_rate": round(float((watermark_scores(marked, key, highpass) > threshold).mean()), 4),
                     "detection_rate_jpeg_q75": round(float(
                         (watermark_scores(jpeg(marked, 75), key, highpass) > threshold).mean()), 4)})
    return rows
