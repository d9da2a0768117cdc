"""Detectors of generated digits and the keyed watermark (aigc_lessons.provenance)."""

import math

import numpy as np
import pytest
import torch

from aigc_lessons.provenance import (
    ATTACKS, DetectorConfig, HIGHPASS_SIGMA, calibrate_threshold, check_images, cross_generator_study,
    detection_auc, embed_watermark, gaussian_threshold, generated_digits, jpeg, normalised_correlation,
    psnr, real_digits, shift, train_detector, watermark_pattern, watermark_scores, watermark_study,
)
from aigc_lessons.provenance.study import full_study, main


@pytest.fixture(scope="module")
def digits():
    """2 000 real test digits from the evaluation half, as an array (N, 28, 28)."""
    return real_digits("eval", 2000).numpy()[:, 0]


def test_real_halves_are_disjoint():
    train, evaluation = real_digits("train", 5000), real_digits("eval", 5000)
    train_rows = {bytes(image.numpy().tobytes()) for image in train}
    shared = sum(bytes(image.numpy().tobytes()) in train_rows for image in evaluation)
    # MNIST's test split holds a handful of exact duplicates; a shared index would give thousands.
    assert shared < 10, f"{shared} digits are in both the detector-training and the evaluation half"


def test_pattern_is_keyed_and_balanced():
    pattern = watermark_pattern(7)
    assert np.array_equal(pattern, watermark_pattern(7))
    assert abs(pattern.mean()) < 0.1, "the ±1 pattern should be balanced"
    other = watermark_pattern(8)
    assert abs(normalised_correlation(other.ravel()[None], pattern.ravel())[0]) < 0.15


def test_correlation_is_invariant_to_offset_and_scale():
    rng = np.random.default_rng(0)
    values, pattern = rng.normal(size=(3, 50)), rng.choice([-1.0, 1.0], 50)
    assert np.allclose(normalised_correlation(values, pattern), normalised_correlation(3 * values + 2, pattern))
    assert np.allclose(normalised_correlation(pattern[None], pattern), 1.0)


def test_unmarked_scores_follow_the_gaussian_approximation(digits):
    """On unmarked digits rho spreads by ~1/sqrt(784) around a small key-dependent offset.

    The offset is the pattern's correlation with the average digit (itself ~N(0, 1/784) over
    keys): one reason to calibrate the threshold on unmarked images rather than trust the formula.
    """
    scores = watermark_scores(digits, key=2026)
    assert abs(scores.mean()) < 2 / 28
    assert scores.std() == pytest.approx(1 / 28, rel=0.25)
    offsets = [watermark_scores(digits[:200], key).mean() for key in range(20)]
    assert abs(np.mean(offsets)) < 0.02, "averaged over keys, the offset should vanish"


@pytest.mark.parametrize("highpass", [None, HIGHPASS_SIGMA])
def test_threshold_keeps_the_false_positive_rate_near_its_target(digits, highpass):
    key, target = 2026, 0.05
    threshold = calibrate_threshold(watermark_scores(digits[:1000], key, highpass), target)
    held_out = (watermark_scores(digits[1000:], key, highpass) > threshold).mean()
    # 1 000 held-out digits: the binomial standard error at 5% is 0.7 points.
    assert abs(held_out - target) < 0.025, f"false-positive rate {held_out:.3f} on held-out unmarked digits"
    assert threshold == pytest.approx(gaussian_threshold(target, 784), abs=0.02)


def test_watermark_is_detected_at_the_threshold_and_costs_little_psnr(digits):
    key = 2026
    threshold = calibrate_threshold(watermark_scores(digits[:1000], key, HIGHPASS_SIGMA), 0.01)
    marked = embed_watermark(digits[1000:1500], key, amplitude=0.05)
    assert (watermark_scores(marked, key, HIGHPASS_SIGMA) > threshold).mean() > 0.95
    assert (watermark_scores(marked, key + 1, HIGHPASS_SIGMA) > threshold).mean() < 0.05, "a wrong key detects"
    assert 27 < psnr(marked, digits[1000:1500]).mean() < 32
    assert marked.min() >= 0 and marked.max() <= 1


