"""Training a GAN: the step that the first GAN chapter teaches, and its trainer.

The defaults are the first chapter's GAN (binary cross-entropy, one discriminator
update per generator update, one learning rate). The stabilisation chapter adds
options, all off by default: the WGAN-GP losses (``loss="wgan-gp"``), several
critic updates per generator update (``discriminator_steps``), one-sided label
smoothing (``real_label < 1``), two learning rates (``lr_generator`` and
``lr_discriminator``, the two time-scale update rule) and a limit on training
time (``cpu_seconds``) for comparisons at equal compute.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from ..core import check_precision, get_device, mixed_precision, seed_everything
from ..data import TensorBatches
from ..losses import (
    critic_loss_wasserstein,
    discriminator_loss,
    generator_loss_nonsaturating,
    generator_loss_wasserstein,
    gradient_penalty,
)
from ..family import Option, check_settings
from .loop import History, fit


@dataclass
class GanConfig:
    """Settings of ``train_gan``.

    The defaults are the first chapter's GAN in its full setting, the one the
    shipped ``gan_mlp_mnist`` weights were trained with (its recipe,
    ``aigc_lessons.recipes.full_setting("gan_mlp_mnist")``, is the home of
    those numbers; a test checks that the two agree). Every setting with a
    valid range is checked when the config is made (:data:`GAN_RULES`).
    """

    epochs: int = 30
    batch_size: int = 128
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label: float = 1.0
    seed: int = 0
    log_every: int = 50
    loss: str = "bce"  # "bce" (the first chapter's GAN) or "wgan-gp"
    gp_weight: float = 10.0  # weight of the gradient penalty (loss="wgan-gp" only)
    discriminator_steps: int = 1  # discriminator updates per generator update
    cpu_seconds: float | None = None  # stop after the epoch in which this much CPU time was used
    precision: str = "fp32"  # "bf16": forward passes in bfloat16 autocast (see core.mixed_precision)

    def __post_init__(self) -> None:
        check_settings(asdict(self), GAN_RULES)
        check_gan_options(self.loss, self.real_label, self.gp_weight)
        check_precision(self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


LOSSES = ("bce", "wgan-gp")

# The valid range of every numeric setting of GanConfig (checked when a config is made).
GAN_RULES = {
    "epochs": Option(1, minimum=1), "batch_size": Option(1, minimum=1), "seed": Option(0, minimum=0),
    "lr_generator": Option(1.0, above=0), "lr_discriminator": Option(1.0, above=0),
    "log_every": Option(1, minimum=1), "gp_weight": Option(1.0, minimum=0),
    "discriminator_steps": Option(1, minimum=1), "cpu_seconds": Option(1.0, minimum=0, none_ok=True),
}


def check_gan_options(loss: str, real_label: float = 1.0, gp_weight: float = 10.0) -> None:
    """Raise ``ValueError`` for a loss name or a setting that does not fit it."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1] (0.9 is one-sided label smoothing), got {real_label!r}")
    if loss == "wgan-gp" and real_label != 1.0:
        raise ValueError("label smoothing (real_label < 1) applies to the cross-entropy loss; "
                         "the Wasserstein critic has no labels. Use real_label=1.0 with loss='wgan-gp'.")
    if gp_weight < 0:
        raise ValueError(f"gp_weight must be non-negative, got {gp_weight!r}")


