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

:func:`runs_table` joins the ``config.json`` and latest evaluation of every run
in a folder: the experiment tracking of the project chapters.

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
(``tests/test_runs.py`` checks it). On a GPU some kernels are not
deterministic, so the results agree only statistically.

**Nothing overwritten on error.** Resuming first reads and verifies the
checkpoint (checksums, configuration, every tensor name and shape) and writes
nothing until all checks have passed.

Example:
    >>> from aigc_lessons.runs import RunConfig, train_run
    >>> result = train_run("runs/demo", RunConfig("gan_mlp", epochs=1, subset=256))  # doctest: +SKIP
    >>> result = train_run("runs/demo", RunConfig("gan_mlp", epochs=2, subset=256), resume=True)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .core import get_device, seed_everything
from .train.loop import History, fit
from .trainers import TrainingSetup, get_trainer

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
RUNS_ENV = "AIGC_LESSONS_RUNS"
FORMAT_VERSION = 1

# Settings that must be identical when a run is resumed (``epochs`` may grow,
# ``checkpoint_every``, ``keep_checkpoints`` and ``device`` may change).
_MUST_MATCH = ("model", "batch_size", "lr", "seed", "subset", "log_every", "options")
# Model options that say how to compute, not what is trained: like the device, they may change
# when a run is resumed (the weights and optimizer state are float32 in either precision).
_MAY_CHANGE_OPTIONS = ("precision",)


class RunError(RuntimeError):
    """A run folder or checkpoint is missing, corrupt, or does not match what was asked."""


