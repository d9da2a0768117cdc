"""The token vocabulary of melodies, encoding notes and ``music21`` streams, and MIDI files."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


START, END, REST, HOLD = 0, 1, 2, 3
PITCH_LOW, PITCH_HIGH = 55, 86          # G3 .. D6: every transposed soprano note fits (measured)
FIRST_PITCH_TOKEN = 4
VOCAB_SIZE = FIRST_PITCH_TOKEN + PITCH_HIGH - PITCH_LOW + 1   # 36
STEPS_PER_QUARTER = 4                   # a 16th-note grid
ENCODING_VERSION = 1                    # bump when the encoding changes: the cache key includes it
_NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


class MusicDataError(RuntimeError):
    """music21 or its Bach corpus is missing, or a melody cannot be encoded; the message says what to do."""


def pitch_token(midi: int) -> int:
    """The token of MIDI pitch ``midi`` (raises :class:`MusicDataError` outside 55..86).

    Example:
        >>> pitch_token(60), pitch_token(55)
        (9, 4)
    """
    if not PITCH_LOW <= midi <= PITCH_HIGH:
        raise MusicDataError(f"MIDI pitch {midi} is outside the vocabulary's range {PITCH_LOW}..{PITCH_HIGH} "
                             f"({midi_name(PITCH_LOW)}..{midi_name(PITCH_HIGH)})")
    return FIRST_PITCH_TOKEN + midi - PITCH_LOW


def token_pitch(token: int) -> int | None:
    """The MIDI pitch of a pitch token, ``None`` for the four special tokens."""
    return int(token) - FIRST_PITCH_TOKEN + PITCH_LOW if token >= FIRST_PITCH_TOKEN else None


def midi_name(midi: int) -> str:
    """Scientific pitch name: 60 -> 'C4', 74 -> 'D5'."""
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def token_name(token: int) -> str:
    """A readable name for a token: '<start>', '<end>', 'rest', 'hold' or a pitch name."""
    specials = {START: "<start>", END: "<end>", REST: "rest", HOLD: "hold"}
    return specials.get(int(token)) or midi_name(token_pitch(int(token)))


# ----------------------------------------------------------------------------- encoding
def encode_notes(events: Iterable[tuple[int | None, int]]) -> np.ndarray:
    """Tokens of a melody given as ``(midi pitch or None for a rest, duration in steps)`` events.

    Returns ``int64`` tokens ``[<start>, ..., <end>]``; a note of ``d`` steps is its pitch
    token followed by ``d - 1`` holds. Raises :class:`MusicDataError` on a duration < 1.

    Example:
        >>> encode_notes([(60, 2)]).tolist()
        [0, 9, 3, 1]
    """
    tokens = [START]
    for midi, steps in events:
        if steps < 1:
            raise MusicDataError(f"an event of {steps} steps cannot be placed on the grid (at least 1 step)")
        tokens.append(REST if midi is None else pitch_token(int(midi)))
        tokens.extend([HOLD] * (int(steps) - 1))
    tokens.append(END)
    return np.asarray(tokens, dtype=np.int64)


def melody_events(tokens: Sequence[int]) -> list[tuple[int | None, int, int]]:
    """Decode tokens into ``(midi or None, start step, steps)`` events, notes and rests.

    Decoding stops at the first ``<end>``; ``<start>`` tokens are skipped; a ``hold``
    with nothing before it counts as a rest.

    Example:
        >>> melody_events(encode_notes([(72, 2), (None, 1), (71, 1)]))
        [(72, 0, 2), (None, 2, 1), (71, 3, 1)]
    """
    events: list[list] = []
    step = 0
    for token in (int(t) for t in tokens):
        if token == START:
            continue
        if token == END:
            break
        if token == HOLD and events:
            events[-1][2] += 1
        else:
            events.append([token_pitch(token) if token >= FIRST_PITCH_TOKEN else None, step, 1])
        step += 1
    return [tuple(event) for event in events]


def melody_notes(tokens: Sequence[int]) -> list[tuple[int, int, int]]:
    """The notes only (rests dropped): ``(midi, start step, steps)``."""
    return [event for event in melody_events(tokens) if event[0] is not None]


def soprano_part(score):
    """The soprano part of a chorale score, found by name (some scores start with an instrument part)."""
    for part in score.parts:
        name = f"{part.partName or ''} {part.id or ''}".lower()
        if "soprano" in name:
            return part
    raise MusicDataError("no part named 'Soprano' in this score")


def transposition_to_c(key) -> int:
    """Semitones that move ``key``'s tonic to C (major) or A (minor), between -5 and +6.

    Example:
        >>> from music21 import key
        >>> transposition_to_c(key.Key("G")), transposition_to_c(key.Key("e"))
        (5, 5)
    """
    target = 0 if key.mode == "major" else 9
    shift = (target - key.tonic.pitchClass) % 12
    return shift - 12 if shift > 6 else shift


def encode_stream(part, transpose: int = 0, steps_per_quarter: int = STEPS_PER_QUARTER) -> np.ndarray:
    """Tokens of a monophonic ``music21`` part or stream, shifted by ``transpose`` semitones.

    Tied notes are merged; a chord contributes its highest pitch; grace notes (no
    duration) are dropped; leading rests are dropped. Offsets and durations are
    rounded to the grid; raises :class:`MusicDataError` when a note cannot be placed
    (it rounds to zero steps or overlaps the previous event by more than the rounding).

    Example:
        >>> from music21 import note, stream
        >>> melody = stream.Stream([note.Note("C5", quarterLength=1), note.Note("D5", quarterLength=0.5)])
        >>> encode_stream(melody).tolist()
        [0, 21, 3, 3, 3, 23, 3, 1]
    """
    flat = part.stripTies().flatten().notesAndRests
    events: list[tuple[int | None, int]] = []
    cursor = 0
    for element in flat:
        if element.duration.quarterLength == 0:  # grace note
            continue
        start = round(float(element.offset) * steps_per_quarter)
        end = round(float(element.offset + element.duration.quarterLength) * steps_per_quarter)
        if end <= start:
            raise MusicDataError(f"a {element.duration.quarterLength}-quarter event at offset {element.offset} "
                                 "is shorter than one grid step")
        if start < cursor:
            raise MusicDataError(f"overlapping events at offset {element.offset}: the part is not monophonic")
        if start > cursor and events:  # a gap in the part: a rest
            events.append((None, start - cursor))
        if element.isRest:
            midi = None
        else:
            midi = max(p.midi for p in element.pitches) + transpose
        if midi is None and not events:
            cursor = end  # leading rests are dropped
            continue
        if events and midi is None and events[-1][0] is None:  # two rests in a row: one longer rest
            events[-1] = (None, events[-1][1] + end - start)
        else:
            events.append((midi, end - start))
        cursor = end
    while events and events[-1][0] is None:  # trailing rests say nothing about the melody
        events.pop()
    if not events:
        raise MusicDataError("the part has no notes")
    return encode_notes(events)


def tokens_to_stream(tokens: Sequence[int], bpm: float = 96, steps_per_quarter: int = STEPS_PER_QUARTER):
    """A ``music21`` stream (4/4, tempo ``bpm``) with the notes and rests of ``tokens``."""
    from music21 import meter, note, stream, tempo

    melody = stream.Stream()
    melody.append(tempo.MetronomeMark(number=bpm))
    melody.append(meter.TimeSignature("4/4"))
    for midi, _, steps in melody_events(tokens):
        length = steps / steps_per_quarter
        melody.append(note.Rest(quarterLength=length) if midi is None else note.Note(midi, quarterLength=length))
    return melody


def write_midi(tokens: Sequence[int], path: str | Path, bpm: float = 96) -> Path:
    """Write the melody as a standard MIDI file and return its path.

    Example:
        >>> write_midi(encode_notes([(72, 4)]), "/tmp/melody.mid")  # doctest: +SKIP
        PosixPath('/tmp/melody.mid')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens_to_stream(tokens, bpm=bpm).write("midi", fp=str(path))
    return path


def read_midi_notes(path: str | Path, steps_per_quarter: int = STEPS_PER_QUARTER) -> list[tuple[int, int, int]]:
    """The notes ``(midi, start step, steps)`` of a monophonic MIDI file (parsed without any pickle cache)."""
    from music21 import converter

    score = converter.parse(str(path), forceSource=True, storePickle=False)
    return melody_notes(encode_stream(score.parts[0] if score.parts else score, 0, steps_per_quarter))