def _has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_generator: torch.optim.Optimizer,
    opt_discriminator: torch.optim.Optimizer,
    real: torch.Tensor,
    latent_dim: int,
    real_label: float = 1.0,
    *,
    loss: str = "bce",
    gp_weight: float = 10.0,
    update_generator: bool = True,
    precision: str = "fp32",
) -> dict[str, torch.Tensor]:
    """One GAN training step: update D on real and fake images, then update G.

    ``loss="bce"`` (default): the discriminator minimises the binary
    cross-entropy with targets ``real_label`` (1, or 0.9 for one-sided label
    smoothing) and 0; the generator uses the non-saturating loss ``-log D(G(z))``
    (see the GAN theory chapter).

    ``loss="wgan-gp"``: the discriminator is a critic with unbounded scores; it
    minimises ``E[f(G(z))] - E[f(x)] + gp_weight * penalty`` and the generator
    ``-E[f(G(z))]`` (Gulrajani et al., 2017). The step then also returns the
    critic's estimate of the Wasserstein distance, ``E[f(x)] - E[f(G(z))]``, and
    the penalty.

    ``update_generator=False`` updates only the discriminator (for several
    critic steps per generator step); the result then has no ``loss_g``.

    ``precision="bf16"`` runs the forward passes and losses in bfloat16
    autocast (:func:`aigc_lessons.core.mixed_precision`); the update is the same.
    """
    check_gan_options(loss, real_label, gp_weight)
    if loss == "wgan-gp" and _has_batch_norm(discriminator):
        raise ValueError(
            "WGAN-GP needs a critic without batch normalisation: the gradient penalty is a per-example "
            "constraint, and batch statistics mix the examples of a batch. Build the critic with "
            "batch_norm=False (for example DiscriminatorDCGAN(batch_norm=False))."
        )
    with mixed_precision(real.device, precision):
        z = torch.randn(real.shape[0], latent_dim, device=real.device)
        fake = generator(z)

        # Discriminator: push real logits up and fake logits down. ``detach`` keeps
        # this step from computing gradients for the generator.
        if _has_batch_norm(discriminator):
            # separate passes: batch statistics of a mixed batch would let D tell real from fake by them
            real_scores, fake_scores = discriminator(real), discriminator(fake.detach())
        else:
            # one pass over real and fake together: the same logits, and one large matrix product
            # runs faster than two half-size ones (the benchmarks measure it)
            real_scores, fake_scores = discriminator(torch.cat([real, fake.detach()])).split(len(real))
        out: dict[str, torch.Tensor] = {}
        if loss == "bce":
            loss_d = discriminator_loss(real_scores, fake_scores, real_label)
        else:
            critic_loss = critic_loss_wasserstein(real_scores, fake_scores)
            penalty = gradient_penalty(discriminator, real, fake)
            loss_d = critic_loss + gp_weight * penalty
            out["wasserstein"] = -critic_loss.detach()
            out["penalty"] = penalty.detach()
    opt_discriminator.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_discriminator.step()
    out = {"loss_d": loss_d.detach(), **out}  # loss_d first: the loop counts steps with the first entry
    if not update_generator:
        return out

    # Generator: make the (just updated) discriminator call the fakes real.
    with mixed_precision(real.device, precision):
        fake_scores = discriminator(fake)
        loss_g = generator_loss_nonsaturating(fake_scores) if loss == "bce" else generator_loss_wasserstein(fake_scores)
    opt_generator.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generator.step()
    out["loss_g"] = loss_g.detach()
    return out


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    config: GanConfig | None = None,
    *,
    device: str | torch.device = "auto",
    fixed_noise: torch.Tensor | None = None,
    snapshot_epochs: Iterable[int] = (),
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> History:
    """Train a GAN on ``images`` (``(N, 1, 28, 28)`` in ``[-1, 1]``) with Adam.

    ``fixed_noise`` is passed through the generator after each epoch listed in
    ``snapshot_epochs`` (and after the last), so sample grids are comparable
    over training; they are stored in ``history.snapshots``.

    With ``config.cpu_seconds`` set, training stops at the end of the first
    epoch after which the process has used that many CPU seconds
    (``time.process_time``, which counts this process only, so runs on a
    shared machine compare fairly); the last row's ``epoch`` says how far it got.
    ``history.cpu_seconds`` holds the CPU time used (``history.seconds`` the wall time).

    ``on_epoch_end(epoch)`` is called after each epoch (after the snapshot), for
    example to record :func:`discriminator_diagnostics`.

    Example:
        >>> from aigc_lessons.models import GeneratorMLP, DiscriminatorMLP
        >>> data = torch.rand(64, 1, 28, 28) * 2 - 1
        >>> h = train_gan(GeneratorMLP(), DiscriminatorMLP(), data, GanConfig(epochs=1, batch_size=32),
        ...               device="cpu", progress=False)
        >>> sorted(k for k in h.rows[-1] if k.startswith("loss"))
        ['loss_d', 'loss_g']
    """
    config = config or GanConfig()
    device = get_device(device)
    seed_everything(config.seed)
    generator.to(device).train()
    discriminator.to(device).train()
    latent_dim = generator.latent_dim
    if fixed_noise is None:
        fixed_noise = torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(config.seed))
    fixed_noise = fixed_noise.to(device)
    low, high = images.min().item(), images.max().item()
    if low < -1.0001 or high > 1.0001 or low >= 0:
        raise ValueError(
            f"train_gan expects images scaled to [-1, 1] (the generator ends in tanh), got values in "
            f"[{low:.3f}, {high:.3f}]" + (" (this looks like data in [0, 1])" if low >= 0 else "")
            + ". Load them with load_mnist(value_range=(-1, 1))."
        )

    (opt_g, opt_d), step = gan_training(generator, discriminator, config)
    batches = TensorBatches(images.to(device), batch_size=config.batch_size, seed=config.seed)
    history = History()
    wanted = set(snapshot_epochs) | {config.epochs}

    def snapshot(epoch: int) -> None:
        if epoch in wanted:
            history.snapshots.append((epoch, sample_images(generator, fixed_noise)))
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    if 0 in wanted:
        snapshot(0)
    started = time.process_time()
    if config.cpu_seconds is None:
        fit(step, batches, config.epochs, log_every=config.log_every, on_epoch_end=snapshot,
            history=history, progress=progress, desc="GAN")
        history.cpu_seconds = time.process_time() - started  # CPU time of this process (wall time: .seconds)
        return history
    # A CPU-time budget: one epoch at a time, so every epoch is complete.
    for epoch in range(config.epochs):
        fit(step, batches, epoch + 1, start_epoch=epoch, log_every=config.log_every, on_epoch_end=snapshot,
            history=history, progress=progress, desc=f"GAN epoch {epoch + 1}")
        if time.process_time() - started >= config.cpu_seconds:
            break
    history.cpu_seconds = time.process_time() - started
    if not history.snapshots or history.snapshots[-1][0] != epoch + 1:
        history.snapshots.append((epoch + 1, sample_images(generator, fixed_noise)))
    return history


