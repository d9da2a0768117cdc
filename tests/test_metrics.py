"""Tests of aigc_lessons.metrics: closed forms, properties and known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc_lessons import metrics, pretrained
from aigc_lessons.metrics import (
    MetricsError,
    frechet_distance,
    gaussian_frechet_distance,
    inception_score_from_probabilities,
    nearest_neighbour_distances,
    precision_recall,
    to_unit_range,
)


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)


# ---------------------------------------------------------------- Fréchet distance


def test_gaussian_frechet_distance_matches_diagonal_closed_form():
    # For diagonal covariances the matrix square root is elementwise:
    # FD = |m_a - m_b|^2 + sum (s_a - s_b)^2, with s the standard deviations.
    mean_a, mean_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2)
    got = gaussian_frechet_distance(mean_a, np.diag(std_a**2), mean_b, np.diag(std_b**2))
    assert got == pytest.approx(expected, rel=1e-10), f"diagonal closed form {expected}, got {got}"


def test_gaussian_frechet_distance_matches_scipy_sqrtm_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    cov_a, cov_b = _random_covariance(rng, 5), _random_covariance(rng, 5)
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    root = scipy_linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    cov_a, cov_b = _random_covariance(rng, 3), _random_covariance(rng, 3)
    mean_a, mean_b = np.zeros(3), np.array([1.0, -0.5, 0.25])
    a = rng.multivariate_normal(mean_a, cov_a, size=40_000)
    b = rng.multivariate_normal(mean_b, cov_b, size=40_000)
    expected = gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b)
    got = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert got == pytest.approx(expected, abs=0.03), f"samples give {got:.4f}, the closed form {expected:.4f}"


def test_frechet_distance_is_symmetric_and_zero_for_identical_sets():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(800, 16, generator=generator)
    b = torch.randn(600, 16, generator=generator) * 1.5 + 0.3
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)
    assert abs(frechet_distance(a, a)) < 1e-8, "the distance of a set to itself must be 0"
    assert frechet_distance(a, b) > 1.0


def test_frechet_distance_rejects_bad_inputs():
    with pytest.raises(MetricsError, match="feature dimensions differ"):
        frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(MetricsError, match="at least 2 samples"):
        frechet_distance(torch.randn(1, 3), torch.randn(10, 3))
    with pytest.raises(MetricsError, match="2-D"):
        frechet_distance(torch.randn(10), torch.randn(10))


# ---------------------------------------------------------------- classifier score


def test_inception_score_bounds():
    assert inception_score_from_probabilities(torch.eye(10)) == pytest.approx(10.0)
    assert inception_score_from_probabilities(torch.full((7, 10), 0.1)) == pytest.approx(1.0)
    # confident but always the same class: no diversity, score 1
    assert inception_score_from_probabilities(torch.eye(10)[[3] * 20]) == pytest.approx(1.0)
    # confident, two classes used evenly: score 2
    assert inception_score_from_probabilities(torch.eye(10)[[1, 2] * 10]) == pytest.approx(2.0)


# ---------------------------------------------------------------- precision and recall


def test_precision_recall_identical_and_disjoint_sets():
    points = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    assert precision_recall(points, points, k=3) == (1.0, 1.0)
    assert precision_recall(points, points + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_mode_dropping_has_full_precision_half_recall():
    # real data: two far-apart clusters of equal size; the "model" reproduces only the first
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(200, 2, generator=generator)
    second = torch.randn(200, 2, generator=generator) + 50.0
    real = torch.cat([first, second])
    precision, recall = precision_recall(real, first, k=3)
    assert precision == 1.0, "every generated point is a real point, so precision must be 1"
    assert recall == 0.5, "exactly the first cluster (half the real points) is covered"


def test_precision_recall_hand_computed_case():
    # real: 0, 1, 2, 3 on a line; with k=1 each radius is 1, the manifold is [-1, 4]
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [3.9], [10.0], [20.0]])
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5, f"0.5 and 3.9 lie in the real manifold, 10 and 20 do not; got {precision}"
    # fake radii (k=1): 3.4, 3.4, 6.1, 10; real points 0..3 are within 3.4 of 0.5 or 3.9
    assert recall == 1.0, f"got {recall}"


def test_precision_recall_rejects_bad_k():
    with pytest.raises(MetricsError, match="k must be"):
        precision_recall(torch.randn(3, 2), torch.randn(3, 2), k=3)


# ---------------------------------------------------------------- inputs, nearest neighbours


def test_to_unit_range_checks_shape_and_range():
    assert to_unit_range(torch.full((2, 28, 28), 1.0)).min() == 1.0
    with pytest.raises(MetricsError, match=r"shape \(N, 1, 28, 28\)"):
        to_unit_range(torch.zeros(2, 3, 28, 28))
    with pytest.raises(MetricsError, match="outside value_range"):
        to_unit_range(torch.full((2, 1, 28, 28), 2.0), value_range=(0, 1))
    with pytest.raises(MetricsError, match="NaN"):
        to_unit_range(torch.full((2, 1, 28, 28), float("nan")))
    with pytest.warns(UserWarning, match="look like images in"):
        to_unit_range(torch.rand(20, 1, 28, 28), value_range=(-1, 1))


def test_nearest_neighbour_distances_known_answers():
    generator = torch.Generator().manual_seed(0)
    train = torch.rand(100, 1, 28, 28, generator=generator) * 0.5
    distances, indices = nearest_neighbour_distances(train[[5, 17]], train, value_range=(0, 1), return_indices=True)
    assert distances.tolist() == [0.0, 0.0] and indices.tolist() == [5, 17]
    shifted = train[:3] + 0.1  # every pixel moved by 0.1: distance sqrt(784) * 0.1 = 2.8 (unless another is closer)
    assert torch.all(nearest_neighbour_distances(shifted, train, value_range=(0, 1)) <= 2.8 + 1e-4)


# ---------------------------------------------------------------- with the reference classifier and MNIST


@pytest.fixture(scope="module")
def classifier_ready(mnist_available):
    if not pretrained.exists(metrics.REFERENCE_CLASSIFIER):
        pytest.skip("the reference classifier weights are not there (python -m aigc_lessons.recipes classifier_mnist)")


def test_fd_test_vs_train_is_small_and_test_vs_noise_is_large(classifier_ready):
    test_images, _ = metrics.reference_images("test", 1000)
    train_images, _ = metrics.reference_images("train", 1000)
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    test_features = metrics.classifier_features(test_images, (0, 1), device="cpu")
    real = frechet_distance(test_features, metrics.classifier_features(train_images, (0, 1), device="cpu"))
    fake = frechet_distance(test_features, metrics.classifier_features(noise, (0, 1), device="cpu"))
    assert real * 20 < fake, f"FD(test, train) = {real:.2f} should be far below FD(test, noise) = {fake:.2f}"


def test_evaluate_images_on_real_digits(classifier_ready):
    images, labels = metrics.reference_images("test", 500)
    scores = metrics.evaluate_images(images * 2 - 1, value_range=(-1, 1), labels=labels, reference="train",
                                     count=500, device="cpu", progress=False)
    assert set(scores) >= {"fd_mnist", "is_mnist", "precision", "recall", "nn_distance_mean", "class_accuracy"}
    assert scores["class_accuracy"] > 0.97 and scores["is_mnist"] > 8.5
    assert scores["precision"] > 0.6 and scores["recall"] > 0.6
    assert scores["nn_distance_mean"] > 2.0, "test digits are not copies of training digits"


def test_class_accuracy_checks_labels(classifier_ready):
    images, labels = metrics.reference_images("test", 200)
    assert metrics.class_accuracy(images, labels, value_range=(0, 1), device="cpu") > 0.97
    assert metrics.class_accuracy(images, (labels + 1) % 10, value_range=(0, 1), device="cpu") < 0.05
    with pytest.raises(MetricsError, match="labels must have shape"):
        metrics.class_accuracy(images, labels[:10], value_range=(0, 1))


def test_reference_images_are_a_seeded_random_subset(mnist_available):
    first, _ = metrics.reference_images("test", 50)
    again, _ = metrics.reference_images("test", 50)
    everything, _ = metrics.reference_images("test")
    assert torch.equal(first, again), "the same seed must give the same reference images"
    assert not torch.equal(first, everything[:50]), "the MNIST test file is ordered: a prefix is not a random sample"
    assert len(everything) == 10_000


def test_every_pretrained_generator_samples_images_in_unit_range():
    names = metrics.generator_names()
    assert "classifier_mnist" not in names
    for name in names:
        images, labels = metrics.sample_pretrained(name, 20, seed=0)
        assert images.shape == (20, 1, 28, 28) and images.min() >= 0 and images.max() <= 1, name
        assert labels is None or labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1], name


def test_format_results_marks_missing_and_conditional_values():
    table = metrics.format_results([{"model": "a", "fd_mnist": 1.0, "test_nll": 90.0, "test_nll_given_label": True},
                                    {"model": "b", "fd_mnist": None}], columns=["fd_mnist", "test_nll"])
    assert "| a | 1.00 | 90.0 (given y) |" in table and "| b | - | - |" in table


# --------------------------------------------------------------------------- PSNR, SSIM, ROC/AUC


def test_psnr_matches_its_definition_and_respects_value_range():
    target = torch.rand(3, 1, 28, 28)
    noisy = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    mse = ((noisy - target) ** 2).flatten(1).mean(1).double()
    assert torch.allclose(metrics.psnr(noisy, target), 10 * torch.log10(1 / mse), atol=1e-6)
    # the same images in [-1, 1] give the same PSNR once the range is declared
    assert torch.allclose(metrics.psnr(noisy * 2 - 1, target * 2 - 1, value_range=(-1, 1)),
                          metrics.psnr(noisy, target), atol=1e-6)
    assert torch.isinf(metrics.psnr(target, target)).all()


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    target = torch.rand(2, 1, 28, 28)
    assert torch.allclose(metrics.ssim(target, target), torch.ones(2, dtype=torch.float64))
    slightly = (target + 0.02 * torch.randn_like(target)).clamp(0, 1)
    badly = (target + 0.3 * torch.randn_like(target)).clamp(0, 1)
    assert (metrics.ssim(badly, target) < metrics.ssim(slightly, target)).all()
    assert (metrics.ssim(slightly, target) < 1).all()


def test_image_pair_metrics_refuse_bad_input():
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(metrics.MetricsError, match="same shape"):
        metrics.psnr(images, images[:1])
    with pytest.raises(metrics.MetricsError, match="value_range"):
        metrics.ssim(images * 2 - 1, images)
    with pytest.raises(metrics.MetricsError, match="at least 11"):
        metrics.ssim(torch.rand(2, 1, 7, 7), torch.rand(2, 1, 7, 7))


def test_roc_auc_known_answers_and_errors():
    assert metrics.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])[0] == 1.0
    assert metrics.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])[0] == 0.0
    auc, fpr, tpr = metrics.roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    assert auc == 0.75 and fpr[0] == 0 and tpr[-1] == 1
    with pytest.raises(metrics.MetricsError, match="both normal"):
        metrics.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(metrics.MetricsError, match="one label per score"):
        metrics.roc_auc([0.1, 0.2, 0.3], [0, 1])


def test_the_table_rescores_one_model_and_keeps_the_other_rows(tmp_path, mnist_available):
    import json

    from aigc_lessons.metrics.table import main

    out = tmp_path / "table.json"
    old_rows = [{"model": "real MNIST test digits", "fd_mnist": 1.0}, {"model": "gan_mlp_mnist", "fd_mnist": -1.0},
                {"model": "vae_mnist", "fd_mnist": 2.0}]
    out.write_text(json.dumps({"count": 20, "seed": 0, "seconds": 1.0, "rows": old_rows}))
    assert main(["--count", "20", "--models", "gan_mlp_mnist", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [row["model"] for row in record["rows"]] == [row["model"] for row in old_rows], "order kept"
    assert record["rows"][1]["fd_mnist"] > 0 and record["rows"][2] == old_rows[2]
    assert record["updates"][0]["models"] == ["gan_mlp_mnist"] and record["seconds"] == 1.0
    for refused in (["--count", "30", "--models", "gan_mlp_mnist"], ["--count", "20", "--models", "nope"]):
        with pytest.raises(SystemExit):
            main([*refused, "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["--count", "20", "--models", "gan_mlp_mnist", "--out", str(tmp_path / "missing.json")])
    assert json.loads(out.read_text()) == record, "a refused call writes nothing"
