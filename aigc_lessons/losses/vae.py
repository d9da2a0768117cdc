"""Losses of the variational autoencoder (Kingma & Welling, 2014) and its relatives.

Every function returns **per-example** values in nats (shape ``(B,)``) unless it
says otherwise, so that the caller decides how to average, and so that the
numbers the book reports (negative ELBO per image, log-likelihood per image)
are sums over the 784 pixels and the latent dimensions, as in the literature.

* :func:`kl_normal_standard`: closed-form ``KL(N(mu, diag(exp(logvar))) || N(0, I))``;
* :func:`log_normal_diag`: log-density of a diagonal Gaussian;
* :func:`bernoulli_log_likelihood`, :func:`gaussian_log_likelihood`: ``log p(x | z)``
  for the two decoders the book compares;
* :func:`negative_elbo`: reconstruction term plus (beta times) the KL term;
* :func:`importance_weighted_log_likelihood`: the k-sample bound of Burda, Grosse
  and Salakhutdinov (2016), an estimate of ``log p(x)`` that tightens as k grows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS = ("bernoulli", "gaussian")


def kl_normal_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` per example, summed over the last dimension.

    The closed form is ``0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1)`` with
    ``logvar = log sigma^2``. It is zero exactly when ``mu = 0`` and ``sigma = 1``.

    Example:
        >>> kl_normal_standard(torch.zeros(2, 3), torch.zeros(2, 3)).tolist()
        [0.0, 0.0]
        >>> round(float(kl_normal_standard(torch.tensor([[1.0]]), torch.tensor([[0.0]]))), 4)
        0.5
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, diag(exp(logvar)))``, summed over the last dimension.

    Example:
        >>> round(float(log_normal_diag(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))), 4)
        -0.9189
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` for independent Bernoulli pixels with probabilities ``sigmoid(logits)``.

    Equal to minus the binary cross-entropy summed over pixels; computed from
    logits so that it never evaluates ``log 0``. ``x`` must lie in ``[0, 1]``.

    Example:
        >>> round(float(bernoulli_log_likelihood(torch.zeros(1, 4), torch.ones(1, 4))), 4)  # 4 log(1/2)
        -2.7726
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits and x must have the same shape, got {tuple(logits.shape)} and {tuple(x.shape)}")
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -nll.flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, variance: float = 1.0) -> torch.Tensor:
    """``log N(x; mean, variance * I)`` per example, summed over pixels.

    With a fixed variance this is ``-||x - mean||^2 / (2 variance)`` plus a
    constant: the "mean squared error" loss, scaled by ``1 / (2 variance)``.
    The variance therefore sets how much reconstruction counts against the KL.

    Example:
        >>> round(float(gaussian_log_likelihood(torch.zeros(1, 1), torch.zeros(1, 1))), 4)
        -0.9189
    """
    if mean.shape != x.shape:
        raise ValueError(f"mean and x must have the same shape, got {tuple(mean.shape)} and {tuple(x.shape)}")
    if variance <= 0:
        raise ValueError(f"variance must be positive, got {variance}")
    squared = (x - mean).pow(2).flatten(1).sum(dim=1)
    return -0.5 * squared / variance - 0.5 * x[0].numel() * (LOG_2PI + math.log(variance))


def reconstruction_log_likelihood(
    decoded: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli", variance: float = 1.0
) -> torch.Tensor:
    """``log p(x | z)`` for the decoder output ``decoded`` (logits or means), per example.

    Example:
        >>> reconstruction_log_likelihood(torch.zeros(3, 1, 28, 28), torch.ones(3, 1, 28, 28)).shape
        torch.Size([3])
    """
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(decoded, x)
    if likelihood == "gaussian":
        return gaussian_log_likelihood(decoded, x, variance)
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def negative_elbo(
    decoded: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    variance: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The VAE loss per example: ``-log p(x | z) + beta * KL(q(z | x) || p(z))``.

    ``z`` is the one reparameterized sample from which ``decoded`` was computed,
    so the reconstruction term is a one-sample Monte Carlo estimate of
    ``-E_q[log p(x | z)]``. Returns ``(loss, reconstruction, kl)``, each of shape
    ``(B,)``; with ``beta = 1`` the loss is the negative ELBO in nats.

    Example:
        >>> x = torch.rand(2, 1, 28, 28)
        >>> loss, rec, kl = negative_elbo(torch.zeros(2, 1, 28, 28), x, torch.zeros(2, 5), torch.zeros(2, 5))
        >>> torch.allclose(loss, rec + kl)
        True
    """
    reconstruction = -reconstruction_log_likelihood(decoded, x, likelihood, variance)
    kl = kl_normal_standard(mu, logvar)
    return reconstruction + beta * kl, reconstruction, kl


@torch.no_grad()
def importance_weighted_log_likelihood(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int = 100,
    labels: torch.Tensor | None = None,
    chunk: int = 50,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimate ``log p(x)`` per example with ``k`` importance samples from the encoder.

    ``log p(x) >= E[log (1/k) sum_i p(x, z_i) / q(z_i | x)]``, the bound of Burda et
    al. (2016); ``k = 1`` gives the ELBO and the bound increases towards ``log p(x)``
    as ``k`` grows. ``model`` must provide ``encode``, ``decode`` and ``log_likelihood``
    (the book's ``VAE`` and ``ConditionalVAE`` do); ``labels`` are passed to a
    conditional model. Samples are drawn ``chunk`` at a time to bound memory.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> importance_weighted_log_likelihood(VAE(latent_dim=2), torch.rand(3, 1, 28, 28), k=4).shape
        torch.Size([3])
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of samples, got {k}")
    extra = () if labels is None else (labels,)
    mu, logvar = model.encode(x, *extra)
    std = (0.5 * logvar).exp()
    log_weights = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        if generator is None:
            eps = torch.randn((n, *mu.shape), device=mu.device)
        else:
            eps = torch.randn((n, *mu.shape), generator=generator).to(mu.device)
        z = mu + std * eps  # (n, B, latent)
        flat_z = z.reshape(n * mu.shape[0], -1)
        repeat_x = x.unsqueeze(0).expand(n, *x.shape).reshape(n * x.shape[0], *x.shape[1:])
        repeat_extra = tuple(e.unsqueeze(0).expand(n, *e.shape).reshape(-1) for e in extra)
        decoded = model.decode(flat_z, *repeat_extra)
        log_px_z = model.log_likelihood(decoded, repeat_x).view(n, -1)
        log_pz = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = log_normal_diag(z, mu.unsqueeze(0), logvar.unsqueeze(0))
        log_weights.append(log_px_z + log_pz - log_qz)
    log_w = torch.cat(log_weights, dim=0)  # (k, B)
    return torch.logsumexp(log_w, dim=0) - math.log(k)
