"""Metrics for generated text: BLEU, chrF, ROUGE-1/2/L and METEOR, written out to be read.

* **BLEU** (Papineni et al. 2002): clipped n-gram precisions for n = 1..4, their geometric
  mean, times a brevity penalty; computed as `sacrebleu` computes it (its ``13a`` tokeniser,
  corpus statistics summed before dividing, the closest reference length, its smoothing
  methods), so the numbers agree with ``sacrebleu.corpus_bleu`` and ``sentence_bleu``.
* **chrF** (Popovic 2015): character n-gram precision and recall (n = 1..6, spaces removed),
  averaged over the orders, combined as an F-score with recall weighted ``beta = 2`` times
  as much as precision; as ``sacrebleu.corpus_chrf`` and ``sentence_chrf``.
* **ROUGE-1, ROUGE-2, ROUGE-L** (Lin 2004): unigram and bigram overlap, and the longest
  common subsequence, as precision, recall and F-measure; as ``rouge_score.rouge_scorer``
  (its tokeniser: lowercase, letters and digits only; optional Porter stemming).
* **METEOR** (Banerjee & Lavie 2005): a one-to-one alignment of unigrams (exact words, then
  Porter stems), F-mean with recall weighted 9 times as much as precision, times a
  fragmentation penalty; as ``nltk.translate.meteor_score`` **without its WordNet synonym
  stage** (WordNet is a separate download, see :data:`NO_SYNONYMS`).

Conventions:

* **Scores are on 0..100**, as `sacrebleu` reports BLEU and chrF. `rouge-score` and NLTK report
  fractions in 0..1; the book multiplies them by 100 to compare. Precisions, recalls and
  F-measures inside the result dataclasses are percentages too; penalties (BLEU's brevity
  penalty, METEOR's fragmentation penalty) are factors in 0..1.
* **References are given per hypothesis**: ``references[i]`` is one reference string or a
  list of reference strings for ``hypotheses[i]``. `sacrebleu` takes reference *streams*
  instead (stream ``k`` holds the ``k``-th reference of every hypothesis):
  :func:`reference_streams` converts.
* Corpus BLEU and chrF add up the counts of all sentences before dividing (a corpus score is
  not the mean of sentence scores); corpus ROUGE and METEOR here are the mean of the sentence
  scores, which is how they are usually reported.

The Porter stemmer (Porter 1980) used by ROUGE with ``stem=True`` and by METEOR is NLTK's
(``nltk.stem.porter.PorterStemmer``), the one `rouge-score` and NLTK's METEOR use; it is
imported only when stemming is asked for.

Example:
    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 6)
    100.0
    >>> result = sentence_bleu("the cat sat on a mat", ["the cat sat on the mat"])
    >>> [round(p, 2) for p in result.precisions]
    [83.33, 60.0, 50.0, 33.33]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

__all__ = [
    "NO_SYNONYMS",
    "SMOOTHING_METHODS",
    "TOKENIZERS",
    "BleuResult",
    "ChrfResult",
    "MeteorResult",
    "RougeResult",
    "bleu",
    "brevity_penalty",
    "chrf",
    "closest_reference_length",
    "clipped_matches",
    "corpus_bleu",
    "corpus_chrf",
    "count_chunks",
    "lcs_length",
    "meteor",
    "meteor_alignment",
    "ngram_counts",
    "reference_streams",
    "rouge",
    "rouge_tokenize",
    "sentence_bleu",
    "sentence_chrf",
    "sentence_meteor",
    "sentence_rouge",
    "tokenize_13a",
]

TOKENIZERS = ("13a", "none")
SMOOTHING_METHODS = ("none", "floor", "add-k", "exp")
ROUGE_KINDS = ("rouge1", "rouge2", "rougeL")
_SMOOTHING_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}


# --------------------------------------------------------------------------- input checks

def _check_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__} ({value!r:.60}); "
                         "pass text, not tokens or numbers")
    return value


def _check_hypotheses(hypotheses) -> list[str]:
    if isinstance(hypotheses, str):
        raise ValueError("hypotheses must be a list of strings, got one string; wrap it in a "
                         "list ([hypothesis]) or use the sentence_... function")
    if not isinstance(hypotheses, Sequence):
        raise ValueError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}")
    if len(hypotheses) == 0:
        raise ValueError("hypotheses is empty: pass at least one hypothesis string")
    return [_check_text(h, f"hypotheses[{i}]") for i, h in enumerate(hypotheses)]


def _check_reference_set(references, what: str) -> list[str]:
    """One hypothesis's references: a string, or a non-empty list of strings."""
    if isinstance(references, str):
        return [references]
    if not isinstance(references, Sequence):
        raise ValueError(f"{what} must be a reference string or a list of reference strings, "
                         f"got {type(references).__name__} ({references!r:.60})")
    if len(references) == 0:
        raise ValueError(f"{what} is an empty list: give at least one reference string")
    return [_check_text(r, f"{what}[{k}]") for k, r in enumerate(references)]


