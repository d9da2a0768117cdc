"""Using a finished run: rebuild its networks, draw samples, score them with the evaluation metrics.

``aigc-lessons sample`` calls :func:`sample_run` and ``aigc-lessons eval``
:func:`evaluate_run`; the project chapters use :func:`generate_from_run`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..core import get_budget, get_device
from ..family import TrainingSetup
from .checkpoints import SAMPLES_DIR, apply_checkpoint, atomic_write_json, check_fits, read_checkpoint, read_config
from .config import RunConfig, RunError, prepare
from .loop import save_sample_grid
from .table import resolve_run


def load_run(run: str | os.PathLike, epoch: int | None = None, device: str | torch.device = "cpu") -> tuple[RunConfig, TrainingSetup, int]:
    """Rebuild a run's networks from a checkpoint (default: the latest), in evaluation mode.

    Returns ``(config, setup, epoch)``; ``setup.sample(generator, n)`` draws images.

    Example:
        >>> config, setup, epoch = load_run("runs/demo")  # doctest: +SKIP
        >>> images = setup.sample(torch.Generator().manual_seed(0), 16)  # doctest: +SKIP
    """
    run_dir = resolve_run(run)
    config, trainer = prepare(None, read_config(run_dir), resume=True)
    checkpoint = read_checkpoint(run_dir, epoch)
    resolved = get_device(device)
    state = torch.get_rng_state()
    setup = trainer.build(config, resolved)
    torch.set_rng_state(state)  # building the networks must not change the caller's random state
    check_fits(checkpoint, config, setup)
    apply_checkpoint(checkpoint, setup, restore_rng=False)
    for module in setup.modules.values():
        module.eval()
    return config, setup, checkpoint.epoch


def sample_run(run: str | os.PathLike, out: str | os.PathLike | None = None, count: int = 64, seed: int = 0,
               epoch: int | None = None, device: str | torch.device = "cpu") -> Path:
    """Draw ``count`` samples from a run and save them as a PNG grid; return its path.

    The default file is ``<run>/samples/sample_epoch_XXXX_seed_S.png``.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    config, setup, epoch = load_run(run, epoch, device)
    images = setup.sample(torch.Generator().manual_seed(seed), count)
    run_dir = resolve_run(run)
    path = Path(out) if out is not None else run_dir / SAMPLES_DIR / f"sample_epoch_{epoch:04d}_seed_{seed}.png"
    return save_sample_grid(path, images, setup.value_range, nrow=10 if setup.with_labels else 8)


def generate_from_run(run: str | os.PathLike, count: int, seed: int = 0, epoch: int | None = None,
                      device: str | torch.device = "cpu", batch_size: int = 500) -> tuple[torch.Tensor, RunConfig, TrainingSetup, int]:
    """``count`` generated images (CPU, in the run's value range), drawn in batches from a seeded generator."""
    config, setup, epoch = load_run(run, epoch, device)
    noise = torch.Generator().manual_seed(seed)
    parts, left = [], count
    while left > 0:
        parts.append(setup.sample(noise, min(batch_size, left)))
        left -= batch_size
    return torch.cat(parts), config, setup, epoch


def evaluate_run(run: str | os.PathLike, count: int | None = None, seed: int = 0, epoch: int | None = None,
                 device: str | torch.device = "auto") -> dict:
    """Score a run's samples with the evaluation chapter's metrics; save and return them.

    Writes ``<run>/eval_epoch_XXXX.json`` and returns ``{"run", "model", "epoch",
    "count", "metrics", "file"}``. ``count`` defaults to 10 000 images (1 000 in
    fast mode).
    """
    run_dir = resolve_run(run)
    count = count if count is not None else get_budget().pick(full=10_000, fast=1_000)
    if count < 2:
        raise ValueError(f"count must be at least 2 images, got {count}")
    images, config, setup, epoch = generate_from_run(run_dir, count, seed, epoch, get_device(device))
    scores = _score(images, setup, get_device(device))
    result = {"run": str(run_dir), "model": config.model, "epoch": epoch, "count": count, "seed": seed,
              "metrics": scores}
    path = run_dir / f"eval_epoch_{epoch:04d}.json"
    atomic_write_json(path, result)
    result["file"] = str(path)
    return result


def _class_labels(count: int, batch_size: int = 500) -> torch.Tensor:
    """The labels a conditional setup's ``sample`` used for ``count`` images drawn in batches.

    A conditional sampler labels image ``i`` of each batch with class ``i % 10``;
    because the batch size is a multiple of 10, the labels of all batches together
    are ``arange(count) % 10``.
    """
    assert batch_size % 10 == 0, "batch size must be a multiple of 10 for the label pattern to continue"
    return torch.arange(count) % 10


def _score(images: torch.Tensor, setup: TrainingSetup, device: torch.device) -> dict:
    """The evaluation chapter's numbers for generated images, as plain JSON-ready values.

    Calls ``metrics.evaluate_images`` (Fréchet distance and Inception-style score
    with the MNIST reference classifier, precision, recall, nearest-neighbour
    distance to the training set, and for conditional models the accuracy of the
    requested classes).
    """
    labels = _class_labels(len(images)) if setup.with_labels else None
    try:
        scores = metrics.evaluate_images(images, value_range=tuple(setup.value_range), labels=labels, device=device,
                                         progress=False)
    except (RuntimeError, ValueError) as error:  # e.g. the reference classifier's weights are missing
        raise RunError(f"cannot evaluate: {error}") from error
    plain = {}
    for name, value in scores.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        plain[name] = value
    return plain
