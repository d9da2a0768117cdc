"""The training loop of a run: train or resume into a run folder, checkpointing every few epochs.

:func:`train_run` is what ``aigc-lessons train`` calls, once: it completes and
checks the settings (:func:`aigc_lessons.runs.config.prepare`), verifies the
checkpoint it resumes from before anything is written, builds the family's
networks and step (its :class:`~aigc_lessons.family.CommandLineTrainer`), and
runs :func:`aigc_lessons.train.fit` with a checkpoint at each epoch's end.

Under ``torchrun`` (``WORLD_SIZE > 1``) the same function trains data-parallel:
every process builds the same networks, trains on its slice of each batch,
and DistributedDataParallel averages the gradients; rank 0 alone writes the
run folder (:mod:`aigc_lessons.runs.distributed`). With ``tensorboard=True``
rank 0 also writes TensorBoard event files into the run folder
(``tensorboard --logdir runs`` shows every run's losses and sample grids).
"""

from __future__ import annotations

import json
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
from . import distributed
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


def _load_batches(config: RunConfig, setup: TrainingSetup, device: torch.device,
                  context: distributed.Distributed):
    data = load_mnist("train", value_range=setup.value_range, device=device, subset=config.subset)
    tensors = (data.images, data.labels) if setup.with_labels else (data.images,)
    if context.active:  # this rank's slice of each global batch of world_size * batch_size
        return distributed.ShardedBatches(*tensors, batch_size=config.batch_size, rank=context.rank,
                                          world_size=context.world_size, seed=config.seed)
    return TensorBatches(*tensors, batch_size=config.batch_size, seed=config.seed)


def _event_writer(run_dir: Path, config: RunConfig, purge_step: int | None):
    """A TensorBoard ``SummaryWriter`` for the run folder, or ``None`` (with a note) without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the event files are a view of the run; the run itself needs no tensorboard
        print("note: tensorboard is not installed, so no TensorBoard event files are written "
              "(pip install tensorboard)", flush=True)
        return None
    # purge_step: a resumed run hides the events that an interrupted run logged after its last checkpoint
    writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
    writer.add_text("config", "```\n" + json.dumps(config.to_dict(), indent=1) + "\n```", global_step=purge_step or 0)
    return writer


def train_run(
    run_dir: str | os.PathLike,
    config: RunConfig | dict | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    fast: bool | None = None,
    tensorboard: bool = False,
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
    checkpoint on disk is where ``resume=True`` continues. ``tensorboard=True`` also writes
    TensorBoard event files into ``run_dir``: the logged losses as scalars
    (``train/loss_d``, ...) and the sample grid of every checkpoint as an image.

    Started by ``torchrun`` with several processes, every process calls this
    function: the batch size is per process, the networks train with
    DistributedDataParallel, and only rank 0 writes into ``run_dir``.

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

    context = distributed.from_environment(config.device)  # one process outside torchrun
    try:
        return _train(run_dir, config, trainer, resume, progress and context.is_main, tensorboard, context)
    finally:
        context.close()


def _train(run_dir: Path, config: RunConfig, trainer, resume: bool, progress: bool, tensorboard: bool,
           context: distributed.Distributed) -> RunResult:
    device = distributed.run_device(context, config.device)
    seed_everything(config.seed)  # the same on every rank: the networks start equal
    setup = trainer.build(config, device)
    batches = _load_batches(config, setup, device, context)

    start_epoch, history = 0, History()
    if resume and list_checkpoints(run_dir):
        checkpoint = read_checkpoint(run_dir)
        check_fits(checkpoint, config, setup)
        if checkpoint.epoch > config.epochs:
            raise RunError(f"the run is already at epoch {checkpoint.epoch}, past the {config.epochs} epochs asked; "
                           "ask for more epochs to continue it.")
        trained_with = checkpoint.record.get("world_size", 1)
        if trained_with != context.world_size and context.is_main:
            print(f"note: the run was trained with {trained_with} process(es), it continues with "
                  f"{context.world_size}: the global batch changes from {trained_with * config.batch_size} to "
                  f"{context.world_size * config.batch_size}, so it will not match an uninterrupted run.", flush=True)
        # Everything verified: from here on we write.
        history = apply_checkpoint(checkpoint, setup)
        start_epoch = checkpoint.epoch
    # Every rank has read and checked the run folder: only now may rank 0 write into it.
    context.barrier()
    wrappers = distributed.distribute(setup, context, device)  # noqa: F841 (the DDP wrappers must stay alive)
    writer = None
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if start_epoch:
            write_metrics(run_dir, history)
        atomic_write_json(run_dir / CONFIG_FILE, config.to_dict())
        if tensorboard:
            writer = _event_writer(run_dir, config, start_epoch * len(batches) + 1 if start_epoch else None)
    logged = len(history.rows)  # rows already in the event files

    def on_epoch_end(epoch: int) -> None:
        nonlocal logged
        if not context.is_main:
            return
        write_metrics(run_dir, history)
        if writer is not None:
            for row in history.rows[logged:]:
                for name, value in row.items():
                    if name not in ("epoch", "step"):
                        writer.add_scalar(f"train/{name}", value, row["step"])
            logged = len(history.rows)
        if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
            save_checkpoint(run_dir, epoch, config, setup, history, world_size=context.world_size)
            prune_checkpoints(run_dir, config.keep_checkpoints)
            images = setup.sample(_fixed_noise_generator(config), 64)
            nrow = 10 if setup.with_labels else 8
            save_sample_grid(run_dir / SAMPLES_DIR / f"epoch_{epoch:04d}.png", images, setup.value_range, nrow=nrow)
            if writer is not None:
                grid = image_grid(images, nrow=nrow, value_range=setup.value_range)
                writer.add_image("samples", grid, epoch * len(batches), dataformats="HW" if grid.dim() == 2 else "HWC")
        if writer is not None:
            writer.flush()

    started = time.perf_counter()
    try:
        fit(setup.step, batches, config.epochs, log_every=config.log_every, on_epoch_end=on_epoch_end,
            start_epoch=start_epoch, history=history, progress=progress, desc=config.model)
    finally:
        if writer is not None:
            writer.close()
    context.barrier()  # the last checkpoint is on disk before any rank reports success
    return RunResult(run_dir, config, history, setup, start_epoch, time.perf_counter() - started)
