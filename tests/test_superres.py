"""Tests of the super-resolution model, degradation, trainer, metrics use, checks and pretrained entries."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons.models.superres import EDSR, clamp_unit, degrade, upscale_bicubic
from aigc_lessons.train.superres import (
    SuperResConfig,
    evaluate_bicubic,
    evaluate_superres,
    pixel_loss,
    train_superres,
    upscale,
)

ENTRIES = ("edsr_x4_mnist", "edsr_x2_mnist", "srgan_x4_mnist")


@pytest.mark.parametrize("scale", [2, 4])
def test_degrade_and_upscale_sizes_round_trip(scale):
    high = torch.rand(3, 1, 28, 28)
    low = degrade(high, scale)
    assert low.shape == (3, 1, 28 // scale, 28 // scale)
    assert upscale_bicubic(low, scale).shape == high.shape
    assert EDSR(scale=scale, channels=8, blocks=1)(low).shape == high.shape


def test_degrade_keeps_constant_images_and_averages():
    flat = torch.full((1, 1, 28, 28), 0.3)
    assert torch.allclose(degrade(flat, 4), torch.full((1, 1, 7, 7), 0.3), atol=1e-5), \
        "a constant image must stay constant (the antialiasing filter's weights sum to 1)"
    # antialiasing: a one-pixel checkerboard averages to grey instead of aliasing to black or white
    checker = ((torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2).float().view(1, 1, 28, 28)
    low = degrade(checker, 4)[..., 1:-1, 1:-1]  # away from the border
    assert torch.allclose(low, torch.full_like(low, 0.5), atol=0.02), f"checkerboard -> {low.min():.3f}..{low.max():.3f}"


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="scale must be one of"):
        EDSR(scale=5)
    with pytest.raises(ValueError, match="not divisible"):
        degrade(torch.rand(1, 1, 30, 30), 4)
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        EDSR(scale=2)(torch.rand(14, 14))
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        degrade(torch.rand(2, 3, 28, 28), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_superres(EDSR(scale=2, channels=4, blocks=0), torch.rand(8, 1, 28, 28) * 2 - 1,
                       SuperResConfig(epochs=1), device="cpu", progress=False)
    with pytest.raises(ValueError, match="discriminator"):
        train_superres(EDSR(scale=2, channels=4, blocks=0), torch.rand(8, 1, 28, 28),
                       SuperResConfig(epochs=1, adversarial_weight=0.1), device="cpu", progress=False)
    with pytest.raises(ValueError, match="pixel_loss"):
        SuperResConfig(pixel_loss="l3")


def test_global_skip_starts_from_bicubic():
    torch.manual_seed(0)
    model = EDSR(scale=4, channels=8, blocks=2)
    for layer in (model.tail,):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    low = torch.rand(2, 1, 7, 7)
    assert torch.allclose(model(low), upscale_bicubic(low, 4), atol=1e-6), \
        "with a zero tail the network must return exactly the bicubic upsample"


def test_pixel_losses_known_values():
    out, target = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2)
    assert pixel_loss(out, target, "l1").item() == pytest.approx(0.5)
    assert pixel_loss(out, target, "l2").item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same shape"):
        pixel_loss(out, torch.zeros(1, 1, 4, 4))


def test_training_reduces_the_loss_and_beats_bicubic_on_training_digits():
    torch.manual_seed(0)
    # blurry blobs: smooth images a small network can learn to upscale in a few steps
    base = torch.rand(128, 1, 7, 7)
    images = clamp_unit(upscale_bicubic(base, 4)).clamp(0, 1)
    model = EDSR(scale=4, channels=16, blocks=1)
    low = degrade(images, 4)
    before = pixel_loss(upscale(model, low), images).item()
    history = train_superres(model, images, SuperResConfig(epochs=8, batch_size=32, lr=2e-3, log_every=4),
                             device="cpu", progress=False)
    after = pixel_loss(upscale(model, low), images).item()
    assert after < 0.8 * before, f"L1 went from {before:.4f} to {after:.4f}: training does not learn"
    assert len(history.series("loss")) > 0


def test_srgan_step_updates_both_networks():
    from aigc_lessons.models.dcgan import DiscriminatorDCGAN

    torch.manual_seed(0)
    generator, discriminator = EDSR(scale=4, channels=8, blocks=1), DiscriminatorDCGAN(channels=8)
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    history = train_superres(generator, torch.rand(16, 1, 28, 28),
                             SuperResConfig(epochs=1, batch_size=8, adversarial_weight=0.1, log_every=1),
                             discriminator=discriminator, device="cpu", progress=False)
    assert set(history.rows[-1]) >= {"loss_d", "loss_g", "pixel", "adversarial"}
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters()))


def test_evaluation_scores_identity_and_bicubic():
    targets = torch.rand(4, 1, 28, 28)
    noisy = clamp_unit(targets + 0.1 * torch.randn_like(targets))
    scores = evaluate_superres(noisy, targets, fd=False)
    assert 15 < scores["psnr"] < 25 and scores["ssim"] < 1 and scores["count"] == 4
    assert math.isinf(evaluate_superres(targets, targets, fd=False)["psnr"])


def test_bicubic_psnr_on_real_digits_is_sane(mnist_available):
    from aigc_lessons.data import load_mnist

    test = load_mnist("test", subset=200)
    x2 = evaluate_bicubic(test.images, 2, fd=False)
    x4 = evaluate_bicubic(test.images, 4, fd=False)
    assert 17 < x2["psnr"] < 24 and 12 < x4["psnr"] < 17, f"bicubic PSNR x2 {x2['psnr']:.2f}, x4 {x4['psnr']:.2f}"
    assert x2["ssim"] > x4["ssim"], "losing more pixels (x4) must lose more structure than x2"


def test_superres_checks_accept_reference_and_reject_wrong_answers():
    from aigc_lessons.checks.superres import check_pixel_shuffle, check_psnr

    def psnr(outputs, targets):
        return 10 * torch.log10(1 / (outputs - targets).pow(2).flatten(1).mean(1))

    assert check_psnr(psnr).passed
    batch_mse = check_psnr(lambda o, t: 10 * torch.log10(1 / (o - t).pow(2).mean()))
    assert not batch_mse.passed and any("whole batch" in m for m in batch_mse.messages)
    natural_log = check_psnr(lambda o, t: 10 * torch.log(1 / (o - t).pow(2).flatten(1).mean(1)))
    assert not natural_log.passed and any("log10" in m for m in natural_log.messages)
    assert check_psnr(lambda o, t: None).status == "not attempted"

    def shuffle(features, r):
        b, c, h, w = features.shape
        return features.view(b, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // (r * r), h * r, w * r)

    assert check_pixel_shuffle(shuffle).passed
    wrong = check_pixel_shuffle(lambda f, r: f.reshape(f.shape[0], f.shape[1] // (r * r), f.shape[2] * r, f.shape[3] * r))
    assert not wrong.passed and any("wrong places" in m for m in wrong.messages)


@pytest.mark.parametrize("name", ENTRIES)
def test_pretrained_entries_load_verify_and_state_their_scores(name):
    from aigc_lessons import pretrained

    if not pretrained.exists(name):
        pytest.skip(f"{name} not trained yet: python -m aigc_lessons.recipes {name}")
    pretrained.verify(name)
    model = pretrained.load(name)
    assert isinstance(model, EDSR)
    assert model(torch.rand(2, 1, 28 // model.scale, 28 // model.scale)).shape == (2, 1, 28, 28)
    card = pretrained.card(name)["card"]
    metrics, bicubic = card["metrics"], card["bicubic_baseline"]
    assert metrics["count"] == 10_000, "the card must report the full test set"
    assert metrics["psnr"] > bicubic["psnr"], f"{name}: PSNR {metrics['psnr']} not above bicubic {bicubic['psnr']}"
    assert metrics["class_accuracy"] > bicubic["class_accuracy"]


def test_pretrained_edsr_beats_bicubic_on_a_test_subset(mnist_available):
    from aigc_lessons import pretrained
    from aigc_lessons.data import load_mnist

    if not pretrained.exists("edsr_x4_mnist"):
        pytest.skip("edsr_x4_mnist not trained yet")
    test = load_mnist("test", subset=200)
    model = pretrained.load("edsr_x4_mnist")
    ours = evaluate_superres(upscale(model, degrade(test.images, 4)), test.images, fd=False)
    bicubic = evaluate_bicubic(test.images, 4, fd=False)
    assert ours["psnr"] > bicubic["psnr"] + 1.0, f"EDSR {ours['psnr']:.2f} dB vs bicubic {bicubic['psnr']:.2f} dB"


@pytest.mark.slow
def test_superres_recipes_run_in_fast_mode(mnist_available):
    from aigc_lessons.core import Budget
    from aigc_lessons.recipes import RECIPES

    result = RECIPES["edsr_x2_mnist"](Budget(fast=True), torch.device("cpu"), progress=False)
    assert isinstance(result.model, EDSR) and result.model.scale == 2
    assert result.card["metrics"]["psnr"] > result.card["bicubic_baseline"]["psnr"]
