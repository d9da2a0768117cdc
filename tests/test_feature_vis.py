"""Tests of feature visualization and DeepDream (aigc_lessons.feature_vis) and the chapter's check."""

from __future__ import annotations

import pytest
import torch

from aigc_lessons import feature_vis as fv
from aigc_lessons import pretrained
from aigc_lessons.checks.deepdream import check_gram_matrix
from aigc_lessons.models.classifier import MnistClassifier


@pytest.fixture(scope="module")
def classifier():
    if not pretrained.exists("classifier_mnist"):
        pytest.skip("classifier_mnist weights not there: python -m aigc_lessons.recipes classifier_mnist")
    from aigc_lessons.metrics import load_classifier

    return load_classifier("cpu")


def test_activation_shape_and_hook_removed():
    model = MnistClassifier().eval()
    images = torch.rand(3, 1, 28, 28)
    for name, shape in {"conv.1": (3, 32, 28, 28), "conv.4": (3, 64, 14, 14), "embed.3": (3, 128),
                        "head.1": (3, 10)}.items():
        output = fv.activation(model, name, images)
        assert output.shape == shape, f"{name}: got {tuple(output.shape)}, expected {shape}"
        assert not fv.get_layer(model, name)._forward_hooks, f"the hook on {name} was left registered"
    assert torch.allclose(fv.activation(model, "head.1", images), model(images)), "the last layer's output is the logits"
    assert torch.allclose(fv.activation(model, "embed.3", images), model.features(images))


def test_hook_removed_even_when_forward_fails():
    model = MnistClassifier().eval()
    with pytest.raises(ValueError):
        fv.activation(model, "conv.1", torch.rand(2, 1, 20, 20))  # the classifier rejects 20 x 20 inputs
    assert not model.conv[1]._forward_hooks, "a failed forward pass must not leave the hook behind"


def test_unknown_layer_lists_known_names():
    with pytest.raises(fv.FeatureVisError, match=r"unknown layer 'conv9'.*'conv\.1'.*'embed\.3'"):
        fv.activation(MnistClassifier(), "conv9", torch.rand(1, 1, 28, 28))


def test_image_shape_errors():
    model = MnistClassifier().eval()
    with pytest.raises(fv.FeatureVisError, match=r"\(B, C, H, W\)"):
        fv.activation(model, "conv.1", torch.rand(1, 28, 28))
    with pytest.raises(fv.FeatureVisError, match="floating point"):
        fv.total_variation(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(fv.FeatureVisError, match=r"\[0, 1\]"):
        fv.deep_dream(model, torch.full((1, 1, 28, 28), 2.0), "conv.4", steps=1, octaves=1)
    with pytest.raises(fv.FeatureVisError, match="64 channels"):
        fv.visualize_channel(model, "conv.4", [64], steps=1)


def test_total_variation_and_high_frequency_known_answers():
    step = torch.zeros(1, 1, 4, 4)
    step[..., 2:] = 1.0  # one vertical edge, 4 pixels tall
    assert fv.total_variation(step).item() == pytest.approx(4.0)
    assert fv.total_variation(torch.full((2, 1, 5, 5), 0.3)).tolist() == [0.0, 0.0]
    checkerboard = ((torch.arange(6)[:, None] + torch.arange(6)[None, :]) % 2).float()[None, None]
    assert fv.high_frequency_fraction(checkerboard).item() == pytest.approx(1.0)
    assert fv.high_frequency_fraction(torch.ones(1, 1, 6, 6)).item() == 0.0


def test_blur_and_tv_penalty_reduce_total_variation():
    noise = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert (fv.total_variation(fv.gaussian_blur(noise, 1.0)) < 0.5 * fv.total_variation(noise)).all()
    # ascent on an objective that ignores the image: only the penalty acts, and it must smooth the noise
    result = fv.gradient_ascent(lambda x: torch.zeros(x.shape[0]), noise, steps=30, step_size=0.01,
                                regularisers=fv.Regularisers(tv=1.0))
    assert (fv.total_variation(result.images) < 0.7 * fv.total_variation(noise)).all()


def test_gradient_ascent_increases_class_logit_on_real_classifier(classifier):
    result = fv.visualize_class(classifier, list(range(10)), steps=10, step_size=0.02)
    objective = result.objective
    assert objective.shape == (11, 10)
    assert (objective[-1] > objective[0] + 1.0).all(), f"logits did not rise: {objective[0]} -> {objective[-1]}"
    assert result.images.min() >= 0 and result.images.max() <= 1
    with torch.no_grad():
        predicted = classifier(result.images).argmax(1)
    assert predicted.tolist() == list(range(10)), "after the ascent each image should be classified as its target"


def test_channel_visualization_increases_activation(classifier):
    start = (0.5 + 0.1 * torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    result = fv.visualize_channel(classifier, "conv.4", [0, 1, 2, 3], steps=10, start=start)
    assert (result.objective[-1] > result.objective[0]).all()


def test_deep_dream_keeps_shape_and_range_and_amplifies(classifier):
    from aigc_lessons.data import MnistDataError, load_mnist

    try:
        images = load_mnist("test").images[:4]
    except MnistDataError:
        images = fv.gaussian_blur(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)), 1.0)
    dream = fv.deep_dream(classifier, images, "conv.4", steps=10, octaves=2, step_size=0.02)
    assert dream.images.shape == images.shape
    assert dream.images.min() >= 0 and dream.images.max() <= 1
    assert len(dream.history) == 3, "history: before, after each of the 2 octaves"
    assert (dream.history[-1] > dream.history[0]).all(), "DeepDream must raise the layer's energy"
    assert not fv.get_layer(classifier, "conv.4")._forward_hooks


def test_gram_matrix_known_answer_and_check():
    features = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]]])
    assert torch.allclose(fv.gram_matrix(features), torch.tensor([[[1.5, 0.5], [0.5, 2.5]]]))
    assert check_gram_matrix(fv.gram_matrix).passed
    unnormalised = check_gram_matrix(lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2))
    assert not unnormalised.passed and any("H*W" in m for m in unnormalised.messages)
    positions = check_gram_matrix(lambda f: f.flatten(2).transpose(1, 2) @ f.flatten(2) / f.shape[1])
    assert not positions.passed and positions.score == 0
    placeholder = check_gram_matrix(lambda f: None)
    assert placeholder.status == "not attempted"
