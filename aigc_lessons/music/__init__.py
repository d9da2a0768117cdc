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

The package has one module per concern; every public name is re-exported
here, so ``from aigc_lessons import music`` and ``music.sample_melodies(...)`` work:

* :mod:`~aigc_lessons.music.tokens`: the vocabulary, encoding notes and ``music21`` streams, MIDI files;
* :mod:`~aigc_lessons.music.corpus`: the chorale corpus, its cache, the split by melody, padding;
* :mod:`~aigc_lessons.music.likelihood`: a model's log-likelihood, cross-entropy, perplexity, n-gram baselines;
* :mod:`~aigc_lessons.music.sampling`: sampling with temperature;
* :mod:`~aigc_lessons.music.statistics`: the histograms the chapter compares, total variation, the copying check;
* :mod:`~aigc_lessons.music.listening`: a small additive synthesizer and a piano roll;
* :mod:`~aigc_lessons.music.training`: the melody model's step, batches and training loop.

Example:
    >>> tokens = encode_notes([(72, 4), (74, 2), (None, 2)])
    >>> [token_name(t) for t in tokens]
    ['<start>', 'C5', 'hold', 'hold', 'hold', 'D5', 'hold', 'rest', 'hold', '<end>']
    >>> melody_notes(tokens)
    [(72, 0, 4), (74, 4, 2)]
"""

from __future__ import annotations

from .tokens import (
    ENCODING_VERSION,
    END,
    FIRST_PITCH_TOKEN,
    HOLD,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    START,
    STEPS_PER_QUARTER,
    VOCAB_SIZE,
    MusicDataError,
    encode_notes,
    encode_stream,
    melody_events,
    melody_notes,
    midi_name,
    pitch_token,
    read_midi_notes,
    soprano_part,
    token_name,
    token_pitch,
    tokens_to_stream,
    transposition_to_c,
    write_midi,
)
from .corpus import (
    ChoraleMelodies,
    chorale_paths,
    is_validation,
    load_chorale_melodies,
    music21_version,
    pad_melodies,
    split_melodies,
)
from .likelihood import (
    NGramModel,
    cross_entropy_and_perplexity,
    model_log_likelihoods,
)
from .sampling import (
    sample_melodies,
    temperature_probabilities,
)
from .statistics import (
    MAX_DURATION,
    MAX_INTERVAL,
    duration_histogram,
    interval_histogram,
    longest_shared_run,
    melody_statistics,
    note_ngram_index,
    pitch_class_histogram,
    total_variation,
)
from .listening import (
    plot_piano_roll,
    render_audio,
)
from .training import (
    LengthBatches,
    melody_step,
    train_melody_model,
)

__all__ = [
    "ChoraleMelodies",
    "ENCODING_VERSION",
    "END",
    "FIRST_PITCH_TOKEN",
    "HOLD",
    "LengthBatches",
    "MAX_DURATION",
    "MAX_INTERVAL",
    "MusicDataError",
    "NGramModel",
    "PITCH_HIGH",
    "PITCH_LOW",
    "REST",
    "START",
    "STEPS_PER_QUARTER",
    "VOCAB_SIZE",
    "chorale_paths",
    "cross_entropy_and_perplexity",
    "duration_histogram",
    "encode_notes",
    "encode_stream",
    "interval_histogram",
    "is_validation",
    "load_chorale_melodies",
    "longest_shared_run",
    "melody_events",
    "melody_notes",
    "melody_statistics",
    "music21_version",
    "melody_step",
    "midi_name",
    "model_log_likelihoods",
    "note_ngram_index",
    "pad_melodies",
    "pitch_class_histogram",
    "pitch_token",
    "plot_piano_roll",
    "read_midi_notes",
    "render_audio",
    "sample_melodies",
    "soprano_part",
    "split_melodies",
    "temperature_probabilities",
    "token_name",
    "token_pitch",
    "tokens_to_stream",
    "total_variation",
    "train_melody_model",
    "transposition_to_c",
    "write_midi",
]
