"""Training loops: one small epoch loop shared by every model, and the GAN trainer.

The loop that the book teaches is the *step*: for a GAN, one discriminator
update followed by one generator update (``gan_step`` below, shown in full in
the first GAN chapter). ``fit`` runs steps over epochs and takes care of the
rest: progress bar, loss history, the non-finite-loss guard, snapshots and
checkpoints, resuming.

Speed without hiding anything: the data are tensors on the device
(``TensorBatches``), and losses stay on the device until a logging step, so
there is one host synchronisation per ``log_every`` steps, not one per step.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from .core import get_device, seed_everything
from .data import TensorBatches
from .losses import discriminator_loss, generator_loss_nonsaturating


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops at once instead of wasting time."""


@dataclass
class History:
    """Losses recorded during training: one row per logging step, plus timing."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        """All logged values of one loss, in order."""
        return [row[key] for row in self.rows if key in row]

    def steps(self) -> list[int]:
        return [row["step"] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


StepFn = Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]]


def _first_non_finite(losses: dict[str, torch.Tensor], first_step: int) -> str | None:
    """Describe the first non-finite entry in per-step loss buffers, if any."""
    for name, values in losses.items():
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            index = int(bad[0, 0])
            return f"{name} = {values[index].item()} at step {first_step + index}"
    return None


def fit(
    step_fn: StepFn,
    batches: TensorBatches,
    epochs: int,
    *,
    log_every: int = 50,
    on_epoch_end: Callable[[int], None] | None = None,
    start_epoch: int = 0,
    history: History | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Run ``step_fn`` on every batch for ``epochs`` epochs and record the losses.

    ``step_fn(batch)`` performs one optimisation step and returns its losses as
    0-d tensors (detached). Raises :class:`NonFiniteLossError` at the first
    logging point after a loss became NaN or infinite, naming the exact step.

    Example:
        >>> batches = TensorBatches(torch.randn(8, 2), batch_size=4)
        >>> h = fit(lambda batch: {"loss": batch[0].pow(2).mean()}, batches, epochs=2, progress=False)
        >>> len(h.series("loss"))
        4
    """
    from tqdm.auto import tqdm

    history = history if history is not None else History()
    steps_per_epoch = len(batches)
    step = start_epoch * steps_per_epoch
    pending: dict[str, list[torch.Tensor]] = {}
    pending_first_step = step

    def flush(epoch: int) -> None:
        nonlocal pending, pending_first_step
        if not pending:
            return
        stacked = {name: torch.stack(values).float().cpu() for name, values in pending.items()}
        problem = _first_non_finite(stacked, pending_first_step)
        if problem:
            raise NonFiniteLossError(
                f"Loss became non-finite: {problem} (epoch {epoch + 1}). Common causes: a learning rate "
                "that is too high, log(0) in a hand-written loss (use the logit versions in "
                "aigc_lessons.losses), or inputs outside the expected range."
            )
        row = {"epoch": epoch + 1, "step": pending_first_step + len(next(iter(stacked.values())))}
        row.update({name: float(values.mean()) for name, values in stacked.items()})
        history.rows.append(row)
        pending = {}
        pending_first_step = step

    started = time.perf_counter()
    bar = tqdm(total=(epochs - start_epoch) * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(start_epoch, epochs):
            batches.set_epoch(epoch)
            for batch in batches:
                losses = step_fn(batch)
                for name, value in losses.items():
                    pending.setdefault(name, []).append(value.detach())
                step += 1
                bar.update(1)
                if step % log_every == 0:
                    flush(epoch)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in history.rows[-1].items() if k not in ("epoch", "step")})
            flush(epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
    finally:
        bar.close()
        history.seconds += time.perf_counter() - started
    return history


@dataclass
class GanConfig:
    """Settings of ``train_gan``; the defaults are the book's full MNIST setting."""

    epochs: int = 20
    batch_size: int = 128
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label: float = 1.0
    seed: int = 0
    log_every: int = 50

    def to_dict(self) -> dict:
        return asdict(self)


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_generator: torch.optim.Optimizer,
    opt_discriminator: torch.optim.Optimizer,
    real: torch.Tensor,
    latent_dim: int,
    real_label: float = 1.0,
) -> dict[str, torch.Tensor]:
    """One GAN training step: update D on real and fake images, then update G.

    The generator uses the non-saturating loss ``-log D(G(z))``; see the GAN theory chapter.
    """
    z = torch.randn(real.shape[0], latent_dim, device=real.device)
    fake = generator(z)

    # Discriminator: push real logits up and fake logits down. ``detach`` keeps
    # this step from computing gradients for the generator.
    loss_d = discriminator_loss(discriminator(real), discriminator(fake.detach()), real_label)
    opt_discriminator.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_discriminator.step()

    # Generator: make the (just updated) discriminator call the fakes real.
    loss_g = generator_loss_nonsaturating(discriminator(fake))
    opt_generator.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generator.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


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
) -> History:
    """Train a GAN on ``images`` (``(N, 1, 28, 28)`` in ``[-1, 1]``) with Adam.

    ``fixed_noise`` is passed through the generator after each epoch listed in
    ``snapshot_epochs`` (and after the last), so sample grids are comparable
    over training; they are stored in ``history.snapshots``.

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

    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas)
    batches = TensorBatches(images.to(device), batch_size=config.batch_size, seed=config.seed)
    history = History()
    wanted = set(snapshot_epochs) | {config.epochs}

    def step(batch):
        return gan_step(generator, discriminator, opt_g, opt_d, batch[0], latent_dim, config.real_label)

    def snapshot(epoch: int) -> None:
        if epoch in wanted:
            history.snapshots.append((epoch, sample_images(generator, fixed_noise)))

    if 0 in wanted:
        snapshot(0)
    return fit(
        step, batches, config.epochs, log_every=config.log_every, on_epoch_end=snapshot,
        history=history, progress=progress, desc="GAN",
    )


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