def _check_pairs(hypotheses, references) -> tuple[list[str], list[list[str]]]:
    hypotheses = _check_hypotheses(hypotheses)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ValueError("references must be a list with one entry per hypothesis (a string, "
                         f"or a list of strings), got {type(references).__name__}")
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references: "
                         "references[i] holds the reference(s) of hypotheses[i] (for sacrebleu's "
                         "reference streams, convert them with list(zip(*streams)))")
    sets = [_check_reference_set(r, f"references[{i}]") for i, r in enumerate(references)]
    return hypotheses, sets


def _check_choice(value, name: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_number(value, name: str, minimum: float, maximum: float | None = None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        span = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be a number {span}, got {value!r}")


def reference_streams(references: Sequence[str | Sequence[str]]) -> list[list[str | None]]:
    """Per-hypothesis references turned into `sacrebleu`'s reference streams.

    Stream ``k`` holds the ``k``-th reference of every hypothesis, ``None`` where a hypothesis
    has fewer references (sacrebleu skips those).

    Example:
        >>> reference_streams(["a b", ["c d", "e f"]])
        [['a b', 'c d'], [None, 'e f']]
    """
    if isinstance(references, str) or not isinstance(references, Sequence) or not references:
        raise ValueError("references must be a non-empty list with one entry per hypothesis")
    sets = [_check_reference_set(r, f"references[{i}]") for i, r in enumerate(references)]
    width = max(len(s) for s in sets)
    return [[s[k] if k < len(s) else None for s in sets] for k in range(width)]


# --------------------------------------------------------------------------- BLEU

_13A_RULES = (
    # punctuation and symbols become tokens of their own
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    # a period or comma is split off unless it sits between digits (3.5, 1,000)
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    # a dash after a digit is split off
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


@lru_cache(maxsize=2**16)
def _tokenize_13a_line(line: str) -> str:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def tokenize_13a(text: str) -> list[str]:
    """Words and punctuation as the ``13a`` tokeniser of WMT's mteval-v13a script splits them.

    This is sacrebleu's default for BLEU: punctuation becomes separate tokens, except a period
    or comma between digits. Case is kept.

    Example:
        >>> tokenize_13a("Hello, world! It costs 3.50 (or 4).")
        ['Hello', ',', 'world', '!', 'It', 'costs', '3.50', '(', 'or', '4', ')', '.']
    """
    return _tokenize_13a_line(_check_text(text, "text").rstrip()).split()


def _words(text: str, tokenize: str, lowercase: bool) -> list[str]:
    if lowercase:
        text = text.lower()
    return tokenize_13a(text) if tokenize == "13a" else text.split()


def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """How often each n-gram (a tuple of ``n`` tokens) occurs in ``tokens``.

    Example:
        >>> ngram_counts("the cat the cat".split(), 2)[("the", "cat")]
        2
    """
    _check_positive_int(n, "n")
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_matches(hypothesis: Sequence[str], references: Sequence[Sequence[str]],
                    n: int) -> tuple[int, int]:
    """``(matches, total)`` of BLEU's modified n-gram precision for one tokenised sentence.

    Each hypothesis n-gram counts at most as often as it occurs in the one reference where it
    occurs most (the clip); ``total`` is the number of n-grams in the hypothesis.

    Example:
        >>> clipped_matches("the the the the".split(), ["the cat is here".split()], 1)
        (1, 4)
    """
    hypothesis_counts = ngram_counts(hypothesis, n)
    most: Counter = Counter()
    for reference in references:
        for gram, count in ngram_counts(reference, n).items():
            most[gram] = max(most[gram], count)
    matches = sum(min(count, most[gram]) for gram, count in hypothesis_counts.items())
    return matches, sum(hypothesis_counts.values())


def closest_reference_length(hypothesis_length: int, reference_lengths: Sequence[int]) -> int:
    """The reference length nearest the hypothesis length (the shorter one on a tie).

    Example:
        >>> closest_reference_length(5, [3, 7, 9])
        3
    """
    return min(reference_lengths, key=lambda length: (abs(length - hypothesis_length), length))


def brevity_penalty(hypothesis_length: int, reference_length: int) -> float:
    """BLEU's brevity penalty: 1 if the hypothesis is at least as long, else ``exp(1 - r / c)``.

    ``c`` is the hypothesis length and ``r`` the reference length (both in tokens, summed over
    the corpus for corpus BLEU); an empty hypothesis gets 0.

    Example:
        >>> round(brevity_penalty(8, 10), 4)
        0.7788
    """
    for value, name in ((hypothesis_length, "hypothesis_length"),
                        (reference_length, "reference_length")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0 (a number of tokens), got {value!r}")
    if hypothesis_length >= reference_length:
        return 1.0
    return math.exp(1 - reference_length / hypothesis_length) if hypothesis_length > 0 else 0.0


@dataclass(frozen=True)
class BleuResult:
    """A BLEU score and the parts it is made of.

    ``score`` and ``precisions`` are percentages (0..100); ``matches[n-1]`` and ``totals[n-1]``
    are the clipped matches and the hypothesis n-grams of order ``n`` (after smoothing, for
    ``add-k``); ``brevity_penalty`` is a factor in 0..1; lengths are in tokens.
    """

    score: float
    precisions: tuple[float, ...]
    matches: tuple[float, ...]
    totals: tuple[float, ...]
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int

    @property
    def length_ratio(self) -> float:
        """Hypothesis length over reference length (0 when the references are empty)."""
        return self.hypothesis_length / self.reference_length if self.reference_length else 0.0

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.brevity_penalty:.3f} "
                f"ratio = {self.length_ratio:.3f} hyp_len = {self.hypothesis_length} "
                f"ref_len = {self.reference_length})")


def _bleu_from_counts(matches: list[float], totals: list[float], hypothesis_length: int,
                      reference_length: int, smooth: str, smooth_value: float | None,
                      effective_order: bool) -> BleuResult:
    """BLEU from its sufficient statistics, with sacrebleu's smoothing rules."""
    max_order = len(matches)
    value = _SMOOTHING_DEFAULTS[smooth] if smooth_value is None else smooth_value
    penalty = brevity_penalty(hypothesis_length, reference_length)
    precisions = [0.0] * max_order

    def result(score: float) -> BleuResult:
        return BleuResult(score, tuple(precisions), tuple(matches), tuple(totals), penalty,
                          hypothesis_length, reference_length)

    if not any(matches):
        return result(0.0)
    halvings = 1.0  # 'exp' halves the stand-in for each further order with no match
    orders = max_order
    for n in range(1, max_order + 1):
        if smooth == "add-k" and n > 1:
            matches[n - 1] += value
            totals[n - 1] += value
        if totals[n - 1] == 0:  # the hypothesis is shorter than n tokens
            break
        if effective_order:
            orders = n
        if matches[n - 1] == 0:
            if smooth == "exp":
                halvings *= 2
                precisions[n - 1] = 100.0 / (halvings * totals[n - 1])
            elif smooth == "floor":
                precisions[n - 1] = 100.0 * value / totals[n - 1]
        else:
            precisions[n - 1] = 100.0 * matches[n - 1] / totals[n - 1]
    used = precisions[:orders]
    if any(p == 0 for p in used):
        return result(0.0)  # the geometric mean of numbers with a zero is zero
    return result(penalty * math.exp(sum(math.log(p) for p in used) / orders))


def _bleu_statistics(hypotheses: list[str], reference_sets: list[list[str]], max_order: int,
                     tokenize: str, lowercase: bool) -> tuple[list[int], list[int], int, int]:
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for hypothesis, references in zip(hypotheses, reference_sets):
        words = _words(hypothesis, tokenize, lowercase)
        reference_words = [_words(r, tokenize, lowercase) for r in references]
        hypothesis_length += len(words)
        reference_length += closest_reference_length(len(words), [len(r) for r in reference_words])
        for n in range(1, max_order + 1):
            matched, total = clipped_matches(words, reference_words, n)
            matches[n - 1] += matched
            totals[n - 1] += total
    return matches, totals, hypothesis_length, reference_length


def _check_bleu_options(max_order, smooth, smooth_value, tokenize) -> None:
    _check_positive_int(max_order, "max_order")
    _check_choice(smooth, "smooth", SMOOTHING_METHODS)
    _check_choice(tokenize, "tokenize", TOKENIZERS)
    if smooth_value is not None:
        _check_number(smooth_value, "smooth_value", 0.0)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], *,
                max_order: int = 4, smooth: str = "exp", smooth_value: float | None = None,
                effective_order: bool = False, tokenize: str = "13a",
                lowercase: bool = False) -> BleuResult:
    """Corpus BLEU (0..100) with its precisions and brevity penalty, as ``sacrebleu.corpus_bleu``.

    Matches, n-gram totals and lengths are summed over all sentences first; each sentence's
    reference length is the one closest to its hypothesis. ``smooth`` is one of
    :data:`SMOOTHING_METHODS` (sacrebleu's names and defaults: ``floor`` 0.1, ``add-k`` 1);
    ``effective_order=True`` leaves out the orders n that no hypothesis is long enough to have.

    Example:
        >>> result = corpus_bleu(["the cat sat", "a dog ran home"],
        ...                      ["the cat sat down", "a dog ran home"])
        >>> round(result.brevity_penalty, 4), round(result.score, 2)
        (0.8669, 86.69)
    """
    _check_bleu_options(max_order, smooth, smooth_value, tokenize)
    hypotheses, reference_sets = _check_pairs(hypotheses, references)
    matches, totals, hyp_len, ref_len = _bleu_statistics(hypotheses, reference_sets, max_order,
                                                         tokenize, lowercase)
    return _bleu_from_counts(matches, totals, hyp_len, ref_len, smooth, smooth_value,
                             effective_order)


