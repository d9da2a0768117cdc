"""Training loops: ``fit`` (the shared epoch loop) and one trainer per model family.

Everything is re-exported here: ``from aigc_lessons.train import fit, train_gan``.
"""

from .gan import GanConfig, count_parameters, gan_step, sample_images, train_gan
from .loop import History, NonFiniteLossError, fit

__all__ = [
    "History", "NonFiniteLossError", "fit",
    "GanConfig", "gan_step", "train_gan", "sample_images", "count_parameters",
]
