"""The sampling chapter's lab: the DDIM step against the sampler, sigma's known values, latent diffusion."""

from __future__ import annotations

import torch

from aigc_lessons.diffusion_lab import (
    ddim_sigma,
    ddim_step,
    sample_latent_images,
    train_latent_diffusion,
)
from aigc_lessons.models.diffusion import NoiseSchedule, PointNoisePredictor, ddim_timesteps, sample_ddim


def exact_noise_for(point: torch.Tensor, schedule: NoiseSchedule):
    """The noise predictor that is exact when the data are the single point ``point``."""
    alpha_bars = schedule.alpha_bars.float()

    def predict(x, steps, labels=None):
        abar = alpha_bars[steps].view(-1, *([1] * (x.dim() - 1)))
        return (x - abar.sqrt() * point) / (1 - abar).sqrt()

    return predict


def test_ddim_with_eta_0_and_an_exact_predictor_recovers_the_data_point_from_any_number_of_steps():
    schedule, point = NoiseSchedule.linear(1000), torch.tensor([0.7, -0.3])
    for steps in (1, 3, 20, 1000):
        samples = sample_ddim(exact_noise_for(point, schedule), schedule, 5, steps, shape=(2,), clip=None,
                              generator=torch.Generator().manual_seed(0))
        assert torch.allclose(samples, point.expand(5, 2), atol=1e-3), f"{steps} steps: {samples}"


def test_sigma_at_eta_1_on_the_full_schedule_is_the_ddpm_posterior_variance():
    schedule = NoiseSchedule.linear(1000)
    abar, betas = schedule.alpha_bars, schedule.betas
    t = torch.arange(1, 1000)
    posterior = (1 - abar[t - 1]) / (1 - abar[t]) * betas[t]
    assert torch.allclose(ddim_sigma(abar[t], abar[t - 1], 1.0) ** 2, posterior, rtol=1e-6)
    assert torch.all(ddim_sigma(abar[t], abar[t - 1], 0.0) == 0)


def test_one_ddim_step_is_the_update_that_sample_ddim_runs():
    schedule = NoiseSchedule.linear(100)
    network = PointNoisePredictor(dim=3, hidden=16)
    start = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    looped = sample_ddim(network, schedule, 4, 2, initial_noise=start, shape=(3,), clip=None)
    first, second = ddim_timesteps(schedule, 2)
    abar = schedule.alpha_bars.float()
    with torch.no_grad():
        x = ddim_step(start, network(start, torch.full((4,), first)), abar[first], abar[second])
        x = ddim_step(x, network(x, torch.full((4,), second)), abar[second], torch.tensor(1.0))
    assert torch.allclose(looped, x, atol=1e-5)


def test_latent_diffusion_trains_and_decodes_to_images_in_the_unit_range():
    codes = torch.randn(200, 4) * 3 + 1
    lab = train_latent_diffusion(codes, steps=30, batch_size=32, hidden=32, log_every=1)
    losses = lab.history.series("loss")
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    assert torch.allclose(lab.mean, codes.mean(0)) and torch.allclose(lab.scale, codes.std(0))

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 784)

        def decode(self, z):
            return self.layer(z).view(-1, 1, 28, 28)

        def mean_image(self, logits):
            return torch.sigmoid(logits)

    images = sample_latent_images(lab, Decoder(), 6, sampling_steps=5, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1
