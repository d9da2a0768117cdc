"""Diffusion: the forward process against its closed form, samplers against an exact noise predictor."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aigc_lessons.models.diffusion import NoiseSchedule, add_noise, guided_noise, sample_ddim, sample_ddpm
from aigc_lessons.models.unet import UNet, timestep_embedding
from aigc_lessons.train.diffusion import noise_prediction_loss


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

    x, steps, labels = torch.zeros(3, 1, 28, 28), torch.zeros(3, dtype=torch.long), torch.tensor([0, 4, 9])
    mixed = guided_noise(TwoAnswers(), x, steps, labels, guidance=2.0)
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


# --------------------------------------------------------------------------- the model, its trainer, its settings

from aigc_lessons.models import DiffusionModel  # noqa: E402
from aigc_lessons.train.diffusion import (  # noqa: E402
    DiffusionConfig,
    diffusion_training,
    exponential_moving_average,
    train_diffusion,
)


def tiny_model(**kwargs) -> DiffusionModel:
    torch.manual_seed(0)
    return DiffusionModel(channels=(8, 8, 8), embed_dim=16, sampling_steps=3, **kwargs)


def test_the_model_samples_images_and_labels_for_evaluation():
    conditional, unconditional = tiny_model(num_classes=10, guidance=1.0), tiny_model()
    images, labels = conditional.sample_for_evaluation(12, torch.Generator().manual_seed(0), batch_size=5)
    assert images.shape == (12, 1, 28, 28) and 0 <= float(images.min()) <= float(images.max()) <= 1
    assert labels.tolist() == [i % 10 for i in range(12)]
    again, _ = conditional.sample_for_evaluation(12, torch.Generator().manual_seed(0), batch_size=5)
    assert torch.equal(images, again), "the same generator gives the same samples"
    images, labels = unconditional.sample_for_evaluation(4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28) and labels is None
    assert conditional.training and unconditional.training, "sampling leaves the training mode as it was"


@pytest.mark.parametrize("call, message", [
    (lambda c, u: c.sample(2), "is class-conditional"),
    (lambda c, u: u.sample(2, torch.tensor([1, 2])), "unconditional"),
    (lambda c, u: c.sample(2, torch.tensor([1, 10]), guidance=1.0), "guidance needs a class"),
    (lambda c, u: c.sample(2, torch.tensor([1, 11])), "label values"),
    (lambda c, u: c.sample(3, torch.tensor([1, 2])), "labels of shape"),
    (lambda c, u: c.sample(2, torch.tensor([1, 2]), sampling_steps=1001), "sampling steps"),
    (lambda c, u: c.sample(2, torch.tensor([1, 2]), guidance=-0.5), "guidance weight"),
    (lambda c, u: DiffusionModel(guidance=1.0), "needs labels"),
    (lambda c, u: DiffusionModel(schedule="quadratic"), "schedule must be one of"),
    (lambda c, u: DiffusionModel(sampling_steps=0), "sampling steps"),
])
def test_bad_sampling_requests_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny_model(num_classes=10), tiny_model())


def test_training_returns_the_weight_average():
    model = tiny_model(num_classes=10)
    images, labels = torch.rand(32, 1, 28, 28) * 2 - 1, torch.arange(32) % 10
    config = DiffusionConfig(epochs=2, batch_size=8, warmup_steps=2, log_every=1)
    history, averaged = train_diffusion(model, images, config, labels=labels, device="cpu", progress=False)
    assert len(history.series("loss")) == 8 and all(math.isfinite(v) for v in history.series("loss"))
    assert not averaged.training and averaged is not model
    trained, average = dict(model.named_parameters()), dict(averaged.named_parameters())
    assert any(not torch.equal(trained[name], average[name]) for name in trained), "the average lags the weights"
    with pytest.raises(ValueError, match=r"pixels in \[-1, 1\]"):
        train_diffusion(model, images * 3, config, labels=labels, progress=False)
    with pytest.raises(ValueError, match="pass labels exactly"):
        train_diffusion(model, images, config, progress=False)


def test_the_average_ramps_up_and_the_warm_up_reads_adams_step_count():
    weight = nn.Parameter(torch.zeros(1))
    module = nn.Module()
    module.weight = weight
    ema = exponential_moving_average(module, decay=0.999)
    with torch.no_grad():
        weight.fill_(1.0)
    ema.update_parameters(module)  # the first update copies the weights
    with torch.no_grad():
        weight.fill_(2.0)
    ema.update_parameters(module)  # then rate = min(0.999, 2 / 11)
    expected = 2 / 11 * 1.0 + 9 / 11 * 2.0
    assert abs(ema.module.weight.item() - expected) < 1e-6

    model = tiny_model(num_classes=10)
    config = DiffusionConfig(lr=1e-3, warmup_steps=4, ema_decay=0.0)
    optimizer, ema, step = diffusion_training(model, config, conditional=True)
    batch = (torch.rand(4, 1, 28, 28) * 2 - 1, torch.arange(4))
    rates = []
    for _ in range(5):
        step(batch)
        rates.append(optimizer.param_groups[0]["lr"])
    assert ema is None and rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    # A resumed run: a fresh step function on the same optimizer continues the schedule.
    _, _, resumed = diffusion_training(model, config, conditional=True, optimizer=optimizer)
    resumed(batch)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"lr": 0.0}, "lr must be a number > 0"),
    ({"grad_clip": 0.0}, "grad_clip must be a number > 0"),
    ({"warmup_steps": -1}, "warmup_steps must be a non-negative integer"),
    ({"label_dropout": 1.0}, "label_dropout must be a number >= 0 and < 1"),
    ({"ema_decay": -0.1}, "ema_decay must be a number >= 0 and < 1"),
    ({"ema_decay": 1.0}, "ema_decay must be a number >= 0 and < 1"),
    ({"precision": "fp16"}, "precision"),
])
def test_every_training_setting_out_of_range_is_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DiffusionConfig(**settings)