def gan_training(generator: nn.Module, discriminator: nn.Module, config: GanConfig
                 ) -> tuple[tuple[torch.optim.Optimizer, torch.optim.Optimizer], Callable[[tuple], dict]]:
    """The two Adam optimizers and the step of GAN training with ``config``.

    :func:`train_gan` and the command line's runs both train with these, so
    the two cannot drift apart. The step takes a batch ``(real,)`` and returns
    :func:`gan_step`'s losses; with ``config.discriminator_steps = k`` it
    updates the generator on every k-th call only.

    Example:
        >>> from aigc_lessons.models import DiscriminatorMLP, GeneratorMLP
        >>> (opt_g, opt_d), step = gan_training(GeneratorMLP(), DiscriminatorMLP(), GanConfig())
        >>> sorted(step((torch.rand(4, 1, 28, 28) * 2 - 1,)))
        ['loss_d', 'loss_g']
    """
    # fused=True: one kernel updates all parameters instead of a loop over tensors (same update rule)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas, fused=True)
    latent_dim = generator.latent_dim
    steps_done = 0

    def step(batch):
        nonlocal steps_done
        steps_done += 1
        return gan_step(generator, discriminator, opt_g, opt_d, batch[0], latent_dim, config.real_label,
                        loss=config.loss, gp_weight=config.gp_weight,
                        update_generator=steps_done % config.discriminator_steps == 0, precision=config.precision)

    return (opt_g, opt_d), step


def discriminator_diagnostics(
    generator: nn.Module, discriminator: nn.Module, real: torch.Tensor, noise: torch.Tensor
) -> dict[str, float]:
    """How the discriminator sees real and generated images right now (no parameter changes).

    Returns the mean score (logit, or critic score) on real and on generated
    images, the mean probability ``D(x) = sigmoid(l(x))`` on each, and the mean
    norm of the score's gradient with respect to the input image,
    ``||grad_x l(x)||``, on real images: how sharply D's output changes when an
    image changes, which is the signal the generator learns from.

    Both networks are evaluated in evaluation mode (batch norm uses its running
    statistics; spectral norm does no power-iteration step), and put back.

    Example:
        >>> from aigc_lessons.models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
        >>> d = discriminator_diagnostics(GeneratorDCGAN(), DiscriminatorDCGAN(), torch.zeros(4, 1, 28, 28),
        ...                               torch.randn(4, 100))
        >>> sorted(d)
        ['gradient_norm_real', 'probability_fake', 'probability_real', 'score_fake', 'score_real']
    """
    modes = generator.training, discriminator.training
    generator.eval()
    discriminator.eval()
    try:
        with torch.no_grad():
            fake_scores = discriminator(generator(noise))
        inputs = real.detach().clone().requires_grad_(True)
        real_scores = discriminator(inputs)
        (grads,) = torch.autograd.grad(real_scores.sum(), inputs)
    finally:
        generator.train(modes[0])
        discriminator.train(modes[1])
    real_scores = real_scores.detach()
    return {
        "score_real": real_scores.mean().item(),
        "score_fake": fake_scores.mean().item(),
        "probability_real": torch.sigmoid(real_scores).mean().item(),
        "probability_fake": torch.sigmoid(fake_scores).mean().item(),
        "gradient_norm_real": grads.flatten(1).norm(dim=1).mean().item(),
    }


@torch.no_grad()
def sample_images(generator: nn.Module, noise: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
    """Generate images from ``noise`` in evaluation mode, returned on the CPU.

    Extra arguments (for example class labels) are passed to the generator.
    """
    was_training = generator.training
    generator.eval()
    images = generator(noise, *args).cpu()
    generator.train(was_training)
    return images


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
