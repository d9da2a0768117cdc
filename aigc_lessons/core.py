"""Seeding, device selection, the fast/full budget switch, and the input contract of a classifier.

Every notebook starts with the same few lines::

    from aigc_lessons.core import setup
    device, budget = setup(seed=0)

``budget.pick(full=..., fast=...)`` chooses a setting: the fast one when the
environment variable ``AIGC_LESSONS_FAST`` is ``1`` (the test suite and CI set
it), the full one otherwise.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

FAST_ENV = "AIGC_LESSONS_FAST"

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a seeded torch generator.

    Example:
        >>> g = seed_everything(0)
        >>> int(torch.randint(0, 10, (1,), generator=g))
        4
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; pass other names through.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or device='cpu'."
        )
    return resolved


PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise ``ValueError`` naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def mixed_precision(device: torch.device | str, precision: str = "fp32"):
    """The context in which a training step runs its forward passes and losses.

    ``"fp32"``: plain float32, nothing changes. ``"bf16"``: ``torch.autocast``
    with bfloat16, which runs matrix products and convolutions in 16 bits
    while parameters, optimizer state and reductions stay float32. bfloat16 has
    float32's exponent range, so unlike float16 it needs no loss scaling. It is
    faster only on hardware with bfloat16 units (GPUs since NVIDIA Ampere, CPUs
    with AMX or AVX-512 BF16); elsewhere it can be slower. The backward pass
    runs outside this context, as PyTorch recommends.

    Example:
        >>> with mixed_precision("cpu", "bf16"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=check_precision(precision) == "bf16")


def cpu_bfloat16_units() -> list[str] | None:
    """The bfloat16 instruction sets of this CPU (``amx_bf16``, ``avx512_bf16``), or None if unknown.

    bfloat16 autocast on a CPU is fast only with one of them; without, PyTorch
    converts numbers back and forth and a step gets slower. Read from
    ``/proc/cpuinfo``, so the answer is None on systems other than Linux.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = next(line for line in file if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return None
    return [name for name in ("amx_bf16", "avx512_bf16") if name in flags]


def is_fast() -> bool:
    """True when ``AIGC_LESSONS_FAST`` is set to a true value (1, true, yes)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Budget:
    """Chooses between the full setting and the fast setting used by tests and CI."""

    fast: bool

    @property
    def name(self) -> str:
        return "fast" if self.fast else "full"

    def pick(self, full: T, fast: T) -> T:
        """Return ``fast`` in fast mode, ``full`` otherwise.

        Example:
            >>> Budget(fast=True).pick(full=20, fast=1)
            1
        """
        return fast if self.fast else full

    def __str__(self) -> str:
        return f"{self.name} mode (set {FAST_ENV}=1 for fast, unset it for full)"


def get_budget() -> Budget:
    """The budget selected by the environment (see :func:`is_fast`)."""
    return Budget(fast=is_fast())


def setup(seed: int = 0, device: str = "auto", quiet: bool = False) -> tuple[torch.device, Budget]:
    """The first lines of every notebook: seed, pick the device and the budget.

    Example:
        >>> device, budget = setup(seed=0, device="cpu", quiet=True)
    """
    seed_everything(seed)
    resolved = get_device(device)
    budget = get_budget()
    if not quiet:
        print(f"device: {resolved} | {budget} | seed: {seed} | torch {torch.__version__}")
    return resolved, budget


def check_classifier_inputs(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                            error: type[ValueError] = ValueError, purpose: str = "using it",
                            labels_name: str = "labels", range_hint: str = "") -> torch.Tensor:
    """Check a classifier and a batch for the tools that differentiate through it; return its logits.

    The attacks (``aigc_lessons.robustness``) and the explanations
    (``aigc_lessons.explain``) need the same things: an ``nn.Module`` in eval mode
    (dropout and batch norm in training mode change the network at every call),
    a float ``(B, C, H, W)`` batch with pixels in ``[0, 1]``, ``B`` integer class
    indices, and a model that returns logits ``(B, num_classes >= 2)``. Raises
    ``error`` (each tool's own ``ValueError``) saying what to do; ``purpose`` and
    ``range_hint`` finish its messages.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
        >>> check_classifier_inputs(model, torch.zeros(2, 1, 2, 2), torch.tensor([0, 2])).shape
        torch.Size([2, 3])
    """
    if not isinstance(model, torch.nn.Module):
        raise error(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise error(f"the model is in training mode (dropout and batch norm change every call); "
                    f"call model.eval() before {purpose}")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise error(f"images must be a float tensor (batch, channels, height, width), got "
                    f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
    if images.numel() == 0:
        raise error("images is empty")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0 or not math.isfinite(low + high):
        raise error(f"images must have pixels in [0, 1], got values in [{low:.3g}, {high:.3g}]; "
                    f"load them with load_mnist(value_range=(0, 1)){range_hint}")
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32) \
            or labels.shape != (images.shape[0],):
        raise error(f"{labels_name} must be an integer tensor of shape ({images.shape[0]},), one class per image, "
                    f"got {getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
    with torch.no_grad():
        logits = model(images)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != images.shape[0] \
            or logits.shape[1] < 2:
        raise error(f"the model must return logits of shape (batch, num_classes >= 2); it returned "
                    f"{tuple(getattr(logits, 'shape', ()))} for {images.shape[0]} images")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise error(f"{labels_name} must be class indices in [0, {logits.shape[1] - 1}] (the model has "
                    f"{logits.shape[1]} outputs), got [{int(labels.min())}, {int(labels.max())}]")
    return logits
