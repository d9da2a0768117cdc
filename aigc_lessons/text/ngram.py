"""Character n-gram models with interpolated Kneser-Ney smoothing: the baselines of the GPT.

An order-``n`` model predicts a character from the ``n - 1`` before it,
``p(x_t | x_{t-n+1} .. x_{t-1})``. Counting alone gives zero probability to every
n-gram that the training text lacks (and validation text is full of them), so the counts
are smoothed. The smoothing here is **interpolated Kneser-Ney** (Kneser & Ney 1995; in
the form of Chen & Goodman 1998, with one discount per order), because it is the
strongest classic n-gram estimator, and a baseline should be a fair opponent:

    p_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h) + D_k N_k(h) / c_k(h) * p_{k-1}(w | h')

where ``h'`` is ``h`` without its first character, ``c_k(h) = sum_w c_k(h w)``,
``N_k(h)`` counts the distinct characters seen after ``h``, and ``p_0`` is uniform over
the vocabulary. A history never seen (``c_k(h) = 0``) falls back to ``p_{k-1}``. The
highest order counts occurrences; lower orders count *continuations*, in how many
distinct contexts ``h w`` occurred (a character that only follows one frequent context
should not get a large share when that context is absent). The discount is Ney's
estimate ``D_k = n_1 / (n_1 + 2 n_2)`` from the numbers of n-grams counted once and
twice, kept within [0.1, 0.9] (an order whose counts are all large, with no n-gram seen
once, would otherwise get ``D = 0`` and give unseen tokens probability 0). Each ``p_k``
sums to 1 over the vocabulary (a test checks it).

``order=1`` is the unigram model: discounted character frequencies interpolated with the
uniform distribution.

(The music chapter's :class:`aigc_lessons.music.NGramModel` is add-alpha smoothing without
back-off, with melody start padding and a dense probability vector stored per context; on
characters its 5-gram falls back to the uniform distribution for every unseen context, so it
is not reused here.)

Example:
    >>> model = CharNGramModel(order=2, vocab_size=3).fit([0, 1, 0, 1, 0, 2])
    >>> round(float(model.distribution([0]).sum()), 6)
    1.0
"""

from __future__ import annotations

import math

import numpy as np


def _codes(ids: np.ndarray, length: int, base: int) -> np.ndarray:
    """The base-``base`` number of every window of ``length`` consecutive ids (one per window)."""
    count = len(ids) - length + 1
    codes = np.zeros(max(count, 0), dtype=np.int64)
    for offset in range(length):
        codes = codes * base + ids[offset : offset + count]
    return codes


