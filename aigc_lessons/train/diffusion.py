"""Denoising diffusion: the forward process, the noise-prediction loss, and two samplers.

Ho, Jain and Abbeel (2020), "Denoising Diffusion Probabilistic Models" (DDPM):
the forward process adds Gaussian noise in T small steps,
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``, which composes to the
closed form ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with
``abar_t = prod_{s <= t} (1 - beta_s)``. A network ``eps_theta(x_t, t)`` learns to
predict the noise, with the loss ``|| eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2``
(the variational bound with the weights of each step dropped). Sampling runs the
process backwards:

* ``sample_ddpm``: the ancestral sampler of DDPM, one network call per step (T calls);
* ``sample_ddim``: Song, Meng and Ermon (2021), "Denoising Diffusion Implicit Models":
  the same trained network, any subsequence of the steps, ``eta = 0`` deterministic,
  ``eta = 1`` the DDPM posterior's noise level on that subsequence;
* classifier-free guidance (Ho and Salimans, 2022) in both samplers for a class-conditional
  network: ``eps = (1 + w) eps(x, y) - w eps(x, no label)``.

Steps are numbered ``0 .. T-1`` here (the paper's ``1 .. T``): ``steps=t`` means the
image after ``t + 1`` noising steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class NoiseSchedule:
    """The betas of the forward process and the products derived from them (tensors of length T)."""

    betas: torch.Tensor

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """DDPM's schedule: betas rising linearly from 1e-4 to 0.02 over 1,000 steps.

        >>> NoiseSchedule.linear(1000).alpha_bars[-1].item() < 1e-4
        True
        """
        _check_steps(steps)
        return cls(torch.linspace(beta_start, beta_end, steps, dtype=torch.float64))

    @classmethod
    def cosine(cls, steps: int = 1000, offset: float = 0.008) -> "NoiseSchedule":
        """Nichol and Dhariwal (2021): abar_t = cos^2(((t/T + s) / (1 + s)) pi / 2), betas clipped at 0.999."""
        _check_steps(steps)
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
        alpha_bars = f[1:] / f[0]
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        return cls((1 - alpha_bars / previous).clamp(max=0.999))

    @property
    def steps(self) -> int:
        return len(self.betas)

    @property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(1 - self.betas, dim=0)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"a noise schedule needs at least 1 step, got {steps!r}")


def _check_timesteps(steps: torch.Tensor, schedule: NoiseSchedule, batch: int) -> None:
    if steps.shape != (batch,) or steps.is_floating_point():
        raise ValueError(f"timesteps must be {batch} integers, got shape {tuple(steps.shape)} {steps.dtype}")
    if steps.numel() and (int(steps.min()) < 0 or int(steps.max()) >= schedule.steps):
        raise ValueError(
            f"timesteps must lie in [0, {schedule.steps - 1}], got [{int(steps.min())}, {int(steps.max())}]"
        )


def add_noise(images: torch.Tensor, steps: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: a draw of q(x_t | x_0) in one step.

    >>> schedule = NoiseSchedule.linear(10)
    >>> x0, eps = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    >>> noisy = add_noise(x0, torch.tensor([0, 9]), eps, schedule)  # no noise: the scaled image
    >>> torch.allclose(noisy[:, 0, 0, 0], schedule.alpha_bars[[0, 9]].sqrt().float())
    True
    """
    _check_timesteps(steps, schedule, images.shape[0])
    if noise.shape != images.shape:
        raise ValueError(f"noise must have the images' shape {tuple(images.shape)}, got {tuple(noise.shape)}")
    abar = schedule.alpha_bars.to(images.device)[steps].to(images.dtype).view(-1, *([1] * (images.dim() - 1)))
    return abar.sqrt() * images + (1 - abar).sqrt() * noise