def test_highpass_detector_is_stronger_and_a_shift_breaks_both(digits):
    result = watermark_study(digits[:1200])
    rows = {name: {row["attack"]: row for row in entry["rows"]} for name, entry in result["detectors"].items()}
    assert rows["highpass"]["clean"]["detection_rate"] > rows["plain"]["clean"]["detection_rate"] + 0.3
    assert rows["highpass"]["shift_1"]["detection_rate"] < 0.1, "a one-pixel shift desynchronises the pattern"
    assert rows["highpass"]["jpeg_q50"]["detection_rate"] < rows["highpass"]["jpeg_q90"]["detection_rate"]
    for detector in rows.values():
        assert detector["clean"]["false_positive_rate"] < 0.04
    assert set(rows["plain"]) == set(ATTACKS)


def test_attacks_keep_shape_and_range(digits):
    for name, attack in ATTACKS.items():
        out = attack(digits[:3])
        assert out.shape == (3, 28, 28) and out.min() >= 0 and out.max() <= 1, name
    assert np.array_equal(shift(digits[:2], 0), digits[:2])
    assert np.abs(jpeg(digits[:2], 95) - digits[:2]).mean() < 0.02


@pytest.mark.parametrize("call, message", [
    (lambda: embed_watermark(np.full((1, 28, 28), 2.0), 1), "must lie in \\[0, 1\\]"),
    (lambda: embed_watermark(np.zeros((1, 28, 28)), 1.5), "key must be an integer"),
    (lambda: embed_watermark(np.zeros((1, 28, 28)), True), "key must be an integer"),
    (lambda: embed_watermark(np.zeros((1, 28, 28)), 1, amplitude=0), "amplitude must be a number > 0"),
    (lambda: calibrate_threshold(np.zeros(100), 1.0), "false-positive rate must be a number in \\(0, 1\\)"),
    (lambda: calibrate_threshold(np.zeros(100), 0), "false-positive rate must be a number in \\(0, 1\\)"),
    (lambda: calibrate_threshold(np.zeros(10), 0.01), "cannot calibrate"),
    (lambda: jpeg(np.zeros((1, 28, 28)), 0), "JPEG quality must be an integer in 1..95"),
    (lambda: jpeg(np.zeros((1, 28, 28)), 96), "JPEG quality must be an integer in 1..95"),
    (lambda: generated_digits("stylegan_mnist", 4), "unknown generator 'stylegan_mnist'"),
    (lambda: check_images(torch.full((1, 1, 28, 28), -0.5)), "must lie in \\[0, 1\\]"),
    (lambda: DetectorConfig(epochs=0), "epochs must be a positive integer"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "record.json"
    with pytest.raises(SystemExit):
        main(["study", "--generators", "no_such_model", "--out", str(out)])
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown generator"):
        full_study(generators=("vae_mnist", "nope"), out=out)
    assert not out.exists()


def test_detector_beats_chance_on_an_easy_generator():
    """The VAE's blurred digits are easy to spot, even with 200 digits of each kind."""
    real_train, real_eval = real_digits("train", 200), real_digits("eval", 200)
    fake_train, fake_eval = generated_digits("vae_mnist", 200, 1), generated_digits("vae_mnist", 200, 2)
    detector = train_detector(real_train, fake_train, DetectorConfig(epochs=3))
    auc = detection_auc(detector, real_eval, fake_eval)
    assert auc > 0.75, f"held-out AUC {auc:.3f} on vae_mnist"


def test_cross_generator_study_shape():
    study = cross_generator_study(("vae_mnist", "cgan_mnist"), 64, 64, DetectorConfig(epochs=1))
    assert [row["generator"] for row in study["rows"]] == ["vae_mnist", "cgan_mnist"]
    for row, cross in zip(study["rows"], study["cross"]):
        assert cross[row["generator"]] == row["auc"], "the diagonal of the matrix is each detector's own AUC"
        assert all(0 <= cross[name] <= 1 for name in ("vae_mnist", "cgan_mnist"))


def test_gaussian_threshold_matches_the_normal_quantile():
    assert gaussian_threshold(0.5, 100) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_threshold(0.025, 784) == pytest.approx(1.959964 / 28, rel=1e-5)
    assert not math.isnan(gaussian_threshold(1e-6, 784))
