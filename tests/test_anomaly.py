"""Tests of the anomaly-detection chapter's module, check and recorded results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from aigc_lessons import anomaly
from aigc_lessons.data import MnistTensors
from aigc_lessons.metrics import MetricsError, roc_auc
from aigc_lessons.models import VAE

RESULTS = Path(__file__).resolve().parents[1] / "book" / "applications" / "anomaly_results.json"


def fake_mnist(n: int, seed: int) -> MnistTensors:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    labels = torch.arange(n) % 10
    return MnistTensors(images, labels, (0.0, 1.0))


def test_split_excludes_exactly_the_held_out_digit():
    train, test = fake_mnist(200, 0), fake_mnist(50, 1)
    for digit in (0, 1, 9):
        split = anomaly.held_out_split(digit, train, test)
        kept = train.labels[train.labels != digit]
        assert len(split.train_images) == len(kept) == 180, "every image but the held-out digit's must be kept"
        assert torch.equal(split.train_images, train.images[train.labels != digit])
        assert torch.equal(split.test_images, test.images), "the test set must be the whole test split"
        assert torch.equal(split.is_anomaly, (test.labels == digit).long())
        assert int(split.is_anomaly.sum()) == 5


def test_anomaly_labels_and_bad_digits_are_explained():
    assert anomaly.anomaly_labels(torch.tensor([3, 1, 3]), 3).tolist() == [1, 0, 1]
    for bad in (10, -1, 1.0, True, "1"):
        with pytest.raises(ValueError, match="integer 0..9"):
            anomaly.anomaly_labels(torch.tensor([1]), bad)
    with pytest.raises(ValueError, match="one per image"):
        anomaly.without_digit(torch.zeros(3, 1, 28, 28), torch.tensor([1, 2]), 1)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        anomaly.without_digit(torch.zeros(3, 784), torch.tensor([1, 2, 3]), 1)


def _memorizing_vae(target: torch.Tensor) -> VAE:
    """A VAE whose decoder ignores z and outputs confident logits for the binary image ``target``."""
    model = VAE(latent_dim=2, hidden=(8,))
    last = model.decoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(5.0 * (2 * target.flatten() - 1))  # logit +5 where the pixel is on, -5 where off
    return model.eval()


def test_perfect_reconstruction_scores_lowest():
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(6, 1, 28, 28, generator=generator) < 0.3).float()
    model = _memorizing_vae(images[2])
    for name, scores in (("reconstruction", anomaly.reconstruction_score(model, images)),
                         ("negative_elbo", anomaly.negative_elbo_score(model, images, samples=3)),
                         ("iwae", anomaly.iwae_score(model, images, k=5))):
        assert scores.shape == (6,), f"{name}: one score per image"
        assert int(scores.argmin()) == 2, f"{name}: the perfectly reconstructed image must score lowest: {scores}"
    reconstruction = anomaly.reconstruction_score(model, images)
    # every pixel right with logit 5: -log p = 784 * log(1 + e^-5), about 5.3 nats
    assert float(reconstruction[2]) == pytest.approx(784 * math.log1p(math.exp(-5)), rel=1e-4)


def test_scores_agree_with_their_definitions():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden=(16,)).eval()
    images = (torch.rand(5, 1, 28, 28) < 0.2).float()
    scores = anomaly.score_images(model, images, iwae_k=200)
    assert set(scores) == {"reconstruction", "negative_elbo", "iwae", "complexity_corrected"}
    assert all(s.shape == (5,) and torch.isfinite(s).all() for s in scores.values())
    # the IWAE bound with many samples lies below the negative ELBO (it is a tighter bound)
    assert float(scores["iwae"].mean()) < float(scores["negative_elbo"].mean())
    expected = scores["iwae"] / math.log(2) - anomaly.png_bits(images)
    assert torch.allclose(scores["complexity_corrected"], expected)
    with pytest.raises(ValueError, match="positive"):
        anomaly.negative_elbo_score(model, images, samples=0)
    with pytest.raises(ValueError, match="one negative log-likelihood per image"):
        anomaly.complexity_corrected_score(torch.zeros(4), images)


def test_png_bits_measure_complexity():
    blank, noise = torch.zeros(1, 1, 28, 28), (torch.rand(1, 1, 28, 28) < 0.5).float()
    stroke = torch.zeros(1, 1, 28, 28)
    stroke[0, 0, 4:24, 13:15] = 1.0  # a "1"
    bits = anomaly.png_bits(torch.cat([blank, stroke, noise]))
    assert bits[0] < bits[1] < bits[2], f"PNG lengths must grow with complexity, got {bits.tolist()}"
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        anomaly.png_bits(torch.zeros(2, 28, 28))


def test_nearest_neighbour_scores():
    train = fake_mnist(40, 0)
    assert anomaly.nearest_neighbour_score(train.images[:3], train.images).tolist() == [0.0, 0.0, 0.0]
    test = fake_mnist(7, 1)
    table = anomaly.nearest_distances_by_digit(test.images, train.images, train.labels)
    assert table.shape == (7, 10)
    for digit in (0, 4):
        direct = anomaly.nearest_neighbour_score(test.images, anomaly.without_digit(train.images, train.labels, digit))
        assert torch.allclose(anomaly.nearest_neighbour_from_table(table, digit), direct, atol=1e-5)


def test_roc_auc_known_answers():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])[0] == pytest.approx(0.75)
    assert roc_auc([0.0, 1.0], [0, 1])[0] == 1.0 and roc_auc([1.0, 0.0], [0, 1])[0] == 0.0
    assert roc_auc(torch.ones(4), torch.tensor([0, 1, 0, 1]))[0] == pytest.approx(0.5), "ties count one half"
    assert anomaly.auc_table({"a": torch.tensor([0.2, 0.1, 0.9])}, torch.tensor([0, 0, 1])) == {"a": 1.0}
    with pytest.raises(MetricsError, match="both normal"):
        roc_auc([0.1, 0.2], [0, 0])


def test_run_held_out_digit_end_to_end_on_small_data():
    train, test = fake_mnist(300, 0), fake_mnist(60, 1)
    model, row = anomaly.run_held_out_digit(3, train, test, epochs=1, iwae_k=4)
    assert isinstance(model, VAE) and not model.training
    assert row["train_images"] == 270 and row["test_anomalies"] == 6
    assert set(row["auc"]) == set(anomaly.SCORE_NAMES)
    assert all(0.0 <= auc <= 1.0 for auc in row["auc"].values())


def _pairwise_auc(scores, is_anomaly):
    anomalous, normal = scores[is_anomaly == 1], scores[is_anomaly == 0]
    greater = (anomalous[:, None] > normal[None, :]).float()
    ties = (anomalous[:, None] == normal[None, :]).float()
    return (greater + 0.5 * ties).mean()


def test_check_accepts_reference_and_rejects_wrong_answers():
    from aigc_lessons.checks.anomaly import check_auc

    assert check_auc(_pairwise_auc).passed
    flipped = check_auc(lambda s, y: 1 - _pairwise_auc(s, y))
    assert not flipped.passed and any("1 - AUC" in m for m in flipped.messages)
    no_ties = check_auc(lambda s, y: (s[y == 1][:, None] > s[y == 0][None, :]).float().mean())
    assert not no_ties.passed and any("one half" in m for m in no_ties.messages)
    assert check_auc(lambda s, y: None).status == "not attempted"


def test_pretrained_entry_loads_and_states_its_scores():
    from aigc_lessons import pretrained

    if not pretrained.exists("vae_anomaly_mnist"):
        pytest.skip("vae_anomaly_mnist not trained yet")
    model = pretrained.load("vae_anomaly_mnist")
    assert isinstance(model, VAE) and model.latent_dim == anomaly.MODEL_KWARGS["latent_dim"]
    card = pretrained.card("vae_anomaly_mnist")["card"]
    metrics = card["metrics"]
    assert card["held_out_digit"] == metrics["held_out_digit"] == 1
    assert metrics["test_images"] == 10000 and set(metrics["auc"]) == set(anomaly.SCORE_NAMES)
    decoded = model.decode(torch.zeros(2, model.latent_dim))
    assert decoded.shape == (2, 1, 28, 28) and torch.isfinite(decoded).all()


def test_recorded_results_are_complete_and_consistent():
    if not RESULTS.exists():
        pytest.skip("anomaly_results.json not recorded yet")
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    rows = results["rows"]
    assert [row["held_out_digit"] for row in rows] == list(range(10)), "one row per held-out digit, in order"
    assert results["settings"]["train_subset"] is None and results["settings"]["test_subset"] is None, (
        "the recorded table must come from the full setting")
    for name in anomaly.SCORE_NAMES:
        mean = sum(row["auc"][name] for row in rows) / 10
        assert results["mean_auc"][name] == pytest.approx(mean, abs=1e-4)
    assert sum(row["test_anomalies"] for row in rows) == 10000, "each test digit is the anomaly exactly once"
