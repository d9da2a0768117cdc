"""The settings of a run (``config.json``): defaults, valid ranges, and what may change on resume.

:func:`prepare` is the one place where a run's settings are completed and
checked, for the command line and the Python API alike: it looks the model's
trainer up once, converts ``--set`` text to typed options, fills in the
defaults (the full setting of the family's recipe, or its fast changes),
checks every value against its range, and, when resuming, merges what was
asked with what the run folder stores. Nothing is written before it returns.

Example:
    >>> config, trainer = prepare(RunConfig("vae", options={"beta": "-1"}))
    Traceback (most recent call last):
    ValueError: option beta must be a number >= 0, got -1.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..family import CommandLineTrainer, Option, check_settings
from ..trainers import get_trainer

# The valid range of every setting of a run (the model's options have theirs in its trainer).
RUN_RULES = {
    "epochs": Option(1, minimum=1),
    "batch_size": Option(1, minimum=1),
    "lr": Option(1e-3, above=0, below=1),
    "seed": Option(0, minimum=0),
    "subset": Option(1, minimum=1, none_ok=True),
    "checkpoint_every": Option(1, minimum=1),
    "keep_checkpoints": Option(1, minimum=1),
    "log_every": Option(1, minimum=1),
}

# Settings that must be identical when a run is resumed (``epochs`` may grow,
# ``checkpoint_every``, ``keep_checkpoints`` and ``device`` may change).
MUST_MATCH = ("model", "batch_size", "lr", "seed", "subset", "log_every", "options")
# Model options that say how to compute, not what is trained: like the device, they may change
# when a run is resumed (the weights and optimizer state are float32 in either precision).
MAY_CHANGE_OPTIONS = ("precision",)


class RunError(RuntimeError):
    """A run folder or checkpoint is missing, corrupt, or does not match what was asked."""


@dataclass
class RunConfig:
    """The settings of one run (stored as ``config.json``).

    ``None`` for ``epochs``, ``batch_size``, ``lr`` means the model's default for
    the budget (the full setting of the family's recipe, see
    :func:`aigc_lessons.recipes.full_setting`); ``subset=None`` means the whole
    training set. ``options`` are the model's options; a value may be text
    (``"64"``, as ``--set latent_dim=64`` gives it), converted to the option's type.
    """

    model: str
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    subset: int | None = None
    checkpoint_every: int = 1
    keep_checkpoints: int = 3
    log_every: int = 50
    device: str = "auto"
    options: dict = field(default_factory=dict)

    def resolved(self, fast: bool = False) -> "RunConfig":
        """Fill in the model's defaults and check every value; return a new config.

        Example:
            >>> RunConfig("gan_mlp").resolved(fast=True).epochs
            1
        """
        return _resolved(self, get_trainer(self.model), fast)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting out of its range (and the range)."""
        check_settings(asdict(self), RUN_RULES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunError(f"config has unknown settings {unknown}; was it written by a newer version?")
        return cls(**data)


def _typed_options(model: str, options: dict, trainer: CommandLineTrainer) -> dict:
    """The model options converted (text) and checked against their ranges."""
    unknown = [key for key in options if key not in trainer.options]
    if unknown:
        allowed = ", ".join(f"{name} (default {option.default}, {option.rule()})"
                            for name, option in trainer.options.items()) or "none"
        raise ValueError(f"model {model!r} has no option {unknown[0]!r}; its options: {allowed}")
    typed = {}
    for key, value in options.items():
        rule = trainer.options[key]
        typed[key] = rule.parse(f"option {key}", value) if isinstance(value, str) else rule.check(f"option {key}", value)
    return typed


def _resolved(config: RunConfig, trainer: CommandLineTrainer, fast: bool) -> RunConfig:
    values = config.to_dict()
    defaults = trainer.defaults(fast)
    for key in ("epochs", "batch_size", "lr"):
        if values[key] is None:
            values[key] = defaults[key]
    values["options"] = {**trainer.option_defaults(), **_typed_options(config.model, config.options, trainer)}
    resolved = RunConfig(**values)
    resolved.check()
    return resolved


def fingerprint(config: RunConfig) -> dict:
    """The settings a checkpoint must share with the run that continues it."""
    values = {key: getattr(config, key) for key in MUST_MATCH}
    values["options"] = {key: value for key, value in values["options"].items() if key not in MAY_CHANGE_OPTIONS}
    return values


def _merged_for_resume(stored: RunConfig, asked: RunConfig | dict | None, trainer: CommandLineTrainer) -> RunConfig:
    """The stored settings, with ``epochs``, ``checkpoint_every``, ``keep_checkpoints``, ``device``, precision asked.

    ``asked`` is a whole :class:`RunConfig` (its ``None`` fields mean "as stored")
    or a dict of the settings to change (what the command line was given).
    Any other difference from the stored settings is an error. A run folder
    written before an option existed gets the option's default.
    """
    stored = RunConfig(**{**stored.to_dict(), "options": {**trainer.option_defaults(), **stored.options}})
    if asked is None:
        stored.check()
        return stored
    if isinstance(asked, dict):
        values = {**stored.to_dict(), **asked}
    else:
        values = asked.to_dict()
        for key in ("epochs", "batch_size", "lr"):
            if values[key] is None:
                values[key] = getattr(stored, key)
    if values["model"] != stored.model:
        raise RunError(f"the run was trained as {stored.model!r}, not {values['model']!r}; resume it with that "
                       "model name or start a new run.")
    asked_options = asked.get("options", {}) if isinstance(asked, dict) else asked.options
    values["options"] = {**stored.options, **_typed_options(stored.model, asked_options, trainer)}
    merged = RunConfig(**values)
    run, asked_now = fingerprint(stored), fingerprint(merged)
    differences = [f"{key}: run {run[key]!r}, asked {asked_now[key]!r}" for key in MUST_MATCH if run[key] != asked_now[key]]
    if differences:
        raise RunError("cannot resume with different settings (" + "; ".join(differences) + "); only epochs, "
                       "checkpoint_every, keep_checkpoints, device and precision may change. Start a new run for "
                       "other settings.")
    merged.check()
    return merged


def prepare(asked: RunConfig | dict | None, stored: RunConfig | None = None, *, resume: bool = False,
            fast: bool = False) -> tuple[RunConfig, CommandLineTrainer]:
    """The complete, checked settings of a run, and the model's trainer: one lookup, one check.

    New run (``resume=False``): ``asked`` with the model's defaults filled in.
    Resume: ``stored`` (the run folder's ``config.json``) with what ``asked``
    may change (``asked=None``: continue as stored; a dict: only these settings).
    """
    if resume:
        if stored is None:
            raise RunError("cannot resume: the folder is not a run folder (no config.json). "
                           "Start the run without --resume.")
        trainer = get_trainer(stored.model)
        return _merged_for_resume(stored, asked, trainer), trainer
    if asked is None:
        raise ValueError("a new run needs a RunConfig")
    trainer = get_trainer(asked.model)
    return _resolved(asked, trainer, fast), trainer
