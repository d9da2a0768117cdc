"""aigc_lessons: the helper package of the AIGC Lessons book.

The book's notebooks teach the ideas; this package holds the reusable parts
(data, models, losses, training loops, metrics, plots, pretrained weights,
exercise checks and the ``aigc-lessons`` command-line tool).

Submodules are imported on first use, so ``import aigc_lessons`` stays fast
(it does not import torch until you touch something that needs it)::

    >>> import aigc_lessons as al
    >>> device = al.core.get_device("auto")  # doctest: +SKIP
"""

import pkgutil
from importlib import import_module

__version__ = "0.1.0"


def _submodules() -> set[str]:
    """The package's public modules and subpackages, found on disk (nothing is imported)."""
    return {info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}


def __getattr__(name: str):
    if name in _submodules():
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'aigc_lessons' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _submodules())
