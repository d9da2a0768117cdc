"""The sampling-and-guidance chapter's lab: the DDIM step, sweeps of sampler settings, latent diffusion.

* :func:`ddim_sigma` and :func:`ddim_step`: one step of DDIM (Song, Meng and Ermon, 2021)
  written out, the update that :func:`~aigc_lessons.models.diffusion.sample_ddim` loops over;
* :func:`sampling_sweep`: sample a class-conditional diffusion model with several settings
  (steps, eta, guidance weight), time each one and score it with
  :func:`~aigc_lessons.metrics.evaluate_images`;
* :func:`encode_codes`, :func:`train_latent_diffusion` and :func:`sample_latent_images`:
  diffusion on a VAE's latent codes instead of pixels, the idea behind latent diffusion
  (Rombach et al., 2022) at MNIST size, with the DDPM chapter's vector noise predictor and loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from .models.diffusion import NoiseSchedule, PointNoisePredictor, sample_ddim
from .toy2d import train_point_diffusion
from .train.loop import History

__all__ = ["LatentDiffusion", "SweepPoint", "ddim_sigma", "ddim_step", "encode_codes", "sample_latent_images",
           "sampling_sweep", "train_latent_diffusion"]


def ddim_sigma(abar_t: torch.Tensor, abar_s: torch.Tensor, eta: float) -> torch.Tensor:
    """The noise level of a DDIM step from step t to the earlier step s.

    ``eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)``; with ``eta = 1`` and
    s = t - 1 its square is the variance of DDPM's posterior q(x_{t-1} | x_t, x_0).

    >>> schedule = NoiseSchedule.linear(1000)
    >>> abar = schedule.alpha_bars
    >>> posterior = (1 - abar[9]) / (1 - abar[10]) * schedule.betas[10]
    >>> bool(torch.isclose(ddim_sigma(abar[10], abar[9], 1.0) ** 2, posterior))
    True
    """
    return eta * ((1 - abar_s) / (1 - abar_t)).sqrt() * (1 - abar_t / abar_s).sqrt()


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor, abar_s: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM step without clipping: predict x_0, then move to step s with the same noise direction.

    ``x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma noise`` with
    ``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``; ``noise`` is needed when ``eta > 0``.

    >>> x0, eps = torch.tensor([0.5]), torch.tensor([1.0])
    >>> abar_t, abar_s = torch.tensor(0.25), torch.tensor(1.0)
    >>> x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps
    >>> ddim_step(x_t, eps, abar_t, abar_s)  # the last step lands on x_0
    tensor([0.5000])
    """
    sigma = ddim_sigma(abar_t, abar_s, eta)
    x0_hat = (x_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    x_s = abar_s.sqrt() * x0_hat + (1 - abar_s - sigma**2).clamp(min=0).sqrt() * eps
    if eta > 0:
        if noise is None:
            raise ValueError("a DDIM step with eta > 0 adds fresh noise: pass noise (same shape as x_t)")
        x_s = x_s + sigma * noise
    return x_s


# --------------------------------------------------------------------------- sweeps of sampler settings


@dataclass(frozen=True)
class SweepPoint:
    """One sampler setting of a sweep, its wall-clock time, its scores and its images in [0, 1]."""

    steps: int
    eta: float
    guidance: float
    seconds: float
    scores: dict
    images: torch.Tensor
    labels: torch.Tensor

    def row(self) -> dict:
        """The setting, the time and the scores as one flat dict (a row of a table)."""
        return {"steps": self.steps, "eta": self.eta, "guidance": self.guidance,
                "seconds": round(self.seconds, 2), **self.scores}


def sampling_sweep(model: nn.Module, settings: list[dict], count: int, seed: int = 0,
                   device: str | torch.device = "auto") -> list[SweepPoint]:
    """Sample ``count`` images (labels ``i % 10``) per setting, time them and score them.

    Each setting is a dict with ``steps``, and optionally ``eta`` (default 0) and ``guidance``
    (default 0). Every setting starts from the same noise (generator seeded with ``seed``), so
    differences come from the sampler. Scores: :func:`~aigc_lessons.metrics.evaluate_images`
    against ``count`` random test digits (FD, precision, recall, class accuracy, ...).

    Example:
        >>> points = sampling_sweep(model, [{"steps": 5}, {"steps": 10, "eta": 1.0}], 100)  # doctest: +SKIP
        >>> [point.scores["class_accuracy"] for point in points]  # doctest: +SKIP
    """
    from .metrics.quality import evaluate_images

    labels = torch.arange(count) % 10
    points = []
    for setting in settings:
        unknown = set(setting) - {"steps", "eta", "guidance"}
        if unknown or "steps" not in setting:
            raise ValueError(f"a setting has 'steps' and optionally 'eta' and 'guidance', got {setting}")
        eta, guidance = float(setting.get("eta", 0.0)), float(setting.get("guidance", 0.0))
        started = time.perf_counter()
        images = model.sample(count, labels, sampling_steps=int(setting["steps"]), guidance=guidance, eta=eta,
                              generator=torch.Generator().manual_seed(seed))
        seconds = time.perf_counter() - started
        images = ((images.cpu() + 1) / 2).clamp(0, 1)
        scores = evaluate_images(images, (0, 1), labels=labels, device=device, progress=False)
        points.append(SweepPoint(int(setting["steps"]), eta, guidance, seconds, scores, images, labels))
    return points


# --------------------------------------------------------------------------- diffusion in a latent space


@torch.no_grad()
def encode_codes(vae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The encoder means ``mu(x)`` of images in [0, 1], ``(N, latent_dim)`` on the CPU.

    Example:
        >>> codes = encode_codes(pretrained.load("vae_mnist"), train.images)  # doctest: +SKIP
    """
    device = next(vae.parameters()).device
    return torch.cat([vae.encode(images[i:i + batch_size].to(device))[0].cpu()
                      for i in range(0, len(images), batch_size)])


@dataclass
class LatentDiffusion:
    """A noise predictor for codes, its schedule, and the per-dimension mean and scale of the codes.

    The codes are standardized before the diffusion sees them (``(z - mean) / scale``), as
    Stable Diffusion rescales its autoencoder's latents, so that the forward process ends near
    N(0, I) whatever the scale of the codes.
    """

    network: PointNoisePredictor
    schedule: NoiseSchedule
    mean: torch.Tensor
    scale: torch.Tensor
    history: History


def train_latent_diffusion(codes: torch.Tensor, steps: int = 2000, batch_size: int = 256, lr: float = 2e-3,
                           hidden: int = 256, timesteps: int = 1000, seed: int = 0,
                           log_every: int = 10) -> LatentDiffusion:
    """Train a noise predictor on standardized ``codes`` ``(N, dim)``: the 2-D lab's model and loop in ``dim`` D.

    The network is a :class:`~aigc_lessons.models.diffusion.PointNoisePredictor` (an MLP with
    the step embedding added to each hidden layer), trained by
    :func:`~aigc_lessons.toy2d.train_point_diffusion` (DDPM's simple loss, Adam, cosine decay)
    on a linear schedule of ``timesteps`` steps; returns it with its schedule and scaling.

    Example:
        >>> lab = train_latent_diffusion(torch.randn(64, 4), steps=4, batch_size=16, log_every=1)
        >>> len(lab.history.series("loss")), tuple(lab.mean.shape)
        (4, (4,))
    """
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must be (N >= 2, dim), got {tuple(codes.shape)}")
    mean, scale = codes.mean(0), codes.std(0).clamp(min=1e-6)
    schedule = NoiseSchedule.linear(timesteps)
    torch.manual_seed(seed)
    network = PointNoisePredictor(dim=codes.shape[1], hidden=hidden, layers=3, embed_dim=64)
    history = train_point_diffusion(network, (codes - mean) / scale, schedule, steps=steps,
                                    batch_size=batch_size, lr=lr, seed=seed, log_every=log_every,
                                    progress=False)
    return LatentDiffusion(network, schedule, mean, scale, history)


@torch.no_grad()
def sample_latent_images(lab: LatentDiffusion, vae: nn.Module, count: int, sampling_steps: int = 50,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample ``count`` codes with DDIM (``eta = 0``, no clipping), undo the scaling, decode to [0, 1].

    Example:
        >>> images = sample_latent_images(lab, vae, 100)  # doctest: +SKIP
    """
    standardized = sample_ddim(lab.network, lab.schedule, count, sampling_steps, generator=generator,
                               shape=(lab.network.dim,), clip=None)
    codes = standardized * lab.scale + lab.mean
    device = next(vae.parameters()).device
    return vae.mean_image(vae.decode(codes.to(device))).cpu().clamp(0, 1)
