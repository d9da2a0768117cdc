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

import json
import os
import platform
import re
from pathlib import Path

import torch
from torch import nn

from .data import sha256_of

WEIGHTS_DIR = Path(__file__).parent / "weights"


class PretrainedError(RuntimeError):
    """Weights are missing, corrupt, or do not match the model they claim to be."""


_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_REQUIRED_FIELDS = ("file", "sha256", "model")


def _check_name(name: str) -> None:
    """Names are plain identifiers, so a name can never point outside the weights folder."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PretrainedError(f"invalid pretrained name {name!r}: use lower-case letters, digits and underscores, "
                              "for example 'gan_mlp_mnist'.")


def available(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the pretrained entries that have both a card and a weights file.

    Example:
        >>> isinstance(available(), list)
        True
    """
    weights_dir = Path(weights_dir)
    return sorted(p.stem for p in weights_dir.glob("*.json") if p.with_suffix(".safetensors").exists())


def card(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The registry record and model card of ``name`` (a dict read from its JSON file).

    The record holds ``file``, ``sha256``, ``bytes``, ``dtype``, ``model``
    (class and constructor arguments) and ``card`` (command, data, training time,
    hardware, metrics).

    Example:
        >>> card("vae_mnist")["card"]["command"]  # doctest: +SKIP
        'python -m aigc_lessons.recipes vae_mnist'
    """
    _check_name(name)
    weights_dir = Path(weights_dir)
    path = weights_dir / f"{name}.json"
    if not path.exists():
        known = ", ".join(available(weights_dir)) or "none"
        raise PretrainedError(f"no pretrained entry named {name!r} in {weights_dir}; available: {known}. "
                              f"If a recipe exists, train it with: python -m aigc_lessons.recipes {name}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PretrainedError(f"the model card {path} is not valid JSON ({error}); restore it from the "
                              "repository or retrain the entry.") from error
    missing = [key for key in _REQUIRED_FIELDS if key not in record] if isinstance(record, dict) else ["all"]
    if missing or not isinstance(record.get("model"), dict) or "class" not in record["model"]:
        raise PretrainedError(f"the model card {path} lacks required fields ({', '.join(missing) or 'model.class'}); "
                              "restore it from the repository or retrain the entry.")
    return record


def cards(weights_dir: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """Every available entry's record and model card, by name (the evaluation chapter tabulates them).

    Example:
        >>> sorted(cards()) == available()
        True
    """
    return {name: card(name, weights_dir) for name in available(weights_dir)}


def exists(name: str, weights_dir: Path = WEIGHTS_DIR) -> bool:
    """True when ``name`` has a card and a weights file (notebooks check this before loading)."""
    return isinstance(name, str) and bool(_NAME.match(name)) and name in available(weights_dir)


def verify(name: str, weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Check that ``name``'s weights file exists, is a ``.safetensors`` file and matches the card's SHA-256.

    Returns the path of the verified file; raises :class:`PretrainedError` otherwise.
    """
    weights_dir = Path(weights_dir)
    record = card(name, weights_dir)
    file_name = str(record["file"])
    # Only safetensors files are ever read (they hold tensors and nothing else); a card that
    # points at a pickle (.pt, .pth, .bin, .pkl) or outside the folder is refused before any read.
    if Path(file_name).name != file_name or not file_name.endswith(".safetensors"):
        raise PretrainedError(f"the card of {name!r} names the weights file {file_name!r}; only a plain "
                              "'<name>.safetensors' file in the weights folder is accepted (pickled "
                              "checkpoints such as .pt files are never loaded, since unpickling can run code).")
    path = weights_dir / file_name
    if not path.exists():
        raise PretrainedError(f"weights file {path} for {name!r} is missing; retrain it with "
                              f"aigc_lessons.recipes.retrain({name!r}, save=True) or restore it from the repository.")
    actual = sha256_of(path)
    if actual != record["sha256"]:
        raise PretrainedError(
            f"{path} is corrupt or was replaced: its SHA-256 is {actual[:16]}..., the card says "
            f"{str(record['sha256'])[:16]}.... Restore it from the repository (git checkout -- {path.name}) "
            f"or retrain with aigc_lessons.recipes.retrain({name!r}, save=True)."
        )
    return path


def _describe_mismatch(state: dict, expected: dict) -> str:
    """Which keys are missing or unexpected and which shapes differ, in a few readable lines."""
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
    wrong = [f"{key} is {tuple(state[key].shape)}, the model needs {tuple(expected[key].shape)}"
             for key in sorted(set(state) & set(expected)) if state[key].shape != expected[key].shape]
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
    return "; ".join(problems)


def load(name: str, device: str | torch.device = "cpu", weights_dir: Path = WEIGHTS_DIR) -> nn.Module:
    """Build the model named in the card, load its verified weights, return it in eval mode.

    Raises :class:`PretrainedError` when the file is missing, its SHA-256 differs
    from the card's (corrupt or replaced), it is not a valid safetensors file, or
    its tensors do not fit the model (missing or unexpected keys, wrong shapes).
    float16 files are cast back to the model's float32 parameters.

    Example:
        >>> vae = load("vae_mnist")  # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .core import get_device
    from .models import build_model

    record = card(name, weights_dir)
    path = verify(name, weights_dir)
    try:
        model = build_model(record["model"]["class"], **record["model"].get("kwargs", {}))
    except (KeyError, TypeError) as error:
        raise PretrainedError(f"the card of {name!r} names a model this version cannot build: {error}") from error
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:  # malformed header or truncated data
        raise PretrainedError(f"{path} is not a valid safetensors file: {error}") from error
    expected = model.state_dict()
    mismatch = _describe_mismatch(state, expected)
    if mismatch:
        raise PretrainedError(
            f"{path} does not fit {record['model']['class']}({record['model'].get('kwargs', {})}): {mismatch}. "
            f"The file and its card disagree: restore both from the repository or retrain with "
            f"aigc_lessons.recipes.retrain({name!r}, save=True)."
        )
    model.load_state_dict(state, strict=True)  # copies float16 values into the float32 parameters
    return model.to(get_device(device)).eval()


def describe_hardware() -> str:
    """A short description of the machine, for model cards."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cores = os.cpu_count()
    return f"CPU {platform.processor() or platform.machine()} ({cores} cores, {torch.get_num_threads()} threads), torch {torch.__version__}"


def describe_machine() -> dict:
    """The machine and its load, as a dict: for the JSON records of the book's studies."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "loadavg_1_5_15": [round(value, 2) for value in load]}


def save(
    name: str,
    model: nn.Module,
    model_kwargs: dict,
    model_card: dict,
    weights_dir: Path = WEIGHTS_DIR,
    half: bool = True,
) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (with the SHA-256) and return the card path.

    ``half=True`` stores floating-point tensors as float16, which halves the
    files kept in the repository; ``load`` copies them back into the model's
    float32 parameters (the rounding error, about 1e-3 relative, does not
    change samples visibly or metrics measurably).

    ``model_card`` should say how the weights were made and what they score,
    for example ``{"command": ..., "data": ..., "seconds": ..., "metrics": {...}}``.
    """
    from safetensors.torch import save_file

    _check_name(name)
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{name}.safetensors"
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    save_file(state, str(path))
    path.chmod(0o644)  # safetensors writes owner-only files; the shipped weights are meant to be read by all
    record = {
        "name": name,
        "file": path.name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "dtype": "float16" if half else "float32",
        "model": {"class": type(model).__name__, "kwargs": model_kwargs},
        "card": {"hardware": describe_hardware(), **model_card},
    }
    card_path = weights_dir / f"{name}.json"
    card_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return card_path
