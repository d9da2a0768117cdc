"""Run folders on disk: atomic writes, the config and metrics files, and checkpoints that verify.

Every file is written to a temporary name and renamed (``os.replace`` is
atomic), and a checkpoint's JSON record is written last: a checkpoint exists
only when its record does, and the record holds the SHA-256 of its two tensor
files. Tensors go into ``safetensors`` files and everything else into JSON, so
no pickle is ever loaded (see :mod:`aigc_lessons.runs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..family import TrainingSetup
from ..train.loop import History
from .config import MUST_MATCH, RunConfig, RunError, fingerprint

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
FORMAT_VERSION = 1


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def atomic_write_json(path: Path, data: Any) -> None:
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


def write_metrics(run_dir: Path, history: History) -> None:
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


def save_checkpoint(run_dir: Path, epoch: int, config: RunConfig, setup: TrainingSetup, history: History,
                    world_size: int = 1) -> Path:
    """Write the checkpoint of the end of ``epoch`` (weights, optimizer and RNG state, history).

    ``world_size`` is the number of processes that trained it (``torchrun``): the
    global batch is ``world_size * config.batch_size``.
    """
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
        "config": fingerprint(config),
        "weights": {"file": weights_path.name, "sha256": weights_sha,
                    "shapes": {k: list(v.shape) for k, v in weights.items()}},
        "state": {"file": state_path.name, "sha256": state_sha},
        "optimizers": optimizers_meta,
        "rng": rng_meta,
        "history": history.to_dict(),
        "world_size": world_size,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(record_path, record)  # last: the checkpoint exists from this moment on
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


def check_fits(checkpoint: Checkpoint, config: RunConfig, setup: TrainingSetup) -> None:
    """Raise :class:`RunError` unless the checkpoint belongs to this configuration and these modules."""
    saved = checkpoint.record.get("config", {})
    wanted = fingerprint(config)
    differences = [f"{key}: checkpoint {saved.get(key)!r}, now {wanted[key]!r}"
                   for key in MUST_MATCH if saved.get(key) != wanted[key]]
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


def apply_checkpoint(checkpoint: Checkpoint, setup: TrainingSetup, restore_rng: bool = True) -> History:
    """Load the checkpoint's weights and optimizer states into ``setup`` (and the random states); return its history."""
    for name, module in setup.modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in checkpoint.weights.items() if k.startswith(prefix)})
    for name, optimizer in setup.optimizers.items():
        optimizer.load_state_dict(
            optimizer_state_from_flat(f"optimizer/{name}", checkpoint.state, checkpoint.record["optimizers"][name]))
    if restore_rng:
        set_rng_state(checkpoint.state, checkpoint.record["rng"])
    return History.from_dict(checkpoint.record["history"])
