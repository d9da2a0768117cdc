"""The epoch loop shared by every model in the book.

The loop that the book teaches is the *step* (for a GAN: one discriminator
update, then one generator update). ``fit`` runs steps over epochs and takes
care of the rest: progress bar, loss history, the non-finite-loss guard and
per-epoch callbacks (snapshots, checkpoints).

Speed without hiding anything: the data are tensors on the device
(``TensorBatches``), and losses stay on the device until a logging step, so
there is one host synchronisation per ``log_every`` steps, not one per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..data import TensorBatches


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops at once instead of wasting time."""


@dataclass
class History:
    """Losses recorded during training: one row per logging step, plus timing."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        """All logged values of one loss, in order."""
        return [row[key] for row in self.rows if key in row]

    def steps(self) -> list[int]:
        return [row["step"] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def to_dict(self) -> dict:
        """The rows and the training time as plain JSON-ready data (snapshots are images: not included).

        Checkpoints store this, so that a resumed run continues the same history.

        Example:
            >>> History(rows=[{"epoch": 1, "step": 2, "loss": 0.5}], seconds=1.5).to_dict()
            {'rows': [{'epoch': 1, 'step': 2, 'loss': 0.5}], 'seconds': 1.5}
        """
        return {"rows": [dict(row) for row in self.rows], "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        """Inverse of :meth:`to_dict`.

        Example:
            >>> History.from_dict({"rows": [{"epoch": 1, "step": 2, "loss": 0.5}], "seconds": 1.5}).series("loss")
            [0.5]
        """
        return cls(rows=[dict(row) for row in data.get("rows", [])], seconds=float(data.get("seconds", 0.0)))


StepFn = Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]]


def _first_non_finite(losses: dict[str, torch.Tensor], first_step: int) -> str | None:
    """Describe the first non-finite entry in per-step loss buffers, if any."""
    for name, values in losses.items():
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            index = int(bad[0, 0])
            return f"{name} = {values[index].item()} at step {first_step + index}"
    return None


def fit(
    step_fn: StepFn,
    batches: TensorBatches,
    epochs: int,
    *,
    log_every: int = 50,
    on_epoch_end: Callable[[int], None] | None = None,
    start_epoch: int = 0,
    history: History | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Run ``step_fn`` on every batch for ``epochs`` epochs and record the losses.

    ``step_fn(batch)`` performs one optimisation step and returns its losses as
    0-d tensors (detached). Raises :class:`NonFiniteLossError` at the first
    logging point after a loss became NaN or infinite, naming the exact step.

    Example:
        >>> batches = TensorBatches(torch.randn(8, 2), batch_size=4)
        >>> h = fit(lambda batch: {"loss": batch[0].pow(2).mean()}, batches, epochs=2, log_every=1, progress=False)
        >>> len(h.series("loss"))
        4
    """
    from tqdm.auto import tqdm

    history = history if history is not None else History()
    steps_per_epoch = len(batches)
    step = start_epoch * steps_per_epoch
    pending: dict[str, list[torch.Tensor]] = {}
    pending_first_step = step

    def flush(epoch: int) -> None:
        nonlocal pending, pending_first_step
        if not pending:
            return
        stacked = {name: torch.stack(values).float().cpu() for name, values in pending.items()}
        problem = _first_non_finite(stacked, pending_first_step)
        if problem:
            raise NonFiniteLossError(
                f"Loss became non-finite: {problem} (epoch {epoch + 1}). Common causes: a learning rate "
                "that is too high, log(0) in a hand-written loss (use the logit versions in "
                "aigc_lessons.losses), or inputs outside the expected range."
            )
        row = {"epoch": epoch + 1, "step": pending_first_step + len(next(iter(stacked.values())))}
        row.update({name: float(values.mean()) for name, values in stacked.items()})
        history.rows.append(row)
        pending = {}
        pending_first_step = step

    started = time.perf_counter()
    bar = tqdm(total=(epochs - start_epoch) * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(start_epoch, epochs):
            batches.set_epoch(epoch)
            for batch in batches:
                losses = step_fn(batch)
                for name, value in losses.items():
                    pending.setdefault(name, []).append(value.detach())
                step += 1
                bar.update(1)
                if step % log_every == 0:
                    flush(epoch)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in history.rows[-1].items() if k not in ("epoch", "step")})
            flush(epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1)
    finally:
        bar.close()
        history.seconds += time.perf_counter() - started
    return history
