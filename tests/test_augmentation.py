"""Tests of the augmentation chapter's study: subsets, synthetic digits, training, summaries, the check."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons import augmentation as aug
from aigc_lessons.models import ConditionalGenerator


def _labels(per_class: int = 30) -> torch.Tensor:
    return torch.arange(10).repeat(per_class)[torch.randperm(10 * per_class, generator=torch.Generator().manual_seed(0))]


def test_few_per_class_gives_exact_counts_and_is_seed_reproducible():
    labels = _labels()
    first = aug.few_per_class_indices(labels, per_class=7, seed=3)
    assert torch.bincount(labels[first], minlength=10).tolist() == [7] * 10
    assert len(set(first.tolist())) == 70, "indices must be distinct (drawn without replacement)"
    assert torch.equal(first, aug.few_per_class_indices(labels, per_class=7, seed=3)), "same seed, same subset"
    assert not torch.equal(first, aug.few_per_class_indices(labels, per_class=7, seed=4)), "the seed changes it"


def test_imbalanced_subset_has_the_requested_counts():
    labels = _labels()
    counts = [30, 30, 20, 5, 1, 0, 3, 30, 2, 10]
    index = aug.class_count_indices(labels, counts, seed=0)
    assert torch.bincount(labels[index], minlength=10).tolist() == counts
    assert aug.balancing_counts(counts) == [0, 0, 10, 25, 29, 30, 27, 0, 28, 20]


def test_subset_builders_reject_bad_input():
    labels = _labels(per_class=5)
    with pytest.raises(ValueError, match="fewer than the 6 requested"):
        aug.few_per_class_indices(labels, per_class=6, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        aug.few_per_class_indices(labels, per_class=0, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        aug.class_count_indices(labels, [-1] + [1] * 9, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        aug.class_count_indices(torch.tensor([0, 12]), [1] * 10, seed=0)


def test_synthetic_digits_have_the_requested_labels_shapes_and_range():
    torch.manual_seed(0)
    generator = ConditionalGenerator(hidden=(32,))
    counts = [3, 0, 1, 0, 0, 0, 0, 0, 0, 2]
    images, labels = aug.synthetic_digits(generator, counts, seed=0, batch_size=4)
    assert images.shape == (6, 1, 28, 28) and labels.tolist() == [0, 0, 0, 2, 9, 9]
    assert images.min() >= 0 and images.max() <= 1, "synthetic digits must be in the classifier's range [0, 1]"
    again, _ = aug.synthetic_digits(generator, counts, seed=0, batch_size=6)
    assert torch.allclose(images, again, atol=1e-6), "the same seed gives the same digits, whatever the batch size"
    assert generator.training, "the generator's mode must be restored"
    with pytest.raises(ValueError, match="one number per class"):
        aug.synthetic_digits(generator, [1, 2], seed=0)


def test_random_shift_rotate_is_per_image_and_identity_at_zero():
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    assert torch.allclose(aug.random_shift_rotate(x, torch.Generator(), 0, 0), x, atol=1e-5)
    moved = aug.random_shift_rotate(x, torch.Generator().manual_seed(1), max_degrees=15, max_shift=3)
    assert moved.shape == x.shape and not torch.allclose(moved[0], moved[1]), "each image gets its own transform"
    ink_before, ink_after = x.sum(dim=(1, 2, 3)), moved.sum(dim=(1, 2, 3))
    assert torch.allclose(ink_after, ink_before, rtol=0.05), "a small rotation and shift keeps the digit's ink"


def test_balanced_accuracy_known_answers():
    labels = torch.tensor([0] * 8 + [1, 2])
    majority = torch.zeros(10, dtype=torch.long)
    assert aug.balanced_accuracy(majority, labels, 3) == pytest.approx(1 / 3), "a majority vote gets 1/K"
    assert float((majority == labels).float().mean()) == pytest.approx(0.8)
    recall = aug.per_class_recall(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), num_classes=3)
    assert recall[:2].tolist() == [0.5, 1.0] and math.isnan(recall[2]), "an absent class has no recall"
    assert aug.balanced_accuracy(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 3) == pytest.approx(0.75)


def test_mean_sd_formatting():
    assert aug.mean_and_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert aug.format_mean_sd([0.70, 0.72, 0.74]) == "0.720 ± 0.020"
    assert aug.format_mean_sd([0.5, 0.7], digits=1, scale=100) == "60.0 ± 14.1"
    assert aug.format_mean_sd([0.5]) == "0.500 (1 seed)"
    with pytest.raises(ValueError, match="at least one value"):
        aug.mean_and_sd([])


def test_classifier_options_are_checked():
    x, y = torch.rand(20, 1, 28, 28), torch.arange(10).repeat(2)
    with pytest.raises(ValueError, match="not both"):
        aug.train_classifier(x, y, aug.ClassifierConfig(steps=1), oversample=True, class_weighted=True)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        aug.train_classifier(torch.rand(20, 784), y, aug.ClassifierConfig(steps=1))
    with pytest.raises(ValueError, match="neither real nor synthetic"):
        aug.Condition("nothing", real=False)


def test_training_is_seed_reproducible_and_learns_a_separable_problem():
    torch.manual_seed(0)
    y = torch.arange(10).repeat(6)
    x = torch.zeros(60, 1, 28, 28)
    for i, digit in enumerate(y.tolist()):  # class d lights up row band d: trivially separable
        x[i, 0, 2 * digit + 4: 2 * digit + 6, 4:24] = 1.0
    config = aug.ClassifierConfig(steps=60, batch_size=32, lr=3e-3, channels=(4, 8), feature_dim=16)
    first = aug.train_classifier(x, y, config, seed=1, oversample=True, augment=False)
    second = aug.train_classifier(x, y, config, seed=1, oversample=True, augment=False)
    assert torch.allclose(first(x), second(x)), "same seed, same classifier"
    metrics = aug.evaluate_classifier(first, x, y)
    assert metrics["accuracy"] > 0.9 and len(metrics["recall"]) == 10


def test_images_survive_the_json_encoding():
    x = torch.rand(5, 1, 28, 28)
    assert (aug.decode_images(aug.encode_images(x)) - x).abs().max() <= 0.5 / 255 + 1e-6


def test_a_tiny_study_runs_end_to_end():
    torch.manual_seed(0)
    train_x, train_y = torch.rand(200, 1, 28, 28), _labels(per_class=20)
    test_x, test_y = torch.rand(50, 1, 28, 28), _labels(per_class=5)
    setting = aug.StudySetting(subset_counts=(4, 4, 4, 4, 4, 1, 1, 1, 1, 1),
                               classifier=aug.ClassifierConfig(steps=3, batch_size=8, channels=(2, 4), feature_dim=8),
                               cgan_steps=2, cgan_channels=4)
    conditions = [aug.Condition("real"), aug.Condition("weighted", class_weighted=True),
                  aug.Condition("fair", synthetic="subset", synthetic_per_class="balance"),
                  aug.Condition("leaky only", real=False, synthetic="pretrained", synthetic_per_class=2)]
    seen = []
    rows = aug.run_study(conditions, [0, 1], setting, train_images=train_x, train_labels=train_y, test_images=test_x,
                         test_labels=test_y, pretrained_generator=ConditionalGenerator(hidden=(16,)), progress=False,
                         on_subset_generator=lambda seed, g: seen.append(seed))
    assert [r["condition"] for r in rows] == ["real", "weighted", "fair", "leaky only"] * 2
    assert seen == [0, 1], "one fair generator per seed"
    assert rows[0]["train_size"] == 25 and rows[2]["train_size"] == 40 and rows[2]["synthetic"] == 15
    assert rows[3]["train_size"] == 20 and rows[3]["synthetic"] == 20
    aug.add_rare_recall(rows, setting.subset_counts)
    table = aug.results_table(rows, ("accuracy", "balanced_accuracy", "rare_recall"))
    assert table.count("\n") == 5 and "| fair | 2 |" in table and "±" in table
    summary = aug.summarize(rows, "accuracy")
    assert list(summary) == ["real", "weighted", "fair", "leaky only"] and summary["real"][2] == 2
    with pytest.raises(ValueError, match="pretrained_generator"):
        aug.run_study(conditions, [0], setting, train_images=train_x, train_labels=train_y, test_images=test_x,
                      test_labels=test_y, progress=False)


def test_check_accepts_the_reference_and_rejects_plain_accuracy():
    from aigc_lessons.checks.augmentation import check_balanced_accuracy

    assert check_balanced_accuracy(aug.balanced_accuracy).passed
    plain = check_balanced_accuracy(lambda p, y, k: float((p == y).float().mean()))
    assert not plain.passed and any("plain accuracy" in m for m in plain.messages)
    assert check_balanced_accuracy(lambda p, y, k: None).status == "not attempted"
    zero_for_absent = check_balanced_accuracy(
        lambda p, y, k: float(torch.nan_to_num(aug.per_class_recall(p, y, k)).mean()))
    assert not zero_for_absent.passed and 0 < zero_for_absent.score < 1


def test_recorded_full_run_is_complete():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "book" / "applications" / "augmentation_results.json"
    if not path.exists():
        pytest.skip("no recorded run: python -m aigc_lessons.augmentation --out " + str(path))
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["setting"] == "full" and len(record["seeds"]) >= 3
    for name, conditions in (("few_labels", aug.FEW_LABELS_CONDITIONS), ("imbalanced", aug.IMBALANCED_CONDITIONS)):
        rows = record["experiments"][name]["rows"]
        assert {r["condition"] for r in rows} == {c.name for c in conditions}, f"{name}: conditions changed since the run"
        assert len(rows) == len(conditions) * len(record["seeds"])