def sentence_bleu(hypothesis: str, references: str | Sequence[str], *, max_order: int = 4,
                  smooth: str = "exp", smooth_value: float | None = None,
                  effective_order: bool = True, tokenize: str = "13a",
                  lowercase: bool = False) -> BleuResult:
    """BLEU of one sentence (0..100) as ``sacrebleu.sentence_bleu`` computes it.

    BLEU was designed for a corpus; on one sentence a single missing 4-gram match makes the
    unsmoothed score 0, which is why smoothing (``exp``) and the effective order are on by
    default here, as in sacrebleu.

    Example:
        >>> round(sentence_bleu("the cat", ["the cat sat on the mat"]).brevity_penalty, 4)
        0.1353
    """
    _check_text(hypothesis, "hypothesis")
    return corpus_bleu([hypothesis], [_check_reference_set(references, "references")],
                       max_order=max_order, smooth=smooth, smooth_value=smooth_value,
                       effective_order=effective_order, tokenize=tokenize, lowercase=lowercase)


def bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], **options) -> float:
    """Corpus BLEU as one number in 0..100 (``corpus_bleu(...).score``; same options).

    Example:
        >>> bleu(["a b c d"], ["w x y z"])
        0.0
    """
    return corpus_bleu(hypotheses, references, **options).score