def noise_prediction_loss(model: nn.Module, images: torch.Tensor, schedule: NoiseSchedule,
                          labels: torch.Tensor | None = None, label_dropout: float = 0.0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM's simple loss on a batch: a random step per image, the noise predicted, mean squared error.

    For a class-conditional model, ``label_dropout`` replaces that share of the labels by the
    model's "no label" index, so that one network also learns the unconditional model
    (what classifier-free guidance needs).
    """
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
    batch, device = images.shape[0], images.device
    steps = torch.randint(0, schedule.steps, (batch,), device=device, generator=generator)
    noise = torch.randn(images.shape, device=device, generator=generator, dtype=images.dtype)
    noisy = add_noise(images, steps, noise, schedule)
    if labels is not None and label_dropout > 0:
        dropped = torch.rand(batch, device=device, generator=generator) < label_dropout
        labels = torch.where(dropped, torch.full_like(labels, model.num_classes), labels)
    predicted = model(noisy, steps, labels) if labels is not None else model(noisy, steps)
    return torch.mean((predicted.float() - noise.float()) ** 2)


def _guided_noise(model: nn.Module, x: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None,
                  guidance: float) -> torch.Tensor:
    if labels is None:
        return model(x, steps)
    if guidance == 0:
        return model(x, steps, labels)
    no_label = torch.full_like(labels, model.num_classes)
    both = model(torch.cat([x, x]), torch.cat([steps, steps]), torch.cat([labels, no_label]))
    conditional, unconditional = both.chunk(2)
    return (1 + guidance) * conditional - guidance * unconditional


def _check_sampling(labels: torch.Tensor | None, guidance: float, sampling_steps: int, schedule: NoiseSchedule) -> None:
    if guidance < 0:
        raise ValueError(f"the guidance weight must be >= 0 (0 = no guidance), got {guidance}")
    if guidance > 0 and labels is None:
        raise ValueError("classifier-free guidance needs labels (a class-conditional model)")
    if not isinstance(sampling_steps, int) or not 1 <= sampling_steps <= schedule.steps:
        raise ValueError(f"sampling steps must be an integer in [1, {schedule.steps}], got {sampling_steps!r}")


@torch.no_grad()
def sample_ddpm(model: nn.Module, schedule: NoiseSchedule, count: int, labels: torch.Tensor | None = None,
                guidance: float = 0.0, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """DDPM's ancestral sampler: x_T ~ N(0, I), then T steps of x_{t-1} = mean(x_t) + sigma_t z.

    mean(x_t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(1 - beta_t), sigma_t^2 = beta_t.
    """
    _check_sampling(labels, guidance, schedule.steps, schedule)
    betas, alpha_bars = schedule.betas.to(device), schedule.alpha_bars.to(device)
    x = torch.randn(count, 1, 28, 28, generator=generator, device=device)
    for t in reversed(range(schedule.steps)):
        steps = torch.full((count,), t, device=device, dtype=torch.long)
        eps = _guided_noise(model, x, steps, labels, guidance).float()
        beta, abar = betas[t].float(), alpha_bars[t].float()
        x = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
        if t > 0:
            x = x + beta.sqrt() * torch.randn(x.shape, generator=generator, device=device)
    return x.clamp(-1, 1)


@torch.no_grad()
def sample_ddim(model: nn.Module, schedule: NoiseSchedule, count: int, sampling_steps: int = 50,
                eta: float = 0.0, labels: torch.Tensor | None = None, guidance: float = 0.0,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                initial_noise: torch.Tensor | None = None) -> torch.Tensor:
    """DDIM on ``sampling_steps`` evenly spaced steps of the schedule; ``eta=0`` is deterministic.

    Each step predicts x_0 from the noise estimate, then moves to the earlier step:
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s).
    """
    _check_sampling(labels, guidance, sampling_steps, schedule)
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM's noise level), got {eta}")
    alpha_bars = schedule.alpha_bars.to(device).float()
    timesteps = torch.linspace(schedule.steps - 1, 0, sampling_steps).round().long().tolist()
    x = initial_noise.to(device) if initial_noise is not None else torch.randn(
        count, 1, 28, 28, generator=generator, device=device)
    for index, t in enumerate(timesteps):
        steps = torch.full((count,), t, device=device, dtype=torch.long)
        eps = _guided_noise(model, x, steps, labels, guidance).float()
        abar_t = alpha_bars[t]
        abar_s = alpha_bars[timesteps[index + 1]] if index + 1 < len(timesteps) else torch.tensor(1.0, device=device)
        x0_hat = ((x - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()).clamp(-1, 1)
        eps = (x - abar_t.sqrt() * x0_hat) / (1 - abar_t).sqrt()  # the noise consistent with the clamped x0
        sigma = eta * ((1 - abar_s) / (1 - abar_t)).sqrt() * (1 - abar_t / abar_s).sqrt()
        x = abar_s.sqrt() * x0_hat + (1 - abar_s - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and index + 1 < len(timesteps):
            x = x + sigma * torch.randn(x.shape, generator=generator, device=device)
    return x.clamp(-1, 1)
