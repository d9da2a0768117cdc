"""Loss functions of the book's models, one module per family, re-exported here.

``from aigc_lessons.losses import discriminator_loss`` works for every loss.
"""

from .gan import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating

__all__ = ["discriminator_loss", "generator_loss_nonsaturating", "generator_loss_saturating"]
