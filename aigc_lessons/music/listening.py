"""Listening and looking: a small additive synthesizer and a piano roll."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .tokens import STEPS_PER_QUARTER, melody_events, melody_notes, midi_name


def render_audio(tokens: Sequence[int], rate: int = 8000, bpm: float = 96, max_seconds: float = 10.0,
                 harmonics: Sequence[float] = (1.0, 0.5, 0.25, 0.125)) -> np.ndarray:
    """A mono ``float32`` waveform in [-1, 1] of the melody: additive synthesis, one voice.

    Each note is a sum of harmonics ``sum_k a_k sin(2 pi k f t)`` with ``f = 440 * 2**((midi - 69) / 12)``
    (partials above the Nyquist frequency ``rate / 2`` are left out), shaped by a 10 ms
    attack, an exponential decay and a 20 ms release so that notes do not click.
    The result is cut at ``max_seconds``.

    Example:
        >>> from aigc_lessons.music.tokens import encode_notes
        >>> render_audio(encode_notes([(69, 4)]), rate=8000, bpm=60).shape
        (8000,)
    """
    seconds_per_step = 60.0 / bpm / STEPS_PER_QUARTER
    events = melody_events(tokens)
    total_steps = events[-1][1] + events[-1][2] if events else 0
    length = min(int(round(total_steps * seconds_per_step * rate)), int(max_seconds * rate))
    audio = np.zeros(length, dtype=np.float64)
    attack, release = int(0.010 * rate), int(0.020 * rate)
    for midi, start, steps in events:
        first = int(round(start * seconds_per_step * rate))
        if midi is None or first >= length:
            continue
        count = min(int(round(steps * seconds_per_step * rate)), length - first)
        t = np.arange(count) / rate
        frequency = 440.0 * 2 ** ((midi - 69) / 12)
        wave = sum(a * np.sin(2 * np.pi * (k + 1) * frequency * t)
                   for k, a in enumerate(harmonics) if (k + 1) * frequency < rate / 2)
        envelope = np.exp(-t * 1.5)
        envelope[: min(attack, count)] *= np.linspace(0, 1, min(attack, count))
        envelope[max(count - release, 0):] *= np.linspace(1, 0, count - max(count - release, 0))
        audio[first : first + count] += wave * envelope
    peak = np.abs(audio).max() if length else 0.0
    return (audio / peak * 0.8 if peak > 0 else audio).astype(np.float32)


def plot_piano_roll(melodies: list[Sequence[int]], labels: list[str] | None = None, max_beats: float = 32,
                    axes=None):
    """Draw melodies as piano rolls (time in beats, MIDI pitch), one row of axes per melody."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(len(melodies), 1, figsize=(9, 1.9 * len(melodies)), sharex=True, squeeze=False)
        axes = axes[:, 0]
    for index, (ax, melody) in enumerate(zip(axes, melodies)):
        notes = melody_notes(melody)
        for midi, start, steps in notes:
            ax.broken_barh([(start / STEPS_PER_QUARTER, steps / STEPS_PER_QUARTER)], (midi - 0.4, 0.8),
                           facecolors="tab:blue", edgecolors="black", linewidth=0.4)
        pitches = [midi for midi, _, _ in notes] or [60]
        low, high = min(pitches) - 2, max(pitches) + 2
        ax.set_ylim(low, high)
        ticks = [p for p in range(low, high + 1) if p % 12 in (0, 7)]  # C and G
        ax.set_yticks(ticks, [midi_name(p) for p in ticks])
        ax.set_xlim(0, max_beats)
        ax.set_ylabel("pitch")
        ax.grid(axis="x", alpha=0.3)
        if labels:
            ax.set_title(labels[index], fontsize=9, loc="left")
    axes[-1].set_xlabel("time (beats, quarter notes)")
    return axes
