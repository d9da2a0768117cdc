"""Checks for the text-metrics chapter's coding exercises (``book/text/metrics.ipynb``).

Each check runs the learner's function on a few small cases whose answers are computed here
by :mod:`aigc_lessons.text.metrics`, and recognises the usual wrong answers by computing
them too: the brevity penalty with ``c / r`` for ``r / c``, or without its cap at 1; the
n-gram precision without clipping, or clipped by the sum over references; the longest
common *substring* (contiguous) for the longest common *subsequence*.
"""

from __future__ import annotations

import math
from collections import Counter

from ..text.metrics import brevity_penalty, clipped_matches, lcs_length, ngram_counts
from . import CheckResult, call_learner, describe_mismatch, report

# (hypothesis length c, reference length r): shorter, equal, longer, much shorter, one token
BREVITY_CASES = ((8, 10), (10, 10), (12, 10), (3, 12), (1, 4))


def _close(value: float, expected: float) -> bool:
    return math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9)


def _brevity_hint(value: float, c: int, r: int) -> str:
    wrong = {
        "exp(1 - c / r): c and r are swapped (the penalty uses r / c)":
            math.exp(1 - c / r),
        "no cap: a hypothesis at least as long as the reference gets 1, not exp(1 - r / c)":
            math.exp(1 - r / c),
        "c / r is the length ratio; the penalty is exp(1 - r / c)": c / r,
        "exp(-r / c): the 1 in exp(1 - r / c) is missing": math.exp(-r / c),
    }
    for hint, wrong_value in wrong.items():
        if _close(value, wrong_value) and not _close(value, brevity_penalty(c, r)):
            return f" ({hint})"
    return ""


def check_brevity_penalty(learner_fn, exercise: str = "text-metrics-ex-1") -> CheckResult:
    """Check ``learner_fn(c, r)`` = BLEU's brevity penalty: 1 if ``c >= r``, else ``exp(1 - r/c)``.

    ``c`` is the hypothesis length and ``r`` the reference length, in tokens (both >= 1 here).
    """
    problems: list[str] = []
    passed = 0
    for c, r in BREVITY_CASES:
        label = f"c = {c}, r = {r}"
        value, problem = call_learner(learner_fn, label, c, r, returns="a number",
                                      expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = brevity_penalty(c, r)
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-6)
        if mismatch:
            problems.append(mismatch + _brevity_hint(value, c, r))
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(BREVITY_CASES))


# (hypothesis, references, n): repeated words, two references, bigrams, no match, the better
# reference second
PRECISION_CASES = (
    ("the the the the the the the", ["the cat is on the mat", "there is a cat on the mat"], 1),
    ("the cat the cat on the mat", ["the cat is on the mat", "the the cat sat on a mat"], 1),
    ("the cat the cat on the mat", ["the cat is on the mat", "the the cat sat on a mat"], 2),
    ("a dog ran home", ["the cat is on the mat"], 1),
    ("the cat sat on the mat", ["a cat is on a mat", "the cat sat on the mat"], 2),
)


def _unclipped(hypothesis: list[str], references: list[list[str]], n: int) -> float:
    counts = ngram_counts(hypothesis, n)
    seen = set().union(*(ngram_counts(r, n) for r in references))
    return sum(c for g, c in counts.items() if g in seen) / sum(counts.values())


def _clipped_by_sum(hypothesis: list[str], references: list[list[str]], n: int) -> float:
    total: Counter = Counter()
    for reference in references:
        total.update(ngram_counts(reference, n))
    counts = ngram_counts(hypothesis, n)
    return sum(min(c, total[g]) for g, c in counts.items()) / sum(counts.values())


def _first_reference_only(hypothesis: list[str], references: list[list[str]], n: int) -> float:
    matched, total = clipped_matches(hypothesis, references[:1], n)
    return matched / total


def check_clipped_precision(learner_fn, exercise: str = "text-metrics-ex-2") -> CheckResult:
    """Check ``learner_fn(hypothesis, references, n)`` = BLEU's modified n-gram precision (0..1).

    ``hypothesis`` is a list of tokens, ``references`` a list of token lists; each hypothesis
    n-gram counts at most as often as it occurs in the single reference where it occurs most.
    """
    problems: list[str] = []
    passed = 0
    for hypothesis, references, n in PRECISION_CASES:
        hyp, refs = hypothesis.split(), [r.split() for r in references]
        label = f"n = {n}, hypothesis {hypothesis!r}"
        value, problem = call_learner(learner_fn, label, list(hyp), [list(r) for r in refs], n,
                                      returns="a number in [0, 1]", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        matched, total = clipped_matches(hyp, refs, n)
        expected = matched / total
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-6)
        if mismatch:
            hint = ""
            if _close(value, 100 * expected):
                hint = " (a percentage: return the fraction, matches / total)"
            elif _close(value, _unclipped(hyp, refs, n)):
                hint = (" (not clipped: a hypothesis n-gram counts at most as often as it occurs"
                        " in a reference)")
            elif _close(value, _clipped_by_sum(hyp, refs, n)):
                hint = (" (clipped by the sum over the references; clip by the maximum count in"
                        " any one reference)")
            elif _close(value, _first_reference_only(hyp, refs, n)):
                hint = " (only the first reference was used; take the maximum over all of them)"
            problems.append(mismatch + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(PRECISION_CASES))


LCS_CASES = (
    ("the cat sat on the mat", "the cat was sitting on the mat"),
    ("the cat sat on the mat", "the mat sat on the cat"),
    ("a b c d e f", "a x b y c z"),
    ("police killed the gunman", "the gunman killed police"),
    ("one", "two three"),
    ("", "anything at all"),
)


def _longest_common_substring(first: list[str], second: list[str]) -> int:
    best = 0
    for i in range(len(first)):
        for j in range(len(second)):
            k = 0
            while i + k < len(first) and j + k < len(second) and first[i + k] == second[j + k]:
                k += 1
            best = max(best, k)
    return best


def _common_words(first: list[str], second: list[str]) -> int:
    return sum((Counter(first) & Counter(second)).values())


def check_lcs_length(learner_fn, exercise: str = "text-metrics-ex-3") -> CheckResult:
    """Check ``learner_fn(first, second)`` = the length of the longest common subsequence.

    Both arguments are lists of tokens; a subsequence keeps the order but may skip tokens.
    """
    problems: list[str] = []
    passed = 0
    for first, second in LCS_CASES:
        a, b = first.split(), second.split()
        label = f"{first!r} and {second!r}"
        value, problem = call_learner(learner_fn, label, list(a), list(b), returns="an integer",
                                      expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = lcs_length(a, b)
        if value != expected:
            hint = ""
            if value == _longest_common_substring(a, b) != expected:
                hint = (" (that is the longest common substring, whose tokens must be adjacent;"
                        " a subsequence may skip tokens)")
            elif value == _common_words(a, b) != expected:
                hint = (" (that counts the shared tokens in any order; a subsequence keeps"
                        " the order)")
            problems.append(f"{label}: got {value:g}, expected {expected}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(LCS_CASES))
