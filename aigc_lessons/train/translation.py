"""Training image-to-image translation: the pix2pix step, the CycleGAN step, their trainers and scores.

* :func:`pix2pix_step`: one update of the conditional discriminator on
  (input, target) against (input, G(input)), then one update of the generator
  on ``L_cGAN + l1_weight * L1`` (Isola et al., 2017: ``l1_weight = 100``).
  With ``adversarial=False`` only the L1 term is trained and there is no
  discriminator: the baseline that shows what the adversarial term adds.
* :func:`cyclegan_step`: one update of both generators on the least-squares
  adversarial terms plus ``cycle_weight`` times the cycle-consistency loss plus
  ``identity_weight`` times the identity loss (Zhu et al., 2017: 10 and 5), then
  one update of both discriminators.
* :func:`train_pix2pix`, :func:`train_cyclegan`: Adam (``eta = 2e-4``,
  ``beta_1 = 0.5``, as in both papers) and :func:`~aigc_lessons.train.loop.fit`.
* :func:`translate`, :func:`translation_scores`: outputs and their error
  against known targets (L1, PSNR, SSIM) and the reference classifier's accuracy
  on them (does the output still show the same digit?).

Images are in ``[0, 1]`` throughout (the generators end in a sigmoid).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core import get_device, seed_everything
from ..data import TensorBatches
from ..losses import discriminator_loss, generator_loss_nonsaturating
from .loop import History, fit


def _check_pairs(inputs: torch.Tensor, targets: torch.Tensor, who: str) -> None:
    if inputs.shape != targets.shape:
        raise ValueError(f"{who}: inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the "
                         "same shape: pix2pix learns from aligned pairs, one target per input.")
    low, high = float(torch.minimum(inputs.min(), targets.min())), float(torch.maximum(inputs.max(), targets.max()))
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{who} expects images in [0, 1] (the generators end in a sigmoid), got values in "
                         f"[{low:.3g}, {high:.3g}]. Build the pairs with aigc_lessons.image_tasks.")


# --------------------------------------------------------------------------- pix2pix


def pix2pix_step(
    generator: nn.Module,
    discriminator: nn.Module | None,
    opt_generator: torch.optim.Optimizer,
    opt_discriminator: torch.optim.Optimizer | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    l1_weight: float = 100.0,
    adversarial: bool = True,
) -> dict[str, torch.Tensor]:
    """One pix2pix step: update D on real and generated pairs, then G on ``L_cGAN + l1_weight * L1``.

    The discriminator sees the input stacked with an output, so it judges
    whether the output fits *this* input. Its loss is halved, as in the paper
    (it slows D down relative to G). ``adversarial=False`` trains G on the L1
    term alone and leaves ``discriminator`` unused (pass ``None``).
    """
    outputs = generator(inputs)
    losses: dict[str, torch.Tensor] = {}
    adversarial_term = torch.zeros((), device=inputs.device)
    if adversarial:
        real_logits = discriminator(torch.cat([inputs, targets], dim=1))
        fake_logits = discriminator(torch.cat([inputs, outputs.detach()], dim=1))
        loss_d = 0.5 * discriminator_loss(real_logits, fake_logits)
        opt_discriminator.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_discriminator.step()
        losses["loss_d"] = loss_d.detach()
        adversarial_term = generator_loss_nonsaturating(discriminator(torch.cat([inputs, outputs], dim=1)))
    l1 = (outputs - targets).abs().mean()
    loss_g = adversarial_term + l1_weight * l1 if adversarial else l1
    opt_generator.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generator.step()
    losses.update({"loss_g": loss_g.detach(), "l1": l1.detach()})
    if adversarial:
        losses["loss_g_adversarial"] = adversarial_term.detach()
    return losses


@dataclass
class Pix2PixConfig:
    """Settings of :func:`train_pix2pix`; the defaults are the chapter's full setting."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    l1_weight: float = 100.0
    adversarial: bool = True
    seed: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.l1_weight < 0:
            raise ValueError(f"l1_weight must be non-negative, got {self.l1_weight!r}")
        if not self.adversarial and self.l1_weight == 0:
            raise ValueError("adversarial=False with l1_weight=0 leaves nothing to train")

    def to_dict(self) -> dict:
        return asdict(self)


