"""Checks for the decoding chapter's coding exercises (``book/text/decoding.ipynb``).

* :func:`check_top_p`: nucleus filtering written by hand, against
  :func:`aigc_lessons.text.decoding.filter_logits` and the definition (ties included);
* :func:`check_entropy_at_temperature`: the entropy of ``softmax(logits / tau)``;
* :func:`check_distinct_n`: distinct n-grams over all n-grams of a list of words.
"""

from __future__ import annotations

import math

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def _nucleus_problem(label: str, probs: torch.Tensor, kept: torch.Tensor, p: float) -> str | None:
    """What is wrong with ``kept`` (a boolean mask of one row) as the top-p set of ``probs``."""
    tolerance = 1e-6
    if not kept.any():
        return f"{label}: no token survived; the most probable token must always be kept"
    if not kept[probs.argmax()]:
        return f"{label}: the most probable token was dropped; it must always survive"
    mass = probs[kept].sum().item()
    if p < 1 and mass < p - tolerance:
        return (f"{label}: the kept tokens hold {mass:.4f} of the probability, less than "
                f"p = {p:g}; the token whose probability carries the total past p must be kept "
                "too (keep a token when the mass of the tokens before it is below p)")
    if (~kept).any() and probs[~kept].max() > probs[kept].min() + tolerance:
        return (f"{label}: a dropped token is more probable than a kept one; sort the tokens by "
                "probability (descending) before adding up their probabilities")
    if p >= 1:
        if not kept.all():
            return (f"{label}: with p = 1 every token must survive, {int((~kept).sum())} were "
                    "dropped (rounding can make the running sum reach 1 before the last token: "
                    "treat p = 1 as no filter)")
        return None
    smallest = probs[kept].min().item()
    if mass - smallest >= p + tolerance:
        return (f"{label}: the set is not the smallest one: without its least probable token it "
                f"still holds {mass - smallest:.4f} >= p = {p:g} (one token too many: compare "
                "the mass *before* each token with p, not the mass including it)")
    return None


def _top_p_cases() -> dict[str, tuple[torch.Tensor, float]]:
    generator = torch.Generator().manual_seed(0)
    random_logits = 2 * torch.randn(6, 20, generator=generator)
    return {
        "p = 0.7 on probabilities [0.5, 0.3, 0.15, 0.05]":
            (torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log(), 0.7),
        "p = 0.9 on random logits (6 rows of 20 tokens)": (random_logits, 0.9),
        "p = 0.5 on the same random logits": (random_logits, 0.5),
        "ties: p = 0.5 on probabilities [0.3, 0.4, 0.3]":
            (torch.tensor([[0.3, 0.4, 0.3]]).log(), 0.5),
        "ties: p = 0.75 on four equal tokens": (torch.zeros(2, 4), 0.75),
        "p = 1 with a very improbable last token":
            (torch.tensor([[3.0, 2.0, 1.0, 0.0, -30.0, -40.0]]), 1.0),
        "a tiny p = 1e-4 (only the most probable token)": (random_logits[:2], 1e-4),
    }


