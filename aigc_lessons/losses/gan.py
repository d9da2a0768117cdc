"""GAN losses, written to match the math.

Notation (see the notation appendix): ``D(x)`` is the discriminator's
probability that ``x`` is real and ``l(x)`` its logit, ``D(x) = sigmoid(l(x))``.
All GAN losses here take logits, because ``log(sigmoid(l))`` computed as
``-softplus(-l)`` never overflows, while ``log(D(x))`` does when ``D(x)`` rounds to 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, ``-E[log D(x)] - E[log(1 - D(G(z)))]``.

    ``real_label < 1`` gives one-sided label smoothing (Salimans et al., 2016).

    Example:
        >>> zero = torch.zeros(4)
        >>> round(discriminator_loss(zero, zero).item(), 4)  # 2 log 2
        1.3863
    """
    real_targets = torch.full_like(real_logits, real_label)
    return F.binary_cross_entropy_with_logits(real_logits, real_targets) + F.binary_cross_entropy_with_logits(
        fake_logits, torch.zeros_like(fake_logits)
    )


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss ``-E[log D(G(z))]`` (Goodfellow et al., 2014).

    Example:
        >>> round(generator_loss_nonsaturating(torch.zeros(3)).item(), 4)  # log 2
        0.6931
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss ``E[log(1 - D(G(z)))]``, whose gradient vanishes when D wins.

    Example:
        >>> round(generator_loss_saturating(torch.zeros(3)).item(), 4)  # log(1/2)
        -0.6931
    """
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
