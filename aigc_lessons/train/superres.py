"""Training and measuring super-resolution networks: the EDSR step, the SRGAN step, the trainer.

``superres_step`` is EDSR's training: upscale the low-resolution batch, take
the pixel loss (L1 by default, as in EDSR; ``"l2"`` is the mean squared error,
whose minimiser maximises PSNR) against the high-resolution batch, one Adam step.

``srgan_step`` adds the adversarial game of SRGAN (Ledig et al., 2017): the
discriminator learns to tell real high-resolution digits from upscaled ones,
and the generator minimises ``pixel loss + adversarial_weight * (-log D(G(x_LR)))``.
SRGAN's VGG feature ("content") loss is left out: there are no ImageNet
weights offline, and the book's MNIST classifier is the judge that scores the
results, so training on its features would teach to the test (the chapter says more).

``evaluate_superres`` measures PSNR, SSIM (both per image, then averaged),
the reference classifier's accuracy on the upscaled digits, and the Fréchet
distance of the classifier's features to those of the real digits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..core import get_device, seed_everything
from ..data import TensorBatches
from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..models.superres import clamp_unit, degrade, upscale_bicubic
from .loop import History, fit

PIXEL_LOSSES = ("l1", "l2")


@dataclass
class SuperResConfig:
    """Settings of ``train_superres``; ``adversarial_weight > 0`` makes it SRGAN-style training."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    cosine_decay: bool = True  # learning rate decays to 0 over all steps (cosine)
    pixel_loss: str = "l1"
    adversarial_weight: float = 0.0  # 0: EDSR (pixel loss only); > 0: SRGAN-style
    lr_discriminator: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"pixel_loss must be one of {PIXEL_LOSSES}, got {self.pixel_loss!r}")
        if self.adversarial_weight < 0:
            raise ValueError(f"adversarial_weight must be non-negative, got {self.adversarial_weight!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def pixel_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``"l1"``) or mean squared (``"l2"``) pixel error.

    Example:
        >>> pixel_loss(torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2), "l2").item()
        0.25
    """
    if kind not in PIXEL_LOSSES:
        raise ValueError(f"kind must be one of {PIXEL_LOSSES}, got {kind!r}")
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} must have the same shape")
    return F.l1_loss(output, target) if kind == "l1" else F.mse_loss(output, target)


def superres_step(model: nn.Module, optimizer: torch.optim.Optimizer, low_res: torch.Tensor,
                  high_res: torch.Tensor, loss: str = "l1") -> dict[str, torch.Tensor]:
    """One EDSR training step: upscale, pixel loss against the high-resolution batch, one update."""
    value = pixel_loss(model(low_res), high_res, loss)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    return {"loss": value.detach()}


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]: the range ``DiscriminatorDCGAN`` was built for."""
    return images * 2.0 - 1.0


def srgan_step(generator: nn.Module, discriminator: nn.Module, opt_generator: torch.optim.Optimizer,
               opt_discriminator: torch.optim.Optimizer, low_res: torch.Tensor, high_res: torch.Tensor,
               adversarial_weight: float = 1e-2, loss: str = "l1") -> dict[str, torch.Tensor]:
    """One SRGAN-style step: update D on real and upscaled digits, then G on pixel + adversarial loss.

    The discriminator sees images mapped to [-1, 1]; the upscaled batch is
    detached for D's update, so D's step computes no gradients for G.
    """
    upscaled = generator(low_res)

    real_logits = discriminator(to_signed(high_res))
    fake_logits = discriminator(to_signed(upscaled.detach()))
    loss_d = discriminator_loss(real_logits, fake_logits)
    opt_discriminator.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_discriminator.step()

    pixel = pixel_loss(upscaled, high_res, loss)
    adversarial = generator_loss_nonsaturating(discriminator(to_signed(upscaled)))
    loss_g = pixel + adversarial_weight * adversarial
    opt_generator.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generator.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "pixel": pixel.detach(),
            "adversarial": adversarial.detach()}


