"""How every pretrained model in the book is trained: one function per entry.

A recipe trains a model in the full setting (or the fast one, for tests) and
returns it with its constructor arguments and a model card. ``retrain`` runs a
recipe and, when asked, saves the result as a pretrained entry, so that every
shipped weight file can be reproduced with one call::

    python -m aigc_lessons.recipes gan_mlp_mnist      # retrain and save
    >>> from aigc_lessons.recipes import retrain
    >>> generator = retrain("gan_mlp_mnist", fast=True, save=False)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..core import Budget, get_budget, get_device
from . import gan
from . import vae as vae_recipes  # noqa: E402
from . import classifier as classifier_recipes  # noqa: E402
from . import anomaly as anomaly_recipes  # noqa: E402
from . import superres as superres_recipes  # noqa: E402
from . import translation as translation_recipes  # noqa: E402
from . import music as music_recipes  # noqa: E402


@dataclass
class RecipeResult:
    """What a recipe returns: the trained model, its constructor arguments and its card."""

    model: nn.Module
    model_kwargs: dict
    card: dict = field(default_factory=dict)


Recipe = Callable[..., RecipeResult]

# name -> function(budget, device, progress) -> RecipeResult
RECIPES: dict[str, Recipe] = {
    "gan_mlp_mnist": gan.gan_mlp_mnist,
    "dcgan_mnist": gan.dcgan_mnist,
    "vae_mnist": vae_recipes.vae_mnist,
    "vae2d_mnist": vae_recipes.vae2d_mnist,
    "cvae_mnist": vae_recipes.cvae_mnist,
    "cgan_mnist": vae_recipes.cgan_mnist,
    "cgan_dcgan_mnist": vae_recipes.cgan_dcgan_mnist,
    "classifier_mnist": classifier_recipes.classifier_mnist,
    "vae_anomaly_mnist": anomaly_recipes.vae_anomaly_mnist,
    "edsr_x4_mnist": superres_recipes.edsr_x4_mnist,
    "edsr_x2_mnist": superres_recipes.edsr_x2_mnist,
    "srgan_x4_mnist": superres_recipes.srgan_x4_mnist,
    "pix2pix_skeleton_mnist": translation_recipes.pix2pix_skeleton_mnist,
    "l1_skeleton_mnist": translation_recipes.l1_skeleton_mnist,
    "cyclegan_stroke_mnist": translation_recipes.cyclegan_stroke_mnist,
    "music_lstm_bach": music_recipes.music_lstm_bach,
}


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
    result = RECIPES[name](budget=budget, device=get_device(device), progress=progress)
    seconds = time.perf_counter() - started
    if save:
        card = {"command": f"python -m aigc_lessons.recipes {name}", "seconds": round(seconds, 1), **result.card}
        pretrained.save(name, result.model, result.model_kwargs, card)
    return result.model


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or sorted(RECIPES)
    for name in names:
        print(f"training {name} (full setting) ...", flush=True)
        retrain(name, fast=False, save=True)
        print(f"saved {name}", flush=True)
    return 0
