"""DCGAN models, the stabilisation options of gan_step/train_gan, and the chapters' exercise checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aigc_lessons import pretrained
from aigc_lessons.losses import discriminator_loss, generator_loss_nonsaturating
from aigc_lessons.models import MODEL_CLASSES, build_model
from aigc_lessons.models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
from aigc_lessons.train import GanConfig, count_parameters, gan_step, train_gan


def images(batch: int = 8) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28) * 2 - 1


def adam(module: nn.Module, lr: float = 2e-4) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.999))


# ---- models -------------------------------------------------------------------------------------


def test_generator_maps_noise_to_images_in_the_data_range():
    torch.manual_seed(0)
    out = GeneratorDCGAN(latent_dim=100)(torch.randn(16, 100) * 10)
    assert out.shape == (16, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("options", [{}, {"batch_norm": False}, {"spectral_norm": True},
                                     {"batch_norm": False, "spectral_norm": True}])
def test_discriminator_returns_one_logit_per_image(options):
    logits = DiscriminatorDCGAN(**options)(images(5))
    assert logits.shape == (5,), f"{options}: one logit per image, like DiscriminatorMLP"


def test_parameter_counts_match_the_layer_arithmetic():
    c, wide = 32, 64
    generator = (100 * wide * 49) + 2 * wide * 49 + (wide * c * 16) + 2 * c + (c * 16 + 1)
    discriminator = (1 * c * 16 + c) + (c * wide * 16) + 2 * wide + (wide * 49 + 1)
    assert count_parameters(GeneratorDCGAN(channels=c)) == generator == 353_217
    assert count_parameters(DiscriminatorDCGAN(channels=c)) == discriminator == 36_577
    # without batch norm the second convolution gets its bias back
    assert count_parameters(DiscriminatorDCGAN(channels=c, batch_norm=False)) == discriminator - 2 * wide + wide


def test_weights_follow_the_dcgan_initialisation():
    torch.manual_seed(0)
    weight = GeneratorDCGAN(channels=32).upsample[0].weight
    assert abs(weight.std().item() - 0.02) < 0.002 and abs(weight.mean().item()) < 0.002


def test_wrong_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"noise of shape \(batch, 100\)"):
        GeneratorDCGAN()(torch.randn(4, 64))
    with pytest.raises(ValueError, match=r"images of shape \(batch, 1, 28, 28\)"):
        DiscriminatorDCGAN()(torch.rand(4, 784))


def test_spectral_norm_makes_every_weight_matrix_norm_one():
    torch.manual_seed(0)
    discriminator = DiscriminatorDCGAN(spectral_norm=True, batch_norm=False)
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward pass runs one power-iteration step
            discriminator(images(4))
    discriminator.eval()
    layers = [discriminator.features[0], discriminator.features[2], discriminator.readout]
    for layer in layers:
        matrix = layer.weight.reshape(layer.weight.shape[0], -1)
        sigma = torch.linalg.matrix_norm(matrix, ord=2).item()
        assert abs(sigma - 1.0) < 1e-2, f"largest singular value {sigma:.4f} after spectral normalisation"
    plain = DiscriminatorDCGAN(batch_norm=False)
    first = plain.features[0].weight.reshape(32, -1)  # (32, 16) with N(0, 0.02) entries: far below 1
    assert torch.linalg.matrix_norm(first, ord=2).item() < 0.5


def test_models_are_registered_and_build_by_name():
    assert MODEL_CLASSES["GeneratorDCGAN"] is GeneratorDCGAN
    assert MODEL_CLASSES["DiscriminatorDCGAN"] is DiscriminatorDCGAN
    assert build_model("GeneratorDCGAN", latent_dim=16, channels=8)(torch.randn(2, 16)).shape == (2, 1, 28, 28)


# ---- gan_step options ---------------------------------------------------------------------------


def test_default_step_is_the_first_chapters_step():
    """With the defaults, gan_step computes exactly the BCE losses of the first chapter."""
    torch.manual_seed(0)
    generator, discriminator = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    real = images()
    state = torch.get_rng_state()
    out = gan_step(generator, discriminator, adam(generator), adam(discriminator), real, 100)
    assert sorted(out) == ["loss_d", "loss_g"]
    # Recompute the discriminator loss from the same noise and the initial weights.
    torch.manual_seed(0)
    generator2, discriminator2 = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    torch.set_rng_state(state)
    fake = generator2(torch.randn(8, 100))
    expected = discriminator_loss(discriminator2(real), discriminator2(fake.detach()))
    assert torch.allclose(out["loss_d"], expected.detach(), atol=1e-6)


def test_label_smoothing_changes_only_the_real_targets():
    torch.manual_seed(0)
    generator, discriminator = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    real = images()
    state = torch.get_rng_state()
    smoothed = gan_step(generator, discriminator, adam(generator), adam(discriminator), real, 100, 0.9)
    torch.manual_seed(0)
    generator2, discriminator2 = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    torch.set_rng_state(state)
    fake = generator2(torch.randn(8, 100))
    expected = discriminator_loss(discriminator2(real), discriminator2(fake.detach()), real_label=0.9)
    assert torch.allclose(smoothed["loss_d"], expected.detach(), atol=1e-6)


def test_wgan_gp_step_reports_its_parts_consistently():
    torch.manual_seed(0)
    generator, critic = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8, batch_norm=False)
    out = gan_step(generator, critic, adam(generator), adam(critic), images(), 100, loss="wgan-gp", gp_weight=10.0)
    assert sorted(out) == ["loss_d", "loss_g", "penalty", "wasserstein"]
    # loss_d = E[f(fake)] - E[f(real)] + 10 * penalty = -wasserstein + 10 * penalty
    assert torch.allclose(out["loss_d"], -out["wasserstein"] + 10.0 * out["penalty"], atol=1e-5)
    assert out["penalty"] >= 0


def test_wgan_gp_refuses_batch_norm_and_label_smoothing():
    generator, critic = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    with pytest.raises(ValueError, match="without batch normalisation"):
        gan_step(generator, critic, adam(generator), adam(critic), images(), 100, loss="wgan-gp")
    plain = DiscriminatorDCGAN(channels=8, batch_norm=False)
    with pytest.raises(ValueError, match="label smoothing"):
        gan_step(generator, plain, adam(generator), adam(plain), images(), 100, 0.9, loss="wgan-gp")
    with pytest.raises(ValueError, match="loss must be one of"):
        GanConfig(loss="hinge")
    with pytest.raises(ValueError, match="discriminator_steps must be a positive integer"):
        GanConfig(discriminator_steps=0)


def test_discriminator_only_step_leaves_the_generator_unchanged():
    torch.manual_seed(0)
    generator, discriminator = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    before = [p.detach().clone() for p in generator.parameters()]
    out = gan_step(generator, discriminator, adam(generator), adam(discriminator), images(), 100,
                   update_generator=False)
    assert "loss_g" not in out
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def test_generator_loss_is_non_saturating_in_the_default_step():
    fake_logits = torch.tensor([-8.0, -8.0])  # D confidently rejects the fakes
    logits = fake_logits.clone().requires_grad_(True)
    generator_loss_nonsaturating(logits).backward()
    assert logits.grad.abs().min() > 0.4, "the non-saturating loss keeps a strong gradient when D wins"


# ---- train_gan options --------------------------------------------------------------------------


def test_several_critic_steps_per_generator_step():
    data = images(64)
    config = GanConfig(epochs=1, batch_size=16, loss="wgan-gp", discriminator_steps=2, log_every=1,
                       betas=(0.0, 0.9))
    history = train_gan(GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8, batch_norm=False), data, config,
                        device="cpu", progress=False)
    assert [row["step"] for row in history.rows] == [1, 2, 3, 4]
    assert [("loss_g" in row) for row in history.rows] == [False, True, False, True]


def test_cpu_time_budget_stops_after_a_complete_epoch():
    config = GanConfig(epochs=50, batch_size=32, cpu_seconds=0.0, log_every=1)
    history = train_gan(GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8), images(64), config,
                        device="cpu", progress=False)
    assert history.rows[-1]["epoch"] == 1 and history.rows[-1]["step"] == 2
    assert [epoch for epoch, _ in history.snapshots] == [1]
    assert history.cpu_seconds > 0


# ---- pretrained weights and the exercise checks -------------------------------------------------


@pytest.mark.skipif(not pretrained.exists("dcgan_mnist"), reason="dcgan_mnist weights not trained yet")
def test_pretrained_dcgan_loads_and_samples_digits_in_range():
    generator = pretrained.load("dcgan_mnist")
    assert isinstance(generator, GeneratorDCGAN)
    record = pretrained.card("dcgan_mnist")
    assert record["dtype"] == "float16" and record["bytes"] < 2_000_000
    with torch.no_grad():
        samples = generator(torch.randn(64, 100, generator=torch.Generator().manual_seed(0)))
    assert samples.shape == (64, 1, 28, 28) and samples.min() >= -1 and samples.max() <= 1
    # MNIST digits are mostly background: a trained generator's mean pixel is well below 0.
    assert samples.mean() < -0.5, f"mean pixel {samples.mean():.3f}: samples do not look like MNIST"


def test_generator_block_check_accepts_the_reference_and_explains_mistakes():
    from aigc_lessons.checks.dcgan import check_generator_block

    def reference(in_channels, out_channels):
        return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
                             nn.BatchNorm2d(out_channels), nn.ReLU())

    def wrong_kernel(in_channels, out_channels):
        return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 3, 2, 1), nn.ReLU())

    assert check_generator_block(reference).passed
    result = check_generator_block(wrong_kernel)
    assert not result.passed and 0 < result.score < 1
    text = "\n".join(result.messages)
    assert "doubles the resolution" in text and "bias=False" in text and "BatchNorm2d" in text
    assert check_generator_block(lambda i, o: None).status == "not attempted"


def test_gradient_penalty_check_accepts_the_package_and_explains_mistakes():
    from aigc_lessons.checks.dcgan import check_gradient_penalty
    from aigc_lessons.losses import gradient_penalty

    assert check_gradient_penalty(gradient_penalty).passed

    def no_graph(critic, real, fake):
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grads,) = torch.autograd.grad(critic(mixed).sum(), mixed)  # no create_graph
        return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()

    result = check_gradient_penalty(no_graph)
    assert not result.passed and any("create_graph" in m for m in result.messages)
    assert check_gradient_penalty(lambda c, r, f: None).status == "not attempted"


def test_spectral_norm_check_accepts_power_iteration_and_spots_the_frobenius_norm():
    from aigc_lessons.checks.dcgan import check_spectral_norm_estimate

    def power_iteration(weight, steps):
        matrix = weight.reshape(weight.shape[0], -1)
        v = torch.ones(matrix.shape[1])
        for _ in range(steps):
            v = matrix.T @ (matrix @ v)
            v = v / v.norm()
        return (matrix @ v).norm().item()

    assert check_spectral_norm_estimate(power_iteration).passed
    result = check_spectral_norm_estimate(lambda weight, steps: weight.norm().item())
    assert not result.passed and any("Frobenius" in m for m in result.messages)
