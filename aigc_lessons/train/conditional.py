"""Training a class-conditional GAN: the step the conditional chapter teaches, its trainer, class grids.

The conditional VAE is trained with :func:`aigc_lessons.train.train_vae` (pass ``labels``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from ..core import check_precision, get_device, mixed_precision, seed_everything
from ..data import TensorBatches
from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..family import Option, check_settings
from .loop import History, fit


@dataclass
class CganConfig:
    """Settings of ``train_cgan``.

    The defaults are the full setting of the shipped ``cgan_mnist`` weights
    (its recipe is the home of those numbers; a test checks that they agree).
    Every setting with a valid range is checked when the config is made (:data:`CGAN_RULES`).
    """

    epochs: int = 20
    batch_size: int = 128
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    log_every: int = 50
    precision: str = "fp32"  # "bf16": forward passes in bfloat16 autocast (see core.mixed_precision)

    def __post_init__(self) -> None:
        check_settings(asdict(self), CGAN_RULES)
        check_precision(self.precision)

    def to_dict(self) -> dict:
        return asdict(self)


CGAN_RULES = {"epochs": Option(1, minimum=1), "batch_size": Option(1, minimum=1), "seed": Option(0, minimum=0),
              "lr_generator": Option(1.0, above=0), "lr_discriminator": Option(1.0, above=0),
              "log_every": Option(1, minimum=1)}


def cgan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_generator: torch.optim.Optimizer,
    opt_discriminator: torch.optim.Optimizer,
    real: torch.Tensor,
    labels: torch.Tensor,
    precision: str = "fp32",
) -> dict[str, torch.Tensor]:
    """One conditional GAN step: D on (real, y) and (G(z, y), y), then G, with the same labels y.

    ``precision="bf16"`` runs the forward passes in bfloat16 autocast
    (:func:`aigc_lessons.core.mixed_precision`).
    """
    with mixed_precision(real.device, precision):
        z = torch.randn(real.shape[0], generator.latent_dim, device=real.device)
        fake = generator(z, labels)  # fakes of the same classes as the real batch
        loss_d = discriminator_loss(discriminator(real, labels), discriminator(fake.detach(), labels))
    opt_discriminator.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_discriminator.step()

    with mixed_precision(real.device, precision):
        loss_g = generator_loss_nonsaturating(discriminator(fake, labels))
    opt_generator.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generator.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


def cgan_training(generator: nn.Module, discriminator: nn.Module, config: CganConfig,
                  optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None):
    """``((opt_g, opt_d), step)``: the optimizers and the step of conditional GAN training.

    :func:`train_cgan` and the command line's runs both train with these. The
    step takes a batch ``(images, labels)`` and returns :func:`cgan_step`'s losses.
    """
    if optimizers is None:
        optimizers = (
            # fused=True: one kernel updates all parameters instead of a loop over tensors (same update rule)
            torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas, fused=True),
            torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas, fused=True),
        )
    opt_g, opt_d = optimizers

    def step(batch):
        return cgan_step(generator, discriminator, opt_g, opt_d, batch[0], batch[1], config.precision)

    return optimizers, step


def train_cgan(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: CganConfig | None = None,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    start_epoch: int = 0,
    history: History | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None,
) -> History:
    """Train a conditional GAN on ``images`` in ``[-1, 1]`` with integer ``labels``.

    ``start_epoch``, ``history``, ``on_epoch_end`` and ``optimizers`` (generator's,
    discriminator's) are passed through so that a run can be checkpointed and resumed.

    Example:
        >>> from aigc_lessons.models import ConditionalGenerator, ConditionalDiscriminator
        >>> x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
        >>> h = train_cgan(ConditionalGenerator(), ConditionalDiscriminator(), x, y, CganConfig(epochs=1),
        ...                device="cpu", progress=False)
        >>> sorted(k for k in h.rows[-1] if k.startswith("loss"))
        ['loss_d', 'loss_g']
    """
    config = config or CganConfig()
    device = get_device(device)
    low, high = images.min().item(), images.max().item()
    if low < -1.0001 or high > 1.0001 or low >= 0:
        raise ValueError(
            f"train_cgan expects images scaled to [-1, 1] (the generator ends in tanh), got values in "
            f"[{low:.3f}, {high:.3f}]. Load them with load_mnist(value_range=(-1, 1))."
        )
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), one per image, got {tuple(labels.shape)}")
    if start_epoch == 0:
        seed_everything(config.seed)
    generator.to(device).train()
    discriminator.to(device).train()
    _, step = cgan_training(generator, discriminator, config, optimizers)
    batches = TensorBatches(images.to(device), labels.to(device), batch_size=config.batch_size, seed=config.seed)

    return fit(step, batches, config.epochs, log_every=config.log_every, on_epoch_end=on_epoch_end,
               start_epoch=start_epoch, history=history, progress=progress, desc="cGAN")


def class_grid_labels(num_classes: int = 10, per_class: int = 10, device: str | torch.device = "cpu") -> torch.Tensor:
    """Labels for a grid with one row per class: ``0,0,...,0,1,1,...`` (``per_class`` each).

    Example:
        >>> class_grid_labels(3, 2).tolist()
        [0, 0, 1, 1, 2, 2]
    """
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)


def class_grid_noise(latent_dim: int, num_classes: int = 10, per_class: int = 10, seed: int = 0) -> torch.Tensor:
    """Noise for the same grid, with the *same* ``per_class`` noise vectors in every row.

    Fixing the noise along a column and changing only the label shows what the
    label controls (the class) and what the noise controls (the style).

    Example:
        >>> z = class_grid_noise(4, num_classes=3, per_class=2)
        >>> torch.equal(z[0], z[2]) and torch.equal(z[1], z[5])
        True
    """
    z = torch.randn(per_class, latent_dim, generator=torch.Generator().manual_seed(seed))
    return z.repeat(num_classes, 1)


@torch.no_grad()
def conditional_class_accuracy(
    classifier: nn.Module,
    sample_fn: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int = 10,
    per_class: int = 1000,
    batch_size: int = 1000,
    device: str | torch.device = "cpu",
) -> tuple[float, torch.Tensor]:
    """Fraction of conditional samples that ``classifier`` assigns to the requested class.

    ``sample_fn(labels)`` returns images for the given labels in the classifier's
    input format. Returns ``(accuracy, per-class accuracy of shape (num_classes,))``.

    Example:
        >>> clf = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> acc, per = conditional_class_accuracy(clf, lambda y: torch.zeros(len(y), 1, 28, 28), per_class=5)
        >>> per.shape
        torch.Size([10])
    """
    was_training = classifier.training
    classifier.eval()
    labels = class_grid_labels(num_classes, per_class, device=device)
    correct = torch.zeros(num_classes)
    for start in range(0, len(labels), batch_size):
        y = labels[start : start + batch_size]
        predicted = classifier(sample_fn(y)).argmax(dim=1)
        correct += torch.bincount(y[predicted == y].cpu(), minlength=num_classes).float()
    classifier.train(was_training)
    per_class_accuracy = correct / per_class
    return float(per_class_accuracy.mean()), per_class_accuracy

