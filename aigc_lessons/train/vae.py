"""Training VAEs (and conditional VAEs): the step that the VAE chapter teaches, its trainer, evaluation.

``vae_step`` is the whole algorithm: encode, reparameterize, decode, compute the
negative ELBO (reconstruction + beta * KL), take one gradient step. ``train_vae``
runs it with :func:`aigc_lessons.train.fit`; ``evaluate_vae`` measures the
negative ELBO of a data set in nats per image.

Binarized MNIST: with ``binarize=True`` each training batch is binarized afresh
(pixel ``x`` becomes 1 with probability ``x``, "dynamic binarization"), so the
Bernoulli likelihood is a real probability of the data and the numbers compare
with the literature; :func:`binarize` makes the fixed, seeded test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from ..core import check_precision, get_device, mixed_precision, seed_everything
from ..data import TensorBatches
from ..losses.vae import importance_weighted_log_likelihood, negative_elbo
from ..family import Option, check_settings
from .loop import History, fit


@dataclass
class VaeConfig:
    """Settings of ``train_vae``; the defaults are those of the PyTorch example VAE.

    They are also the full setting of the shipped ``vae_mnist`` weights (its
    recipe is the home of those numbers; a test checks that they agree). Every
    setting with a valid range is checked when the config is made (:data:`VAE_RULES`).
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    binarize: bool = True
    seed: int = 0
    log_every: int = 50
    precision: str = "fp32"  # "bf16": forward pass in bfloat16 autocast (see core.mixed_precision)

    def __post_init__(self) -> None:
        check_settings(asdict(self), VAE_RULES)
        check_precision(self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


# The valid range of every numeric setting of VaeConfig (beta = 0 is a plain autoencoder with noise).
VAE_RULES = {"epochs": Option(1, minimum=1), "batch_size": Option(1, minimum=1), "lr": Option(1.0, above=0),
             "beta": Option(1.0, minimum=0), "seed": Option(0, minimum=0), "log_every": Option(1, minimum=1)}


def binarize(images: torch.Tensor, seed: int | None = 0) -> torch.Tensor:
    """Binarize pixels in ``[0, 1]``: each becomes 1 with probability equal to its value.

    Example:
        >>> binarize(torch.tensor([0.0, 1.0, 0.5]), seed=0).tolist()[:2]
        [0.0, 1.0]
    """
    if seed is None:
        return torch.bernoulli(images)
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.cpu(), generator=generator).to(images.device)


def vae_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    beta: float = 1.0,
    precision: str = "fp32",
) -> dict[str, torch.Tensor]:
    """One VAE training step on a batch ``x`` in ``[0, 1]``; returns per-image averages in nats.

    ``precision="bf16"`` runs the forward pass in bfloat16 autocast
    (:func:`aigc_lessons.core.mixed_precision`).
    """
    extra = () if labels is None else (labels,)
    with mixed_precision(x.device, precision):
        mu, logvar = model.encode(x, *extra)                 # q(z | x) = N(mu, diag(exp(logvar)))
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterization: z = mu + sigma * eps
        decoded = model.decode(z, *extra)                    # parameters of p(x | z)
        loss, reconstruction, kl = negative_elbo(decoded, x, mu, logvar, model.likelihood, beta, model.variance)
        loss = loss.mean()                                   # average over the batch of per-image losses
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "reconstruction": reconstruction.mean().detach(), "kl": kl.mean().detach()}


def vae_training(model: nn.Module, config: VaeConfig, conditional: bool = False,
                 optimizer: torch.optim.Optimizer | None = None) -> tuple[torch.optim.Optimizer, Callable]:
    """The Adam optimizer and the step of VAE training with ``config``.

    :func:`train_vae` and the command line's runs both train with these. The
    step takes a batch ``(x,)`` (or ``(x, labels)`` when ``conditional``) in
    ``[0, 1]``, binarizes it afresh when ``config.binarize`` (dynamic binarization)
    and returns :func:`vae_step`'s losses.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> optimizer, step = vae_training(VAE(latent_dim=2), VaeConfig())
        >>> sorted(step((torch.rand(4, 1, 28, 28),)))
        ['kl', 'loss', 'reconstruction']
    """
    # fused=True: one kernel updates all parameters instead of a loop over tensors (same update rule)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)

    def step(batch):
        x = torch.bernoulli(batch[0]) if config.binarize else batch[0]
        return vae_step(model, optimizer, x, batch[1] if conditional else None, config.beta,
                        precision=config.precision)

    return optimizer, step


