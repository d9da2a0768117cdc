"""Tests of the reference MNIST classifier (model, recipe, shipped weights)."""

from __future__ import annotations

import pytest
import torch

from aigc_lessons import pretrained
from aigc_lessons.models import MODEL_CLASSES
from aigc_lessons.models.classifier import MnistClassifier


def test_shapes_and_features():
    model = MnistClassifier().eval()
    images = torch.rand(6, 1, 28, 28)
    features = model.features(images)
    assert features.shape == (6, 128) and (features >= 0).all(), "features are post-ReLU activations"
    assert torch.allclose(model(images), model.head(features)), "forward must be head(features(x))"
    assert MODEL_CLASSES["MnistClassifier"] is MnistClassifier


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        MnistClassifier()(torch.rand(2, 784))


def test_shipped_classifier_reaches_99_percent(mnist_available):
    if not pretrained.exists("classifier_mnist"):
        pytest.skip("classifier_mnist weights not there: python -m aigc_lessons.recipes classifier_mnist")
    from aigc_lessons.data import load_mnist
    from aigc_lessons.recipes.classifier import classifier_accuracy

    test = load_mnist("test")
    accuracy = classifier_accuracy(pretrained.load("classifier_mnist"), test.images, test.labels)
    assert accuracy >= 0.99, f"test accuracy {accuracy:.4f} is below the book's 99.0% bar"
    assert pretrained.card("classifier_mnist")["card"]["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=2e-3)


@pytest.mark.slow
def test_recipe_runs_in_fast_mode(mnist_available):
    from aigc_lessons.recipes import retrain

    model = retrain("classifier_mnist", fast=True, device="cpu", progress=False)
    assert isinstance(model, MnistClassifier) and not model.training
