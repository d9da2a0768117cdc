"""Training loops: ``fit`` (the shared epoch loop) and one trainer per model family.

Everything is re-exported here: ``from aigc_lessons.train import fit, train_gan``.
"""

from .gan import GanConfig, count_parameters, discriminator_diagnostics, gan_step, sample_images, train_gan
from .loop import History, NonFiniteLossError, fit
from .vae import VaeConfig, binarize, evaluate_vae, train_vae, vae_step  # noqa: E402
from .conditional import CganConfig, cgan_step, class_grid_labels, class_grid_noise, conditional_class_accuracy, train_cgan  # noqa: E402
from .translation import CycleGanConfig, Pix2PixConfig, cyclegan_step, pix2pix_step, train_cyclegan, train_pix2pix, translate, translation_scores  # noqa: E402

from .superres import SuperResConfig, evaluate_bicubic, evaluate_superres, srgan_step, superres_step, train_superres, upscale  # noqa: E402

__all__ = [
    "History", "NonFiniteLossError", "fit",
    "GanConfig", "gan_step", "train_gan", "sample_images", "count_parameters",
]
