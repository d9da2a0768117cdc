"""Training a denoising diffusion model: the noise-prediction loss, the step, the trainer.

DDPM's "simple" loss (Ho, Jain and Abbeel 2020, eq. 14) is the variational bound with
the weight of each step dropped: pick a step t at random, noise the image in one go
with the closed form of ``q(x_t | x_0)``, and ask the network for the noise,
``|| eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2``.
:func:`noise_prediction_loss` is that loss; :func:`diffusion_step` one Adam step on it;
:func:`train_diffusion` runs the step with :func:`aigc_lessons.train.fit` and keeps an
exponential moving average (EMA) of the weights, which is what diffusion models are
sampled with (DDPM used a decay of 0.9999): the average over the last thousand steps
smooths out the noise of single steps that the sampler would otherwise compound.

The schedule, the forward process and the samplers are in
:mod:`aigc_lessons.models.diffusion`, with the model.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from ..core import check_precision, get_device, mixed_precision, seed_everything
from ..data import TensorBatches
from ..family import Option, check_settings
from ..models.diffusion import NoiseSchedule, add_noise
from .loop import History, fit


def noise_prediction_loss(model: nn.Module, data: torch.Tensor, schedule: NoiseSchedule,
                          labels: torch.Tensor | None = None, label_dropout: float = 0.0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """DDPM's simple loss on a batch: a random step per example, the noise predicted, mean squared error.

    For a class-conditional model, ``label_dropout`` replaces that share of the labels by the
    model's "no label" index, so that one network also learns the unconditional model
    (what classifier-free guidance needs).
    """
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}")
    batch, device = data.shape[0], data.device
    steps = torch.randint(0, schedule.steps, (batch,), generator=generator).to(device)
    noise = torch.randn(data.shape, generator=generator, dtype=data.dtype).to(device)
    noisy = add_noise(data, steps, noise, schedule)
    if labels is not None and label_dropout > 0:
        dropped = torch.rand(batch, generator=generator).to(device) < label_dropout
        labels = torch.where(dropped, torch.full_like(labels, model.num_classes), labels)
    predicted = model(noisy, steps, labels) if labels is not None else model(noisy, steps)
    return torch.mean((predicted.float() - noise.float()) ** 2)


@dataclass
class DiffusionConfig:
    """Settings of ``train_diffusion``; every setting with a range is checked (:data:`DIFFUSION_RULES`).

    ``warmup_steps``: the learning rate rises linearly from 0 over these first steps (the
    U-Net's zero-initialised head and group norms make the first updates large otherwise).
    ``ema_decay = 0`` keeps no average. ``precision="bf16"``: the forward pass in bfloat16 autocast.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 500
    grad_clip: float = 1.0
    label_dropout: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    log_every: int = 50
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_settings(asdict(self), DIFFUSION_RULES)
        check_precision(self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


DIFFUSION_RULES = {"epochs": Option(1, minimum=1), "batch_size": Option(1, minimum=1), "lr": Option(1.0, above=0),
                   "warmup_steps": Option(0, minimum=0), "grad_clip": Option(1.0, above=0),
                   "label_dropout": Option(0.1, minimum=0, below=1), "ema_decay": Option(0.999, minimum=0, below=1),
                   "seed": Option(0, minimum=0), "log_every": Option(1, minimum=1)}


def diffusion_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                   labels: torch.Tensor | None, schedule: NoiseSchedule, label_dropout: float = 0.0,
                   grad_clip: float = 1.0, precision: str = "fp32") -> dict[str, torch.Tensor]:
    """One Adam step on the noise-prediction loss of a batch in [-1, 1]; the gradient norm clipped."""
    with mixed_precision(images.device, precision):
        loss = noise_prediction_loss(model, images, schedule, labels, label_dropout)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"loss": loss.detach()}


def exponential_moving_average(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """torch's ``AveragedModel`` with an EMA whose decay ramps up as (1 + n) / (10 + n) until ``decay``.

    The ramp (as in TensorFlow's ``ExponentialMovingAverage``) keeps the average from
    remembering the random initial weights for thousands of steps.
    """
    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        rate = min(decay, (1 + int(updates)) / (10 + int(updates)))
        return rate * averaged + (1 - rate) * current

    return torch.optim.swa_utils.AveragedModel(model, avg_fn=average, use_buffers=True)


def diffusion_training(model: nn.Module, config: DiffusionConfig, conditional: bool,
                       optimizer: torch.optim.Optimizer | None = None
                       ) -> tuple[torch.optim.Optimizer, torch.optim.swa_utils.AveragedModel | None, Callable]:
    """The Adam optimizer, the weight average (``None`` when ``ema_decay = 0``) and the step of training.

    The step takes a batch ``(images,)`` or ``(images, labels)`` in [-1, 1], warms the
    learning rate up, takes :func:`diffusion_step` and updates the average.
    """
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = exponential_moving_average(model, config.ema_decay) if config.ema_decay > 0 else None
    first = next(model.parameters())

    def step(batch):
        # Adam counts its own steps: read from its state, the warm-up survives a checkpoint and resume.
        updates = int(optimizer.state[first]["step"]) if "step" in optimizer.state.get(first, {}) else 0
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (updates + 1) / max(1, config.warmup_steps))
        losses = diffusion_step(model, optimizer, batch[0], batch[1] if conditional else None, model.schedule,
                                config.label_dropout if conditional else 0.0, config.grad_clip, config.precision)
        if ema is not None:
            ema.update_parameters(model)
        return losses

    return optimizer, ema, step


def train_diffusion(model: nn.Module, images: torch.Tensor, config: DiffusionConfig | None = None, *,
                    labels: torch.Tensor | None = None, device: str | torch.device = "auto",
                    progress: bool = True) -> tuple[History, nn.Module]:
    """Train a :class:`~aigc_lessons.models.DiffusionModel` on images in [-1, 1].

    Returns the losses and the model to sample: a copy holding the EMA weights (the
    trained model itself when ``ema_decay = 0``).

    Example:
        >>> from aigc_lessons.models import DiffusionModel
        >>> model = DiffusionModel(channels=(8, 8, 8), embed_dim=16)
        >>> history, averaged = train_diffusion(model, torch.rand(16, 1, 28, 28) * 2 - 1,
        ...     DiffusionConfig(epochs=1, batch_size=8), device="cpu", progress=False)
        >>> type(averaged).__name__, len(history.series("loss"))
        ('DiffusionModel', 1)
    """
    config = config or DiffusionConfig()
    device = get_device(device)
    low, high = images.min().item(), images.max().item()
    if low < -1.0001 or high > 1.0001:
        raise ValueError(f"train_diffusion expects pixels in [-1, 1], got values in [{low:.3f}, {high:.3f}]. "
                         "Load them with load_mnist(value_range=(-1, 1)).")
    conditional = getattr(model, "num_classes", None) is not None
    if (labels is not None) != conditional:
        raise ValueError("pass labels exactly when the model is class-conditional (num_classes set)")
    seed_everything(config.seed)
    model.to(device).train()
    _, ema, step = diffusion_training(model, config, conditional)
    tensors = (images.to(device),) if labels is None else (images.to(device), labels.to(device))
    batches = TensorBatches(*tensors, batch_size=config.batch_size, seed=config.seed)
    history = fit(step, batches, config.epochs, log_every=config.log_every, progress=progress, desc="diffusion")
    if ema is None:
        return history, model
    averaged = copy.deepcopy(model)
    averaged.load_state_dict(ema.module.state_dict())
    return history, averaged.eval()
