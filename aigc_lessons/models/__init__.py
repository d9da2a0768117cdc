"""The book's models, one readable file each, and one explicit name -> class table.

``MODEL_CLASSES`` maps the class name that a pretrained card or a checkpoint
records to the class; add the class here when a chapter adds a model.
"""

from __future__ import annotations

from .classifier import MnistClassifier
from .conditional import (
    ConditionalDiscriminator,
    ConditionalDiscriminatorDCGAN,
    ConditionalGenerator,
    ConditionalGeneratorDCGAN,
)
from .dcgan import DiscriminatorDCGAN, GeneratorDCGAN
from .gan_mlp import DiscriminatorMLP, GeneratorMLP
from .gan_toy import DiscriminatorToy, GeneratorToy
from .music import MelodyLSTM
from .translation import CycleGenerators, PatchDiscriminator, UNetGenerator
from .vae import VAE, ConditionalVAE
from .superres import EDSR

# Every nn.Module that the pretrained registry or a checkpoint may name.
MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (
        GeneratorToy, DiscriminatorToy,                                  # 2-D lab
        GeneratorMLP, DiscriminatorMLP,                                  # first GAN
        GeneratorDCGAN, DiscriminatorDCGAN,                              # DCGAN
        VAE, ConditionalVAE,                                             # VAE family
        ConditionalGenerator, ConditionalDiscriminator,                  # conditional GAN
        ConditionalGeneratorDCGAN, ConditionalDiscriminatorDCGAN,
        MnistClassifier,                                                 # the evaluation's judge
        MelodyLSTM,                                                      # music chapter
        UNetGenerator, PatchDiscriminator, CycleGenerators,              # image-to-image translation
        EDSR,                                                            # super-resolution
    )
}

__all__ = [*MODEL_CLASSES, "MODEL_CLASSES", "build_model"]

def build_model(class_name: str, **kwargs):
    """Instantiate a model by class name (used when loading weights by name).

    Example:
        >>> build_model("GeneratorMLP", latent_dim=100).latent_dim
        100
    """
    if class_name not in MODEL_CLASSES:
        known = ", ".join(sorted(MODEL_CLASSES))
        raise KeyError(f"unknown model class {class_name!r}; known classes: {known}")
    return MODEL_CLASSES[class_name](**kwargs)