def train_vae(
    model: nn.Module,
    images: torch.Tensor,
    config: VaeConfig | None = None,
    *,
    labels: torch.Tensor | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    start_epoch: int = 0,
    history: History | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> History:
    """Train a VAE (or, with ``labels``, a conditional VAE) on ``images`` in ``[0, 1]`` with Adam.

    ``start_epoch``, ``history``, ``on_epoch_end`` and ``optimizer`` are passed
    through to :func:`fit`, so that a run can be checkpointed and resumed.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> h = train_vae(VAE(latent_dim=2), torch.rand(64, 1, 28, 28), VaeConfig(epochs=1, batch_size=32),
        ...               device="cpu", progress=False)
        >>> sorted(k for k in h.rows[-1] if k not in ("epoch", "step"))
        ['kl', 'loss', 'reconstruction']
    """
    config = config or VaeConfig()
    device = get_device(device)
    low, high = images.min().item(), images.max().item()
    if low < -1e-4 or high > 1.0001:
        raise ValueError(
            f"train_vae expects pixels in [0, 1] (Bernoulli or sigmoid-Gaussian decoder), got values in "
            f"[{low:.3f}, {high:.3f}]. Load them with load_mnist(value_range=(0, 1))."
        )
    if (labels is None) != (getattr(model, "num_classes", 0) == 0):
        raise ValueError("pass labels exactly when the model is conditional (ConditionalVAE)")
    if start_epoch == 0:
        seed_everything(config.seed)
    model.to(device).train()
    optimizer, step = vae_training(model, config, conditional=labels is not None, optimizer=optimizer)
    tensors = (images.to(device),) if labels is None else (images.to(device), labels.to(device))
    batches = TensorBatches(*tensors, batch_size=config.batch_size, seed=config.seed)

    return fit(step, batches, config.epochs, log_every=config.log_every, on_epoch_end=on_epoch_end,
               start_epoch=start_epoch, history=history, progress=progress, desc="VAE")


@torch.no_grad()
def evaluate_vae(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 500,
    iwae_k: int = 0,
    seed: int = 0,
) -> dict[str, float]:
    """Average negative ELBO, reconstruction and KL (nats per image) of ``images``; optionally IWAE.

    With ``iwae_k > 0`` it also returns ``"iwae_nll"``: minus the ``k``-sample
    importance-weighted bound, an estimate of ``-log p(x)`` (lower is better).
    The model is used in eval mode and left as it was.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> sorted(evaluate_vae(VAE(latent_dim=2), torch.rand(8, 1, 28, 28)))
        ['kl', 'negative_elbo', 'reconstruction']
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    totals = {"negative_elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    iwae_total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        extra = () if labels is None else (labels[start : start + batch_size].to(device),)
        mu, logvar = model.encode(x, *extra)
        eps = torch.randn(mu.shape, generator=generator).to(device)
        decoded = model.decode(mu + (0.5 * logvar).exp() * eps, *extra)
        loss, reconstruction, kl = negative_elbo(decoded, x, mu, logvar, model.likelihood, 1.0, model.variance)
        totals["negative_elbo"] += float(loss.sum())
        totals["reconstruction"] += float(reconstruction.sum())
        totals["kl"] += float(kl.sum())
        if iwae_k:
            iwae_total -= float(importance_weighted_log_likelihood(model, x, iwae_k, *extra, generator=generator).sum())
    model.train(was_training)
    result = {name: value / len(images) for name, value in totals.items()}
    if iwae_k:
        result["iwae_nll"] = iwae_total / len(images)
    return result
