"""Symbolic music for the music chapter: Bach chorale melodies as token sequences.

The corpus is the set of Bach chorales that ships with ``music21``
(Cuthbert & Ariza, 2010), so nothing is downloaded. Each chorale's soprano line
becomes a sequence of tokens on a 16th-note grid (DeepBach's choice, Hadjeres et
al. 2017)::

    <start>  C5  hold hold hold  D5  hold  rest hold ...  <end>

* a pitch token (MIDI 55..86) starts a note; ``hold`` continues the note (or rest)
  that the last non-hold token started; ``rest`` starts a silence;
* every melody is transposed so that its key (``music21``'s key analysis of the
  whole four-part score) becomes C major or A minor, by the smaller of the two
  possible shifts (at most 6 semitones), so the model does not have to learn the
  same tune in twelve keys.

Parsing the whole corpus with ``music21`` takes minutes (240 s on a busy 2-core
machine), so the encoded melodies are cached as an ``.npz`` file (integers and
strings only: read with ``allow_pickle=False``) under :func:`aigc_lessons.data.cache_dir`. The files are
parsed with ``forceSource=True``: ``music21`` never reads or writes its own
pickle cache.

The rest of the module: train/validation split by melody, n-gram baselines,
sampling with temperature, the statistics the chapter compares (pitch-class,
interval and duration histograms and their total-variation distance), a piano
roll, MIDI export and a small additive synthesizer for listening.

Example:
    >>> tokens = encode_notes([(72, 4), (74, 2), (None, 2)])
    >>> [token_name(t) for t in tokens]
    ['<start>', 'C5', 'hold', 'hold', 'hold', 'D5', 'hold', 'rest', 'hold', '<end>']
    >>> melody_notes(tokens)
    [(72, 0, 4), (74, 4, 2)]
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .data import cache_dir

# ----------------------------------------------------------------------------- vocabulary
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


# ----------------------------------------------------------------------------- the corpus
@dataclass
class ChoraleMelodies:
    """Encoded soprano melodies: token arrays, their source names, transpositions and modes."""

    melodies: list[np.ndarray]
    names: list[str]
    transpositions: list[int]
    modes: list[str]
    skipped: dict[str, str]
    duplicates: int = 0
    parse_seconds: float = 0.0
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.melodies)


def _music21_version() -> str:
    try:
        import music21
    except ImportError as error:
        raise MusicDataError(
            "the music chapter needs the music21 package (it ships the Bach chorales); install the book's "
            "dependencies with: pip install -e '.[book]' (or pip install 'music21>=9,<11')"
        ) from error
    return music21.__version__


def chorale_paths(limit: int | None = None) -> list[Path]:
    """The Bach chorale files of music21's corpus (MusicXML only), sorted by name; the first ``limit``.

    Raises :class:`MusicDataError` when music21 or its corpus is missing.
    """
    _music21_version()
    from music21 import corpus

    paths = sorted((Path(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml"))),
                   key=lambda p: p.name)
    if not paths:
        raise MusicDataError("music21 is installed but its Bach corpus is empty; reinstall music21 "
                             "(the corpus is part of the package: pip install --force-reinstall music21)")
    return paths[:limit] if limit else paths


def _cache_file(paths: list[Path]) -> Path:
    names = "\n".join(p.name for p in paths)
    key = hashlib.sha256(f"{_music21_version()}|v{ENCODING_VERSION}|spq{STEPS_PER_QUARTER}|"
                         f"{PITCH_LOW}-{PITCH_HIGH}|{names}".encode()).hexdigest()[:16]
    return cache_dir() / "music" / f"bach_soprano_{key}.npz"


def _deduplicate(melodies: list[np.ndarray]) -> list[int]:
    """Indices of the first occurrence of every distinct melody."""
    seen: set[bytes] = set()
    keep = []
    for index, melody in enumerate(melodies):
        digest = hashlib.sha256(melody.astype(np.int64).tobytes()).digest()
        if digest not in seen:
            seen.add(digest)
            keep.append(index)
    return keep


def load_chorale_melodies(limit: int | None = None, use_cache: bool = True,
                          progress: bool = False) -> ChoraleMelodies:
    """Encode the soprano line of the first ``limit`` Bach chorales (all when ``None``).

    The same melody occurs in several chorales (Bach harmonized many hymn tunes more
    than once), and after transposition to C/Am the copies are identical: only the
    first copy is kept, so the validation set cannot contain a melody of the training set.
    Results are cached under ``cache_dir()/music`` keyed by music21's version, the
    encoding and the file list.

    Example:
        >>> corpus = load_chorale_melodies(limit=5)  # doctest: +SKIP
    """
    paths = chorale_paths(limit)
    cache = _cache_file(paths)
    if use_cache and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            lengths = data["lengths"]
            flat = data["tokens"].astype(np.int64)
            melodies = np.split(flat, np.cumsum(lengths)[:-1])
            skipped = dict(zip(data["skipped_names"].tolist(), data["skipped_reasons"].tolist()))
            return ChoraleMelodies(list(melodies), data["names"].tolist(), data["transpositions"].tolist(),
                                   data["modes"].tolist(), skipped, int(data["duplicates"]),
                                   float(data["parse_seconds"]), from_cache=True)
    from music21 import corpus

    started = time.perf_counter()
    melodies, names, shifts, modes, skipped = [], [], [], [], {}
    for index, path in enumerate(paths):
        if progress and index % 50 == 0:
            print(f"parsing chorale {index + 1}/{len(paths)} ...", flush=True)
        try:
            score = corpus.parse(str(path), forceSource=True)
            key = score.analyze("key")
            shift = transposition_to_c(key)
            melody = encode_stream(soprano_part(score), transpose=shift)
        except MusicDataError as error:
            skipped[path.name] = str(error)
            continue
        melodies.append(melody)
        names.append(path.name)
        shifts.append(shift)
        modes.append(key.mode)
    seconds = time.perf_counter() - started
    keep = _deduplicate(melodies)
    duplicates = len(melodies) - len(keep)
    result = ChoraleMelodies([melodies[i] for i in keep], [names[i] for i in keep], [shifts[i] for i in keep],
                             [modes[i] for i in keep], skipped, duplicates, seconds)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".partial-{time.time_ns()}.npz")
        np.savez_compressed(
            partial, tokens=np.concatenate(result.melodies).astype(np.int16),
            lengths=np.array([len(m) for m in result.melodies]), names=np.array(result.names, dtype=str),
            transpositions=np.array(result.transpositions), modes=np.array(result.modes, dtype=str),
            skipped_names=np.array(list(skipped), dtype=str),
            skipped_reasons=np.array(list(skipped.values()), dtype=str),
            duplicates=duplicates, parse_seconds=seconds)
        partial.replace(cache)  # atomic: a half-written cache never has the real name
    return result


def is_validation(melody: np.ndarray, fraction: float = 0.1) -> bool:
    """Whether a melody belongs to the validation set: decided by a hash of its tokens.

    The decision depends on the melody alone, so it is the same whichever subset of
    the corpus is loaded, and two identical melodies always fall on the same side.

    Example:
        >>> is_validation(encode_notes([(60, 4)])) in (True, False)
        True
    """
    digest = hashlib.sha256(np.asarray(melody, dtype=np.int64).tobytes()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def split_melodies(melodies: list[np.ndarray], fraction: float = 0.1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(train, validation)`` lists: whole melodies go to one side (never windows of one melody to both)."""
    train = [m for m in melodies if not is_validation(m, fraction)]
    validation = [m for m in melodies if is_validation(m, fraction)]
    return train, validation


