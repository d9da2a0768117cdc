"""GAN losses, written to match the math.

Notation (see the notation appendix): ``D(x)`` is the discriminator's
probability that ``x`` is real and ``l(x)`` its logit, ``D(x) = sigmoid(l(x))``.
All GAN losses here take logits, because ``log(sigmoid(l))`` computed as
``-softplus(-l)`` never overflows, while ``log(D(x))`` does when ``D(x)`` rounds to 0.

The Wasserstein losses take the critic's unbounded scores instead, and
:func:`gradient_penalty` is the WGAN-GP term (Gulrajani et al., 2017).
"""

from __future__ import annotations

from typing import Callable

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


def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN critic loss ``E[f(G(z))] - E[f(x)]`` (Arjovsky, Chintala and Bottou, 2017).

    The critic ``f`` returns unbounded real scores (no sigmoid); minimising this
    loss pushes scores of real data up and of generated data down. Add
    :func:`gradient_penalty` to keep ``f`` close to 1-Lipschitz (WGAN-GP).

    Example:
        >>> critic_loss_wasserstein(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0])).item()
        -2.0
    """
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss ``-E[f(G(z))]``: raise the critic's score of generated data.

    Example:
        >>> generator_loss_wasserstein(torch.tensor([1.0, 3.0])).item()
        -2.0
    """
    return -fake_scores.mean()


def gradient_penalty(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    target_norm: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The WGAN-GP penalty ``E[(||grad_x f(x_hat)||_2 - 1)^2]`` (Gulrajani et al., 2017).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per
    example, so ``x_hat`` lies on the segment between a real and a generated
    example, where the optimal critic has gradient norm 1. Works for any input
    shape ``(B, ...)`` (points ``(B, 2)``, images ``(B, C, H, W)``); the norm is
    taken over all non-batch dimensions. ``discriminator`` must return one score
    per example (shape ``(B,)`` or ``(B, 1)``). The result keeps the graph
    (``create_graph=True``), so ``backward()`` on ``loss + weight * penalty``
    trains the discriminator through the penalty; multiply by the weight
    (the paper uses 10) yourself. ``fake`` is detached inside: the penalty
    is a term of the discriminator's loss only. ``generator`` seeds ``eps``
    (drawn on the CPU, then moved to ``real.device``).

    Example:
        >>> linear = torch.nn.Linear(3, 1)
        >>> with torch.no_grad():
        ...     _ = linear.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
        >>> round(gradient_penalty(linear, torch.randn(5, 3), torch.randn(5, 3)).item(), 4)  # (||w|| - 1)^2
        1.0
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape (B, ...), got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if real.dim() < 2:
        raise ValueError(f"expected a batch of shape (B, ...) with at least 2 dimensions, got {tuple(real.shape)}")
    batch = real.shape[0]
    eps_shape = (batch,) + (1,) * (real.dim() - 1)
    if generator is None:
        eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    else:
        eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype).to(real.device)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(mixed)
    if scores.numel() != batch:
        raise ValueError(
            f"the discriminator must return one score per example ({batch}), got shape {tuple(scores.shape)}"
        )
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grads.flatten(1).norm(2, dim=1)
    return (norms - target_norm).pow(2).mean()
