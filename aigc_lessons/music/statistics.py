"""Statistics of melodies that the chapter compares: pitch-class, interval and duration histograms, total
variation, and the copying check (the longest run of pitches a melody shares with the training melodies)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .tokens import STEPS_PER_QUARTER, melody_notes


def pitch_class_histogram(melodies: Iterable[Sequence[int]]) -> np.ndarray:
    """Share of note onsets on each pitch class C, C#, ..., B (12 values that sum to 1).

    Each note counts once, whatever its length. Raises ``ValueError`` when there are no notes.

    Example:
        >>> from aigc_lessons.music.tokens import encode_notes
        >>> pitch_class_histogram([encode_notes([(60, 1), (72, 3), (67, 1)])])[[0, 7]].tolist()
        [0.6666666666666666, 0.3333333333333333]
    """
    counts = np.zeros(12)
    for melody in melodies:
        for midi, _, _ in melody_notes(melody):
            counts[midi % 12] += 1
    if counts.sum() == 0:
        raise ValueError("no notes in these melodies: a pitch-class histogram needs at least one note")
    return counts / counts.sum()


MAX_INTERVAL = 12


def interval_histogram(melodies: Iterable[Sequence[int]]) -> np.ndarray:
    """Share of melodic intervals -12..+12 semitones between consecutive notes (larger leaps clipped).

    Example:
        >>> from aigc_lessons.music.tokens import encode_notes
        >>> interval_histogram([encode_notes([(60, 1), (62, 1), (60, 1)])])[[10, 14]].tolist()
        [0.5, 0.5]
    """
    counts = np.zeros(2 * MAX_INTERVAL + 1)
    for melody in melodies:
        pitches = [midi for midi, _, _ in melody_notes(melody)]
        for a, b in zip(pitches, pitches[1:]):
            counts[int(np.clip(b - a, -MAX_INTERVAL, MAX_INTERVAL)) + MAX_INTERVAL] += 1
    if counts.sum() == 0:
        raise ValueError("no pair of consecutive notes: an interval histogram needs melodies of 2+ notes")
    return counts / counts.sum()


MAX_DURATION = 16  # steps: a whole note; longer notes are counted in the last bin


def duration_histogram(melodies: Iterable[Sequence[int]]) -> np.ndarray:
    """Share of note durations 1..16 steps (16th notes .. whole notes; longer ones in the last bin)."""
    counts = np.zeros(MAX_DURATION)
    for melody in melodies:
        for _, _, steps in melody_notes(melody):
            counts[min(steps, MAX_DURATION) - 1] += 1
    if counts.sum() == 0:
        raise ValueError("no notes in these melodies: a duration histogram needs at least one note")
    return counts / counts.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``0.5 * sum |p - q|`` between two histograms (0 = equal, 1 = disjoint).

    Example:
        >>> total_variation(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
        1.0
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"histograms must have the same shape, got {p.shape} and {q.shape}")
    if not (np.isclose(p.sum(), 1) and np.isclose(q.sum(), 1)) or (p < 0).any() or (q < 0).any():
        raise ValueError("both histograms must be non-negative and sum to 1 (normalize the counts first)")
    return float(0.5 * np.abs(p - q).sum())


def melody_statistics(melodies: list[Sequence[int]], reference: list[Sequence[int]]) -> dict[str, float]:
    """Distances of ``melodies`` to ``reference`` (total variation of three histograms) and simple stats."""
    notes = [melody_notes(m) for m in melodies]
    lengths = [sum(s for _, _, s in n) / STEPS_PER_QUARTER for n in notes if n]
    ranges = [max(p for p, _, _ in n) - min(p for p, _, _ in n) for n in notes if n]
    pitches = [[p for p, _, _ in n] for n in notes]
    steps = [abs(b - a) <= 2 for ps in pitches for a, b in zip(ps, ps[1:])]
    return {
        "pitch_class_tv": total_variation(pitch_class_histogram(melodies), pitch_class_histogram(reference)),
        "interval_tv": total_variation(interval_histogram(melodies), interval_histogram(reference)),
        "duration_tv": total_variation(duration_histogram(melodies), duration_histogram(reference)),
        "mean_length_beats": float(np.mean(lengths)) if lengths else 0.0,
        "mean_range_semitones": float(np.mean(ranges)) if ranges else 0.0,
        "stepwise_share": float(np.mean(steps)) if steps else 0.0,
    }

def _note_ngrams(melody: Sequence[int], n: int) -> set[tuple[int, ...]]:
    pitches = tuple(midi for midi, _, _ in melody_notes(melody))
    return {pitches[i : i + n] for i in range(len(pitches) - n + 1)}


def note_ngram_index(reference: list[Sequence[int]], longest: int = 32) -> list[set[tuple[int, ...]]]:
    """``index[n - 1]`` = every run of ``n`` consecutive pitches in the reference melodies, ``n = 1..longest``."""
    return [set().union(*(_note_ngrams(m, n) for m in reference)) for n in range(1, longest + 1)]


def longest_shared_run(melody: Sequence[int], reference_index: list[set[tuple[int, ...]]]) -> int:
    """Length of the longest run of consecutive pitches of ``melody`` that also occurs in the reference.

    A copying check: generated melodies that reproduce long stretches of training
    melodies have memorized them. Durations are ignored; the answer is capped at
    ``len(reference_index)``.

    Example:
        >>> from aigc_lessons.music.tokens import encode_notes
        >>> index = note_ngram_index([encode_notes([(62, 2), (64, 2), (65, 2), (60, 2)])])
        >>> longest_shared_run(encode_notes([(60, 1), (62, 1), (64, 1), (65, 1)]), index)
        3
    """
    best = 0
    for n, known in enumerate(reference_index, start=1):
        if not _note_ngrams(melody, n) & known:
            break
        best = n
    return best
