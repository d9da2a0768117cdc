"""A denoising diffusion model: a noise schedule, the forward process, two samplers, and the model.

Ho, Jain and Abbeel (2020), "Denoising Diffusion Probabilistic Models" (DDPM):
the forward process adds Gaussian noise in T small steps,
``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``, which composes to the
closed form ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with
``abar_t = prod_{s <= t} (1 - beta_s)``. A network ``eps_theta(x_t, t)`` learns to
predict the noise that was added (``train/diffusion.py`` has the loss), and
sampling runs the process backwards:

* :func:`sample_ddpm`: the ancestral sampler of DDPM, one network call per step (T calls);
* :func:`sample_ddim`: Song, Meng and Ermon (2021), "Denoising Diffusion Implicit Models":
  the same trained network on any subsequence of the steps, ``eta = 0`` deterministic,
  ``eta = 1`` the DDPM posterior's noise level on that subsequence;
* classifier-free guidance (Ho and Salimans, 2022) in both samplers, for a class-conditional
  network: ``eps = (1 + w) eps(x, y) - w eps(x, no label)``.

:class:`DiffusionModel` ties a :class:`~aigc_lessons.models.unet.UNet` to its schedule, so
that shipped weights know how they were trained and how they are sampled.

The samplers work on any shape of data (``shape`` per sample: ``(1, 28, 28)`` for MNIST,
``(2,)`` for points in the plane, ``(16,)`` for a VAE's latent codes); ``clip`` bounds the
predicted ``x_0`` (1.0 for images in [-1, 1], ``None`` for unbounded data).

Steps are numbered ``0 .. T-1`` here (the paper's ``1 .. T``): ``steps=t`` means the
data after ``t + 1`` noising steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_labels
from .unet import UNet, timestep_embedding

# The schedule and the samplers are functions, not models; PointNoisePredictor is the DDPM
# chapter's 2-D lab model and the latent model of the sampling chapter.
__all__ = ["DiffusionModel", "PointNoisePredictor"]

IMAGE_SHAPE = (1, 28, 28)


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

    @classmethod
    def named(cls, kind: str, steps: int = 1000) -> "NoiseSchedule":
        """``"linear"`` or ``"cosine"``, by name (how a model's card records its schedule)."""
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        return getattr(cls, kind)(steps)

    @property
    def steps(self) -> int:
        return len(self.betas)

    @property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(1 - self.betas, dim=0)


SCHEDULES = ("linear", "cosine")


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"a noise schedule needs at least 1 step, got {steps!r}")


def check_timesteps(steps: torch.Tensor, schedule: NoiseSchedule, batch: int) -> None:
    """A clear error unless ``steps`` are ``batch`` integers in ``[0, T - 1]``."""
    if steps.shape != (batch,) or steps.is_floating_point():
        raise ValueError(f"timesteps must be {batch} integers, got shape {tuple(steps.shape)} {steps.dtype}")
    if steps.numel() and (int(steps.min()) < 0 or int(steps.max()) >= schedule.steps):
        raise ValueError(
            f"timesteps must lie in [0, {schedule.steps - 1}], got [{int(steps.min())}, {int(steps.max())}]"
        )


