"""The decoding chapter: measures of generated text (text/sample_quality.py) and its self-checks."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons.checks.decoding import check_distinct_n, check_entropy_at_temperature, check_top_p
from aigc_lessons.models import GPT
from aigc_lessons.text.decoding import beam_search, greedy_decode
from aigc_lessons.text.ngram import CharNGramModel
from aigc_lessons.text.sample_quality import (
    MEASURES,
    distinct_n,
    gpt_log_likelihood,
    judge_log_likelihood,
    known_word_share,
    measure_continuations,
    repetition_rate,
    sample_continuations,
    words,
)
from aigc_lessons.text.tokens import CharVocab

VOCAB = CharVocab("\n !',.:?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def small_gpt(vocab_size: int = len(VOCAB), context_length: int = 8) -> GPT:
    torch.manual_seed(0)
    return GPT(vocab_size=vocab_size, context_length=context_length, embed_dim=16, heads=2,
               layers=2).eval()


# --------------------------------------------------------------------------- text measures


def test_words_are_lower_case_letter_runs_with_inner_apostrophes():
    assert words("O Romeo, ROMEO! 'Tis o'er -- 3 times.") == [
        "o", "romeo", "romeo", "tis", "o'er", "times"]


@pytest.mark.parametrize("text, n, expected", [
    ("to be or not to be", 1, 4 / 6),   # to, be twice
    ("to be or not to be", 2, 4 / 5),   # "to be" twice among 5 bigrams
    ("to be or not to be", 3, 1.0),     # four different trigrams
    ("la la la la la", 2, 1 / 4),
    ("hence", 2, 0.0),                  # no bigram at all
])
def test_distinct_n_on_hand_counted_texts(text, n, expected):
    assert distinct_n(text, n) == pytest.approx(expected), f"distinct-{n} of {text!r}"


def test_distinct_n_pools_a_list_without_n_grams_across_texts():
    # "be to" would only exist if the two texts were glued together
    assert distinct_n(["to be", "to be"], 2) == pytest.approx(1 / 2)
    assert distinct_n(["to be", "or not"], 2) == pytest.approx(1.0)


@pytest.mark.parametrize("text, length, expected", [
    ("abcabc", 3, 3 / 6),
    ("abcdefgh", 4, 0.0),
    ("aaaaaa", 2, 5 / 6),        # every window from position 1 on was seen at the start
    ("abcXabcYabc", 3, 6 / 11),  # two later copies of "abc"
    ("ab", 5, 0.0),              # shorter than one window
    ("", 3, 0.0),
])
def test_repetition_rate_on_hand_marked_texts(text, length, expected):
    assert repetition_rate(text, length) == pytest.approx(expected), f"{text!r}, length {length}"


def test_known_word_share_counts_words_not_characters():
    vocabulary = {"thou", "art", "a", "villain"}
    assert known_word_share("Thou art a villain, grumblekin!", vocabulary) == pytest.approx(4 / 5)
    assert known_word_share(["thou art", "zzz"], vocabulary) == pytest.approx(2 / 3)
    assert known_word_share("...", vocabulary) == 0.0


@pytest.mark.parametrize("call, message", [
    (lambda: distinct_n("a b", 0), "n must be an integer >= 1"),
    (lambda: repetition_rate("abc", length=0), "length must be an integer >= 1"),
    (lambda: repetition_rate(["abc"], length=2), "text must be a string"),
    (lambda: distinct_n([1, 2], 1), "a string or a list of strings"),
])
def test_bad_arguments_of_the_measures_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- likelihoods


def _loop_log_likelihood(model: GPT, ids: list[int], start: int) -> float:
    """One forward pass per token on its own window: slow, obviously right."""
    total = 0.0
    for t in range(start, len(ids)):
        window = torch.tensor(ids[max(0, t - model.context_length) : t])[None]
        total += model(window)[0, -1].log_softmax(-1)[ids[t]].item()
    return total


@pytest.mark.parametrize("length, start", [(6, 1), (6, 3), (20, 1), (20, 5), (20, 12)])
def test_gpt_log_likelihood_equals_token_by_token_scoring_also_past_the_context(length, start):
    model = small_gpt(context_length=8)
    ids = torch.randint(0, len(VOCAB), (length,), generator=torch.Generator().manual_seed(1))
    total, count = gpt_log_likelihood(model, ids, start, batch_size=3)
    assert count == length - start
    with torch.no_grad():
        expected = _loop_log_likelihood(model, ids.tolist(), start)
    assert total == pytest.approx(expected, abs=1e-4), "the windows differ from sampling's"


def test_gpt_log_likelihood_of_a_beam_is_the_beam_search_score_and_keeps_the_mode():
    model = small_gpt(context_length=8)
    prompt = VOCAB.encode("to be")
    beam, score = beam_search(model, prompt, 10, beam_width=3)[0]
    model.train()
    total, count = gpt_log_likelihood(model, beam, start=len(prompt))
    assert model.training, "gpt_log_likelihood must restore the training mode"
    assert count == 10 and total == pytest.approx(score, abs=1e-4)


def test_judge_log_likelihood_scores_the_continuation_given_the_prompt():
    ids = [0, 1, 2, 0, 1, 2, 0, 2, 1, 1]
    judge = CharNGramModel(order=3, vocab_size=3).fit([0, 1, 2] * 30 + [1, 1, 0])
    total, count = judge_log_likelihood(judge, ids, start=4)
    expected = sum(math.log(judge.distribution(ids[:t])[ids[t]]) for t in range(4, len(ids)))
    assert count == 6 and total == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("start", [0, 6, 1.5, True])
def test_a_start_outside_the_sequence_is_refused(start):
    model = small_gpt()
    with pytest.raises(ValueError, match="start must be an integer in"):
        gpt_log_likelihood(model, [1, 2, 3, 4, 5, 6], start)


# --------------------------------------------------------------------------- sampling strategies


def test_sample_continuations_follows_each_strategy():
    model = small_gpt(context_length=16)
    prompt = "to be"
    ids = VOCAB.encode(prompt)
    greedy = sample_continuations(model, VOCAB, prompt, 12, {"greedy": True}, samples=3)
    assert greedy == [VOCAB.decode(greedy_decode(model, ids, 12)[len(ids):].tolist())]
    beam = sample_continuations(model, VOCAB, prompt, 12, {"beam_width": 3})
    assert beam == [VOCAB.decode(beam_search(model, ids, 12, 3)[0][0][len(ids):].tolist())]
    settings = {"temperature": 1.3, "top_p": 0.9}
    first = sample_continuations(model, VOCAB, prompt, 12, settings, samples=4, seed=5)
    again = sample_continuations(model, VOCAB, prompt, 12, settings, samples=4, seed=5)
    other = sample_continuations(model, VOCAB, prompt, 12, settings, samples=4, seed=6)
    assert len(first) == 4 and all(len(text) == 12 for text in first)
    assert first == again and first != other, "the seed must fix the samples, and only it"


@pytest.mark.parametrize("strategy, message", [
    ({"temprature": 0.8}, "unknown strategy keys"),
    ({"temperature": 0}, "temperature must be a finite number > 0"),
    ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\]"),
])
def test_bad_strategies_are_refused_with_what_to_do(strategy, message):
    with pytest.raises(ValueError, match=message):
        sample_continuations(small_gpt(), VOCAB, "to", 4, strategy)


def test_a_loop_measures_as_repetitive_and_a_varied_text_does_not():
    model = small_gpt(context_length=16)
    training = "to be or not to be, that is the question: whether tis nobler in the mind"
    judge = CharNGramModel(order=3, vocab_size=len(VOCAB)).fit(VOCAB.encode(training))
    vocabulary = set(words(training))
    loop = measure_continuations([("to", " be or not" * 6)], model, VOCAB, judge, vocabulary, 10)
    varied = measure_continuations([("to", " be, that is the question: whether tis nobler")],
                                   model, VOCAB, judge, vocabulary, 10)
    assert set(loop) == set(MEASURES)
    assert loop["repetition"] > 0.7 and varied["repetition"] == 0.0
    assert loop["distinct_2"] < 0.3 and varied["distinct_2"] == 1.0
    assert varied["known_words"] == 1.0 and loop["gpt_nats"] > 0 and loop["judge_nats"] > 0


# --------------------------------------------------------------------------- self-checks


def right_top_p(logits, p):
    if p >= 1:
        return logits.clone()
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    drop = probs.cumsum(-1) - probs >= p
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_that_drops_the_crossing_token(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    drop = probs.cumsum(-1) > p
    drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_with_one_token_too_many(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    before = probs.cumsum(-1) - probs
    drop = before - torch.cat([torch.zeros_like(probs[..., :1]), probs[..., :-1]], -1) >= p
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_without_sorting(logits, p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))


def top_p_returning_probabilities(logits, p):
    return right_top_p(logits, p).softmax(-1)


def top_p_without_the_p_equals_one_case(logits, p):
    probs, order = logits.softmax(-1).sort(-1, descending=True)
    drop = probs.cumsum(-1) - probs >= p - 1e-7  # a tolerance that bites at p = 1
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_in_place(logits, p):
    mask = ~right_top_p(logits, p).isfinite()
    logits[mask] = float("-inf")
    return logits


def test_the_top_p_check_passes_a_right_answer_and_filter_logits_itself():
    from aigc_lessons.text.decoding import filter_logits

    assert check_top_p(right_top_p).passed, str(check_top_p(right_top_p))
    assert check_top_p(lambda logits, p: filter_logits(logits, top_p=p)).passed


@pytest.mark.parametrize("wrong, hint", [
    (top_p_that_drops_the_crossing_token, "carries the total past p"),
    (top_p_with_one_token_too_many, "one token too many"),
    (top_p_without_sorting, "sort the tokens by probability"),
    (top_p_returning_probabilities, "not probabilities"),
    (top_p_without_the_p_equals_one_case, "with p = 1 every token must survive"),
    (top_p_in_place, "changed its input in place"),
])
def test_the_top_p_check_rejects_typical_mistakes_and_says_which(wrong, hint):
    result = check_top_p(wrong)
    assert not result.passed, f"{wrong.__name__} passed the check"
    assert any(hint in message for message in result.messages), result.messages


def test_the_top_p_check_counts_the_placeholder_as_not_attempted():
    assert check_top_p(lambda logits, p: None).status == "not attempted"


def right_entropy(logits, temperature):
    log_probs = (logits / temperature).log_softmax(-1)
    return -(log_probs.exp() * log_probs).sum()


def naive_entropy(logits, temperature):
    probs = torch.exp(logits / temperature) / torch.exp(logits / temperature).sum()
    return -(probs * probs.log()).sum()


@pytest.mark.parametrize("wrong, hint", [
    (naive_entropy, "NaN"),
    (lambda logits, t: right_entropy(logits, t) / math.log(2), "in bits"),
    (lambda logits, t: right_entropy(logits * t * t, t), "multiplied the logits"),
    (lambda logits, t: -right_entropy(logits, t), "sign is flipped"),
])
def test_the_entropy_check_passes_a_right_answer_and_rejects_mistakes(wrong, hint):
    assert check_entropy_at_temperature(right_entropy).passed
    result = check_entropy_at_temperature(wrong)
    assert not result.passed
    assert any(hint in message for message in result.messages), result.messages


def right_distinct(tokens, n):
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_over_words(tokens, n):
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(tokens)


def distinct_as_hapaxes(tokens, n):
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return sum(grams.count(g) == 1 for g in set(grams)) / len(grams) if grams else 0.0


@pytest.mark.parametrize("wrong, hint", [
    (distinct_over_words, "divided by the number of words"),
    (distinct_as_hapaxes, "exactly once"),
    (lambda tokens, n: len({tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}),
     "number of distinct n-grams"),
    (lambda tokens, n: len(set(zip(*[tokens[i:] for i in range(n)]))) / (len(tokens) - n + 1),
     "return 0.0"),
])
def test_the_distinct_n_check_passes_a_right_answer_and_rejects_mistakes(wrong, hint):
    assert check_distinct_n(right_distinct).passed
    assert check_distinct_n(lambda tokens, n: distinct_n(" ".join(tokens), n)).passed
    result = check_distinct_n(wrong)
    assert not result.passed
    assert any(hint in message for message in result.messages), result.messages
