"""Checks for the music chapter's coding exercise (the bigram baseline)."""

from __future__ import annotations

import numpy as np

from . import CheckResult, call_learner, describe_shape, report


def reference_bigram(melodies, vocab_size: int, alpha: float) -> np.ndarray:
    """``P[a, b] = (count(a -> b) + alpha) / (count(a -> .) + alpha * vocab_size)`` over consecutive tokens."""
    counts = np.zeros((vocab_size, vocab_size))
    for melody in melodies:
        for a, b in zip(melody[:-1], melody[1:]):
            counts[int(a), int(b)] += 1
    smoothed = counts + alpha
    totals = smoothed.sum(axis=1, keepdims=True)
    # a token never followed by anything (with alpha = 0): the uniform distribution, as in music.NGramModel
    return np.where(totals > 0, smoothed / np.where(totals > 0, totals, 1), 1 / vocab_size)


def check_bigram(learner_fn, exercise: str = "music-ex-3") -> CheckResult:
    """Check ``learner_fn(melodies, vocab_size, alpha)`` returns the add-alpha bigram transition matrix.

    Row ``a`` is the distribution of the token that follows ``a``: ``P[a, b] = p(x_t = b | x_{t-1} = a)``.
    """
    from ..music import encode_notes

    cases = {
        "two tokens, one transition each way (alpha = 1)": ([np.array([0, 1, 0])], 2, 1.0),
        "three tokens, repeated transitions (alpha = 0.5)": ([np.array([0, 1, 1, 2]), np.array([0, 2, 2, 1])], 3, 0.5),
        "two encoded melodies, 36 tokens (alpha = 0.1)": (
            [encode_notes([(72, 4), (74, 2), (None, 2), (71, 4)]), encode_notes([(60, 2), (62, 2), (64, 8)])], 36, 0.1),
    }
    problems: list[str] = []
    passed = 0
    for label, (melodies, vocab_size, alpha) in cases.items():
        value, problem = call_learner(learner_fn, label, [m.copy() for m in melodies], vocab_size, alpha,
                                      returns="a (vocab_size, vocab_size) array")
        if problem:
            problems.append(problem)
            continue
        try:
            value = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=float)
        except (TypeError, ValueError):
            problems.append(f"{label}: expected an array of numbers, got {type(value).__name__}")
            continue
        expected = reference_bigram(melodies, vocab_size, alpha)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (one row per previous token, one column per next token)")
            continue
        if np.allclose(value, expected, atol=1e-6):
            passed += 1
            continue
        row_sums = value.sum(axis=1)
        if np.allclose(value, expected.T, atol=1e-6):
            hint = "the matrix is transposed: row a must hold p(next token | previous token a)"
        elif not np.allclose(row_sums, 1, atol=1e-6):
            hint = (f"rows must sum to 1 (each is a distribution over the next token); row sums range from "
                    f"{row_sums.min():.3g} to {row_sums.max():.3g}")
        elif np.allclose(value, reference_bigram(melodies, vocab_size, 0.0 if alpha else 1.0), atol=1e-6):
            hint = "the smoothing is wrong: add alpha to every count, and alpha * vocab_size to every row total"
        else:
            a, b = np.unravel_index(np.abs(value - expected).argmax(), value.shape)
            hint = f"P[{a}, {b}] is {value[a, b]:.6g}, expected {expected[a, b]:.6g}"
        problems.append(f"{label}: {hint}")
    return report(exercise, problems, partial=passed / len(cases))
