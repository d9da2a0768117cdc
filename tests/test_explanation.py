"""Tests of the explanation package (aigc_lessons.explain): attributions, completeness, sanity checks."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from aigc_lessons.explain import (METHODS, ExplanationError, alignment_scores, attribute, cascading_randomisation,
                                  completeness_error, deletion_curve, edge_map, integrated_gradients_riemann,
                                  map_ssim, randomisable_layers, randomise_layers, rank_correlation, target_scores)


def _relu_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 12 * 12, 16),
                         nn.ReLU(), nn.Linear(16, 3)).eval()


def _images(count: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 1, 12, 12, generator=generator), torch.randint(0, 3, (count,), generator=generator)


def test_saliency_and_gradient_x_input_on_a_linear_model_are_the_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 3)).eval()
    images, targets = _images()
    weights = model[1].weight.detach()[targets].view_as(images)
    assert torch.allclose(attribute(model, images, targets, "saliency"), weights, atol=1e-6)
    assert torch.allclose(attribute(model, images, targets, "gradient_x_input"), images * weights, atol=1e-6)
    # integrated gradients from black equals gradient x input for a linear score, for any number of steps
    assert torch.allclose(attribute(model, images, targets, "integrated_gradients", steps=1), images * weights,
                          atol=1e-5)


def test_integrated_gradients_is_complete_on_a_relu_network():
    model = _relu_net()
    images, targets = _images()
    maps, delta = attribute(model, images, targets, "integrated_gradients", steps=256, return_delta=True)
    difference = target_scores(model, images, targets) - target_scores(model, torch.zeros_like(images), targets)
    scale = float(difference.abs().max())
    error = completeness_error(model, images, targets, maps)
    assert float(error.abs().max()) < 0.02 * scale, f"sum of IG maps misses f(x) - f(0) by {error.tolist()}"
    assert torch.allclose(delta, error, atol=1e-4), "captum's convergence delta is not the completeness error"


def test_the_riemann_sum_converges_to_captum_and_its_error_falls_with_steps():
    model = _relu_net()
    images, targets = _images()
    errors = [float(completeness_error(model, images, targets,
                                       integrated_gradients_riemann(model, images, targets, steps)).abs().mean())
              for steps in (2, 16, 256)]
    assert errors[0] > errors[1] > errors[2], f"completeness error does not fall with steps: {errors}"
    reference = attribute(model, images, targets, "integrated_gradients", steps=256)
    by_hand = integrated_gradients_riemann(model, images, targets, steps=256)
    assert float((reference - by_hand).abs().max()) < 0.02 * float(reference.abs().max())


def test_a_baseline_changes_what_integrated_gradients_adds_up_to():
    model = _relu_net()
    images, targets = _images()
    grey = torch.full_like(images[0], 0.5)
    maps = attribute(model, images, targets, "integrated_gradients", steps=256, baseline=grey)
    error = completeness_error(model, images, targets, maps, baseline=grey)
    assert float(error.abs().max()) < 0.05 * float(target_scores(model, images, targets).abs().max())


@pytest.mark.parametrize("bad, message", [
    (dict(images=torch.rand(2, 144)), "batch, channels"),
    (dict(images=torch.rand(2, 1, 12, 12) * 3 - 1), "[0, 1]"),
    (dict(method="lime"), "unknown method"),
    (dict(steps=0), "steps"),
    (dict(targets=torch.tensor([0, 5])), "class indices"),
    (dict(targets=torch.tensor([0.0, 1.0])), "integer tensor"),
    (dict(baseline=torch.zeros(3, 3)), "baseline"),
])
def test_bad_input_gives_a_clear_value_error(bad, message):
    arguments = dict(model=_relu_net(), images=torch.rand(2, 1, 12, 12), targets=torch.tensor([0, 1]),
                     method="integrated_gradients", steps=4)
    arguments.update(bad)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        attribute(**arguments)


def test_a_model_in_training_mode_is_refused():
    with pytest.raises(ExplanationError, match="eval"):
        attribute(_relu_net().train(), *_images(), "saliency")


def test_rank_correlation_agrees_with_scipy_including_ties():
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(3, 50, generator=generator).round()        # many ties
    second = first + torch.randn(3, 50, generator=generator)
    ours = rank_correlation(first, second)
    for row in range(3):
        expected = spearmanr(first[row].numpy(), second[row].numpy()).statistic
        assert abs(float(ours[row]) - expected) < 1e-5
    assert torch.allclose(rank_correlation(first, -first, absolute=True), torch.ones(3))


def test_map_ssim_sees_magnitudes_and_is_one_for_a_rescaled_map():
    maps = torch.randn(2, 1, 28, 28)
    assert torch.allclose(map_ssim(maps, -3 * maps), torch.ones(2), atol=1e-6)
    assert float(map_ssim(maps, torch.randn(2, 1, 28, 28)).max()) < 0.5


def test_randomisation_copies_and_orders_the_layers_from_the_top():
    model = _relu_net()
    layers = randomisable_layers(model)
    assert layers == ["5", "3", "0"]
    damaged = randomise_layers(model, layers[:1], seed=0)
    assert not torch.equal(damaged[5].weight, model[5].weight)
    assert torch.equal(damaged[3].weight, model[3].weight) and torch.equal(damaged[0].weight, model[0].weight)
    assert torch.equal(randomise_layers(model, layers[:1], seed=0)[5].weight, damaged[5].weight), "not seeded"


def test_cascading_randomisation_lowers_the_gradient_correlation_but_not_the_edge_detector():
    model = _relu_net()
    images, targets = _images(count=8)
    result = cascading_randomisation(model, images, targets, methods=("saliency", "edge_detector"), steps=4)
    saliency = result.scores["saliency"]
    assert len(saliency["spearman_abs"]) == len(result.layers) + 1 and saliency["spearman_abs"][0] == 1.0
    assert result.final("saliency", "spearman_abs") < 0.5, saliency
    assert result.final("saliency", "spearman") < 0.5, saliency
    assert result.final("edge_detector", "spearman") == 1.0, "the edge detector ignores the model"
    assert result.maps["saliency"].shape == (len(result.layers) + 1, 4, 1, 12, 12)


def test_edge_map_is_zero_on_a_flat_image_and_alignment_of_a_stroke_is_on_the_digit():
    assert float(edge_map(torch.full((1, 1, 6, 6), 0.3)).abs().max()) < 1e-6
    images = torch.zeros(2, 1, 28, 28)
    images[..., 8:20, 13:15] = 1.0
    assert alignment_scores(images, images)["on_digit"] == 1.0
    far = torch.zeros_like(images)
    far[..., 0:3, 0:3] = 1.0
    assert alignment_scores(far, images)["on_digit"] == 0.0


def test_deleting_the_most_supportive_pixels_lowers_the_probability_faster_than_random():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 3)).eval()
    images, targets = _images(count=16)
    maps = attribute(model, images, targets, "gradient_x_input")
    curve = deletion_curve(model, images, targets, maps, fractions=(0.0, 0.1, 0.3))
    random = deletion_curve(model, images, targets, torch.rand_like(maps), fractions=(0.0, 0.1, 0.3))
    assert curve[0] == random[0] and float(curve.mean()) < float(random.mean())


def test_methods_are_the_three_the_chapter_teaches():
    assert METHODS == ("saliency", "gradient_x_input", "integrated_gradients")


def test_the_study_runs_on_the_shipped_classifiers_in_a_small_setting():
    from aigc_lessons.explain.study import FAST, run_study

    setting = {**FAST, "images": 8, "randomisation_images": 4, "completeness_images": 4, "steps": 4,
               "completeness_steps": [4, 16]}
    record = run_study(setting)
    for model in ("standard", "robust"):
        completeness = record[model]["completeness"]
        assert completeness["captum_delta"][1] < completeness["captum_delta"][0], completeness
        assert record[model]["randomisation"]["edge_detector"]["final"]["spearman"] == 1.0
