"""Diffusion: the forward process against its closed form, samplers against an exact noise predictor."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aigc_lessons.models.unet import UNet, timestep_embedding
from aigc_lessons.train.diffusion import (
    NoiseSchedule,
    add_noise,
    noise_prediction_loss,
    sample_ddim,
    sample_ddpm,
)


class ExactNoise(nn.Module):
    """The noise predictor that is exactly right when every training image equals ``value``.

    Given x_t, the noise is then known: eps = (x_t - sqrt(abar_t) value) / sqrt(1 - abar_t).
    """

    num_classes = 10

    def __init__(self, schedule: NoiseSchedule, value: float) -> None:
        super().__init__()
        self.alpha_bars, self.value = schedule.alpha_bars.float(), value

    def forward(self, x, steps, labels=None):
        abar = self.alpha_bars[steps].view(-1, 1, 1, 1)
        return (x - abar.sqrt() * self.value) / (1 - abar).sqrt()


def test_closed_form_matches_iterated_noising():
    schedule = NoiseSchedule.linear(200)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.full((100_000,), 0.7, dtype=torch.float64)
    x = x0.clone()
    for t in range(120):
        beta = schedule.betas[t]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    abar = schedule.alpha_bars[119]
    assert abs(x.mean() - abar.sqrt() * 0.7) < 0.01, "mean of x_t after 120 steps"
    assert abs(x.var() - (1 - abar)) < 0.01, "variance of x_t after 120 steps"
    one_step = add_noise(x0.view(-1, 1, 1, 1), torch.full((100_000,), 119), torch.randn(
        100_000, 1, 1, 1, generator=generator, dtype=torch.float64), schedule)
    assert abs(one_step.mean() - x.mean()) < 0.01 and abs(one_step.var() - x.var()) < 0.01


def test_schedules():
    linear = NoiseSchedule.linear(1000)
    assert linear.steps == 1000 and float(linear.alpha_bars[-1]) < 1e-4
    cosine = NoiseSchedule.cosine(1000)
    expected = math.cos((0.5 + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert abs(float(cosine.alpha_bars[499]) - expected) < 1e-9
    assert float(cosine.betas.max()) <= 0.999 and bool((cosine.betas > 0).all())
    # The cosine schedule destroys information more slowly in the middle of the process.
    assert float(cosine.alpha_bars[500]) > float(linear.alpha_bars[500])


@pytest.mark.parametrize("sampler", ["ddim", "ddim_eta1", "ddpm"])
def test_samplers_recover_the_data_with_the_exact_noise(sampler):
    schedule = NoiseSchedule.linear(100)
    model = ExactNoise(schedule, value=0.3)
    generator = torch.Generator().manual_seed(1)
    if sampler == "ddpm":
        samples = sample_ddpm(model, schedule, count=8, generator=generator)
    else:
        samples = sample_ddim(model, schedule, count=8, sampling_steps=10,
                              eta=1.0 if sampler == "ddim_eta1" else 0.0, generator=generator)
    assert torch.allclose(samples, torch.full_like(samples, 0.3), atol=1e-3), samples.flatten()[:4]


def test_guidance_mixes_conditional_and_unconditional_noise():
    class TwoAnswers(nn.Module):
        num_classes = 10

        def forward(self, x, steps, labels):
            return torch.where(labels.view(-1, 1, 1, 1) == self.num_classes, -1.0, 1.0).expand_as(x)

    from aigc_lessons.train.diffusion import _guided_noise

    x, steps, labels = torch.zeros(3, 1, 28, 28), torch.zeros(3, dtype=torch.long), torch.tensor([0, 4, 9])
    mixed = _guided_noise(TwoAnswers(), x, steps, labels, guidance=2.0)
    assert torch.allclose(mixed, torch.full_like(mixed, 3.0 * 1 - 2.0 * -1)), "(1 + w) eps_c - w eps_u"


def test_unet_shapes_and_conditioning():
    torch.manual_seed(0)
    model = UNet(num_classes=10)
    x, steps = torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 500, 999])
    out = model(x, steps, torch.tensor([0, 3, 9, 10]))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0, "the zero-initialised head predicts no noise at first"
    with pytest.raises(ValueError, match="pass labels"):
        model(x, steps)
    with pytest.raises(ValueError, match="label values"):
        model(x, steps, torch.tensor([0, 1, 2, 11]))
    with pytest.raises(ValueError, match="integer steps"):
        model(x, steps.float())
    with pytest.raises(ValueError, match="without classes"):
        UNet()(x, steps, torch.zeros(4, dtype=torch.long))
    assert timestep_embedding(torch.tensor([3]), 8).abs().max() <= 1.0


def test_loss_trains_the_unet_one_step():
    torch.manual_seed(0)
    model, schedule = UNet(channels=(16, 16, 16), embed_dim=32, num_classes=10), NoiseSchedule.linear(50)
    images, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (8,))
    loss = noise_prediction_loss(model, images, schedule, labels, label_dropout=0.2)
    assert abs(loss.item() - 1.0) < 0.3, "at initialisation the loss is the noise's variance"
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, s: add_noise(torch.zeros(2, 1, 28, 28), torch.tensor([0, 50]), torch.zeros(2, 1, 28, 28), s),
         "timesteps must lie in"),
        (lambda m, s: sample_ddim(m, s, 2, sampling_steps=0), "sampling steps"),
        (lambda m, s: sample_ddim(m, s, 2, labels=torch.zeros(2, dtype=torch.long), guidance=-1), "guidance"),
        (lambda m, s: sample_ddim(m, s, 2, guidance=1.0), "needs labels"),
        (lambda m, s: sample_ddim(m, s, 2, eta=-0.5), "eta"),
        (lambda m, s: NoiseSchedule.linear(0), "at least 1 step"),
        (lambda m, s: noise_prediction_loss(m, torch.zeros(2, 1, 28, 28), s, label_dropout=1.0), "label_dropout"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    schedule = NoiseSchedule.linear(50)
    with pytest.raises(ValueError, match=message):
        call(ExactNoise(schedule, 0.0), schedule)
