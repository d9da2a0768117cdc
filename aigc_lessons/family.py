"""What a model family declares, and the rule every option with a valid range follows.

A *model family* (the first GAN, the DCGAN, the VAE, ...) is declared once, as a
:class:`Family` in its recipe module ``aigc_lessons/recipes/<family>.py``: its
name, its classes, the recipes of its shipped weights (each with its full
setting) and, when ``aigc-lessons train`` trains it, its :class:`CommandLineTrainer`.
:mod:`aigc_lessons.recipes` finds the declarations; every table the package
needs (recipes by name, trainers by name) is read from them.

This module is a leaf: it imports no torch and nothing else from the package,
so the declarations can be read by the command line without starting torch,
and every layer (recipes, runs, the command line) can import it without a cycle.

Example:
    >>> Option(1.0, minimum=0.0).check("beta", -1.0)
    Traceback (most recent call last):
    ValueError: beta must be a number >= 0, got -1.0
    >>> Option(20, minimum=1).parse("latent_dim", "0")
    Traceback (most recent call last):
    ValueError: latent_dim must be a positive integer (>= 1), got 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Option:
    """A setting with a default and a valid range (or a list of choices).

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive
    ones; ``choices`` lists the allowed values; ``none_ok`` allows ``None``
    (for example ``subset=None``: the whole training set). The type of the
    default is the type of the option (an ``int`` option refuses 2.5).
    """

    default: Any
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple | None = None
    none_ok: bool = False
    kind: type | None = None  # the option's type when the default is None

    @property
    def type(self) -> type:
        return self.kind or type(self.default)

    def rule(self) -> str:
        """The valid range in words, e.g. ``"an integer >= 1"`` or ``"one of fp32, bf16"``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        noun = "an integer" if self.type is int else "a number"
        if self.type is int and self.minimum in (0, 1) and (self.maximum, self.above, self.below) == (None,) * 3:
            noun = "a positive integer" if self.minimum == 1 else "a non-negative integer"
        bounds = [f">= {self.minimum:g}" if self.minimum is not None else "",
                  f"> {self.above:g}" if self.above is not None else "",
                  f"< {self.below:g}" if self.below is not None else "",
                  f"<= {self.maximum:g}" if self.maximum is not None else ""]
        text = " and ".join(b for b in bounds if b)
        if noun.startswith(("a positive", "a non-negative")):
            text = f"({text})"
        text = f"{noun} {text}".strip()
        return f"{text} or None" if self.none_ok else text

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` if it is in range; raise ``ValueError`` naming ``name`` and the range otherwise."""
        if value is None and self.none_ok:
            return value
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{name} must be {self.rule()}, got {value!r}")
            return value
        wanted = self.type
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (wanted is int and not isinstance(value, int)) or not math.isfinite(value):
            raise ValueError(f"{name} must be {self.rule()}, got {value!r}")
        inside = ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
                  and (self.above is None or value > self.above) and (self.below is None or value < self.below))
        if not inside:
            raise ValueError(f"{name} must be {self.rule()}, got {value!r}")
        return value

    def parse(self, name: str, text: str) -> Any:
        """Convert command-line text to the option's type, then :meth:`check` it."""
        try:
            value = self.type(text)
        except ValueError:
            raise ValueError(f"option {name} expects a {self.type.__name__}, got {text!r}") from None
        return self.check(name, value)


def check_settings(values: dict, rules: dict[str, Option]) -> None:
    """Check every value that has a rule; raise ``ValueError`` naming the first one out of range."""
    for name, rule in rules.items():
        if name in values:
            rule.check(name, values[name])


@dataclass
class TrainingSetup:
    """Everything a command-line run needs from a model family.

    Attributes:
        modules: the networks, by name (``"generator"``, ``"discriminator"``, ...);
            checkpoints store each under its name.
        optimizers: their optimizers, by name; checkpoints store their state.
        step: ``step(batch) -> {"loss_name": 0-d tensor}``, one optimisation step.
        sample: ``sample(noise_generator, count) -> images`` on the CPU, in
            ``value_range``; draws its noise from ``noise_generator`` only (a
            ``torch.Generator``), never from the global random state, so that
            sampling during training does not change the training run.
        value_range: the pixel range the model is trained on.
        with_labels: whether batches carry the class labels (conditional models).
    """

    modules: dict[str, Any]
    optimizers: dict[str, Any]
    step: Callable[[tuple], dict]
    sample: Callable[[Any, int], Any]
    value_range: tuple[float, float] = (-1.0, 1.0)
    with_labels: bool = False


@dataclass
class RecipeResult:
    """What a recipe returns: the trained model, its constructor arguments and its card."""

    model: Any
    model_kwargs: dict
    card: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """How one shipped weight file is trained, and its full setting.

    ``train(budget, device, progress) -> RecipeResult``; ``full`` is the full
    setting (the one the shipped weights were trained with: epochs, batch size,
    learning rate, ...), ``fast`` what fast mode changes. The recipe function
    reads its numbers from the same two dicts, so they have one home.
    """

    train: Callable[..., RecipeResult]
    full: dict
    fast: dict = field(default_factory=dict)

    def setting(self, fast: bool) -> dict:
        """The full setting, or the full setting with the fast changes."""
        return {**self.full, **self.fast} if fast else dict(self.full)

    def __call__(self, budget, device, progress: bool = True) -> RecipeResult:
        return self.train(budget, device, progress=progress)


RUN_DEFAULTS = ("epochs", "batch_size", "lr", "subset")


@dataclass(frozen=True)
class CommandLineTrainer:
    """How ``aigc-lessons train NAME`` trains a family.

    ``build(config, device) -> TrainingSetup`` creates the networks, optimizers,
    step and sampler. ``full`` is the full setting of the family's shipped
    recipe (the very dict of its :class:`Recipe`, so the command line's defaults
    cannot drift from it): its ``epochs``, ``batch_size``, ``lr`` and ``subset``
    are the defaults of a run. ``fast`` is what fast mode changes; ``options``
    are the model options (``--set key=value``) with defaults and valid ranges.
    """

    build: Callable[..., TrainingSetup]
    full: dict
    options: dict[str, Option] = field(default_factory=dict)
    fast: dict = field(default_factory=lambda: {"epochs": 1, "subset": 2048})

    def defaults(self, fast: bool) -> dict:
        """The default ``epochs``, ``batch_size``, ``lr`` and ``subset`` of a run."""
        values = {key: self.full.get(key) for key in RUN_DEFAULTS}
        return {**values, **self.fast} if fast else values

    def option_defaults(self) -> dict:
        return {name: option.default for name, option in self.options.items()}


@dataclass(frozen=True)
class Family:
    """One model family, declared once (in ``aigc_lessons/recipes/<family>.py``).

    Attributes:
        name: the family's name (``aigc-lessons train NAME`` when it has a trainer).
        description: one line, naming the chapter that teaches it.
        classes: the ``nn.Module`` classes it defines (a pretrained card names one of them).
        recipes: the shipped weights it trains, by pretrained name.
        trainer: how the command line trains it (``None``: not trainable from the command line).

    How a family's generator is sampled for evaluation is a method of its
    generator class, ``sample_for_evaluation(count, generator)``, so that the
    metrics (which sit below the recipes) can use it without a table.
    """

    name: str
    description: str
    classes: tuple = ()
    recipes: dict[str, Recipe] = field(default_factory=dict)
    trainer: CommandLineTrainer | None = None