@dataclass
class RunConfig:
    """The settings of one run (stored as ``config.json``).

    ``None`` for ``epochs``, ``batch_size``, ``lr`` means the model's default for
    the budget (see :data:`aigc_lessons.trainers.TRAINERS`); ``subset=None`` means
    the whole training set.
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
        spec = get_trainer(self.model)
        defaults = spec.defaults(fast)
        values = asdict(self)
        for key in ("epochs", "batch_size", "lr"):
            if values[key] is None:
                values[key] = defaults[key]
        unknown = sorted(set(values["options"]) - set(spec.options))
        if unknown:
            allowed = ", ".join(f"{k} (default {v})" for k, v in spec.options.items()) or "none"
            raise ValueError(f"model {self.model!r} has no option {', '.join(unknown)}; its options: {allowed}")
        values["options"] = {**spec.options, **values["options"]}
        config = RunConfig(**values)
        config.check()
        return config

    def check(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "checkpoint_every": self.checkpoint_every,
                    "keep_checkpoints": self.keep_checkpoints,
                    "log_every": self.log_every}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.subset is not None and (not isinstance(self.subset, int) or self.subset < 1):
            raise ValueError(f"subset must be a positive number of images (or None for all), got {self.subset!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise ValueError(f"lr must be a learning rate between 0 and 1, got {self.lr!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunError(f"config has unknown settings {unknown}; was it written by a newer version?")
        return cls(**data)


@dataclass
class RunResult:
    """What :func:`train_run` returns."""

    run_dir: Path
    config: RunConfig
    history: History
    setup: TrainingSetup
    start_epoch: int
    seconds: float


# --------------------------------------------------------------------------- files


def runs_root() -> Path:
    """Where run names are looked up: ``AIGC_LESSONS_RUNS`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV, "runs")).expanduser()


def resolve_run(run: str | os.PathLike) -> Path:
    """A run folder from a path or a name under :func:`runs_root`; clear error if it is not a run.

    Example:
        >>> resolve_run("no/such/run")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        RunError: no run folder 'no/such/run' ...
    """
    candidates = [Path(run).expanduser()]
    if not Path(run).is_absolute():
        candidates.append(runs_root() / run)
    for path in candidates:
        if (path / CONFIG_FILE).is_file():
            return path
    existing = [p for p in candidates if p.is_dir()]
    if existing:
        raise RunError(f"{existing[0]} is a folder but not a run folder (it has no {CONFIG_FILE}); "
                       "train a run into it with 'aigc-lessons train MODEL --run-dir ...'.")
    names = sorted(p.parent.name for p in runs_root().glob(f"*/{CONFIG_FILE}")) if runs_root().is_dir() else []
    known = f"runs in {runs_root()}: {', '.join(names)}" if names else f"there are no runs in {runs_root()}"
    raise RunError(f"no run folder {str(run)!r} (looked in {', '.join(str(p) for p in candidates)}); {known}. "
                   "See 'aigc-lessons list'.")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _atomic_write_json(path: Path, data: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """Save with safetensors under a temporary name, rename, return the SHA-256.

    The metadata go into one JSON string with sorted keys: safetensors writes a
    metadata dict in hash-map order, which differs between calls, and identical
    runs should give byte-identical files (and so identical SHA-256).
    """
    from safetensors.torch import save

    packed = {"aigc_lessons": json.dumps(metadata, sort_keys=True)} if metadata else None
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=packed)
    _atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_config(run_dir: str | os.PathLike) -> RunConfig:
    """The :class:`RunConfig` stored in a run folder."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist: {Path(run_dir)} is not a run folder") from None
    except (json.JSONDecodeError, TypeError) as error:
        raise RunError(f"{path} is not a valid run configuration ({error}); it may be corrupt") from error


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``metrics.jsonl`` (one dict per logging step), in order.

    Example:
        >>> rows = read_metrics("runs/demo")  # doctest: +SKIP
        >>> rows[-1]["loss_d"]  # doctest: +SKIP
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_metrics(run_dir: Path, history: History) -> None:
    text = "".join(json.dumps(row) + "\n" for row in history.rows)
    _atomic_write_bytes(run_dir / METRICS_FILE, text.encode("utf-8"))


# --------------------------------------------------------------------------- state <-> tensors + JSON


def optimizer_state_to_flat(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's ``state_dict`` into named tensors and JSON-ready metadata.

    Tensors (Adam's moments and step counts) become ``"<prefix>/<param index>/<key>"``;
    the hyperparameters (``param_groups``) and any non-tensor state go into the
    metadata. :func:`optimizer_state_from_flat` is the inverse.

    Example:
        >>> opt = torch.optim.Adam(torch.nn.Linear(2, 1).parameters())
        >>> tensors, meta = optimizer_state_to_flat("opt", opt)
        >>> tensors, meta["param_groups"][0]["params"]
        ({}, [0, 1])
    """
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/{index}/{key}"] = value
            else:
                other.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()} for group in state["param_groups"]]
    return tensors, {"param_groups": groups, "other_state": other}


def optimizer_state_from_flat(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Rebuild an optimizer ``state_dict`` from :func:`optimizer_state_to_flat`'s output."""
    state: dict[int, dict] = {}
    marker = f"{prefix}/"
    for name, value in tensors.items():
        if name.startswith(marker):
            index, key = name[len(marker):].split("/", 1)
            state.setdefault(int(index), {})[key] = value
    for index, values in meta.get("other_state", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """The global random states (torch CPU and CUDA as tensors; Python and NumPy as JSON)."""
    tensors = {"rng/torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/torch_cuda/{index}"] = value
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only when CUDA is present)."""
    torch.set_rng_state(tensors["rng/torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/torch_cuda/")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


# --------------------------------------------------------------------------- checkpoints


def checkpoint_paths(run_dir: str | os.PathLike, epoch: int) -> tuple[Path, Path, Path]:
    """The weights file, the state file and the JSON record of the checkpoint at ``epoch``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    stem = f"epoch_{epoch:04d}"
    return folder / f"{stem}.safetensors", folder / f"{stem}.state.safetensors", folder / f"{stem}.json"


def list_checkpoints(run_dir: str | os.PathLike) -> list[int]:
    """Epochs that have a complete checkpoint (a JSON record), in increasing order."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    epochs = []
    for path in folder.glob("epoch_*.json"):
        try:
            epochs.append(int(path.stem.split("_", 1)[1]))
        except ValueError:
            continue
    return sorted(epochs)


def _fingerprint(config: RunConfig) -> dict:
    """The settings a checkpoint must share with the run that continues it."""
    values = {key: getattr(config, key) for key in _MUST_MATCH}
    values["options"] = {key: value for key, value in values["options"].items() if key not in _MAY_CHANGE_OPTIONS}
    return values


def save_checkpoint(run_dir: Path, epoch: int, config: RunConfig, setup: TrainingSetup, history: History) -> Path:
    """Write the checkpoint of the end of ``epoch`` (weights, optimizer and RNG state, history)."""
    weights_path, state_path, record_path = checkpoint_paths(run_dir, epoch)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    weights = {f"{name}.{key}": value for name, module in setup.modules.items()
               for key, value in module.state_dict().items()}
    weights_sha = _atomic_save_tensors(weights_path, weights, {"format": "aigc_lessons run weights",
                                                               "model": config.model, "epoch": str(epoch)})
    state_tensors, rng_meta = rng_state()
    optimizers_meta = {}
    for name, optimizer in setup.optimizers.items():
        tensors, meta = optimizer_state_to_flat(f"optimizer/{name}", optimizer)
        state_tensors.update(tensors)
        optimizers_meta[name] = meta
    state_sha = _atomic_save_tensors(state_path, state_tensors)
    record = {
        "format_version": FORMAT_VERSION,
        "epoch": epoch,
        "config": _fingerprint(config),
        "weights": {"file": weights_path.name, "sha256": weights_sha,
                    "shapes": {k: list(v.shape) for k, v in weights.items()}},
        "state": {"file": state_path.name, "sha256": state_sha},
        "optimizers": optimizers_meta,
        "rng": rng_meta,
        "history": history.to_dict(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _atomic_write_json(record_path, record)  # last: the checkpoint exists from this moment on
    return record_path


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> list[int]:
    """Delete all but the ``keep`` most recent checkpoints; return the epochs deleted.

    A checkpoint of the project's GAN takes 35 MB (weights 12 MB, Adam's two
    moments 24 MB), so keeping every epoch of a 30-epoch run would take 1 GB.
    The JSON record goes first: without it the checkpoint no longer exists, so a
    process killed halfway leaves only unreferenced files, never a broken checkpoint.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    old = list_checkpoints(run_dir)[:-keep]
    for epoch in old:
        weights_path, state_path, record_path = checkpoint_paths(run_dir, epoch)
        for path in (record_path, weights_path, state_path):
            path.unlink(missing_ok=True)
    return old


@dataclass
class Checkpoint:
    """A verified checkpoint read from disk (nothing applied to any model yet)."""

    epoch: int
    record: dict
    weights: dict[str, torch.Tensor]
    state: dict[str, torch.Tensor]
    path: Path


def read_checkpoint(run_dir: str | os.PathLike, epoch: int | None = None) -> Checkpoint:
    """Read and verify a checkpoint (default: the latest); raise :class:`RunError` if it is unusable."""
    from safetensors.torch import load

    run_dir = Path(run_dir)
    available = list_checkpoints(run_dir)
    if not available:
        raise RunError(f"run {run_dir} has no checkpoint in {run_dir / CHECKPOINT_DIR}; "
                       "nothing to resume or sample (train it first, without --resume).")
    if epoch is None:
        epoch = available[-1]
    elif epoch not in available:
        raise RunError(f"run {run_dir} has no checkpoint for epoch {epoch}; it has epochs {available}")
    weights_path, state_path, record_path = checkpoint_paths(run_dir, epoch)
    fix = (f"Delete the damaged checkpoint files {record_path.parent / record_path.stem}.* to resume from the "
           "previous checkpoint, or start a new run.")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        expected = {"weights": record["weights"]["sha256"], "state": record["state"]["sha256"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunError(f"checkpoint record {record_path} is corrupt ({type(error).__name__}: {error}). {fix}") from error
    if record.get("format_version") != FORMAT_VERSION:
        raise RunError(f"checkpoint {record_path} has format version {record.get('format_version')}, "
                       f"this package reads version {FORMAT_VERSION}.")
    loaded = {}
    for label, path in (("weights", weights_path), ("state", state_path)):
        try:
            data = path.read_bytes()
        except OSError as error:
            raise RunError(f"checkpoint file {path} cannot be read ({error}). {fix}") from error
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected[label]:
            raise RunError(f"checkpoint file {path} is corrupt: its SHA-256 is {actual[:16]}..., the record "
                           f"{record_path.name} says {expected[label][:16]}.... {fix}")
        try:
            loaded[label] = load(data)
        except Exception as error:  # safetensors raises its own error types
            raise RunError(f"checkpoint file {path} is not a valid safetensors file ({error}). {fix}") from error
    return Checkpoint(epoch, record, loaded["weights"], loaded["state"], record_path)


def _check_fits(checkpoint: Checkpoint, config: RunConfig, setup: TrainingSetup) -> None:
    """Raise :class:`RunError` unless the checkpoint belongs to this configuration and these modules."""
    saved = checkpoint.record.get("config", {})
    wanted = _fingerprint(config)
    differences = [f"{key}: checkpoint {saved.get(key)!r}, now {wanted[key]!r}"
                   for key in _MUST_MATCH if saved.get(key) != wanted[key]]
    if differences:
        raise RunError(f"checkpoint {checkpoint.path} was made with other settings ({'; '.join(differences)}). "
                       "Resume with the run's own settings (they are in its config.json), or start a new run "
                       "in another folder.")
    expected = {f"{name}.{key}": tuple(value.shape) for name, module in setup.modules.items()
                for key, value in module.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in checkpoint.weights.items()}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected tensors {extra[:3]}{' ...' if len(extra) > 3 else ''}")
        if wrong:
            parts.append("wrong shapes " + ", ".join(f"{k}: {found[k]} instead of {expected[k]}" for k in wrong[:3]))
        raise RunError(f"checkpoint {checkpoint.path} does not fit model {config.model!r}: {'; '.join(parts)}.")
    for name in setup.optimizers:
        if name not in checkpoint.record.get("optimizers", {}):
            raise RunError(f"checkpoint {checkpoint.path} has no state for optimizer {name!r}")


def _apply(checkpoint: Checkpoint, setup: TrainingSetup, device: torch.device, restore_rng: bool = True) -> History:
    for name, module in setup.modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in checkpoint.weights.items() if k.startswith(prefix)})
    for name, optimizer in setup.optimizers.items():
        optimizer.load_state_dict(
            optimizer_state_from_flat(f"optimizer/{name}", checkpoint.state, checkpoint.record["optimizers"][name]))
    if restore_rng:
        set_rng_state(checkpoint.state, checkpoint.record["rng"])
    return History.from_dict(checkpoint.record["history"])


# --------------------------------------------------------------------------- training


def _fixed_noise_generator(config: RunConfig) -> torch.Generator:
    return torch.Generator().manual_seed(10_000 + config.seed)


def save_sample_grid(path: str | os.PathLike, images: torch.Tensor, value_range: tuple[float, float], nrow: int = 8) -> Path:
    """Write images as one PNG grid (white padding) and return the path."""
    import matplotlib.image

    from .viz import image_grid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, nrow=nrow, value_range=value_range).numpy()
    temporary = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    matplotlib.image.imsave(temporary, grid, cmap="gray", vmin=0.0, vmax=1.0)
    os.replace(temporary, path)
    return path


def _load_batches(config: RunConfig, setup: TrainingSetup, device: torch.device):
    from .data import TensorBatches, load_mnist

    data = load_mnist("train", value_range=setup.value_range, device=device, subset=config.subset)
    tensors = (data.images, data.labels) if setup.with_labels else (data.images,)
    return TensorBatches(*tensors, batch_size=config.batch_size, seed=config.seed)


def train_run(
    run_dir: str | os.PathLike,
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    fast: bool | None = None,
) -> RunResult:
    """Train (or resume) a run in ``run_dir``; checkpoint every ``config.checkpoint_every`` epochs.

    New run: ``run_dir`` must not already hold a run. Resume: ``config`` may be
    ``None`` (use the stored one) or may raise ``epochs``; any other difference
    from the stored settings is an error. (A run stopped before its first
    checkpoint resumes from the start.) Resuming verifies the latest checkpoint
    completely before anything is written. ``Ctrl-C`` stops training; the last
    checkpoint on disk is where ``resume=True`` continues.

    Example:
        >>> result = train_run("runs/tiny", RunConfig("gan_mlp", epochs=1, subset=128), progress=False)  # doctest: +SKIP
        >>> sorted(result.history.rows[-1])  # doctest: +SKIP
        ['epoch', 'loss_d', 'loss_g', 'step']
    """
    from .core import is_fast

    run_dir = Path(run_dir)
    fast = is_fast() if fast is None else fast
    stored = read_config(run_dir) if (run_dir / CONFIG_FILE).exists() else None
    if resume:
        if stored is None:
            raise RunError(f"cannot resume: {run_dir} is not a run folder (no {CONFIG_FILE}). "
                           "Start the run without --resume.")
        config = _merge_for_resume(stored, config)
    else:
        if stored is not None:
            raise RunError(f"{run_dir} already holds a run ({stored.model}); resume it with --resume, "
                           "or choose another --run-dir.")
        if config is None:
            raise ValueError("a new run needs a RunConfig")
        config = config.resolved(fast=fast)

    spec = get_trainer(config.model)
    device = get_device(config.device)
    seed_everything(config.seed)
    setup = spec.build(config, device)
    batches = _load_batches(config, setup, device)

    start_epoch, history = 0, History()
    if resume and list_checkpoints(run_dir):
        checkpoint = read_checkpoint(run_dir)
        _check_fits(checkpoint, config, setup)
        if checkpoint.epoch > config.epochs:
            raise RunError(f"the run is already at epoch {checkpoint.epoch}, past the {config.epochs} epochs asked; "
                           "ask for more epochs to continue it.")
        # Everything verified: from here on we write.
        history = _apply(checkpoint, setup, device)
        start_epoch = checkpoint.epoch
        _write_metrics(run_dir, history)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_json(run_dir / CONFIG_FILE, config.to_dict())

    def on_epoch_end(epoch: int) -> None:
        _write_metrics(run_dir, history)
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


def _merge_for_resume(stored: RunConfig, asked: RunConfig | None) -> RunConfig:
    """The stored settings, with ``epochs``, ``checkpoint_every``, ``keep_checkpoints`` and ``device`` from ``asked``.

    ``None`` fields of ``asked`` mean "as stored"; any other difference is an error.
    """
    if asked is None:
        return stored
    if asked.model != stored.model:
        raise RunError(f"the run was trained as {stored.model!r}, not {asked.model!r}; resume it with that model "
                       "name or start a new run.")
    values = asked.to_dict()
    for key in ("epochs", "batch_size", "lr"):
        if values[key] is None:
            values[key] = getattr(stored, key)
    values["options"] = {**stored.options, **asked.options}
    merged = RunConfig(**values)
    run, asked_now = _fingerprint(stored), _fingerprint(merged)
    differences = [f"{key}: run {run[key]!r}, asked {asked_now[key]!r}" for key in _MUST_MATCH if run[key] != asked_now[key]]
    if differences:
        raise RunError("cannot resume with different settings (" + "; ".join(differences) + "); only epochs, "
                       "checkpoint_every, keep_checkpoints, device and precision may change. Start a new run for "
                       "other settings.")
    merged.check()
    return merged


# --------------------------------------------------------------------------- using a finished run


def load_run(run: str | os.PathLike, epoch: int | None = None, device: str | torch.device = "cpu") -> tuple[RunConfig, TrainingSetup, int]:
    """Rebuild a run's networks from a checkpoint (default: the latest), in evaluation mode.

    Returns ``(config, setup, epoch)``; ``setup.sample(generator, n)`` draws images.

    Example:
        >>> config, setup, epoch = load_run("runs/demo")  # doctest: +SKIP
        >>> images = setup.sample(torch.Generator().manual_seed(0), 16)  # doctest: +SKIP
    """
    run_dir = resolve_run(run)
    config = read_config(run_dir)
    checkpoint = read_checkpoint(run_dir, epoch)
    resolved = get_device(device)
    state = torch.get_rng_state()
    setup = get_trainer(config.model).build(config, resolved)
    torch.set_rng_state(state)  # building the networks must not change the caller's random state
    _check_fits(checkpoint, config, setup)
    _apply(checkpoint, setup, resolved, restore_rng=False)
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


def list_runs(root: str | os.PathLike | None = None) -> list[dict]:
    """Summaries of the runs under ``root`` (default :func:`runs_root`): name, model, epochs done."""
    root = Path(root) if root is not None else runs_root()
    summaries = []
    for config_path in sorted(root.glob(f"*/{CONFIG_FILE}")):
        run_dir = config_path.parent
        try:
            config = read_config(run_dir)
        except RunError:
            continue
        done = list_checkpoints(run_dir)
        summaries.append({"name": run_dir.name, "path": str(run_dir), "model": config.model,
                          "epochs_done": done[-1] if done else 0, "epochs": config.epochs})
    return summaries


def runs_table(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per run under ``root``: its settings and the metrics of its latest evaluation.

    This is the experiment tracking of the project chapters: every run folder
    holds its ``config.json`` and, after ``aigc-lessons eval``, an
    ``eval_epoch_XXXX.json``; the table joins them. Runs without an evaluation
    have no metric columns.

    Example:
        >>> rows = runs_table("runs/study")  # doctest: +SKIP
        >>> rows[0]["lr"], rows[0]["seed"], rows[0]["fd_mnist"]  # doctest: +SKIP
    """
    rows = []
    for summary in list_runs(root):
        run_dir = Path(summary["path"])
        config = read_config(run_dir)
        row = {"name": summary["name"], "model": config.model, "lr": config.lr, "batch_size": config.batch_size,
               "seed": config.seed, "subset": config.subset, "epochs_done": summary["epochs_done"]}
        evaluations = sorted(run_dir.glob("eval_epoch_*.json"))
        if evaluations:
            result = json.loads(evaluations[-1].read_text(encoding="utf-8"))
            row.update({"eval_epoch": result["epoch"], "eval_count": result["count"]})
            row.update({k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))})
        rows.append(row)
    return rows


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
    from .core import get_budget

    run_dir = resolve_run(run)
    count = count if count is not None else get_budget().pick(full=10_000, fast=1_000)
    if count < 2:
        raise ValueError(f"count must be at least 2 images, got {count}")
    try:
        from . import metrics
    except ImportError as error:
        raise RunError(f"the evaluation metrics (aigc_lessons.metrics) are not installed in this version: {error}") from error
    images, config, setup, epoch = generate_from_run(run_dir, count, seed, epoch, get_device(device))
    scores = _score(metrics, images, setup, get_device(device))
    result = {"run": str(run_dir), "model": config.model, "epoch": epoch, "count": count, "seed": seed,
              "metrics": scores}
    path = run_dir / f"eval_epoch_{epoch:04d}.json"
    _atomic_write_json(path, result)
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


def _score(metrics, images: torch.Tensor, setup: TrainingSetup, device: torch.device) -> dict:
    """The evaluation chapter's numbers for generated images, as plain JSON-ready values.

    Calls ``metrics.evaluate_images`` (Fréchet distance and Inception-style score
    with the MNIST reference classifier, precision, recall, nearest-neighbour
    distance to the training set, and for conditional models the accuracy of the
    requested classes).
    """
    import inspect

    evaluate = getattr(metrics, "evaluate_images", None)
    if evaluate is None:
        raise RunError("aigc_lessons.metrics has no evaluate_images function; update the aigc_lessons package")
    arguments = {"value_range": tuple(setup.value_range),
                 "labels": _class_labels(len(images)) if setup.with_labels else None}
    accepted = inspect.signature(evaluate).parameters
    if "device" in accepted:
        arguments["device"] = device
    if "progress" in accepted:
        arguments["progress"] = False
    try:
        scores = evaluate(images, **arguments)
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
