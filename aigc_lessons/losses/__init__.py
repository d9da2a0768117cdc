"""Loss functions of the book's models, one module per family, re-exported here.

``from aigc_lessons.losses import discriminator_loss`` works for every loss.
"""

from .gan import (
    critic_loss_wasserstein,
    discriminator_loss,
    generator_loss_nonsaturating,
    generator_loss_saturating,
    generator_loss_wasserstein,
    gradient_penalty,
)

__all__ = [
    "discriminator_loss", "generator_loss_nonsaturating", "generator_loss_saturating",
    "critic_loss_wasserstein", "generator_loss_wasserstein", "gradient_penalty",
]
from .vae import kl_normal_standard, negative_elbo, importance_weighted_log_likelihood, bernoulli_log_likelihood, gaussian_log_likelihood, log_normal_diag, reconstruction_log_likelihood  # noqa: E402,F401
