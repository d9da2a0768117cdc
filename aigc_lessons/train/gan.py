"""Training a GAN: the step that the first GAN chapter teaches, and its trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from ..core import get_device, seed_everything
from ..data import TensorBatches
from ..losses import discriminator_loss, generator_loss_nonsaturating
from .loop import History, fit


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
