"""Tests of the conditional GAN models, trainer and helpers."""

from __future__ import annotations

import pytest
import torch

from aigc_lessons.models import (
    ConditionalDiscriminator,
    ConditionalDiscriminatorDCGAN,
    ConditionalGenerator,
    ConditionalGeneratorDCGAN,
)
from aigc_lessons.train import CganConfig, class_grid_labels, class_grid_noise, conditional_class_accuracy, train_cgan


def test_generator_shapes_and_range():
    generator = ConditionalGenerator(latent_dim=8, hidden=(16, 32))
    labels = class_grid_labels(10, 2)
    images = generator(torch.randn(20, 8), labels)
    assert images.shape == (20, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("mode", ["concat", "projection"])
def test_discriminator_modes(mode):
    discriminator = ConditionalDiscriminator(mode=mode, hidden=(32, 16))
    logits = discriminator(torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 9]))
    assert logits.shape == (5,)


def test_projection_logit_depends_on_label_through_inner_product():
    torch.manual_seed(0)
    discriminator = ConditionalDiscriminator(mode="projection", hidden=(16,), dropout=0.0).eval()
    x = torch.rand(1, 1, 28, 28)
    features = discriminator.features(x.flatten(1))
    for label in (0, 7):
        expected = discriminator.score(features).squeeze(1) + features @ discriminator.embed.weight[label]
        assert torch.allclose(discriminator(x, torch.tensor([label])), expected, atol=1e-6)


@pytest.mark.parametrize("bad", [torch.tensor([10, 0]), torch.tensor([-1, 0])])
def test_wrong_label_values_give_clear_errors(bad):
    generator = ConditionalGenerator(latent_dim=4, hidden=(8,))
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 9\]"):
        generator(torch.randn(2, 4), bad)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        ConditionalDiscriminator(hidden=(8,))(torch.rand(2, 1, 28, 28), bad)


def test_convolutional_pair_shapes_range_and_label_errors():
    generator, discriminator = ConditionalGeneratorDCGAN(latent_dim=8), ConditionalDiscriminatorDCGAN(channels=8)
    labels = class_grid_labels(10, 2)
    images = generator(torch.randn(20, 8), labels)
    assert images.shape == (20, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert discriminator(images, labels).shape == (20,)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        generator(torch.randn(2, 8), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        discriminator(images[:2], torch.tensor([-1, 0]))


def test_convolutional_projection_is_score_plus_inner_product():
    torch.manual_seed(0)
    discriminator = ConditionalDiscriminatorDCGAN(channels=8).eval()
    x = torch.rand(1, 1, 28, 28)
    features = discriminator.body.features(x)
    for label in (0, 7):
        expected = discriminator.body.readout(features).squeeze(1) + features @ discriminator.embed.weight[label]
        assert torch.allclose(discriminator(x, torch.tensor([label])), expected, atol=1e-5)


def test_label_shape_and_mode_errors():
    generator = ConditionalGenerator(latent_dim=4, hidden=(8,))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        generator(torch.randn(2, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="mode"):
        ConditionalDiscriminator(mode="sum")


def test_grid_helpers():
    assert class_grid_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    z = class_grid_noise(5, num_classes=4, per_class=3, seed=0)
    assert z.shape == (12, 5) and torch.equal(z[:3], z[9:]), "every row must reuse the same noise"


def test_class_accuracy_with_a_perfect_and_a_constant_classifier():
    class Oracle(torch.nn.Module):  # reads the label back from the first pixel
        def forward(self, images):
            return torch.nn.functional.one_hot(images[:, 0, 0, 0].long(), 10).float()

    def sample_fn(labels):
        images = torch.zeros(len(labels), 1, 28, 28)
        images[:, 0, 0, 0] = labels.float()
        return images

    accuracy, per_class = conditional_class_accuracy(Oracle(), sample_fn, per_class=7)
    assert accuracy == 1.0 and per_class.shape == (10,)
    constant = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with torch.no_grad():
        constant[1].weight.zero_()
        constant[1].bias.copy_(torch.arange(10.0) == 3)
    accuracy, per_class = conditional_class_accuracy(constant, sample_fn, per_class=7)
    assert accuracy == pytest.approx(0.1) and per_class[3] == 1.0


def test_training_steps_run_and_reject_bad_inputs():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
    generator, discriminator = ConditionalGenerator(latent_dim=8, hidden=(32,)), ConditionalDiscriminator(hidden=(32,))
    history = train_cgan(generator, discriminator, x, y, CganConfig(epochs=2, batch_size=32, log_every=1),
                         device="cpu", progress=False)
    assert len(history) == 4 and all(torch.isfinite(torch.tensor(history.series("loss_d"))))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train_cgan(generator, discriminator, (x + 1) / 2, y, CganConfig(epochs=1), device="cpu", progress=False)
    with pytest.raises(ValueError, match="one per image"):
        train_cgan(generator, discriminator, x, y[:10], CganConfig(epochs=1), device="cpu", progress=False)


def test_discriminator_learns_to_separate_classes_quickly():
    """A few D steps on 'real' data where the class is visible reduce D's loss."""
    from aigc_lessons.losses import discriminator_loss

    torch.manual_seed(0)
    discriminator = ConditionalDiscriminator(mode="projection", hidden=(32,), dropout=0.0)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-2)
    labels = torch.randint(0, 10, (64,))
    real = torch.zeros(64, 1, 28, 28)
    real.view(64, -1)[torch.arange(64), labels] = 1.0  # class y lights pixel y
    wrong = (labels + 1) % 10  # the same images with the wrong labels play "fake"
    losses = []
    for _ in range(30):
        loss = discriminator_loss(discriminator(real, labels), discriminator(real, wrong))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"


def test_cgan_check():
    from aigc_lessons.checks.conditional import check_one_hot_concat

    def good(z, labels, num_classes=10):
        return torch.cat([z, torch.nn.functional.one_hot(labels, num_classes).float()], dim=1)

    assert check_one_hot_concat(good).passed
    assert not check_one_hot_concat(lambda z, labels, num_classes=10: z).passed


@pytest.mark.slow
def test_conditional_recipes_run_in_fast_mode(mnist_available):
    from aigc_lessons.core import Budget
    from aigc_lessons.models import ConditionalVAE
    from aigc_lessons.recipes import RECIPES

    cvae = RECIPES["cvae_mnist"](Budget(fast=True), torch.device("cpu"), progress=False)
    assert isinstance(cvae.model, ConditionalVAE)
    assert "class_accuracy" in cvae.card["metrics"]
    cgan = RECIPES["cgan_dcgan_mnist"](Budget(fast=True), torch.device("cpu"), progress=False)
    assert isinstance(cgan.model, ConditionalGeneratorDCGAN)
    assert "class_accuracy_by_epoch" in cgan.card["metrics"] or "not measured" in str(cgan.card["metrics"])


def test_shipped_conditional_models_follow_their_labels():
    from aigc_lessons import pretrained

    for name in ("cgan_mnist", "cgan_dcgan_mnist"):
        if not pretrained.exists(name):
            continue
        generator = pretrained.load(name).eval()
        labels = class_grid_labels(10, 3)
        with torch.no_grad():
            images = generator(torch.randn(len(labels), generator.latent_dim), labels)
        assert images.shape == (30, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
        metrics = pretrained.card(name)["card"]["metrics"]
        assert isinstance(metrics["class_accuracy"], float) and metrics["judge"] == "classifier_mnist"