def train_pix2pix(
    generator: nn.Module,
    discriminator: nn.Module | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: Pix2PixConfig | None = None,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> History:
    """Train a pix2pix generator (and its discriminator) on aligned ``inputs`` -> ``targets`` in ``[0, 1]``.

    ``history.cpu_seconds`` holds the CPU time used.

    Example:
        >>> from aigc_lessons.models.translation import PatchDiscriminator, UNetGenerator
        >>> x = torch.rand(16, 1, 28, 28)
        >>> h = train_pix2pix(UNetGenerator(channels=4), PatchDiscriminator(2, channels=4), x, 1 - x,
        ...                   Pix2PixConfig(epochs=1, batch_size=8), device="cpu", progress=False)
        >>> sorted(h.rows[-1])
        ['epoch', 'l1', 'loss_d', 'loss_g', 'loss_g_adversarial', 'step']
    """
    config = config or Pix2PixConfig()
    _check_pairs(inputs, targets, "train_pix2pix")
    if config.adversarial and discriminator is None:
        raise ValueError("train_pix2pix with adversarial=True needs a discriminator, e.g. PatchDiscriminator(in_channels=2)")
    device = get_device(device)
    seed_everything(config.seed)
    generator.to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=config.betas)
    opt_d = None
    if config.adversarial:
        discriminator.to(device).train()
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=config.betas)
    batches = TensorBatches(inputs.to(device), targets.to(device), batch_size=config.batch_size, seed=config.seed)

    def step(batch):
        return pix2pix_step(generator, discriminator, opt_g, opt_d, batch[0], batch[1],
                            config.l1_weight, config.adversarial)

    started = time.process_time()
    history = fit(step, batches, config.epochs, log_every=config.log_every, progress=progress,
                  desc="pix2pix" if config.adversarial else "L1 only")
    history.cpu_seconds = time.process_time() - started
    return history


# --------------------------------------------------------------------------- CycleGAN


def least_squares_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN discriminator loss ``0.5 * (E[(D(x) - 1)^2] + E[D(G(z))^2])`` (Mao et al., 2017), used by CycleGAN.

    Example:
        >>> least_squares_discriminator_loss(torch.ones(3), torch.zeros(3)).item()  # perfect scores
        0.0
    """
    return 0.5 * ((real_scores - 1).pow(2).mean() + fake_scores.pow(2).mean())


def least_squares_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss ``E[(D(G(z)) - 1)^2]``: push the scores of generated images to the real target 1.

    Example:
        >>> least_squares_generator_loss(torch.zeros(4)).item()
        1.0
    """
    return (fake_scores - 1).pow(2).mean()


def cyclegan_step(
    generators: nn.Module,
    discriminator_a: nn.Module,
    discriminator_b: nn.Module,
    opt_generators: torch.optim.Optimizer,
    opt_discriminators: torch.optim.Optimizer,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    cycle_weight: float = 10.0,
    identity_weight: float = 5.0,
) -> dict[str, torch.Tensor]:
    """One CycleGAN step on an unpaired batch: update G and F together, then D_A and D_B.

    ``generators`` holds ``a_to_b`` (G) and ``b_to_a`` (F). The generators'
    loss is the sum of the two least-squares adversarial terms,
    ``cycle_weight * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)`` and
    ``identity_weight * (|G(b) - b|_1 + |F(a) - a|_1)`` (means over pixels).
    """
    to_b, to_a = generators.a_to_b, generators.b_to_a
    fake_b, fake_a = to_b(real_a), to_a(real_b)
    adversarial = (least_squares_generator_loss(discriminator_b(fake_b))
                   + least_squares_generator_loss(discriminator_a(fake_a)))
    cycle = (to_a(fake_b) - real_a).abs().mean() + (to_b(fake_a) - real_b).abs().mean()
    identity = torch.zeros((), device=real_a.device)
    if identity_weight > 0:  # skip two generator passes when the term is off
        identity = (to_b(real_b) - real_b).abs().mean() + (to_a(real_a) - real_a).abs().mean()
    loss_g = adversarial + cycle_weight * cycle + identity_weight * identity
    opt_generators.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_generators.step()

    # Discriminators: real images of their domain against the (detached) translations into it.
    loss_d = (least_squares_discriminator_loss(discriminator_a(real_a), discriminator_a(fake_a.detach()))
              + least_squares_discriminator_loss(discriminator_b(real_b), discriminator_b(fake_b.detach())))
    opt_discriminators.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_discriminators.step()
    return {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), "adversarial": adversarial.detach(),
            "cycle": cycle.detach(), "identity": identity.detach()}