# --------------------------------------------------------------------------- chrF

@dataclass(frozen=True)
class ChrfResult:
    """A chrF score (0..100) with the precision and recall (percentages) it combines.

    ``precision`` and ``recall`` are averaged over the character n-gram orders that both the
    hypotheses and the references have; ``counts[n-1]`` is ``(hypothesis n-grams, reference
    n-grams, matches)`` for order ``n``.
    """

    score: float
    precision: float
    recall: float
    beta: float
    counts: tuple[tuple[int, int, int], ...]


def _char_ngrams(text: str, n: int) -> Counter:
    text = "".join(text.split())  # chrF ignores spaces
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def _chrf_from_counts(counts: Sequence[Sequence[int]], beta: float) -> ChrfResult:
    precisions, recalls = [], []
    for hypothesis_count, reference_count, matched in counts:
        if hypothesis_count > 0 and reference_count > 0:
            precisions.append(matched / hypothesis_count)
            recalls.append(matched / reference_count)
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    factor = beta ** 2
    score = 0.0
    if precision + recall > 0:
        score = 100 * (1 + factor) * precision * recall / (factor * precision + recall)
    return ChrfResult(score, 100 * precision, 100 * recall, beta,
                      tuple(tuple(c) for c in counts))


def _chrf_sentence_counts(hypothesis: str, references: list[str], char_order: int,
                          beta: float) -> list[list[int]]:
    """The counts against the reference that gives the best sentence chrF (first on a tie)."""
    hypothesis_grams = [_char_ngrams(hypothesis, n) for n in range(1, char_order + 1)]
    best, best_score = None, -1.0
    for reference in references:
        counts = []
        for n, hyp in enumerate(hypothesis_grams, start=1):
            ref = _char_ngrams(reference, n)
            matched = sum(min(count, ref[gram]) for gram, count in hyp.items())
            # as sacrebleu: hypothesis n-grams are not counted when the reference has none
            counts.append([sum(hyp.values()) if ref else 0, sum(ref.values()), matched])
        score = _chrf_from_counts(counts, beta).score
        if score > best_score:
            best, best_score = counts, score
    return best


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], *,
                char_order: int = 6, beta: float = 2.0) -> ChrfResult:
    """Corpus chrF (0..100), as ``sacrebleu.corpus_chrf``: n-gram counts summed over sentences.

    Example:
        >>> result = corpus_chrf(["the cat sat"], ["the cat sat down"])
        >>> round(result.precision, 2), round(result.recall, 2), round(result.score, 2)
        (100.0, 60.85, 66.02)
    """
    _check_positive_int(char_order, "char_order")
    _check_number(beta, "beta", 0.0)
    hypotheses, reference_sets = _check_pairs(hypotheses, references)
    totals = [[0, 0, 0] for _ in range(char_order)]
    for hypothesis, refs in zip(hypotheses, reference_sets):
        for total, counts in zip(totals, _chrf_sentence_counts(hypothesis, refs, char_order, beta)):
            for k in range(3):
                total[k] += counts[k]
    return _chrf_from_counts(totals, beta)


