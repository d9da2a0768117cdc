"""A small LSTM that predicts the next token of a melody (the music chapter).

An autoregressive model of token sequences: ``p(x_1..x_T) = prod_t p(x_t | x_<t)``.
The long short-term memory cell (Hochreiter & Schmidhuber, 1997) carries a state
``(h_t, c_t)`` along the sequence, so the prediction at step ``t`` depends on every
earlier token and on no later one.

Shapes: tokens ``(B, T)`` integers in ``[0, vocab_size)`` -> logits ``(B, T, vocab_size)``,
where ``logits[:, t]`` scores the token at position ``t + 1``.
"""

from __future__ import annotations

import torch
from torch import nn


class MelodyLSTM(nn.Module):
    """Token embedding -> stacked LSTM -> linear layer to next-token logits."""

    def __init__(self, vocab_size: int = 36, embed_dim: int = 48, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0,
                            batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                return_state: bool = False):
        """Logits ``(B, T, vocab_size)``; with ``return_state=True`` also the LSTM state to continue from."""
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (batch, time) tensor of integers, got shape {tuple(tokens.shape)} "
                             f"and dtype {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}), got values from {int(tokens.min())} "
                             f"to {int(tokens.max())}")
        hidden_states, state = self.lstm(self.drop(self.embed(tokens)), state)
        logits = self.head(self.drop(hidden_states))
        return (logits, state) if return_state else logits