class _Level:
    """The counts of order ``k``: n-gram codes and counts; per history the total and the types."""

    def __init__(self, grams: np.ndarray, counts: np.ndarray, base: int) -> None:
        self.grams, self.counts = grams, counts.astype(np.float64)  # grams sorted (np.unique)
        histories = grams // base
        self.histories, first = np.unique(histories, return_index=True)
        self.totals = np.add.reduceat(self.counts, first) if len(first) else np.zeros(0)
        self.types = np.diff(np.append(first, len(grams))).astype(np.float64)
        once, twice = np.sum(self.counts == 1), np.sum(self.counts == 2)
        ney = float(once / (once + 2 * twice)) if once + twice > 0 else 0.5
        self.discount = min(max(ney, 0.1), 0.9)  # never 0: unseen tokens keep some probability

    @staticmethod
    def _lookup(table: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """``values`` at the positions of ``keys`` in the sorted ``table``; 0 for an absent key."""
        if len(table) == 0:
            return np.zeros(len(keys))
        where = np.clip(np.searchsorted(table, keys), 0, len(table) - 1)
        return np.where(table[where] == keys, values[where], 0.0)

    def probability(self, grams: np.ndarray, base: int, lower: np.ndarray) -> np.ndarray:
        """``p_k`` of each n-gram code, given ``lower`` = ``p_{k-1}`` of the same targets."""
        histories = grams // base
        count = self._lookup(self.grams, self.counts, grams)
        total = self._lookup(self.histories, self.totals, histories)
        types = self._lookup(self.histories, self.types, histories)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        interpolated = (np.maximum(count - self.discount, 0) + self.discount * types * lower) / safe
        return np.where(seen, interpolated, lower)


class CharNGramModel:
    """An order-``order`` character model with interpolated Kneser-Ney smoothing (see the module).

    ``fit(ids)`` counts a sequence of token ids in ``[0, vocab_size)``;
    ``distribution(context)`` is ``p(. | context)``; ``log_likelihood(ids)`` the total
    log-probability (nats) of every token after the first and their count;
    ``nats_per_token(ids)`` the average negative log-likelihood.
    """

    def __init__(self, order: int, vocab_size: int) -> None:
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")
        if order * math.log2(vocab_size) > 62:
            raise ValueError(f"order {order} with {vocab_size} tokens does not fit the 64-bit "
                             "n-gram codes; use a lower order")
        self.order, self.vocab_size = order, vocab_size
        self.levels: list[_Level] = []

    def _ids(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return ids

    def fit(self, ids) -> CharNGramModel:
        """Count the n-grams of ``ids`` (a list, array or 1-D tensor of token ids)."""
        ids = self._ids(ids)
        base = self.vocab_size
        levels = []
        grams, counts = np.unique(_codes(ids, self.order, base), return_counts=True)
        levels.append(_Level(grams, counts, base))  # the highest order: occurrence counts
        for k in range(self.order - 1, 0, -1):
            # continuation counts: in how many distinct (k+1)-grams each k-gram ends
            grams, counts = np.unique(levels[-1].grams % base**k, return_counts=True)
            levels.append(_Level(grams, counts, base))
        self.levels = levels[::-1]  # levels[k - 1] is order k
        return self

    def _probabilities(self, windows: np.ndarray) -> np.ndarray:
        """``p(last column | earlier columns)`` per row of ``windows`` (``-1`` marks no history)."""
        if not self.levels:
            raise RuntimeError("the model has no counts yet: call fit(ids) first")
        base = self.vocab_size
        probability = np.full(len(windows), 1.0 / base)
        for k, level in enumerate(self.levels, start=1):
            part = windows[:, -k:]
            known = (part >= 0).all(axis=1)  # the history is long enough for order k
            codes = np.zeros(len(windows), dtype=np.int64)
            for column in range(k):
                codes = codes * base + np.maximum(part[:, column], 0)
            probability = np.where(known, level.probability(codes, base, probability), probability)
        return probability

    def distribution(self, context) -> np.ndarray:
        """``p(. | context)`` over the whole vocabulary (only the last ``order - 1`` tokens count).

        Example:
            >>> model = CharNGramModel(order=1, vocab_size=2).fit([0, 0, 0, 1])
            >>> model.distribution([]).round(3).tolist()
            [0.75, 0.25]
        """
        context = self._ids(context)
        history = np.full(self.order - 1, -1, dtype=np.int64)  # -1: no token (context too short)
        used = min(len(context), self.order - 1)
        if used:
            history[-used:] = context[-used:]
        targets = np.arange(self.vocab_size)
        windows = np.column_stack([np.tile(history, (self.vocab_size, 1)), targets])
        return self._probabilities(windows)

    def log_likelihood(self, ids) -> tuple[float, int]:
        """Total ``log p(x_t | x_<t)`` (nats) over ``t = 1 .. len(ids) - 1`` and the token count.

        The first token has no history and is not scored (as in a GPT's loss, where it is
        only an input); the next ``order - 2`` use the shorter history they have.
        """
        ids = self._ids(ids)
        padded = np.concatenate([np.full(self.order - 1, -1, dtype=np.int64), ids])
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.order)[1:]
        log_probability = 0.0
        chunk = 1 << 18  # bounded memory on long texts
        for start in range(0, len(windows), chunk):
            probabilities = self._probabilities(windows[start : start + chunk])
            log_probability += float(np.log(probabilities).sum())
        return log_probability, len(windows)

    def nats_per_token(self, ids) -> float:
        """Average negative log-likelihood per predicted token in nats (``/ ln 2``: bits)."""
        total, count = self.log_likelihood(ids)
        return -total / count
