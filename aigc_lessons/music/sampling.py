"""Sampling melodies from a model, with temperature."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .tokens import END, START


def temperature_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)``; ``T = 0`` gives a one-hot vector on the argmax (greedy decoding).

    Example:
        >>> temperature_probabilities(torch.tensor([0.0, 1.0]), 0.0).tolist()
        [0.0, 1.0]
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


@torch.no_grad()
def sample_melodies(model: torch.nn.Module, count: int, max_steps: int = 512, temperature: float = 1.0,
                    seed: int = 0, prompt: Sequence[int] | None = None) -> list[np.ndarray]:
    """Draw ``count`` melodies token by token: ``x_t ~ softmax(logits(x_<t) / T)``.

    Every melody starts with ``<start>`` (plus the ``prompt`` tokens, if given) and ends at
    its first ``<end>`` or after ``max_steps`` tokens. ``<start>`` is never sampled.
    The model is called with its recurrent state, so each step costs one token's work.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    prefix = [START] + ([int(t) for t in prompt] if prompt is not None else [])
    tokens = torch.tensor([prefix] * count, dtype=torch.long)
    logits, state = model(tokens.to(device), return_state=True)
    finished = torch.zeros(count, dtype=torch.bool)
    rows = [tokens]
    for _ in range(max_steps - len(prefix)):
        last = logits[:, -1].float().cpu()
        last[:, START] = -math.inf
        probs = temperature_probabilities(last, temperature)
        nxt = torch.multinomial(probs, 1, generator=generator) if temperature > 0 else probs.argmax(-1, keepdim=True)
        nxt[finished] = END
        rows.append(nxt)
        finished |= nxt.squeeze(1) == END
        if finished.all():
            break
        logits, state = model(nxt.to(device), state=state, return_state=True)
    sequences = torch.cat(rows, dim=1).numpy()
    melodies = []
    for row in sequences:
        ends = np.flatnonzero(row == END)
        melodies.append(row[: ends[0] + 1] if len(ends) else row)
    return melodies
