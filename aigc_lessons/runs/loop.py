"""The training loop of a run: train or resume into a run folder, checkpointing every few epochs.

:func:`train_run` is what ``aigc-lessons train`` calls, once: it completes and
checks the settings (:func:`aigc_lessons.runs.config.prepare`), verifies the
checkpoint it resumes from before anything is written, builds the family's
networks and step (its :class:`~aigc_lessons.family.CommandLineTrainer`), and
runs :func:`aigc_lessons.train.fit` with a checkpoint at each epoch's end.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core import get_device, is_fast, seed_everything
from ..data import TensorBatches, load_mnist
from ..family import TrainingSetup
from ..train.loop import History, fit
from ..viz import image_grid
from .checkpoints import (
    CONFIG_FILE,
    SAMPLES_DIR,
    apply_checkpoint,
    atomic_write_json,
    check_fits,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    read_config,
    save_checkpoint,
    write_metrics,
)
from .config import RunConfig, RunError, prepare


@dataclass
class RunResult:
    """What :func:`train_run` returns."""

    run_dir: Path
    config: RunConfig
    history: History
    setup: TrainingSetup
    start_epoch: int
    seconds: float


def _fixed_noise_generator(config: RunConfig) -> torch.Generator:
    return torch.Generator().manual_seed(10_000 + config.seed)


def save_sample_grid(path: str | os.PathLike, images: torch.Tensor, value_range: tuple[float, float], nrow: int = 8) -> Path:
    """Write images as one PNG grid (white padding) and return the path."""
    import matplotlib.image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, nrow=nrow, value_range=value_range).numpy()
    temporary = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    matplotlib.image.imsave(temporary, grid, cmap="gray", vmin=0.0, vmax=1.0)
    os.replace(temporary, path)
    return path


def _load_batches(config: RunConfig, setup: TrainingSetup, device: torch.device):
    data = load_mnist("train", value_range=setup.value_range, device=device, subset=config.subset)
    tensors = (data.images, data.labels) if setup.with_labels else (data.images,)
    return TensorBatches(*tensors, batch_size=config.batch_size, seed=config.seed)


def train_run(
    run_dir: str | os.PathLike,
    config: RunConfig | dict | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    fast: bool | None = None,
) -> RunResult:
    """Train (or resume) a run in ``run_dir``; checkpoint every ``config.checkpoint_every`` epochs.

    New run: ``run_dir`` must not already hold a run. Resume: ``config`` may be
    ``None`` (use the stored one), a :class:`RunConfig` or a dict of the settings
    to change; it may raise ``epochs`` (and change the device, checkpointing and
    precision); any other difference from the stored settings is an error.
    Every setting is checked (:func:`~aigc_lessons.runs.config.prepare`) before
    anything is written. ``fast=None`` follows ``AIGC_LESSONS_FAST``. (A run stopped before its first
    checkpoint resumes from the start.) Resuming verifies the latest checkpoint
    completely before anything is written. ``Ctrl-C`` stops training; the last
    checkpoint on disk is where ``resume=True`` continues.

    Example:
        >>> result = train_run("runs/tiny", RunConfig("gan_mlp", epochs=1, subset=128), progress=False)  # doctest: +SKIP
        >>> sorted(result.history.rows[-1])  # doctest: +SKIP
        ['epoch', 'loss_d', 'loss_g', 'step']
    """
    run_dir = Path(run_dir)
    stored = read_config(run_dir) if (run_dir / CONFIG_FILE).exists() else None
    if resume and stored is None:
        raise RunError(f"cannot resume: {run_dir} is not a run folder (no {CONFIG_FILE}). "
                       "Give the run's folder, or start a new run without --resume.")
    if not resume and stored is not None:
        raise RunError(f"{run_dir} already holds a run ({stored.model}); resume it with --resume, "
                       "or choose another --run-dir.")
    config, trainer = prepare(config, stored, resume=resume, fast=is_fast() if fast is None else fast)

    device = get_device(config.device)
    seed_everything(config.seed)
    setup = trainer.build(config, device)
    batches = _load_batches(config, setup, device)

    start_epoch, history = 0, History()
    if resume and list_checkpoints(run_dir):
        checkpoint = read_checkpoint(run_dir)
        check_fits(checkpoint, config, setup)
        if checkpoint.epoch > config.epochs:
            raise RunError(f"the run is already at epoch {checkpoint.epoch}, past the {config.epochs} epochs asked; "
                           "ask for more epochs to continue it.")
        # Everything verified: from here on we write.
        history = apply_checkpoint(checkpoint, setup)
        start_epoch = checkpoint.epoch
        write_metrics(run_dir, history)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG_FILE, config.to_dict())

    def on_epoch_end(epoch: int) -> None:
        write_metrics(run_dir, history)
        if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
            save_checkpoint(run_dir, epoch, config, setup, history)
            prune_checkpoints(run_dir, config.keep_checkpoints)
            images = setup.sample(_fixed_noise_generator(config), 64)
            save_sample_grid(run_dir / SAMPLES_DIR / f"epoch_{epoch:04d}.png", images, setup.value_range,
                             nrow=10 if setup.with_labels else 8)

    started = time.perf_counter()
    fit(setup.step, batches, config.epochs, log_every=config.log_every, on_epoch_end=on_epoch_end,
        start_epoch=start_epoch, history=history, progress=progress, desc=config.model)
    return RunResult(run_dir, config, history, setup, start_epoch, time.perf_counter() - started)
