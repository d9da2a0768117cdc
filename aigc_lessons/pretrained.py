"""Pretrained weights shipped with the book: load by name, verified by SHA-256.

Each entry is two files in ``aigc_lessons/weights/``:

* ``<name>.safetensors``: the weights (safetensors holds only tensors, so loading
  it can never run code, unlike a pickle);
* ``<name>.json``: the registry record and model card: the model class and its
  arguments, the SHA-256 of the weights file, and how the weights were made
  (command, data, time, hardware) and what they score.

Example:
    >>> import aigc_lessons.pretrained as pretrained
    >>> "gan_mlp_mnist" in pretrained.available()  # doctest: +SKIP
    True
    >>> generator = pretrained.load("gan_mlp_mnist")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).parent / "weights"


class PretrainedError(RuntimeError):
    """Weights are missing, corrupt, or do not match the model they claim to be."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def available(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the pretrained entries that have both a card and a weights file."""
    return sorted(p.stem for p in weights_dir.glob("*.json") if p.with_suffix(".safetensors").exists())


def card(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The registry record and model card of ``name`` (a dict read from its JSON file)."""
    path = weights_dir / f"{name}.json"
    if not path.exists():
        known = ", ".join(available(weights_dir)) or "none"
        raise PretrainedError(f"no pretrained entry named {name!r} in {weights_dir}; available: {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def exists(name: str, weights_dir: Path = WEIGHTS_DIR) -> bool:
    """True when ``name`` has a card and a weights file (notebooks check this before loading)."""
    return name in available(weights_dir)


def load(name: str, device: str | torch.device = "cpu", weights_dir: Path = WEIGHTS_DIR) -> nn.Module:
    """Build the model named in the card, load its verified weights, return it in eval mode.

    Raises :class:`PretrainedError` when the file is missing, its SHA-256 differs
    from the card's (corrupt or replaced), or its tensors do not fit the model.
    """
    from safetensors.torch import load_file

    from .core import get_device
    from .models import build_model

    record = card(name, weights_dir)
    path = weights_dir / record["file"]
    if not path.exists():
        raise PretrainedError(f"weights file {path} for {name!r} is missing; retrain it with "
                              f"aigc_lessons.recipes.retrain({name!r}) or restore it from the repository.")
    actual = _sha256(path)
    if actual != record["sha256"]:
        raise PretrainedError(
            f"{path} is corrupt or was replaced: its SHA-256 is {actual[:16]}..., the card says "
            f"{record['sha256'][:16]}.... Restore it from the repository (git checkout -- {path.name}) "
            f"or retrain with aigc_lessons.recipes.retrain({name!r})."
        )
    model = build_model(record["model"]["class"], **record["model"].get("kwargs", {}))
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types on malformed files
        raise PretrainedError(f"{path} is not a valid safetensors file: {error}") from error
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise PretrainedError(
            f"{path} does not fit {record['model']['class']}({record['model'].get('kwargs', {})}): {error}"
        ) from error
    return model.to(get_device(device)).eval()


def describe_hardware() -> str:
    """A short description of the machine, for model cards."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cores = os.cpu_count()
    return f"CPU {platform.processor() or platform.machine()} ({cores} cores, {torch.get_num_threads()} threads), torch {torch.__version__}"


def save(
    name: str,
    model: nn.Module,
    model_kwargs: dict,
    model_card: dict,
    weights_dir: Path = WEIGHTS_DIR,
) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (with the SHA-256) and return the card path.

    ``model_card`` should say how the weights were made and what they score,
    for example ``{"command": ..., "data": ..., "seconds": ..., "metrics": {...}}``.
    """
    from safetensors.torch import save_file

    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{name}.safetensors"
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(path))
    record = {
        "name": name,
        "file": path.name,
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "model": {"class": type(model).__name__, "kwargs": model_kwargs},
        "card": {"hardware": describe_hardware(), **model_card},
    }
    card_path = weights_dir / f"{name}.json"
    card_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return card_path
