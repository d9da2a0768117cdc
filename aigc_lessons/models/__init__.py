"""The book's models, one readable file per model family.

Every public ``nn.Module`` class defined in a module of this package (the
classes named in the module's ``__all__`` when it has one: building blocks stay
out of it) is re-exported here (``from aigc_lessons.models import VAE``) and listed in
``MODEL_CLASSES``, the name -> class table that pretrained cards and
checkpoints use to rebuild a model. Both are found, not hand-kept: a new
family's ``models/<family>.py`` is all it takes.

Example:
    >>> MODEL_CLASSES["GeneratorMLP"].__name__
    'GeneratorMLP'
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from torch import nn


def _model_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = import_module(f"{__name__}.{info.name}")
        exported = getattr(module, "__all__", None)
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == module.__name__
                    and not name.startswith("_") and (exported is None or name in exported)):
                if name in found:
                    raise RuntimeError(f"two model classes named {name!r} ({found[name].__module__}, {module.__name__})")
                found[name] = value
    return found


# Every nn.Module that the pretrained registry or a checkpoint may name.
MODEL_CLASSES: dict[str, type] = _model_classes()
globals().update(MODEL_CLASSES)

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
