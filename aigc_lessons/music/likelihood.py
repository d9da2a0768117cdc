"""Likelihoods: a model's log-likelihood of melodies, cross-entropy and perplexity, and the n-gram baselines."""

from __future__ import annotations

import math

import numpy as np
import torch

from .corpus import pad_melodies
from .tokens import END, START, VOCAB_SIZE


@torch.no_grad()
def model_log_likelihoods(model: torch.nn.Module, melodies: list[np.ndarray],
                          batch_size: int = 32) -> tuple[float, int]:
    """Total ``log p(x_t | x_<t)`` (nats) over every predicted token (all but ``<start>``) and the token count."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for first in range(0, len(melodies), batch_size):
        inputs, targets = pad_melodies(melodies[first : first + batch_size])
        logits = model(inputs.to(device))
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        mask = targets >= 0
        picked = log_probs.gather(-1, targets.clamp(min=0).to(device).unsqueeze(-1)).squeeze(-1).cpu()
        total += float(picked[mask].sum())
        count += int(mask.sum())
    return total, count


def cross_entropy_and_perplexity(total_log_likelihood: float, count: int) -> tuple[float, float]:
    """Average negative log-likelihood per token (nats) and its exponential, the perplexity.

    Example:
        >>> [round(v, 6) for v in cross_entropy_and_perplexity(-10 * math.log(4), 10)]
        [1.386294, 4.0]
    """
    cross_entropy = -total_log_likelihood / count
    return cross_entropy, math.exp(cross_entropy)


class NGramModel:
    """An order-``n`` Markov chain over tokens with add-``alpha`` smoothing (the baselines).

    ``order=1`` is the unigram model (token frequencies, no context); ``order=2`` the
    bigram model ``p(x_t | x_{t-1})``. Contexts shorter than ``n - 1`` at the start of a
    melody are padded with ``<start>``.

    Example:
        >>> from aigc_lessons.music.tokens import encode_notes, pitch_token
        >>> bigram = NGramModel(order=2, alpha=0.0).fit([encode_notes([(60, 2)])])
        >>> float(bigram.probability((START,), pitch_token(60)))
        1.0
    """

    def __init__(self, order: int = 2, alpha: float = 0.1, vocab_size: int = VOCAB_SIZE) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order, self.alpha, self.vocab_size = order, alpha, vocab_size
        self.counts: dict[tuple[int, ...], np.ndarray] = {}

    def _contexts(self, melody: np.ndarray):
        padded = [START] * (self.order - 1) + [int(t) for t in melody]
        for t in range(self.order, len(padded)):  # predict every token after the first <start>
            yield tuple(padded[t - self.order + 1 : t]), padded[t]

    def fit(self, melodies: list[np.ndarray]) -> "NGramModel":
        for melody in melodies:
            for context, token in self._contexts(melody):
                self.counts.setdefault(context, np.zeros(self.vocab_size))[token] += 1
        return self

    def distribution(self, context: tuple[int, ...]) -> np.ndarray:
        """``p(. | context)``: smoothed counts; a context never seen gives the uniform distribution."""
        key = tuple(context[-(self.order - 1):]) if self.order > 1 else ()
        counts = self.counts.get(key, np.zeros(self.vocab_size))
        smoothed = counts + self.alpha
        total = smoothed.sum()
        return smoothed / total if total > 0 else np.full(self.vocab_size, 1 / self.vocab_size)

    def probability(self, context: tuple[int, ...], token: int) -> float:
        return float(self.distribution(context)[token])

    def log_likelihood(self, melodies: list[np.ndarray]) -> tuple[float, int]:
        """Total log-likelihood (nats) of every token after ``<start>`` and the token count."""
        total, count = 0.0, 0
        for melody in melodies:
            for context, token in self._contexts(melody):
                total += math.log(max(self.probability(context, token), 1e-300))
                count += 1
        return total, count

    def sample(self, count: int, max_steps: int = 512, temperature: float = 1.0, seed: int = 0) -> list[np.ndarray]:
        """``count`` melodies, each from ``<start>`` until ``<end>`` or ``max_steps`` tokens."""
        rng = np.random.default_rng(seed)
        melodies = []
        for _ in range(count):
            tokens = [START]
            context = [START] * (self.order - 1)
            while len(tokens) < max_steps:
                probs = self.distribution(tuple(context))
                probs = np.exp(np.log(np.maximum(probs, 1e-300)) / temperature)
                probs[START] = 0.0  # <start> only ever begins a melody
                token = int(rng.choice(self.vocab_size, p=probs / probs.sum()))
                tokens.append(token)
                if token == END:
                    break
                context = (context + [token])[1:] if self.order > 1 else context
            melodies.append(np.asarray(tokens, dtype=np.int64))
        return melodies
