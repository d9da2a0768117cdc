"""The corpus: Bach chorale soprano lines from ``music21``, cached as ``.npz``, split by melody, padded."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import cache_dir
from .tokens import (
    ENCODING_VERSION,
    END,
    PITCH_HIGH,
    PITCH_LOW,
    STEPS_PER_QUARTER,
    MusicDataError,
    encode_stream,
    soprano_part,
    transposition_to_c,
)


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


def music21_version() -> str:
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
    music21_version()
    from music21 import corpus

    paths = sorted((Path(p) for p in corpus.getComposer("bach") if str(p).endswith((".mxl", ".xml"))),
                   key=lambda p: p.name)
    if not paths:
        raise MusicDataError("music21 is installed but its Bach corpus is empty; reinstall music21 "
                             "(the corpus is part of the package: pip install --force-reinstall music21)")
    return paths[:limit] if limit else paths


def _cache_file(paths: list[Path]) -> Path:
    names = "\n".join(p.name for p in paths)
    key = hashlib.sha256(f"{music21_version()}|v{ENCODING_VERSION}|spq{STEPS_PER_QUARTER}|"
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
        >>> from aigc_lessons.music.tokens import encode_notes
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