def pad_melodies(melodies: list[np.ndarray], pad: int = END) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` tensors of shape ``(N, T)`` for next-token training.

    ``inputs[i, t] = x_t`` and ``targets[i, t] = x_{t+1}``; positions past a melody's end
    hold ``pad`` in the inputs and ``-100`` (ignored by ``cross_entropy``) in the targets.
    """
    length = max(len(m) for m in melodies) - 1
    inputs = torch.full((len(melodies), length), pad, dtype=torch.long)
    targets = torch.full((len(melodies), length), -100, dtype=torch.long)
    for row, melody in enumerate(melodies):
        melody = torch.as_tensor(melody, dtype=torch.long)
        inputs[row, : len(melody) - 1] = melody[:-1]
        targets[row, : len(melody) - 1] = melody[1:]
    return inputs, targets


# ----------------------------------------------------------------------------- likelihoods
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


# ----------------------------------------------------------------------------- sampling
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


# ----------------------------------------------------------------------------- statistics
def pitch_class_histogram(melodies: Iterable[Sequence[int]]) -> np.ndarray:
    """Share of note onsets on each pitch class C, C#, ..., B (12 values that sum to 1).

    Each note counts once, whatever its length. Raises ``ValueError`` when there are no notes.

    Example:
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


# ----------------------------------------------------------------------------- listening and looking
def render_audio(tokens: Sequence[int], rate: int = 8000, bpm: float = 96, max_seconds: float = 10.0,
                 harmonics: Sequence[float] = (1.0, 0.5, 0.25, 0.125)) -> np.ndarray:
    """A mono ``float32`` waveform in [-1, 1] of the melody: additive synthesis, one voice.

    Each note is a sum of harmonics ``sum_k a_k sin(2 pi k f t)`` with ``f = 440 * 2**((midi - 69) / 12)``
    (partials above the Nyquist frequency ``rate / 2`` are left out), shaped by a 10 ms
    attack, an exponential decay and a 20 ms release so that notes do not click.
    The result is cut at ``max_seconds``.

    Example:
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


# ----------------------------------------------------------------------------- training and evaluation
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
    from .train import fit

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
