"""How every pretrained model in the book is trained, and where each model family is declared.

Each module ``recipes/<family>.py`` trains the shipped weights of one model
family (one function per pretrained entry) and ends with its declaration,
``FAMILIES = (Family(...),)`` (:class:`aigc_lessons.family.Family`): the
family's name, classes, recipes with their full settings and, when the command
line trains it, its :class:`~aigc_lessons.family.CommandLineTrainer`. This
package finds those modules itself; the tables below are read from them, so a
new family is one new module here, not an edit of several lists.

* :data:`FAMILIES`: name -> :class:`~aigc_lessons.family.Family`.
* :data:`RECIPES`: pretrained name -> :class:`~aigc_lessons.family.Recipe`
  (callable as ``recipe(budget, device, progress=...)``).
* :func:`full_setting`: the full setting of a shipped model (the one its weights
  were trained with: epochs, batch size, ...); notebooks, the command line and
  the benchmarks read it from here instead of typing the numbers.
* :func:`retrain`: run a recipe and, when asked, save the result as the pretrained entry::

    python -m aigc_lessons.recipes gan_mlp_mnist      # retrain and save
    >>> from aigc_lessons.recipes import full_setting, retrain
    >>> full_setting("gan_mlp_mnist")["epochs"]
    30
    >>> generator = retrain("gan_mlp_mnist", fast=True, save=False)  # doctest: +SKIP

``RecipeResult`` is re-exported here from :mod:`aigc_lessons.family`, its home.
"""

from __future__ import annotations

import pkgutil
import time
from importlib import import_module

from torch import nn

from ..core import Budget, get_budget, get_device
from ..family import Family, Recipe, RecipeResult

__all__ = ["FAMILIES", "RECIPES", "Family", "Recipe", "RecipeResult", "full_setting", "get_family", "main",
           "retrain"]


def _declared_families() -> dict[str, Family]:
    families: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = import_module(f"{__name__}.{info.name}")
        for family in getattr(module, "FAMILIES", ()):
            if family.name in families:
                raise RuntimeError(f"model family {family.name!r} is declared twice ({module.__name__})")
            families[family.name] = family
    return families


# family name -> its declaration (found in the modules of this package)
FAMILIES: dict[str, Family] = _declared_families()

# pretrained name -> the recipe that trains it
RECIPES: dict[str, Recipe] = {name: recipe for family in FAMILIES.values() for name, recipe in family.recipes.items()}


def get_family(name: str) -> Family:
    """The declaration of the family ``name``."""
    if name not in FAMILIES:
        raise KeyError(f"no model family named {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def full_setting(name: str) -> dict:
    """The full setting of the shipped model ``name`` (a copy): what its weights were trained with.

    Example:
        >>> full_setting("dcgan_mnist")["channels"]
        32
    """
    if name not in RECIPES:
        raise KeyError(f"no recipe named {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name].setting(fast=False)


def retrain(name: str, fast: bool | None = None, device: str = "auto", save: bool = False, progress: bool = True) -> nn.Module:
    """Train the pretrained entry ``name`` from scratch; save it when ``save=True``.

    ``fast=None`` follows ``AIGC_LESSONS_FAST``. Saving a fast-mode model is refused,
    so a quick test can never replace the shipped full-setting weights.
    """
    from .. import pretrained

    if name not in RECIPES:
        raise KeyError(f"no recipe named {name!r}; known: {', '.join(sorted(RECIPES))}")
    budget = get_budget() if fast is None else Budget(fast=fast)
    if save and budget.fast:
        raise ValueError("refusing to save fast-mode weights over the full-setting pretrained entry")
    started = time.perf_counter()
    result = RECIPES[name](budget, get_device(device), progress=progress)
    seconds = time.perf_counter() - started
    if save:
        card = {"command": f"python -m aigc_lessons.recipes {name}", "seconds": round(seconds, 1), **result.card}
        pretrained.save(name, result.model, result.model_kwargs, card)
    return result.model


def main(argv: list[str] | None = None) -> int:
    """``python -m aigc_lessons.recipes [NAME ...]``: retrain and save the named weights (all without names)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.recipes",
                                     description="Retrain shipped weights in their full setting and save them "
                                                 "with their model cards (every recipe when no name is given).")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"recipes: {', '.join(sorted(RECIPES))}")
    names = parser.parse_args(argv).names or sorted(RECIPES)
    unknown = [name for name in names if name not in RECIPES]
    if unknown:  # before any training: a typo must not cost the runs before it
        parser.error(f"no recipe named {', '.join(map(repr, unknown))}; known: {', '.join(sorted(RECIPES))}")
    for name in names:
        print(f"training {name} (full setting) ...", flush=True)
        retrain(name, fast=False, save=True)
        print(f"saved {name}", flush=True)
    return 0