@dataclass
class CycleGanConfig:
    """Settings of :func:`train_cyclegan`; the defaults are the chapter's full setting."""

    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    seed: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.cycle_weight < 0 or self.identity_weight < 0:
            raise ValueError(f"cycle_weight and identity_weight must be non-negative, got "
                             f"{self.cycle_weight!r} and {self.identity_weight!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def train_cyclegan(
    generators: nn.Module,
    discriminator_a: nn.Module,
    discriminator_b: nn.Module,
    domain_a: torch.Tensor,
    domain_b: torch.Tensor,
    config: CycleGanConfig | None = None,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> History:
    """Train CycleGAN on two unpaired sets of images in ``[0, 1]`` (they may differ in size).

    An epoch is one pass over ``domain_a`` in shuffled batches; each batch of A
    is matched with a batch of B drawn at random, with replacement, so that no
    fixed pairing between the two sets ever forms.

    Example:
        >>> from aigc_lessons.models.translation import CycleGenerators, PatchDiscriminator
        >>> a, b = torch.rand(16, 1, 28, 28), torch.rand(12, 1, 28, 28)
        >>> h = train_cyclegan(CycleGenerators(channels=4), PatchDiscriminator(channels=4),
        ...                    PatchDiscriminator(channels=4), a, b, CycleGanConfig(epochs=1, batch_size=8),
        ...                    device="cpu", progress=False)
        >>> sorted(h.rows[-1])
        ['adversarial', 'cycle', 'epoch', 'identity', 'loss_d', 'loss_g', 'step']
    """
    config = config or CycleGanConfig()
    for name, images in (("domain_a", domain_a), ("domain_b", domain_b)):
        if images.dim() != 4 or float(images.min()) < -1e-6 or float(images.max()) > 1 + 1e-6:
            raise ValueError(f"train_cyclegan expects {name} as (N, 1, 28, 28) images in [0, 1], got shape "
                             f"{tuple(images.shape)} with values in [{float(images.min()):.3g}, {float(images.max()):.3g}]")
    device = get_device(device)
    seed_everything(config.seed)
    for module in (generators, discriminator_a, discriminator_b):
        module.to(device).train()
    opt_g = torch.optim.Adam(generators.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(list(discriminator_a.parameters()) + list(discriminator_b.parameters()),
                             lr=config.lr, betas=config.betas)
    domain_b = domain_b.to(device)
    batches = TensorBatches(domain_a.to(device), batch_size=config.batch_size, seed=config.seed)
    draw_b = torch.Generator().manual_seed(config.seed + 1)

    def step(batch):
        picks = torch.randint(len(domain_b), (len(batch[0]),), generator=draw_b).to(device)
        return cyclegan_step(generators, discriminator_a, discriminator_b, opt_g, opt_d, batch[0], domain_b[picks],
                             config.cycle_weight, config.identity_weight)

    started = time.process_time()
    history = fit(step, batches, config.epochs, log_every=config.log_every, progress=progress, desc="CycleGAN")
    history.cpu_seconds = time.process_time() - started
    return history


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def translate(generator: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Run ``generator`` over ``images`` in evaluation mode, in batches; the outputs are returned on the CPU.

    Example:
        >>> from aigc_lessons.models.translation import UNetGenerator
        >>> translate(UNetGenerator(channels=4), torch.rand(3, 1, 28, 28)).shape
        torch.Size([3, 1, 28, 28])
    """
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    outputs = torch.cat([generator(images[start:start + batch_size].to(device)).cpu()
                         for start in range(0, len(images), batch_size)])
    generator.train(was_training)
    return outputs


def translation_scores(outputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None = None,
                       realism: bool = False, device: str | torch.device = "auto") -> dict[str, float]:
    """Mean L1 error, PSNR (dB) and SSIM of ``outputs`` against ``targets`` (both in ``[0, 1]``).

    With ``labels``, also ``class_accuracy``: the fraction of outputs that the
    reference classifier (``classifier_mnist``) assigns to the digit's true label.
    With ``realism=True``, also ``fd_mnist``: the Fréchet distance between the
    classifier's features of the outputs and of the targets (how much the
    outputs, as a set, look like the targets; blur raises it, while it barely
    moves the per-pixel errors).

    Example:
        >>> x = torch.rand(4, 1, 28, 28)
        >>> translation_scores(x, x)["l1"]
        0.0
    """
    from ..metrics import class_accuracy, psnr, ssim  # imported here: scikit-image loads slowly

    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} must have the same shape")
    outputs, targets = outputs.detach().float().cpu(), targets.detach().float().cpu()
    scores = {
        "l1": float((outputs - targets).abs().mean()),
        "psnr": float(psnr(outputs, targets).clamp(max=100).mean()),  # identical images give inf: cap at 100 dB
        "ssim": float(ssim(outputs, targets).mean()),
    }
    if labels is not None:
        scores["class_accuracy"] = class_accuracy(outputs, labels.cpu(), value_range=(0, 1), device=device)
    if realism:
        from ..metrics import classifier_features, frechet_distance

        scores["fd_mnist"] = frechet_distance(classifier_features(outputs, value_range=(0, 1), device=device),
                                              classifier_features(targets, value_range=(0, 1), device=device))
    return scores