def train_superres(model: nn.Module, high_res: torch.Tensor, config: SuperResConfig | None = None, *,
                   discriminator: nn.Module | None = None, device: str | torch.device = "auto",
                   progress: bool = True, on_epoch_end: Callable[[int], None] | None = None) -> History:
    """Train ``model`` (an :class:`~aigc_lessons.models.superres.EDSR`) to upscale by ``model.scale``.

    ``high_res``: ``(N, 1, H, W)`` images in [0, 1]; the low-resolution inputs are
    made once with :func:`~aigc_lessons.models.superres.degrade`. With
    ``config.adversarial_weight > 0`` a ``discriminator`` (for example
    ``DiscriminatorDCGAN()``) is required and trained alongside (SRGAN-style).

    Example:
        >>> from aigc_lessons.models.superres import EDSR
        >>> h = train_superres(EDSR(scale=4, channels=8, blocks=1), torch.rand(32, 1, 28, 28),
        ...                    SuperResConfig(epochs=1, batch_size=16), device="cpu", progress=False)
        >>> sorted(k for k in h.rows[-1] if k not in ("epoch", "step"))
        ['loss']
    """
    config = config or SuperResConfig()
    device = get_device(device)
    low, high = high_res.min().item(), high_res.max().item()
    if low < -1e-4 or high > 1.0001:
        raise ValueError(f"train_superres expects images in [0, 1], got values in [{low:.3f}, {high:.3f}]. "
                         "Load them with load_mnist(value_range=(0, 1)).")
    adversarial = config.adversarial_weight > 0
    if adversarial and discriminator is None:
        raise ValueError("adversarial_weight > 0 needs a discriminator, for example DiscriminatorDCGAN()")
    seed_everything(config.seed)
    model.to(device).train()
    high_res = high_res.to(device)
    with torch.no_grad():
        low_res = degrade(high_res, model.scale)
    batches = TensorBatches(low_res, high_res, batch_size=config.batch_size, seed=config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(batches))
                if config.cosine_decay else None)
    if adversarial:
        discriminator.to(device).train()
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas)

    def step(batch):
        lr_batch, hr_batch = batch
        if adversarial:
            losses = srgan_step(model, discriminator, optimizer, opt_d, lr_batch, hr_batch,
                                config.adversarial_weight, config.pixel_loss)
        else:
            losses = superres_step(model, optimizer, lr_batch, hr_batch, config.pixel_loss)
        if schedule is not None:
            schedule.step()
        return losses

    return fit(step, batches, config.epochs, log_every=config.log_every, on_epoch_end=on_epoch_end,
               progress=progress, desc="SRGAN" if adversarial else "EDSR")


@torch.no_grad()
def upscale(model: nn.Module, low_res: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Upscale ``low_res`` with ``model`` in evaluation mode, clamped to [0, 1], on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [clamp_unit(model(chunk.to(device))).cpu() for chunk in low_res.split(batch_size)]
    model.train(was_training)
    return torch.cat(outputs)


def evaluate_superres(upscaled: torch.Tensor, high_res: torch.Tensor, labels: torch.Tensor | None = None,
                      *, fd: bool = True, device: str | torch.device = "cpu") -> dict[str, float]:
    """PSNR (dB) and SSIM averaged over images, and, with the reference classifier, accuracy and FD.

    ``upscaled`` and ``high_res`` are ``(N, 1, H, W)`` in [0, 1] (clamp first).
    ``class_accuracy`` (with ``labels``): the fraction of upscaled digits the
    reference classifier reads as their true label. ``fd_mnist`` (``fd=True``, at
    least 2 images): the Fréchet distance between the classifier features of the
    upscaled and of the real digits, a measure of how *realistic* the outputs
    look as a set, blind to whether each output matches its own target.

    Example:
        >>> target = torch.rand(3, 1, 28, 28)
        >>> evaluate_superres(target.clamp(0.1, 0.9), target, fd=False)["psnr"] > 10
        True
    """
    from ..metrics import class_accuracy, classifier_features, frechet_distance, psnr, ssim

    upscaled, high_res = upscaled.detach().cpu(), high_res.detach().cpu()
    scores = {"psnr": float(psnr(upscaled, high_res, (0, 1)).mean()),
              "ssim": float(ssim(upscaled, high_res, (0, 1)).mean()),
              "count": len(upscaled)}
    if labels is not None:
        scores["class_accuracy"] = class_accuracy(upscaled, labels, value_range=(0, 1), device=device)
    if fd and len(upscaled) >= 2:
        scores["fd_mnist"] = frechet_distance(classifier_features(upscaled, (0, 1), device=device),
                                              classifier_features(high_res, (0, 1), device=device))
    return scores


def evaluate_bicubic(high_res: torch.Tensor, scale: int, labels: torch.Tensor | None = None, *, fd: bool = True,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """The baseline's scores: degrade, upscale with bicubic interpolation, clamp, measure."""
    upscaled = clamp_unit(upscale_bicubic(degrade(high_res.cpu(), scale), scale))
    return evaluate_superres(upscaled, high_res, labels, fd=fd, device=device)
