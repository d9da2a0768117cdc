"""The book's models, one readable file each, and one explicit name -> class table.

``MODELS`` maps the name used by the command-line tool and the pretrained
registry to a pair of builders; add a line here when a chapter adds a model.
"""

from __future__ import annotations

from .gan_mlp import DiscriminatorMLP, GeneratorMLP
from .vae import VAE, ConditionalVAE  # noqa: E402
from .conditional import ConditionalDiscriminator, ConditionalGenerator  # noqa: E402
from .gan_toy import DiscriminatorToy, GeneratorToy  # noqa: E402
from .dcgan import DiscriminatorDCGAN, GeneratorDCGAN  # noqa: E402
from .classifier import MnistClassifier  # noqa: E402

__all__ = ["GeneratorMLP", "DiscriminatorMLP", "MODEL_CLASSES", "build_model"]

# Every nn.Module that the pretrained registry or a checkpoint may name.
MODEL_CLASSES = {
    "GeneratorMLP": GeneratorMLP,
    "GeneratorToy": GeneratorToy, "DiscriminatorToy": DiscriminatorToy,
    "DiscriminatorMLP": DiscriminatorMLP,
    "GeneratorDCGAN": GeneratorDCGAN, "DiscriminatorDCGAN": DiscriminatorDCGAN,
    "MnistClassifier": MnistClassifier,
    "VAE": VAE, "ConditionalVAE": ConditionalVAE, "ConditionalGenerator": ConditionalGenerator, "ConditionalDiscriminator": ConditionalDiscriminator,
}


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
