"""Run folders: configuration, metrics history and checkpoints that resume exactly.

A *run* is one training of one model with one configuration. Everything it
produces goes into one folder, so that it can be inspected, plotted, compared,
sampled, evaluated and resumed later::

    runs/gan-lr2e-4/
        config.json                         the settings (model, epochs, batch size, lr, seed, ...)
        metrics.jsonl                       one JSON object per logging step: epoch, step, losses
        samples/epoch_0001.png              fixed-noise samples at each checkpoint (for monitoring)
        checkpoints/epoch_0001.safetensors  weights of every network, e.g. "generator.net.0.weight"
        checkpoints/epoch_0001.state.safetensors   optimizer tensors and random-number-generator states
        checkpoints/epoch_0001.json         epoch, history, optimizer hyperparameters, Python and
                                            NumPy RNG states, SHA-256 of the two files above
                                            (only the latest ``keep_checkpoints`` are kept)
        eval_epoch_0030.json                written by ``evaluate_run`` / ``aigc-lessons eval``
        events.out.tfevents.*               TensorBoard events: losses, sample grids, settings
                                            (``aigc-lessons train`` writes them; ``tensorboard --logdir runs``)

:func:`runs_table` joins the ``config.json`` and latest evaluation of every run
in a folder: the experiment tracking of the project chapters.

The package has one module per concern; every public name is re-exported here
(``from aigc_lessons.runs import train_run``):

* :mod:`~aigc_lessons.runs.config`: ``RunConfig``, ``RunError``, the valid range of
  every setting and :func:`~aigc_lessons.runs.config.prepare`, the one place where a
  run's settings are completed, checked and merged on resume;
* :mod:`~aigc_lessons.runs.checkpoints`: the files of a run folder, atomic writes,
  checkpoints (save, read and verify, prune), optimizer and random states as tensors + JSON;
* :mod:`~aigc_lessons.runs.loop`: :func:`train_run`, training and resuming;
* :mod:`~aigc_lessons.runs.distributed`: data-parallel runs under ``torchrun``
  (DistributedDataParallel, each rank's slice of the batches, rank 0 writes);
* :mod:`~aigc_lessons.runs.finished`: :func:`load_run`, :func:`sample_run`,
  :func:`generate_from_run`, :func:`evaluate_run`;
* :mod:`~aigc_lessons.runs.table`: finding runs (:func:`resolve_run`, :func:`list_runs`) and :func:`runs_table`.

**No pickles.** A pickle can run arbitrary code when it is loaded, so a run
folder downloaded from somewhere must never be unpickled. Weights and every
tensor of the optimizer and RNG states are stored with ``safetensors`` (tensors
only), and everything else (hyperparameters, the loss history, Python's and
NumPy's RNG states, which are integers) as JSON. The optimizer state dict is
flattened into named tensors and JSON by :func:`optimizer_state_to_flat`, so
``torch.load`` is never needed.

**Crash safety.** Every file is written to a temporary name and renamed
(``os.replace`` is atomic), and the checkpoint's JSON file is written last: a
checkpoint exists only when its JSON does, and the JSON holds the SHA-256 of the
two tensor files. A process killed at any moment leaves either the previous
checkpoint or the new one, never half of one.

**Exact resumption.** A checkpoint at the end of epoch *k* holds everything
that the rest of training depends on: weights, optimizer moments, the global
random state (noise and dropout draw from it), the epoch (the batch order of
each epoch is a function of the seed and the epoch, see ``TensorBatches``) and
the history. So, on the CPU, training to epoch *n* in one go and training to
epoch *k*, stopping, and resuming to *n* give bit-identical weights
(the test suite checks it). On a GPU some kernels are not
deterministic, so the results agree only statistically.

**Nothing overwritten on error.** Resuming first reads and verifies the
checkpoint (checksums, configuration, every tensor name and shape) and writes
nothing until all checks have passed.

Example:
    >>> from aigc_lessons.runs import RunConfig, train_run
    >>> result = train_run("runs/demo", RunConfig("gan_mlp", epochs=1, subset=256))  # doctest: +SKIP
    >>> result = train_run("runs/demo", RunConfig("gan_mlp", epochs=2, subset=256), resume=True)  # doctest: +SKIP
"""

from .checkpoints import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    FORMAT_VERSION,
    METRICS_FILE,
    SAMPLES_DIR,
    Checkpoint,
    checkpoint_paths,
    list_checkpoints,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    prune_checkpoints,
    read_checkpoint,
    read_config,
    read_metrics,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import RunConfig, RunError, prepare
from .finished import evaluate_run, generate_from_run, load_run, sample_run
from .loop import RunResult, save_sample_grid, train_run
from .table import RUNS_ENV, list_runs, resolve_run, runs_root, runs_table

__all__ = [
    "CHECKPOINT_DIR", "CONFIG_FILE", "FORMAT_VERSION", "METRICS_FILE", "RUNS_ENV", "SAMPLES_DIR", "Checkpoint",
    "RunConfig", "RunError", "RunResult", "checkpoint_paths", "evaluate_run", "generate_from_run", "list_checkpoints",
    "list_runs", "load_run", "optimizer_state_from_flat", "optimizer_state_to_flat", "prepare", "prune_checkpoints",
    "read_checkpoint", "read_config", "read_metrics", "resolve_run", "rng_state", "runs_root", "runs_table",
    "sample_run", "save_checkpoint", "save_sample_grid", "set_rng_state", "train_run",
]
