"""Training the melody model: the step, batches of similar lengths, the loop."""

from __future__ import annotations

import numpy as np
import torch

from ..train.loop import fit
from .corpus import pad_melodies
from .likelihood import cross_entropy_and_perplexity, model_log_likelihoods


def melody_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
                targets: torch.Tensor, clip: float = 1.0) -> dict[str, torch.Tensor]:
    """One teacher-forced step: cross-entropy of every next token, padding ignored; gradient clipping."""
    logits = model(inputs)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)  # LSTMs occasionally produce gradient spikes
    optimizer.step()
    return {"loss": loss.detach()}


class LengthBatches:
    """Mini-batches of melodies of similar length, padded only to the longest in the batch.

    Melodies range from 100 to 870 tokens; padding every batch to the longest melody of
    the corpus would make the LSTM run mostly over padding. The melodies are sorted by
    length, cut into groups of ``batch_size``, and the groups are visited in a new random
    order every epoch (seeded by ``seed`` and the epoch, like ``TensorBatches``, which
    ``fit`` also accepts).
    """

    def __init__(self, melodies: list[np.ndarray], batch_size: int, seed: int = 0, device="cpu") -> None:
        order = sorted(range(len(melodies)), key=lambda i: len(melodies[i]))
        groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.batches = [tuple(t.to(device) for t in pad_melodies([melodies[i] for i in g])) for g in groups]
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        for index in torch.randperm(len(self.batches), generator=generator).tolist():
            yield self.batches[index]


def train_melody_model(model: torch.nn.Module, train: list[np.ndarray], epochs: int, batch_size: int = 16,
                       lr: float = 3e-3, seed: int = 0, validation: list[np.ndarray] | None = None,
                       progress: bool = True):
    """Train with Adam on whole padded melodies; returns ``fit``'s history (plus validation CE per epoch).

    ``history.rows`` gains one row per epoch with ``val_cross_entropy`` when ``validation`` is given.
    """
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    batches = LengthBatches(train, batch_size=batch_size, seed=seed, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs * len(batches), 1))
    validation_curve: list[tuple[int, float]] = []

    def step(batch):
        model.train()
        losses = melody_step(model, optimizer, *batch)
        schedule.step()
        return losses

    def on_epoch_end(epoch: int) -> None:
        if validation:
            validation_curve.append((epoch, cross_entropy_and_perplexity(*model_log_likelihoods(model, validation))[0]))

    history = fit(step, batches, epochs, log_every=max(len(batches), 1), progress=progress,
                  on_epoch_end=on_epoch_end, desc="melody LSTM")
    model.eval()
    for epoch, value in validation_curve:
        history.rows.append({"epoch": epoch, "step": epoch * len(batches), "val_cross_entropy": value})
    return history