def sentence_chrf(hypothesis: str, references: str | Sequence[str], *, char_order: int = 6,
                  beta: float = 2.0) -> ChrfResult:
    """chrF of one sentence (0..100), as ``sacrebleu.sentence_chrf``.

    Example:
        >>> round(sentence_chrf("the colour of the sea", ["the color of the sea"]).score, 2)
        78.38
    """
    _check_text(hypothesis, "hypothesis")
    return corpus_chrf([hypothesis], [_check_reference_set(references, "references")],
                       char_order=char_order, beta=beta)


def chrf(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], **options) -> float:
    """Corpus chrF as one number in 0..100 (``corpus_chrf(...).score``; same options).

    Example:
        >>> chrf(["abc"], ["abc"])
        100.0
    """
    return corpus_chrf(hypotheses, references, **options).score


# --------------------------------------------------------------------------- stemming

@lru_cache(maxsize=1)
def _porter_stemmer():
    try:
        from nltk.stem.porter import PorterStemmer
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("stemming uses NLTK's Porter stemmer: pip install 'nltk>=3.9' "
                          "(or pass stem=False)") from error
    return PorterStemmer()


@lru_cache(maxsize=2**16)
def _stem(word: str) -> str:
    return _porter_stemmer().stem(word)


# --------------------------------------------------------------------------- ROUGE