def add_noise(data: torch.Tensor, steps: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: a draw of q(x_t | x_0) in one step.

    >>> schedule = NoiseSchedule.linear(10)
    >>> x0, eps = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    >>> noisy = add_noise(x0, torch.tensor([0, 9]), eps, schedule)  # no noise: the scaled image
    >>> torch.allclose(noisy[:, 0, 0, 0], schedule.alpha_bars[[0, 9]].sqrt().float())
    True
    """
    check_timesteps(steps, schedule, data.shape[0])
    if noise.shape != data.shape:
        raise ValueError(f"noise must have the data's shape {tuple(data.shape)}, got {tuple(noise.shape)}")
    abar = schedule.alpha_bars.to(data.device)[steps].to(data.dtype).view(-1, *([1] * (data.dim() - 1)))
    return abar.sqrt() * data + (1 - abar).sqrt() * noise


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    """Noise drawn on the CPU from ``generator``, then moved: the same samples on every device."""
    return torch.randn(shape, generator=generator).to(device)


def guided_noise(model: nn.Module, x: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None,
                 guidance: float) -> torch.Tensor:
    """The network's noise estimate; with labels and ``guidance = w > 0``, (1 + w) eps(x, y) - w eps(x, none).

    The conditional and unconditional estimates come from one call on a doubled batch.
    """
    if labels is None:
        return model(x, steps)
    if guidance == 0:
        return model(x, steps, labels)
    no_label = torch.full_like(labels, model.num_classes)
    both = model(torch.cat([x, x]), torch.cat([steps, steps]), torch.cat([labels, no_label]))
    conditional, unconditional = both.chunk(2)
    return (1 + guidance) * conditional - guidance * unconditional


def _check_sampling(count: int, labels: torch.Tensor | None, guidance: float, sampling_steps: int,
                    schedule: NoiseSchedule) -> None:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if labels is not None and (labels.dim() != 1 or len(labels) != count):
        raise ValueError(f"labels must be {count} class indices (one per sample), got shape {tuple(labels.shape)}")
    if guidance < 0:
        raise ValueError(f"the guidance weight must be >= 0 (0 = no guidance), got {guidance}")
    if guidance > 0 and labels is None:
        raise ValueError("classifier-free guidance needs labels (a class-conditional model)")
    if not isinstance(sampling_steps, int) or not 1 <= sampling_steps <= schedule.steps:
        raise ValueError(f"sampling steps must be an integer in [1, {schedule.steps}], got {sampling_steps!r}")


@torch.no_grad()
def sample_ddpm(model: nn.Module, schedule: NoiseSchedule, count: int, labels: torch.Tensor | None = None,
                guidance: float = 0.0, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", shape: tuple[int, ...] = IMAGE_SHAPE,
                clip: float | None = 1.0) -> torch.Tensor:
    """DDPM's ancestral sampler: x_T ~ N(0, I), then T steps of x_{t-1} = mean(x_t) + sigma_t z.

    mean(x_t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(1 - beta_t), sigma_t^2 = beta_t.
    """
    _check_sampling(count, labels, guidance, schedule.steps, schedule)
    betas, alpha_bars = schedule.betas.to(device).float(), schedule.alpha_bars.to(device).float()
    x = _randn((count, *shape), generator, device)
    for t in reversed(range(schedule.steps)):
        steps = torch.full((count,), t, device=device, dtype=torch.long)
        eps = guided_noise(model, x, steps, labels, guidance).float()
        beta, abar = betas[t], alpha_bars[t]
        x = (x - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
        if t > 0:
            x = x + beta.sqrt() * _randn(x.shape, generator, device)
    return x if clip is None else x.clamp(-clip, clip)


def ddim_timesteps(schedule: NoiseSchedule, sampling_steps: int) -> list[int]:
    """The ``sampling_steps`` evenly spaced steps DDIM visits, from T - 1 down to 0.

    >>> ddim_timesteps(NoiseSchedule.linear(1000), 5)
    [999, 749, 500, 250, 0]
    """
    return torch.linspace(schedule.steps - 1, 0, sampling_steps).round().long().tolist()


@torch.no_grad()
def sample_ddim(model: nn.Module, schedule: NoiseSchedule, count: int, sampling_steps: int = 50,
                eta: float = 0.0, labels: torch.Tensor | None = None, guidance: float = 0.0,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                initial_noise: torch.Tensor | None = None, shape: tuple[int, ...] = IMAGE_SHAPE,
                clip: float | None = 1.0) -> torch.Tensor:
    """DDIM on ``sampling_steps`` evenly spaced steps of the schedule; ``eta=0`` is deterministic.

    Each step predicts x_0 from the noise estimate, then moves to the earlier step s:
    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s).
    """
    _check_sampling(count, labels, guidance, sampling_steps, schedule)
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM's noise level), got {eta}")
    alpha_bars = schedule.alpha_bars.to(device).float()
    timesteps = ddim_timesteps(schedule, sampling_steps)
    x = initial_noise.to(device).float() if initial_noise is not None else _randn((count, *shape), generator, device)
    for index, t in enumerate(timesteps):
        steps = torch.full((count,), t, device=device, dtype=torch.long)
        eps = guided_noise(model, x, steps, labels, guidance).float()
        abar_t = alpha_bars[t]
        abar_s = alpha_bars[timesteps[index + 1]] if index + 1 < len(timesteps) else torch.tensor(1.0, device=device)
        x0_hat = (x - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
        if clip is not None:
            x0_hat = x0_hat.clamp(-clip, clip)
            eps = (x - abar_t.sqrt() * x0_hat) / (1 - abar_t).sqrt()  # the noise consistent with the clipped x0
        sigma = eta * ((1 - abar_s) / (1 - abar_t)).sqrt() * (1 - abar_t / abar_s).sqrt()
        x = abar_s.sqrt() * x0_hat + (1 - abar_s - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and index + 1 < len(timesteps):
            x = x + sigma * _randn(x.shape, generator, device)
    return x if clip is None else x.clamp(-clip, clip)


class DiffusionModel(nn.Module):
    """A U-Net noise predictor with the schedule it was trained on and the way it is sampled.

    ``num_classes=None``: unconditional; an integer: class-conditional with classifier-free
    guidance (label ``num_classes`` = "no label"). ``sampling_steps`` and ``guidance`` are how
    :meth:`sample` and :meth:`sample_for_evaluation` sample by default (DDIM, ``eta = 0``).

    Example:
        >>> model = DiffusionModel(channels=(8, 8, 8), embed_dim=16, num_classes=10, sampling_steps=2)
        >>> images, labels = model.sample_for_evaluation(3, torch.Generator().manual_seed(0))
        >>> tuple(images.shape), labels.tolist()
        ((3, 1, 28, 28), [0, 1, 2])
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 64), embed_dim: int = 128,
                 num_classes: int | None = None, schedule: str = "linear", timesteps: int = 1000,
                 sampling_steps: int = 25, guidance: float = 0.0) -> None:
        super().__init__()
        self.unet = UNet(channels=tuple(channels), embed_dim=embed_dim, num_classes=num_classes)
        self.num_classes = num_classes
        self.schedule = NoiseSchedule.named(schedule, timesteps)
        _check_sampling(1, None if num_classes is None else torch.zeros(1), guidance, sampling_steps, self.schedule)
        self.sampling_steps, self.guidance = sampling_steps, guidance

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted noise eps_theta(x_t, t[, y])."""
        return self.unet(noisy, steps, labels)

    @torch.no_grad()
    def sample(self, count: int, labels: torch.Tensor | None = None, sampling_steps: int | None = None,
               guidance: float | None = None, eta: float = 0.0, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """``count`` images in [-1, 1] by DDIM; a conditional model needs ``labels`` (``num_classes``: none)."""
        if self.num_classes is not None and labels is None:
            raise ValueError(f"{type(self).__name__} is class-conditional: pass {count} labels "
                             f"(0..{self.num_classes - 1}, or {self.num_classes} for 'no label')")
        if labels is not None:
            if self.num_classes is None:
                raise ValueError("this diffusion model is unconditional; do not pass labels")
            check_labels(labels, count, self.num_classes + 1, type(self).__name__)
        device = next(self.parameters()).device
        guidance = self.guidance if guidance is None else guidance
        if labels is not None and guidance > 0 and bool((labels == self.num_classes).any()):
            raise ValueError("guidance needs a class for every sample; sample 'no label' with guidance=0")
        was_training = self.training
        self.eval()
        images = sample_ddim(self, self.schedule, count, sampling_steps or self.sampling_steps, eta,
                             None if labels is None else labels.to(device), guidance, generator, device)
        self.train(was_training)
        return images

    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None, batch_size: int = 500):
        """Images in [0, 1] on the CPU (and labels ``i % 10`` when conditional), in batches of ``batch_size``."""
        images, all_labels = [], []
        for start in range(0, count, batch_size):
            size = min(batch_size, count - start)
            labels = None if self.num_classes is None else torch.arange(start, start + size) % self.num_classes
            images.append(((self.sample(size, labels, generator=generator).cpu() + 1) / 2).clamp(0, 1))
            if labels is not None:
                all_labels.append(labels)
        return torch.cat(images), (torch.cat(all_labels) if all_labels else None)


class PointNoisePredictor(nn.Module):
    """An MLP noise predictor eps_theta(x_t, t) for vectors: points in the plane, a VAE's latent codes.

    The step enters as in the U-Net: a sinusoidal embedding of t
    (:func:`~aigc_lessons.models.unet.timestep_embedding`), passed through a small MLP,
    is added to every hidden layer, so that one network serves every noise level.
    Shapes: ``points (B, dim)``, ``steps (B,)`` integers -> predicted noise ``(B, dim)``.
    Unconditional (``num_classes = None``), so the samplers call it as ``model(x, steps)``.

    Example:
        >>> net = PointNoisePredictor(hidden=32, layers=2)
        >>> net(torch.zeros(3, 2), torch.tensor([0, 10, 999])).shape
        torch.Size([3, 2])
    """

    num_classes = None

    def __init__(self, dim: int = 2, hidden: int = 128, layers: int = 3, embed_dim: int = 32) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or layers < 1 or embed_dim < 2 or embed_dim % 2:
            raise ValueError(f"dim, hidden and layers must be >= 1 and embed_dim an even number >= 2, "
                             f"got {dim}, {hidden}, {layers}, {embed_dim}")
        self.dim, self.embed_dim = dim, embed_dim
        self.time_mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inputs = nn.Linear(dim, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.output = nn.Linear(hidden, dim)
        self.act = nn.SiLU()

    def forward(self, points: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        if points.dim() != 2 or points.shape[1] != self.dim:
            raise ValueError(f"{name} expects points of shape (B, {self.dim}), got {tuple(points.shape)}")
        if steps.shape != (points.shape[0],) or steps.is_floating_point():
            raise ValueError(f"{name} expects integer steps of shape ({points.shape[0]},), got "
                             f"{tuple(steps.shape)} {steps.dtype}")
        time = self.time_mlp(timestep_embedding(steps, self.embed_dim))
        h = self.act(self.inputs(points) + time)
        for layer in self.hidden:
            h = self.act(layer(h) + time)
        return self.output(h)
