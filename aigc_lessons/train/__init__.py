"""Training: ``fit`` (the shared epoch loop) and, per model family, its config, its step and its trainer.

The names of the families' modules are re-exported here (``from aigc_lessons.train import fit,
train_gan``); a module added later may be imported from its own path
(``from aigc_lessons.train.diffusion import ...``). ``__all__`` lists every name re-exported.
"""

from types import ModuleType as _ModuleType

from .conditional import (
    CGAN_RULES,
    CganConfig,
    cgan_step,
    cgan_training,
    class_grid_labels,
    class_grid_noise,
    conditional_class_accuracy,
    train_cgan,
)
from .gan import (
    GAN_RULES,
    LOSSES,
    GanConfig,
    check_gan_options,
    count_parameters,
    discriminator_diagnostics,
    gan_step,
    gan_training,
    sample_images,
    train_gan,
)
from .loop import History, NonFiniteLossError, fit
from .superres import (
    SuperResConfig,
    evaluate_bicubic,
    evaluate_superres,
    srgan_step,
    superres_step,
    train_superres,
    upscale,
)
from .translation import (
    CycleGanConfig,
    Pix2PixConfig,
    cyclegan_step,
    pix2pix_step,
    train_cyclegan,
    train_pix2pix,
    translate,
    translation_scores,
)
from .vae import VAE_RULES, VaeConfig, binarize, evaluate_vae, train_vae, vae_step, vae_training

__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _ModuleType))
