"""The command line's trainers: ``get_trainer(name)``, read from the model family declarations.

Each family that ``aigc-lessons train NAME`` can train declares a
:class:`~aigc_lessons.family.CommandLineTrainer` in its recipe module
(``aigc_lessons/recipes/<family>.py``); this module looks one up by name, with
a clear error for a name that is not there. :mod:`aigc_lessons.runs` builds
every run from it (run folder, checkpoints, resuming) the same way.

Example:
    >>> sorted(TRAINERS)[:1]
    ['cgan']
    >>> get_trainer("gan_mlp").defaults(fast=True)["epochs"]
    1
"""

from __future__ import annotations

import difflib

from .family import CommandLineTrainer, Family, TrainingSetup
from .recipes import FAMILIES

__all__ = ["TRAINERS", "TrainingSetup", "UnknownModelError", "get_trainer", "trainable_families"]


def trainable_families() -> dict[str, Family]:
    """The families the command line trains, by name (their ``trainer`` is set)."""
    return {name: family for name, family in FAMILIES.items() if family.trainer is not None}


# name -> the command-line trainer of that family
TRAINERS: dict[str, CommandLineTrainer] = {name: family.trainer for name, family in trainable_families().items()}


class UnknownModelError(KeyError):
    """The model name is not one the command line trains."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def get_trainer(name: str) -> CommandLineTrainer:
    """The command-line trainer of the family ``name``, with a clear error for an unknown name.

    Example:
        >>> sorted(get_trainer("gan_mlp").options)
        ['latent_dim', 'precision']
    """
    if name not in TRAINERS:
        close = difflib.get_close_matches(name, TRAINERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Models the tool can train: {', '.join(sorted(TRAINERS))} "
            "(see 'aigc-lessons list')."
        )
    return TRAINERS[name]
