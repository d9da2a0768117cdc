"""The character-GPT chapter: the copy check (aigc_lessons.text.copying) and the exercise checks."""

from __future__ import annotations

import math
import random

import pytest
import torch

from aigc_lessons.checks.char_gpt import (
    check_bits_and_perplexity,
    check_block_shift,
    check_bpe_merge,
)
from aigc_lessons.text.copying import copied_span_lengths, longest_copied_span
from aigc_lessons.text.tokens import merge_pair


def _brute_force_longest(text: str, source: str) -> int:
    """Every (start, length) pair tried: the reference for the greedy search."""
    return max((j - i for i in range(len(text)) for j in range(i + 1, len(text) + 1)
                if text[i:j] in source), default=0)


def test_longest_copied_span_matches_brute_force_on_random_texts():
    rng = random.Random(0)
    for trial in range(200):
        text = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 30)))
        source = "".join(rng.choice("abcd ") for _ in range(rng.randint(0, 60)))
        span = longest_copied_span(text, source)
        assert span in text and span in source, (text, source, span)
        assert len(span) == _brute_force_longest(text, source), (
            f"trial {trial}: greedy found {span!r} in {text!r} / {source!r}, shorter than the "
            "longest shared substring")


def test_longest_copied_span_known_cases():
    assert longest_copied_span("to be or not to be", "not to bed, or to be") == "not to be"
    assert longest_copied_span("", "anything") == ""
    assert longest_copied_span("abc", "") == ""
    assert longest_copied_span("hamlet", "hamlet") == "hamlet"  # a verbatim copy: all of it


def test_copied_span_lengths_pieces():
    source = "To be, or not to be, that is the question"
    text = "not to be, that" + "zzzzzzzzzzzzzzz"  # a copied piece, then a piece never seen
    assert copied_span_lengths(text, source, piece=15) == [15, 0]
    assert copied_span_lengths("abc", "abc", piece=10) == [3]  # one short piece is kept
    assert len(copied_span_lengths("x" * 35, "x", piece=10)) == 3  # the short tail is left out


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_copied_span_lengths_rejects_a_bad_piece(bad):
    with pytest.raises(ValueError, match="piece must be an integer"):
        copied_span_lengths("abc", "abc", piece=bad)


def test_copying_rejects_token_ids():
    with pytest.raises(ValueError, match="decode token ids first"):
        longest_copied_span([1, 2, 3], "abc")


# --- the exercise checks: right answers pass, typical wrong ones fail with a hint ---

def test_bits_and_perplexity_check():
    assert check_bits_and_perplexity(lambda n: (n / math.log(2), math.exp(n))).passed
    assert check_bits_and_perplexity(lambda n: (n / math.log(2), 2 ** (n / math.log(2)))).passed
    wrong_bits = check_bits_and_perplexity(lambda n: (n * math.log(2), math.exp(n)))
    assert not wrong_bits.passed and "divide by ln 2" in " ".join(wrong_bits.messages)
    wrong_base = check_bits_and_perplexity(lambda n: (n / math.log(2), 2 ** n))
    assert not wrong_base.passed and "base must match" in " ".join(wrong_base.messages)
    swapped = check_bits_and_perplexity(lambda n: (math.exp(n), n / math.log(2)))
    assert not swapped.passed
    placeholder = check_bits_and_perplexity(lambda n: None)
    assert placeholder.status == "not attempted"


def test_block_shift_check():
    assert check_block_shift(lambda b: (b[:, :-1], b[:, 1:])).passed
    swapped = check_block_shift(lambda b: (b[:, 1:], b[:, :-1]))
    assert not swapped.passed and "swapped" in " ".join(swapped.messages)
    same = check_block_shift(lambda b: (b[:, :-1], b[:, :-1]))
    assert not same.passed and "equal the inputs" in " ".join(same.messages)
    wrong_dim = check_block_shift(lambda b: (b[:-1], b[1:]))
    assert not wrong_dim.passed and "dimension 1" in " ".join(wrong_dim.messages)
    two_off = check_block_shift(lambda b: (b[:, :-1], torch.roll(b, -2, dims=1)[:, :-1]))
    assert not two_off.passed
    assert check_block_shift(lambda b: None).status == "not attempted"


def test_bpe_merge_check():
    assert check_bpe_merge(merge_pair).passed  # the package's own merge is the right answer

    def overlapping(ids, pair, new_id):  # merges [1, 1, 1] into [n, n]: pairs share a token
        out = list(ids)
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == pair:
                out[i] = new_id
        return [t for i, t in enumerate(out) if not (i > 0 and out[i - 1] == new_id
                                                     and ids[i] == pair[1] and t != new_id)]

    def first_only(ids, pair, new_id):
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == pair:
                return ids[:i] + [new_id] + ids[i + 2:]
        return ids

    def unordered(ids, pair, new_id):  # treats (2, 1) as the pair (1, 2)
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and {ids[i], ids[i + 1]} == set(pair):
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    for wrong in (overlapping, first_only, unordered, lambda ids, pair, new_id: ids):
        result = check_bpe_merge(wrong)
        assert not result.passed, f"{wrong.__name__} should fail the merge check"
    assert "only the first" in " ".join(check_bpe_merge(first_only).messages)
    assert check_bpe_merge(lambda ids, pair, new_id: None).status == "not attempted"
