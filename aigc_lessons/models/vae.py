"""Variational autoencoders with fully connected encoder and decoder, for 28 x 28 images.

Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (and Rezende,
Mohamed and Wierstra, ICML 2014) introduced the model: an encoder
``q_phi(z | x) = N(mu(x), diag(sigma^2(x)))``, a prior ``p(z) = N(0, I)`` and a
decoder ``p_theta(x | z)``, trained together by maximising the evidence lower
bound (ELBO) with the reparameterization ``z = mu + sigma * eps``.
The conditional VAE (Sohn, Lee and Yan, NeurIPS 2015) gives the label ``y`` to
both the encoder and the decoder.

Two decoder likelihoods (``likelihood=``):

* ``"bernoulli"``: the decoder returns one *logit* per pixel; ``log p(x | z)`` is
  minus the binary cross-entropy. For pixel values in ``[0, 1]``.
* ``"gaussian"``: the decoder returns a mean in ``[0, 1]`` (a sigmoid) and the
  variance is the fixed number ``variance``; ``log p(x | z)`` is a scaled squared error.

Shapes: ``encode``: ``(B, 1, 28, 28)`` -> ``mu, logvar`` each ``(B, latent_dim)``;
``decode``: ``(B, latent_dim)`` -> ``(B, 1, 28, 28)`` decoder parameters (logits or
means); ``forward``: ``x`` -> ``(decoded, mu, logvar)``; ``sample(n)`` -> images in ``[0, 1]``.
``ConditionalVAE`` takes ``labels`` of shape ``(B,)`` with values in ``[0, num_classes)`` too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.vae import LIKELIHOODS, reconstruction_log_likelihood
from ._checks import check_images, check_labels, check_latent

IMAGE_SHAPE = (1, 28, 28)
IMAGE_SIZE = 28 * 28


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for index in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[index], sizes[index + 1]))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """VAE with MLP encoder and decoder; ``hidden=(400,), latent_dim=20`` is the PyTorch example's network."""

    num_classes = 0

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (400,),
        likelihood: str = "bernoulli",
        variance: float = 1.0,
    ) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if variance <= 0:
            raise ValueError(f"variance must be positive, got {variance}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        self.latent_dim = latent_dim
        self.hidden = tuple(hidden)
        self.likelihood = likelihood
        self.variance = float(variance)
        cond = self.num_classes
        # The encoder's last layer outputs mu and logvar side by side.
        self.encoder = _mlp([IMAGE_SIZE + cond, *self.hidden, 2 * latent_dim])
        self.decoder = _mlp([latent_dim + cond, *reversed(self.hidden), IMAGE_SIZE])

    # -- the three pieces of the model ---------------------------------------------------------
    def _encode(self, x: torch.Tensor, extra: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(x, IMAGE_SHAPE, type(self).__name__)
        h = x.flatten(1) if extra is None else torch.cat([x.flatten(1), extra], dim=1)
        mu, logvar = self.encoder(h).chunk(2, dim=1)
        return mu, logvar

    def _decode(self, z: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        check_latent(z, self.latent_dim, type(self).__name__)
        h = z if extra is None else torch.cat([z, extra], dim=1)
        out = self.decoder(h).view(-1, *IMAGE_SHAPE)
        return out if self.likelihood == "bernoulli" else torch.sigmoid(out)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of ``q(z | x)``: ``mu`` and ``logvar = log sigma^2``, each ``(B, latent_dim)``."""
        return self._encode(x, None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Parameters of ``p(x | z)``: per-pixel logits (Bernoulli) or means (Gaussian)."""
        return self._decode(z, None)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample that gradients flow through."""
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    # -- helpers used by losses and notebooks -----------------------------------------------------
    def log_likelihood(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` per example for this model's likelihood."""
        return reconstruction_log_likelihood(decoded, x, self.likelihood, self.variance)

    def mean_image(self, decoded: torch.Tensor) -> torch.Tensor:
        """The mean of ``p(x | z)`` as an image in ``[0, 1]`` (what the book plots)."""
        return torch.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior; returns mean images ``(n, 1, 28, 28)`` on the model's device."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.mean_image(self.decode(z))

    @torch.no_grad()
    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` mean images in [0, 1] on the CPU, and ``None`` (no labels); see ``models._sampling``."""
        return self.sample(count, generator=generator).cpu().clamp(0, 1), None


class ConditionalVAE(VAE):
    """Conditional VAE: the one-hot label is concatenated to the encoder's and the decoder's input."""

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (512, 256),
        likelihood: str = "bernoulli",
        variance: float = 1.0,
        num_classes: int = 10,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = num_classes  # read by VAE.__init__ to size the layers
        super().__init__(latent_dim, hidden, likelihood, variance)

    def _one_hot(self, labels: torch.Tensor, batch: int) -> torch.Tensor:
        check_labels(labels, batch, self.num_classes, type(self).__name__)
        return F.one_hot(labels.long(), self.num_classes).float()

    def encode(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._encode(x, self._one_hot(labels, x.shape[0]))

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._decode(z, self._one_hot(labels, z.shape[0]))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x, labels)
        return self.decode(self.reparameterize(mu, logvar), labels), mu, logvar

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, z: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode one prior draw (or the given ``z``) per label; mean images ``(B, 1, 28, 28)``."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(len(labels), self.latent_dim, generator=generator)
        return self.mean_image(self.decode(z.to(device), labels.to(device)))

    @torch.no_grad()
    def sample_for_evaluation(self, count: int, generator: torch.Generator | None = None):
        """``count`` mean images in [0, 1] on the CPU for labels ``i % 10``, and those labels."""
        labels = torch.arange(count) % 10
        return self.sample(labels.to(next(self.parameters()).device), generator=generator).cpu().clamp(0, 1), labels
