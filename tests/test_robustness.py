"""Tests of the adversarial-robustness package (aigc_lessons.robustness): attacks, checks, training, inversion."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aigc_lessons.models.robust_classifier import RobustMnistCNN
from aigc_lessons.robustness import (AdversarialTrainingConfig, AttackError, accuracy_under_attack,
                                     accuracy_vs_epsilon, fgsm, pgd, predict, train_adversarial)
from aigc_lessons.robustness.gradient_masking import ScaledLogits, masking_checks, transfer_accuracy
from aigc_lessons.robustness.inversion import invert_in_latent, invert_in_pixels, score_inversion


def _linear_model(seed: int = 0, classes: int = 2, pixels: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(pixels, classes)).eval()


def _small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3)).eval()


def _cross_entropy(model, images, labels):
    with torch.no_grad():
        return F.cross_entropy(model(images), labels, reduction="none")


# --------------------------------------------------------------------------- known answers


def test_fgsm_on_a_linear_model_moves_every_pixel_by_epsilon_along_the_sign_of_the_weight_difference():
    # two classes, logits W x + b: grad_x CE = p_other (w_other - w_label), so the sign of the step is
    # sign(w_other - w_label) in every pixel. Images at 0.5 so that no pixel is clipped.
    model = _linear_model()
    weight = model[1].weight.detach()
    images, labels = torch.full((2, 1, 4, 4), 0.5), torch.tensor([0, 1])
    step = fgsm(model, images, labels, epsilon=0.1) - images
    expected = torch.stack([(weight[1] - weight[0]).sign(), (weight[0] - weight[1]).sign()]).view(2, 1, 4, 4)
    assert torch.allclose(step, 0.1 * expected, atol=1e-6), "FGSM must be epsilon * sign(w_other - w_label)"


def test_fgsm_is_the_exact_worst_case_of_a_binary_linear_model_and_pgd_finds_the_same_loss():
    # the loss of a binary linear model depends on x only through the margin, a linear function:
    # its maximum over the box is the FGSM vertex, and PGD with enough steps reaches it too
    model = _linear_model(seed=1)
    images, labels = torch.full((4, 1, 4, 4), 0.5), torch.tensor([0, 1, 0, 1])
    fgsm_loss = _cross_entropy(model, fgsm(model, images, labels, 0.2), labels)
    pgd_loss = _cross_entropy(model, pgd(model, images, labels, 0.2, steps=40, step_size=0.02), labels)
    assert torch.allclose(pgd_loss, fgsm_loss, atol=1e-4), (pgd_loss, fgsm_loss)


def test_pgd_stays_in_the_epsilon_ball_and_the_pixel_range():
    model = _small_mlp()
    images = torch.cat([torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), torch.rand(4, 1, 4, 4)])
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for restarts in (1, 3):
        adversarial = pgd(model, images, labels, epsilon=0.25, steps=7, restarts=restarts)
        assert (adversarial - images).abs().max() <= 0.25 + 1e-6, "PGD left the epsilon-ball"
        assert adversarial.min() >= 0 and adversarial.max() <= 1, "PGD left the pixel range [0, 1]"


def test_pgd_loss_is_at_least_the_fgsm_loss_and_restarts_never_raise_accuracy():
    model = _small_mlp(seed=2)
    torch.manual_seed(3)
    images, labels = torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,))
    fgsm_loss = _cross_entropy(model, fgsm(model, images, labels, 0.1), labels).mean()
    pgd_loss = _cross_entropy(model, pgd(model, images, labels, 0.1, steps=20), labels).mean()
    assert pgd_loss >= fgsm_loss - 1e-4, f"PGD-20 loss {pgd_loss:.4f} below FGSM {fgsm_loss:.4f}"
    one = accuracy_under_attack(model, images, labels, 0.05, "pgd", steps=5, restarts=1)
    many = accuracy_under_attack(model, images, labels, 0.05, "pgd", steps=5, restarts=4)
    clean = float((predict(model, images) == labels).float().mean())
    assert many <= one <= clean, (clean, one, many)


def test_attacks_are_reproducible_with_a_seed():
    model = _small_mlp()
    images, labels = torch.rand(16, 1, 4, 4), torch.randint(0, 3, (16,))
    first = accuracy_vs_epsilon(model, images, labels, [0, 0.05, 0.1], "pgd", steps=3, seed=5)
    assert first == accuracy_vs_epsilon(model, images, labels, [0, 0.05, 0.1], "pgd", steps=3, seed=5)


# --------------------------------------------------------------------------- clear errors


@pytest.mark.parametrize("epsilon", [0, -0.1, float("nan"), float("inf"), True])
def test_epsilon_must_be_positive_and_finite(epsilon):
    model = _linear_model()
    with pytest.raises(AttackError, match="epsilon must be a finite number > 0"):
        pgd(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), epsilon)


def test_images_outside_zero_one_are_refused_with_the_fix():
    model = _linear_model()
    standardised = (torch.rand(2, 1, 4, 4) - 0.1307) / 0.3081
    with pytest.raises(AttackError, match=r"pixels in \[0, 1\].*inside the model"):
        fgsm(model, standardised, torch.tensor([0, 1]), 0.1)


def test_a_model_in_training_mode_is_refused():
    model = _linear_model().train()
    with pytest.raises(AttackError, match="model.eval"):
        pgd(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 0.1)


def test_a_model_that_returns_probabilities_is_refused():
    model = nn.Sequential(_linear_model(), nn.Softmax(dim=1)).eval()
    with pytest.raises(AttackError, match="probabilities.*remove the final softmax"):
        fgsm(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 0.1)


@pytest.mark.parametrize("model, labels, message", [
    (nn.Sequential(nn.Flatten(), nn.Linear(16, 1)), torch.tensor([0, 0]), "logits of shape"),
    (nn.Sequential(nn.Identity()), torch.tensor([0, 0]), "logits of shape"),
    (nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.tensor([0, 2]), r"class indices in \[0, 1\]"),
    (nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.tensor([0.0, 1.0]), "integer tensor"),
])
def test_a_wrong_model_or_wrong_labels_are_refused(model, labels, message):
    model.eval()
    with pytest.raises(AttackError, match=message):
        pgd(model, torch.rand(2, 1, 4, 4), labels, 0.1)


@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "steps must be an integer >= 1"), ({"restarts": 0}, "restarts must be an integer >= 1"),
    ({"step_size": 0.0}, "step_size must be a finite number > 0"),
])
def test_pgd_settings_are_checked(options, message):
    with pytest.raises(AttackError, match=message):
        pgd(_linear_model(), torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 0.1, **options)


@pytest.mark.parametrize("settings, message", [
    ({"epsilon": 0.0}, "option epsilon must be a number > 0"), ({"epsilon": 1.5}, r"epsilon must be in \(0, 1\]"),
    ({"step_ratio": -1.0}, "option step_ratio must be a number > 0"), ({"epochs": 0}, "option epochs"),
    ({"lr_max": float("nan")}, "option lr_max"), ({"check_steps": 0}, "option check_steps"),
])
def test_training_settings_are_checked(settings, message):
    with pytest.raises(AttackError, match=message):
        AdversarialTrainingConfig(**settings)


# --------------------------------------------------------------------------- gradient masking


def test_a_model_with_saturated_logits_is_caught_by_the_masking_checks():
    # x100 logits keep every prediction but zero the gradients of confidently classified images:
    # the white-box attack fails, the unbounded attack does not reach 0, the transfer attack beats it
    torch.manual_seed(0)
    base = _linear_model(seed=4)
    images = torch.rand(64, 1, 4, 4)
    labels = predict(base, images)  # every image classified "correctly" by construction
    masked = ScaledLogits(base, 1e4).eval()
    assert torch.equal(predict(masked, images), labels)
    report = masking_checks(masked, images, labels, [0.1, 0.3], steps=10, more_steps=20, restarts=2,
                            surrogate=base)
    assert not report.checks["unbounded_reaches_zero"], str(report)
    assert not report.checks["transfer_not_stronger"], str(report)
    honest = masking_checks(base, images, labels, [0.1, 0.3], steps=10, more_steps=20, restarts=2,
                            surrogate=base)
    assert honest.checks["unbounded_reaches_zero"] and honest.checks["fgsm_not_stronger"], str(honest)
    assert transfer_accuracy(base, base, images, labels, 0.3, steps=10) <= report.measurements["transfer"] + 1e-9


# --------------------------------------------------------------------------- adversarial training


def _two_digit_mnist(count: int):
    from aigc_lessons.data import load_mnist

    train = load_mnist("train", subset=6000)
    keep = (train.labels == 0) | (train.labels == 1)
    return train.images[keep][:count], train.labels[keep][:count]


def test_a_short_adversarial_training_run_beats_standard_training_under_pgd(mnist_available):
    images, labels = _two_digit_mnist(700)
    train_images, train_labels, check_images, check_labels = images[:600], labels[:600], images[600:], labels[600:]
    torch.manual_seed(0)
    standard = RobustMnistCNN(channels=(4, 8), hidden=16)
    optimizer = torch.optim.Adam(standard.parameters(), lr=5e-3)
    for _ in range(3):
        for start in range(0, 600, 50):
            loss = F.cross_entropy(standard(train_images[start:start + 50]), train_labels[start:start + 50])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    standard.eval()
    config = AdversarialTrainingConfig(epsilon=0.3, epochs=3, batch_size=50, check_steps=5, lr_max=5e-3)
    result = train_adversarial(RobustMnistCNN(channels=(4, 8), hidden=16), train_images, train_labels,
                               check_images, check_labels, config, progress=False)
    assert len(result.epochs) == 3 and result.best_epoch >= 1 and not result.model.training
    robust_pgd = accuracy_under_attack(result.model, check_images, check_labels, 0.3, "pgd", steps=10)
    standard_pgd = accuracy_under_attack(standard, check_images, check_labels, 0.3, "pgd", steps=10)
    assert robust_pgd >= standard_pgd + 0.3, f"adversarial training {robust_pgd:.2f} vs standard {standard_pgd:.2f}"
    assert result.images_per_second > 0


def test_the_early_stop_restores_the_most_robust_weights(mnist_available, monkeypatch):
    # a scripted PGD check: 0.5, 0.7, then a collapse to 0.1 (catastrophic overfitting) -> stop, keep epoch 2
    from aigc_lessons.robustness import adversarial_training as module

    values = iter([0.5, 0.7, 0.1, 0.1])
    states = []
    real = module.accuracy_under_attack

    def scripted(model, images, labels, epsilon, attack="pgd", **options):
        if attack == "pgd":
            states.append({k: v.clone() for k, v in model.state_dict().items()})
            return next(values)
        return real(model, images, labels, epsilon, attack, **options)

    monkeypatch.setattr(module, "accuracy_under_attack", scripted)
    images, labels = _two_digit_mnist(120)
    config = AdversarialTrainingConfig(epochs=4, batch_size=60, check_steps=1, overfit_drop=0.2)
    result = train_adversarial(RobustMnistCNN(channels=(2, 2), hidden=4), images[:100], labels[:100],
                               images[100:], labels[100:], config, progress=False)
    assert result.catastrophic_overfitting and result.stopped_early and len(result.epochs) == 3
    assert result.best_epoch == 2
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, states[1][key]), f"{key} is not the weights of the best epoch"


# --------------------------------------------------------------------------- inversion


def test_latent_inversion_raises_the_target_confidence_and_pixel_inversion_reuses_feature_vis():
    torch.manual_seed(0)
    classifier = RobustMnistCNN(channels=(4, 8), hidden=16).eval()
    decoder = nn.Sequential(nn.Linear(3, 784), nn.Sigmoid())
    decode = lambda z: decoder(z).view(-1, 1, 28, 28)  # noqa: E731
    classes = [0, 3, 7]
    before = score_inversion(classifier, invert_in_latent(classifier, decode, 3, classes, steps=0))
    after = invert_in_latent(classifier, decode, 3, classes, steps=30, lr=0.1)
    assert score_inversion(classifier, after)["confidence"] > before["confidence"]
    assert after.latents.shape == (3, 3) and after.images.min() >= 0 and after.images.max() <= 1
    pixels = invert_in_pixels(classifier, classes, steps=10)
    assert score_inversion(classifier, pixels)["confidence"] > before["confidence"]
    with pytest.raises(AttackError, match="classes must be"):
        invert_in_pixels(classifier, [10])


def test_robust_mnist_recipe_runs_in_fast_mode_and_its_card_names_its_split():
    """The recipe end to end (the card is written after training, so a slip there shows only when it runs)."""
    from aigc_lessons.core import Budget
    from aigc_lessons.recipes import RECIPES

    result = RECIPES["robust_mnist"](Budget(fast=True), torch.device("cpu"), progress=False)
    assert result.card["data"].startswith("MNIST, 2000 training images; check batch: 100 held")
    assert 0 <= result.card["metrics"]["pgd20_accuracy"] <= result.card["metrics"]["clean_accuracy"] <= 1
