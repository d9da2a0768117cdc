"""Checks for the character-GPT chapter's coding exercises (``book/text/char_gpt.ipynb``)."""

from __future__ import annotations

import math

from ..text.tokens import merge_pair
from . import CheckResult, call_learner, describe_mismatch, report


def check_bits_and_perplexity(learner_fn, exercise: str = "char-gpt-ex-1") -> CheckResult:
    """Check ``learner_fn(nats)`` returns ``(bits, perplexity)`` for a loss in nats per character.

    ``bits = nats / ln 2`` and ``perplexity = e ** nats`` (the same as ``2 ** bits``).
    """
    problems: list[str] = []
    cases = (math.log(75), 1.5, 0.0, 2.25)
    passed = 0
    for nats in cases:
        label = f"nats = {nats:.4g}"
        value, problem = call_learner(learner_fn, label, nats, returns="a pair (bits, perplexity)")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            problems.append(f"{label}: expected a pair (bits, perplexity), got "
                            f"{type(value).__name__}")
            continue
        try:
            bits, perplexity = float(value[0]), float(value[1])
        except (TypeError, ValueError, RuntimeError):
            problems.append(f"{label}: bits and perplexity should be numbers, got "
                            f"{type(value[0]).__name__} and {type(value[1]).__name__}")
            continue
        expected_bits, expected_perplexity = nats / math.log(2), math.exp(nats)
        bits_problem = describe_mismatch(f"{label}: bits", bits, expected_bits)
        if bits_problem:
            if nats and math.isclose(bits, nats * math.log(2), rel_tol=1e-6):
                bits_problem += " (multiplied by ln 2: a bit is ln 2 nats, so divide by ln 2)"
            elif nats and math.isclose(bits, nats / math.log(10), rel_tol=1e-6):
                bits_problem += " (divided by ln 10: bits are base-2 logarithms, divide by ln 2)"
            problems.append(bits_problem)
            continue
        perplexity_problem = describe_mismatch(f"{label}: perplexity", perplexity,
                                               expected_perplexity)
        if perplexity_problem:
            if nats and math.isclose(perplexity, 2 ** nats, rel_tol=1e-6):
                perplexity_problem += " (2 ** nats: the base must match the unit, e ** nats or 2 ** bits)"
            elif nats and math.isclose(perplexity, math.exp(bits), rel_tol=1e-6):
                perplexity_problem += " (e ** bits: the base must match the unit, 2 ** bits)"
            problems.append(perplexity_problem)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_block_shift(learner_fn, exercise: str = "char-gpt-ex-2") -> CheckResult:
    """Check ``learner_fn(blocks)`` turns ``(B, T + 1)`` blocks into ``(inputs, targets)``, ``(B, T)`` each.

    The inputs are the first ``T`` tokens of each block and the targets the last ``T``, so
    ``targets[b, t]`` is the token that follows ``inputs[b, t]``.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    cases = {
        "two blocks of 9 tokens": torch.randint(0, 75, (2, 9), generator=generator),
        "one block of 2 tokens": torch.tensor([[3, 7]]),
        "four blocks of 17 tokens": torch.randint(0, 75, (4, 17), generator=generator),
    }
    problems: list[str] = []
    passed = 0
    for label, blocks in cases.items():
        value, problem = call_learner(learner_fn, label, blocks.clone(),
                                      returns="a pair (inputs, targets)")
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, (tuple, list)) or len(value) != 2 \
                or not all(isinstance(part, torch.Tensor) for part in value):
            problems.append(f"{label}: expected a pair of tensors (inputs, targets)")
            continue
        inputs, targets = value
        expected_inputs, expected_targets = blocks[:, :-1], blocks[:, 1:]
        shape = tuple(expected_inputs.shape)
        if tuple(inputs.shape) != shape or tuple(targets.shape) != shape:
            problems.append(f"{label}: inputs {tuple(inputs.shape)} and targets "
                            f"{tuple(targets.shape)}, expected {shape} each (a block of T + 1 "
                            "tokens gives T predictions; slice along dimension 1, not 0)")
            continue
        if torch.equal(inputs, expected_targets) and torch.equal(targets, expected_inputs):
            problems.append(f"{label}: inputs and targets are swapped: the inputs are the first "
                            "T tokens, the targets the same tokens moved one to the left")
            continue
        if torch.equal(inputs, targets):
            problems.append(f"{label}: the targets equal the inputs: the model would learn to "
                            "copy its input; shift the targets by one token")
            continue
        if not torch.equal(inputs, expected_inputs):
            problems.append(f"{label}: the inputs should be blocks[:, :-1] (the first T tokens)")
            continue
        if not torch.equal(targets, expected_targets):
            problems.append(f"{label}: the targets should be blocks[:, 1:] (the last T tokens)")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_bpe_merge(learner_fn, exercise: str = "char-gpt-ex-3") -> CheckResult:
    """Check ``learner_fn(ids, pair, new_id)`` replaces every occurrence of ``pair`` by ``new_id``.

    Occurrences are taken left to right and do not overlap (``[1, 1, 1]`` with the pair
    ``(1, 1)`` becomes ``[new_id, 1]``); the input list is not changed.
    """
    cases = [
        ("one occurrence in the middle", [5, 1, 2, 7], (1, 2), 256),
        ("several occurrences, one at each end", [1, 2, 3, 1, 2, 9, 1, 2], (1, 2), 300),
        ("overlapping candidates [1, 1, 1]", [1, 1, 1], (1, 1), 256),
        ("four in a row [1, 1, 1, 1]", [4, 1, 1, 1, 1], (1, 1), 257),
        ("the pair reversed is not the pair", [2, 1, 2, 1], (1, 2), 256),
        ("no occurrence", [3, 4, 5], (4, 3), 256),
        ("a single token", [7], (7, 7), 256),
    ]
    problems: list[str] = []
    passed = 0
    for label, ids, pair, new_id in cases:
        original = list(ids)
        value, problem = call_learner(learner_fn, label, list(ids), pair, new_id,
                                      returns="a list of token ids")
        if problem:
            problems.append(problem)
            continue
        try:
            value = [int(token) for token in value]
        except (TypeError, ValueError):
            problems.append(f"{label}: expected a list of integers, got {type(value).__name__}")
            continue
        expected = merge_pair(original, pair, new_id)
        if value != expected:
            hint = ""
            if value == original:
                hint = " (nothing was merged)"
            elif len(value) < len(expected):
                hint = (" (more merges than there are: the occurrences must not overlap; after a "
                        "merge, continue after the pair)")
            elif value.count(new_id) == 1 and expected.count(new_id) > 1:
                hint = " (only the first occurrence was merged: merge every one)"
            problems.append(f"{label}: merging {pair} -> {new_id} in {original} gave {value}, "
                            f"expected {expected}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
