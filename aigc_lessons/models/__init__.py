"""The book's models, one readable file each, and one explicit name -> class table.

``MODELS`` maps the name used by the command-line tool and the pretrained
registry to a pair of builders; add a line here when a chapter adds a model.
"""

from __future__ import annotations

from .gan_mlp import DiscriminatorMLP, GeneratorMLP

__all__ = ["GeneratorMLP", "DiscriminatorMLP", "MODEL_CLASSES", "build_model"]

# Every nn.Module that the pretrained registry or a checkpoint may name.
MODEL_CLASSES = {
    "GeneratorMLP": GeneratorMLP,
    "DiscriminatorMLP": DiscriminatorMLP,
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
