"""The first chapter's fully connected GAN: shapes, ranges, losses and its trainer's guards."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons.losses import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating
from aigc_lessons.models import DiscriminatorMLP, GeneratorMLP
from aigc_lessons.train import GanConfig, NonFiniteLossError, count_parameters, train_gan


def test_generator_maps_noise_to_images_in_the_data_range():
    torch.manual_seed(0)
    images = GeneratorMLP(latent_dim=100)(torch.randn(16, 100) * 10)  # large noise pushes tanh to its limits
    assert images.shape == (16, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


def test_discriminator_returns_one_logit_per_image():
    logits = DiscriminatorMLP()(torch.rand(8, 1, 28, 28) * 2 - 1)
    assert logits.shape == (8,), "one unbounded logit per image, to be used with BCEWithLogitsLoss"


def test_layer_sizes_follow_the_source_project():
    # 100-256-512-1024-784 and 784-1024-512-256-1, weights plus biases
    assert count_parameters(GeneratorMLP()) == (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
    assert count_parameters(DiscriminatorMLP()) == (784 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 256 + 256) + (256 + 1)


def test_wrong_shapes_get_clear_errors():
    with pytest.raises(ValueError, match=r"expects noise of shape \(batch, 100\), got \(4, 64\)"):
        GeneratorMLP()(torch.randn(4, 64))
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 1, 28, 28\), got \(4, 784\)"):
        DiscriminatorMLP()(torch.randn(4, 784))


def test_losses_have_their_known_values_at_an_undecided_discriminator():
    zero = torch.zeros(5)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss_nonsaturating(zero).item() == pytest.approx(math.log(2))
    assert generator_loss_saturating(zero).item() == pytest.approx(-math.log(2))


def test_nonsaturating_loss_keeps_its_gradient_when_fakes_are_rejected():
    logits = torch.tensor([-8.0], requires_grad=True)  # D is sure the fake is fake
    (grad_ns,) = torch.autograd.grad(generator_loss_nonsaturating(logits), logits)
    (grad_sat,) = torch.autograd.grad(generator_loss_saturating(logits), logits)
    assert abs(grad_ns.item()) > 0.99 and abs(grad_sat.item()) < 1e-3


def _tiny_data(n: int = 256) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, 1, 28, 28) * 2 - 1


def test_short_training_moves_the_discriminator_loss_and_records_snapshots():
    config = GanConfig(epochs=2, batch_size=32, log_every=2, seed=0)
    history = train_gan(GeneratorMLP(), DiscriminatorMLP(), _tiny_data(), config, device="cpu",
                        snapshot_epochs=[0, 1], progress=False)
    losses = history.series("loss_d")
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert max(losses) - min(losses) > 0.05, f"discriminator loss did not move: {losses}"
    assert [epoch for epoch, _ in history.snapshots] == [0, 1, 2]
    assert history.snapshots[-1][1].shape == (64, 1, 28, 28)


def test_training_is_deterministic_on_cpu():
    runs = []
    for _ in range(2):
        torch.manual_seed(1)  # the initial weights; train_gan seeds the noise and the batch order itself
        history = train_gan(GeneratorMLP(), DiscriminatorMLP(), _tiny_data(), GanConfig(epochs=1, batch_size=64, log_every=1),
                            device="cpu", progress=False)
        runs.append(history.series("loss_g"))
    assert runs[0] == runs[1]


def test_nan_guard_stops_training_and_names_the_step():
    generator, discriminator = GeneratorMLP(), DiscriminatorMLP()
    with torch.no_grad():
        discriminator.net[-1].bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"loss_d = nan at step 0"):
        train_gan(generator, discriminator, _tiny_data(64), GanConfig(epochs=1, batch_size=32, log_every=100),
                  device="cpu", progress=False)


def test_data_in_the_wrong_range_is_refused_with_advice():
    with pytest.raises(ValueError, match=r"looks like data in \[0, 1\].*value_range=\(-1, 1\)"):
        train_gan(GeneratorMLP(), DiscriminatorMLP(), torch.rand(64, 1, 28, 28), GanConfig(epochs=1), device="cpu", progress=False)