_NOT_LETTER_OR_DIGIT = re.compile(r"[^a-z0-9]+")
_TOKEN = re.compile(r"^[a-z0-9]+$")


def rouge_tokenize(text: str, stem: bool = False) -> list[str]:
    """Tokens as `rouge-score` makes them: lowercase, runs of letters and digits only.

    With ``stem=True`` words longer than 3 characters are replaced by their Porter stem.

    Example:
        >>> rouge_tokenize("The cats' toys, 2 of them!", stem=True)
        ['the', 'cat', 'toy', '2', 'of', 'them']
    """
    words = _NOT_LETTER_OR_DIGIT.sub(" ", _check_text(text, "text").lower()).split()
    if stem:
        words = [_stem(w) if len(w) > 3 else w for w in words]
    return [w for w in words if _TOKEN.match(w)]


def lcs_length(first: Sequence, second: Sequence) -> int:
    """Length of the longest common subsequence (in order, gaps allowed) of two sequences.

    Dynamic programming over prefixes: ``L[i][j]`` is the LCS of ``first[:i]`` and
    ``second[:j]``; it grows by one where the last items agree, else it is the larger of
    dropping one item from either side.

    Example:
        >>> lcs_length("the cat sat on the mat".split(), "the mat sat on a cat".split())
        3
    """
    previous = [0] * (len(second) + 1)
    for item in first:
        current = [0]
        for j, other in enumerate(second, start=1):
            current.append(previous[j - 1] + 1 if item == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class RougeResult:
    """ROUGE precision, recall and F-measure (harmonic mean), all percentages (0..100)."""

    precision: float
    recall: float
    fmeasure: float


def _f_measure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _rouge_pair(hypothesis: list[str], reference: list[str], kind: str) -> RougeResult:
    if kind == "rougeL":
        if not hypothesis or not reference:
            return RougeResult(0.0, 0.0, 0.0)
        common = lcs_length(reference, hypothesis)
        precision, recall = common / len(hypothesis), common / len(reference)
    else:
        n = int(kind[-1])
        hyp, ref = ngram_counts(hypothesis, n), ngram_counts(reference, n)
        common = sum(min(count, hyp[gram]) for gram, count in ref.items())
        precision = common / max(sum(hyp.values()), 1)
        recall = common / max(sum(ref.values()), 1)
    return RougeResult(100 * precision, 100 * recall, 100 * _f_measure(precision, recall))


def sentence_rouge(hypothesis: str, references: str | Sequence[str], kind: str = "rougeL",
                   stem: bool = False) -> RougeResult:
    """ROUGE-1, ROUGE-2 or ROUGE-L of one hypothesis, as ``rouge_score.rouge_scorer``.

    ``kind`` is ``"rouge1"``, ``"rouge2"`` or ``"rougeL"`` (longest common subsequence). With
    several references the one with the highest F-measure is taken (as ``score_multi``).

    Example:
        >>> sentence_rouge("the cat sat", "the cat sat down", kind="rouge1").recall
        75.0
    """
    _check_choice(kind, "kind", ROUGE_KINDS)
    hypothesis_tokens = rouge_tokenize(_check_text(hypothesis, "hypothesis"), stem)
    results = [_rouge_pair(hypothesis_tokens, rouge_tokenize(r, stem), kind)
               for r in _check_reference_set(references, "references")]
    return max(results, key=lambda r: r.fmeasure)  # max keeps the first on a tie


def rouge(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]],
          kind: str = "rougeL", stem: bool = False) -> float:
    """The mean ROUGE F-measure (0..100) over hypothesis-reference pairs.

    Example:
        >>> rouge(["the cat sat", "a dog"], ["the cat sat", "the cat"], kind="rouge1")
        50.0
    """
    _check_choice(kind, "kind", ROUGE_KINDS)
    hypotheses, reference_sets = _check_pairs(hypotheses, references)
    scores = [sentence_rouge(h, r, kind, stem).fmeasure for h, r in zip(hypotheses, reference_sets)]
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------- METEOR

