"""aigc_lessons: the helper package of the AIGC Lessons book.

The book's notebooks teach the ideas; this package holds the reusable parts
(data, models, losses, training loops, metrics, plots, pretrained weights,
exercise checks and the ``aigc-lessons`` command-line tool).

Submodules are imported on first use, so ``import aigc_lessons`` stays fast
(it does not import torch until you touch something that needs it)::

    >>> import aigc_lessons as al
    >>> device = al.core.get_device("auto")  # doctest: +SKIP
"""

from importlib import import_module

__version__ = "0.1.0"

_SUBMODULES = {
    "anomaly",
    "augmentation",
    "checks",
    "classroom",
    "cli",
    "core",
    "data",
    "feature_vis",
    "image_tasks",
    "losses",
    "metrics",
    "models",
    "music",
    "pretrained",
    "recipes",
    "runs",
    "toy2d",
    "train",
    "trainers",
    "viz",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'aigc_lessons' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