def check_top_p(learner_fn, exercise: str = "decoding-ex-1") -> CheckResult:
    """Check ``learner_fn(logits, p)``: ``(B, vocab)`` logits, -inf outside each row's nucleus.

    The nucleus of a row is the smallest set of most probable tokens whose probabilities
    (``softmax`` of the row) add up to at least ``p``. Kept logits must be returned
    unchanged. Without ties the result must equal ``filter_logits(logits, top_p=p)``;
    with ties any choice among equally probable tokens is accepted.
    """
    from ..text.decoding import filter_logits

    problems: list[str] = []
    cases = _top_p_cases()
    passed = 0
    for label, (logits, p) in cases.items():
        original = logits.clone()
        value, problem = call_learner(learner_fn, label, logits, p, expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        if not torch.equal(logits, original):
            problems.append(f"{label}: your function changed its input in place; work on a copy "
                            "(logits.clone() or masked_fill, which returns a new tensor)")
            continue
        shape_problem = describe_shape(f"{label}: result", value.shape, logits.shape)
        if shape_problem:
            problems.append(shape_problem)
            continue
        value = value.detach().float()
        kept = value > float("-inf")
        if not torch.allclose(value[kept], logits[kept], atol=1e-5):
            problems.append(f"{label}: the kept entries differ from the input logits; return the "
                            "logits themselves (not probabilities), with -inf for dropped tokens")
            continue
        probs = logits.softmax(dim=-1)
        row_problem = next((found for row in range(len(logits)) if (found := _nucleus_problem(
            f"{label}, row {row}", probs[row], kept[row], p))), None)
        if row_problem:
            problems.append(row_problem)
            continue
        if not label.startswith("ties"):
            expected = filter_logits(logits, top_p=p).isfinite()
            if not torch.equal(kept, expected):
                problems.append(f"{label}: kept {kept.sum().item()} tokens, filter_logits keeps "
                                f"{expected.sum().item()}")
                continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def _entropy(logits: torch.Tensor, temperature: float) -> float:
    log_probs = (logits.double() / temperature).log_softmax(dim=-1)
    return float(-(log_probs.exp() * log_probs).sum())


def check_entropy_at_temperature(learner_fn, exercise: str = "decoding-ex-2") -> CheckResult:
    """Check ``learner_fn(logits, temperature)`` = the entropy (nats) of ``softmax(logits / tau)``.

    ``logits`` is a 1-D tensor. Cases include a low temperature at which the naive
    ``p * log(p)`` meets ``0 * log(0)`` (NaN) and large logits at which ``exp`` overflows.
    """
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(12, generator=generator) * 2
    cases = {
        "random logits, tau = 1": (logits, 1.0),
        "random logits, tau = 0.5": (logits, 0.5),
        "random logits, tau = 3": (logits, 3.0),
        "equal logits (uniform over 8 tokens), tau = 0.7": (torch.zeros(8), 0.7),
        "random logits, tau = 0.01 (almost greedy)": (logits, 0.01),
        "large logits (up to 500), tau = 1": (torch.tensor([500.0, 499.0, 10.0, 0.0]), 1.0),
    }
    problems: list[str] = []
    passed = 0
    for label, (case_logits, temperature) in cases.items():
        value, problem = call_learner(learner_fn, label, case_logits.clone(), temperature,
                                      returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = _entropy(case_logits, temperature)
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-4, abs_tol=1e-5)
        if mismatch:
            if math.isnan(value):
                mismatch += (" (NaN: 0 * log 0 or an overflowing exp; compute log-probabilities "
                             "with log_softmax, which is stable, and probabilities as their exp)")
            elif expected > 0 and math.isclose(value, expected / math.log(2), rel_tol=1e-3):
                mismatch += " (that is the entropy in bits: use the natural logarithm)"
            elif math.isclose(value, _entropy(case_logits, 1 / temperature), rel_tol=1e-3):
                mismatch += " (you multiplied the logits by the temperature: divide them)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def _distinct(tokens: list[str], n: int) -> float:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def check_distinct_n(learner_fn, exercise: str = "decoding-ex-3") -> CheckResult:
    """Check ``learner_fn(words, n)`` = distinct n-grams / all n-grams of the list ``words``.

    A list shorter than ``n`` has no n-grams and scores 0.
    """
    hamlet = "to be or not to be that is the question".split()
    cases = {
        "distinct-1 of 'to be or not to be that is the question'": (hamlet, 1),
        "distinct-2 of the same words": (hamlet, 2),
        "distinct-3 of 'la la la la la'": (["la"] * 5, 3),
        "distinct-2 of 'the cat saw the cat saw the cat'":
            ("the cat saw the cat saw the cat".split(), 2),
        "distinct-3 of two words (no trigram at all)": (["hence", "away"], 3),
    }
    problems: list[str] = []
    passed = 0
    for label, (tokens, n) in cases.items():
        value, problem = call_learner(learner_fn, label, list(tokens), n, returns="a number",
                                      expect_number=True)
        if problem:
            if "ZeroDivisionError" in problem:
                problem += " (a list with no n-gram at all has nothing to repeat: return 0.0)"
            problems.append(problem)
            continue
        expected = _distinct(tokens, n)
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-6, abs_tol=1e-9)
        if mismatch:
            grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            if grams and math.isclose(value, len(set(grams)) / len(tokens), rel_tol=1e-6):
                mismatch += (" (you divided by the number of words, as Li et al. wrote it; here "
                             "divide by the number of n-grams, len(words) - n + 1, so that a text "
                             "without any repeat scores exactly 1)")
            elif grams and math.isclose(value, sum(grams.count(g) == 1 for g in set(grams))
                                        / len(grams), rel_tol=1e-6):
                mismatch += (" (you counted the n-grams that occur exactly once; count every "
                             "different n-gram once, however often it occurs)")
            elif grams and math.isclose(value, len(set(grams)), rel_tol=1e-6):
                mismatch += " (that is the number of distinct n-grams: divide by all n-grams)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