class _NoSynonyms:
    """A stand-in for NLTK's WordNet reader that knows no synonyms.

    Pass it as ``nltk.translate.meteor_score.meteor_score(..., wordnet=NO_SYNONYMS)``: NLTK then
    matches exact words and Porter stems only, which is the METEOR this module computes.
    """

    def synsets(self, word, *args, **kwargs) -> list:
        return []

    def __repr__(self) -> str:
        return "NO_SYNONYMS"


NO_SYNONYMS = _NoSynonyms()


def _greedy_match(hypothesis: list[tuple[int, str]], reference: list[tuple[int, str]]):
    """NLTK's matching rule: from the last hypothesis word back, take the last free equal word."""
    positions: dict[str, list[int]] = {}
    for j, (_, word) in enumerate(reference):
        positions.setdefault(word, []).append(j)
    pairs, used_hypothesis, used_reference = [], set(), set()
    for i in range(len(hypothesis) - 1, -1, -1):
        free = positions.get(hypothesis[i][1])
        if free:
            j = free.pop()
            used_hypothesis.add(i)
            used_reference.add(j)
            pairs.append((hypothesis[i][0], reference[j][0]))
    left_hypothesis = [p for i, p in enumerate(hypothesis) if i not in used_hypothesis]
    left_reference = [p for j, p in enumerate(reference) if j not in used_reference]
    return pairs, left_hypothesis, left_reference


def meteor_alignment(hypothesis: Sequence[str], reference: Sequence[str],
                     stem: bool = True) -> list[tuple[int, int]]:
    """METEOR's one-to-one unigram alignment: ``(hypothesis position, reference position)`` pairs.

    Stage 1 pairs identical (lowercased) words, stage 2 pairs the words left over whose Porter
    stems agree. Within a stage a word is paired from the end of the hypothesis backwards with
    the last free equal word of the reference, as NLTK does; the original METEOR searches for
    the alignment with the fewest crossings instead, which can give fewer chunks.

    Example:
        >>> meteor_alignment("the cats sat".split(), "the cat sat".split())
        [(0, 0), (1, 1), (2, 2)]
    """
    hyp = [(i, w.lower()) for i, w in enumerate(hypothesis)]
    ref = [(j, w.lower()) for j, w in enumerate(reference)]
    pairs, hyp, ref = _greedy_match(hyp, ref)
    if stem:
        stem_pairs, _, _ = _greedy_match([(i, _stem(w)) for i, w in hyp],
                                         [(j, _stem(w)) for j, w in ref])
        pairs += stem_pairs
    return sorted(pairs)


