"""Mixed precision: ``precision="bf16"`` runs the forward passes in bfloat16 autocast, nothing else changes."""

from __future__ import annotations

import pytest
import torch

from aigc_lessons.core import PRECISIONS, cpu_bfloat16_units, mixed_precision
from aigc_lessons.models import ConditionalDiscriminator, ConditionalGenerator, VAE
from aigc_lessons.models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
from aigc_lessons.train import CganConfig, GanConfig, VaeConfig, gan_step, train_cgan, train_vae


def test_autocast_is_on_only_for_bf16():
    weight = torch.randn(2, 1, 3, 3)
    with mixed_precision("cpu", "fp32"):
        assert torch.nn.functional.conv2d(torch.randn(1, 1, 5, 5), weight).dtype == torch.float32
    with mixed_precision("cpu", "bf16"):
        assert torch.nn.functional.conv2d(torch.randn(1, 1, 5, 5), weight).dtype == torch.bfloat16
    assert PRECISIONS == ("fp32", "bf16")


@pytest.mark.parametrize("make", [lambda: mixed_precision("cpu", "fp16"), lambda: GanConfig(precision="half"),
                                  lambda: VaeConfig(precision="fp16"), lambda: CganConfig(precision="float16")])
def test_an_unknown_precision_is_refused_with_the_choices(make):
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16'\)"):
        make()


def _dcgan_step(precision: str) -> tuple[dict, GeneratorDCGAN, DiscriminatorDCGAN, dict]:
    torch.manual_seed(0)
    generator, discriminator = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8)
    before = {name: p.detach().clone() for name, p in generator.named_parameters()}
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    torch.manual_seed(1)
    losses = gan_step(generator, discriminator, opt_g, opt_d, real, 100, precision=precision)
    return losses, generator, discriminator, before


def test_a_bf16_gan_step_keeps_float32_parameters_and_matches_the_float32_losses():
    losses_bf16, generator, discriminator, before = _dcgan_step("bf16")
    losses_fp32, *_ = _dcgan_step("fp32")
    for module in (generator, discriminator):
        assert all(p.dtype == torch.float32 for p in module.parameters())  # master weights stay float32
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses_bf16.values())
    moved = [name for name, p in generator.named_parameters() if not torch.equal(p, before[name])]
    assert moved, "the generator was not updated"
    for name in ("loss_d", "loss_g"):  # bfloat16 keeps 2-3 significant digits
        assert losses_bf16[name].item() == pytest.approx(losses_fp32[name].item(), rel=0.03)


def test_vae_and_cgan_trainers_run_in_bf16(mnist_available):
    from aigc_lessons.data import load_mnist

    data = load_mnist("train", value_range=(0, 1), subset=256)
    history = train_vae(VAE(latent_dim=4), data.images, VaeConfig(epochs=1, batch_size=64, precision="bf16"),
                        device="cpu", progress=False)
    assert history.rows and all(torch.isfinite(torch.tensor(row["loss"])) for row in history.rows)
    images = data.images * 2 - 1
    history = train_cgan(ConditionalGenerator(), ConditionalDiscriminator(), images, data.labels,
                         CganConfig(epochs=1, batch_size=64, precision="bf16"), device="cpu", progress=False)
    assert set(history.rows[-1]) >= {"loss_d", "loss_g"}


def test_cpu_bfloat16_units_lists_only_known_flags():
    units = cpu_bfloat16_units()
    assert units is None or set(units) <= {"amx_bf16", "avx512_bf16"}


def test_the_wgan_gp_penalty_survives_bf16():
    """The gradient penalty differentiates twice through the critic; in bfloat16 it must stay close to float32."""
    results = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        generator, critic = GeneratorDCGAN(channels=8), DiscriminatorDCGAN(channels=8, batch_norm=False)
        opt_g = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.0, 0.9))
        opt_d = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))
        real = torch.rand(16, 1, 28, 28) * 2 - 1
        torch.manual_seed(1)
        results[precision] = gan_step(generator, critic, opt_g, opt_d, real, 100, loss="wgan-gp", precision=precision)
    assert torch.isfinite(results["bf16"]["penalty"])
    assert results["bf16"]["penalty"].item() == pytest.approx(results["fp32"]["penalty"].item(), rel=0.01)