def count_chunks(alignment: Sequence[tuple[int, int]]) -> int:
    """The number of chunks: runs of pairs adjacent in both the hypothesis and the reference.

    ``alignment`` is sorted by hypothesis position; an empty alignment has 0 chunks.

    Example:
        >>> count_chunks([(0, 0), (1, 1), (2, 5), (3, 6)])
        2
    """
    if not alignment:
        return 0
    chunks = 1
    for (i, j), (next_i, next_j) in zip(alignment, alignment[1:]):
        if not (next_i == i + 1 and next_j == j + 1):
            chunks += 1
    return chunks


@dataclass(frozen=True)
class MeteorResult:
    """A METEOR score (0..100) and its parts.

    ``precision``, ``recall`` and ``fmean`` are percentages; ``penalty`` is the fragmentation
    penalty ``gamma * (chunks / matches) ** beta`` (a factor in 0..gamma); ``score`` is
    ``(1 - penalty) * fmean``.
    """

    score: float
    precision: float
    recall: float
    fmean: float
    penalty: float
    matches: int
    chunks: int
    hypothesis_length: int
    reference_length: int


def _meteor_pair(hypothesis: list[str], reference: list[str], alpha: float, beta: float,
                 gamma: float, stem: bool) -> MeteorResult:
    alignment = meteor_alignment(hypothesis, reference, stem)
    matches, chunks = len(alignment), count_chunks(alignment)
    if matches == 0:
        return MeteorResult(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, len(hypothesis), len(reference))
    precision, recall = matches / len(hypothesis), matches / len(reference)
    fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (chunks / matches) ** beta
    return MeteorResult(100 * (1 - penalty) * fmean, 100 * precision, 100 * recall, 100 * fmean,
                        penalty, matches, chunks, len(hypothesis), len(reference))


def sentence_meteor(hypothesis: str, references: str | Sequence[str], *, alpha: float = 0.9,
                    beta: float = 3.0, gamma: float = 0.5, stem: bool = True,
                    tokenize: str = "13a") -> MeteorResult:
    """METEOR of one hypothesis (0..100) without synonyms, as NLTK's ``meteor_score``.

    ``fmean = P R / (alpha P + (1 - alpha) R)`` (``alpha = 0.9``: recall weighs 9 times as
    much, Banerjee & Lavie's ``10 P R / (R + 9 P)``), times ``1 - gamma (chunks / matches) **
    beta``. Words are split with ``tokenize`` (``"13a"``, or ``"none"`` for spaces only) and
    lowercased; with several references the best score is taken. To get the same number from
    NLTK, give it the same tokens and ``wordnet=NO_SYNONYMS``.

    Example:
        >>> result = sentence_meteor("the cat sat on the mat", "on the mat sat the cat")
        >>> result.matches, result.chunks
        (6, 6)
    """
    _check_number(alpha, "alpha", 0.0, 1.0)
    _check_number(beta, "beta", 0.0)
    _check_number(gamma, "gamma", 0.0, 1.0)
    _check_choice(tokenize, "tokenize", TOKENIZERS)
    words = _words(_check_text(hypothesis, "hypothesis"), tokenize, lowercase=True)
    results = [_meteor_pair(words, _words(r, tokenize, lowercase=True), alpha, beta, gamma, stem)
               for r in _check_reference_set(references, "references")]
    return max(results, key=lambda r: r.score)


def meteor(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]],
           **options) -> float:
    """The mean sentence METEOR (0..100) over hypothesis-reference pairs (same options).

    Example:
        >>> round(meteor(["the cat sat"], ["the cat sat"]), 2)
        98.15
    """
    hypotheses, reference_sets = _check_pairs(hypotheses, references)
    scores = [sentence_meteor(h, r, **options).score for h, r in zip(hypotheses, reference_sets)]
    return sum(scores) / len(scores)
