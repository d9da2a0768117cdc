"""The number-translation task, the encoder-decoder Transformer, its training and the chapter's checks."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch.nn import functional as F

from aigc_lessons.checks.seq2seq import check_normalised_score, check_shift_targets
from aigc_lessons.models.seq2seq import CrossAttention, Seq2SeqTransformer
from aigc_lessons.text.translation_task import (
    SOURCE_CHARACTERS,
    TARGET_CHARACTERS,
    CharTokenizer,
    NumberTranslationTask,
    number_to_words,
)
from aigc_lessons.train.seq2seq import (
    Seq2SeqConfig,
    encode_pairs,
    shift_targets,
    train_seq2seq,
    translation_loss,
)

WORDS, DIGITS = CharTokenizer(SOURCE_CHARACTERS), CharTokenizer(TARGET_CHARACTERS)


@pytest.fixture(scope="module")
def small_task():
    return NumberTranslationTask(max_value=9999, seed=3)


def tiny_model(seed: int = 0, source_length: int = 40) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    return Seq2SeqTransformer(len(WORDS), len(DIGITS), source_length, 6, embed_dim=32, heads=4,
                              encoder_layers=1, decoder_layers=2).eval()


# --------------------------------------------------------------------------- the task

@pytest.mark.parametrize("value, words", [
    (0, "zero"), (7, "seven"), (42, "forty-two"), (100, "one hundred"),
    (105, "one hundred and five"), (1005, "one thousand and five"),
    (342506, "three hundred and forty-two thousand five hundred and six"),
    (999999, "nine hundred and ninety-nine thousand nine hundred and ninety-nine")])
def test_number_to_words_known_cases(value, words):
    assert number_to_words(value) == words


def test_number_to_words_styles():
    assert number_to_words(1998, in_hundreds=True) == "nineteen hundred and ninety-eight"
    assert number_to_words(2000, in_hundreds=True) == "two thousand", "no 'twenty hundred'"
    assert number_to_words(1100, a_hundred=True) == "a thousand one hundred"
    assert number_to_words(42, hyphen=False) == "forty two"
    assert number_to_words(5006, comma=True, use_and=False) == "five thousand, six"


@pytest.mark.parametrize("value", [-1, 1_000_000, 2.5, True, "12"])
def test_number_to_words_rejects_bad_values(value):
    with pytest.raises(ValueError, match="value"):
        number_to_words(value)


def test_task_is_deterministic_from_its_seed(small_task):
    again = NumberTranslationTask(max_value=9999, seed=3)
    other = NumberTranslationTask(max_value=9999, seed=4)
    assert (again.values("test") == small_task.values("test")).all()
    assert again.examples("test", 50) == small_task.examples("test", 50)
    assert again.sample("train", 20, random.Random(5)) == small_task.sample("train", 20,
                                                                             random.Random(5))
    assert set(other.values("test").tolist()) != set(small_task.values("test").tolist())


def test_splits_are_disjoint_by_value_and_cover_every_value(small_task):
    splits = {s: set(small_task.values(s).tolist()) for s in ("train", "validation", "test")}
    assert not splits["train"] & splits["test"], "a test value is also a training value"
    assert not splits["train"] & splits["validation"] and not splits["validation"] & splits["test"]
    assert set.union(*splits.values()) == set(range(10_000))
    assert abs(len(splits["test"]) - 1000) <= 4, "about 10% of the values are test values"
    for split, values in splits.items():
        drawn = {int(digits) for _, digits in small_task.examples(split, 300)}
        assert drawn <= values, f"an example of {split} has a value of another split"
        assert {len(str(v)) for v in drawn} == {1, 2, 3, 4} or split != "train"


def test_examples_hold_noise_but_spell_their_number(small_task):
    pairs = small_task.examples("train", 400)
    exact = sum(words == number_to_words(int(digits)) for words, digits in pairs)
    assert exact < 200, "most examples should differ from the one canonical spelling"
    assert any("," in words for words, _ in pairs) and any(" hundred " in w for w, _ in pairs)
    for words, _ in pairs:
        assert set(words) <= set(SOURCE_CHARACTERS)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_value": 1_000_000}, "max_value"), ({"typo_rate": 1.0}, "typo_rate"),
    ({"test_fraction": 0.5, "validation_fraction": 0.45}, "below 0.9"), ({"seed": -1}, "seed")])
def test_task_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NumberTranslationTask(**kwargs)


def test_task_rejects_bad_calls(small_task):
    with pytest.raises(ValueError, match="split must be one of"):
        small_task.values("dev")
    with pytest.raises(ValueError, match="random.Random"):
        small_task.sample("train", 3, 0)
    with pytest.raises(ValueError, match="count"):
        small_task.sample("train", 0, random.Random(0))


def test_tokenizer_round_trip_and_errors():
    ids = WORDS.encode("forty-two", start=True, end=True)
    assert ids[0] == CharTokenizer.START and ids[-1] == CharTokenizer.END
    assert WORDS.decode(ids + [CharTokenizer.PAD] * 3) == "forty-two"
    with pytest.raises(ValueError, match="outside the tokenizer's alphabet"):
        WORDS.encode("Forty-two")
    with pytest.raises(ValueError, match="raise length"):
        DIGITS.batch(["123456"], 5, end=True)
    with pytest.raises(ValueError, match="distinct"):
        CharTokenizer("aab")


def test_shift_targets_puts_start_in_the_input_and_end_in_the_target():
    target_in, target_out = shift_targets(["42", "7"], DIGITS, 4)
    four, two, seven = (DIGITS.encode(c)[0] for c in "427")
    assert target_in.tolist() == [[1, four, two, 0], [1, seven, 0, 0]]
    assert target_out.tolist() == [[four, two, 2, 0], [seven, 2, 0, 0]]


# --------------------------------------------------------------------------- the model

def test_model_shapes_and_cross_attention_weights():
    model = tiny_model()
    source = WORDS.batch(["forty-two", "seven hundred"], 40)
    target_in = torch.ones(2, 5, dtype=torch.long)
    assert model(source, target_in).shape == (2, 5, len(DIGITS))
    memory, mask = model.encode(source)
    assert memory.shape == (2, 40, 32) and mask.sum(1).tolist() == [9, 13]
    logits, weights = model.decode(target_in, memory, mask, return_weights=True)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 5, 40)
    assert torch.allclose(weights[0].sum(-1), torch.ones(2, 4, 5), atol=1e-5)
    assert float(weights[1][0, :, :, 9:].detach().abs().max()) == 0.0, "a pad position got attention"


def test_cross_attention_queries_from_x_keys_from_memory():
    torch.manual_seed(0)
    attention = CrossAttention(8, heads=2)
    x, memory = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    output, weights = attention(x, memory, torch.ones(3, 6, dtype=torch.bool), return_weights=True)
    assert output.shape == (3, 4, 8) and weights.shape == (3, 2, 4, 6)
    q = attention.query(x).view(3, 4, 2, 4).transpose(1, 2)
    k, v = attention.key_value(memory).split(8, dim=2)
    k, v = (t.view(3, 6, 2, 4).transpose(1, 2) for t in (k, v))
    expected = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1) @ v
    expected = attention.proj(expected.transpose(1, 2).reshape(3, 4, 8))
    assert torch.allclose(output, expected, atol=1e-6)


def test_decoder_output_at_t_does_not_depend_on_later_target_tokens():
    model = tiny_model()
    source = WORDS.batch(["three thousand and six"], 40)
    target_in = torch.tensor([[1, 6, 3, 3, 9, 4]])
    changed = target_in.clone()
    changed[0, 3:] = torch.tensor([11, 5, 8])
    before, after = model(source, target_in), model(source, changed)
    assert torch.allclose(before[:, :3], after[:, :3], atol=1e-6), "the decoder saw the future"
    assert not torch.allclose(before[:, 3:], after[:, 3:]), "later positions should change"


def test_translation_does_not_depend_on_the_rest_of_the_batch():
    model = tiny_model()
    alone = WORDS.batch(["forty-two"], 40)
    batch = WORDS.batch(["forty-two", "nine hundred and ninety-nine thousand"], 40)
    target_in = torch.tensor([[1, 7, 5]])
    assert torch.allclose(model(alone, target_in)[0], model(batch, target_in.repeat(2, 1))[0],
                          atol=1e-5)


def test_model_rejects_bad_input():
    model = tiny_model()
    with pytest.raises(ValueError, match="padded to source_length"):
        model(WORDS.batch(["six"], 30), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="ids must lie in"):
        model(WORDS.batch(["six"], 40), torch.full((1, 2), 99))
    with pytest.raises(ValueError, match="1 to target_length"):
        model(WORDS.batch(["six"], 40), torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one token"):
        model.encode(torch.zeros(1, 40, dtype=torch.long))
    with pytest.raises(ValueError, match="beam_width"):
        model.beam_search(WORDS.batch(["six"], 40)[0], beam_width=0)
    with pytest.raises(ValueError, match="pad_id, start_id and end_id"):
        Seq2SeqTransformer(10, 10, 8, 4, embed_dim=8, heads=2, end_id=1)


def test_loss_ignores_padding():
    model = tiny_model()
    source, target_in, target_out = encode_pairs([("forty-two", "42"), ("six", "6")], WORDS,
                                                 DIGITS, 40, 6)
    loss = translation_loss(model, source, target_in, target_out)
    logits = model(source, target_in)
    real = target_out != CharTokenizer.PAD
    by_hand = F.cross_entropy(logits[real], target_out[real])
    assert torch.allclose(loss, by_hand, atol=1e-6)
    assert int(real.sum()) == 5, "42</s> and 6</s>: five real target tokens"
    # what stands in the decoder's input after the end changes nothing
    garbage = target_in.clone()
    garbage[target_in == CharTokenizer.PAD] = 7
    assert torch.allclose(translation_loss(model, source, garbage, target_out), loss, atol=1e-6)


def test_greedy_equals_beam_search_of_width_one():
    model = tiny_model(seed=1)
    source = WORDS.batch(["forty-two", "six hundred", "nineteen hundred and five", "zero"], 40)
    greedy = model.greedy_decode(source)
    for row, expected in zip(source, greedy):
        (best, _), = model.beam_search(row, beam_width=1)
        assert best == expected
    hypotheses = model.beam_search(source[0], beam_width=3)
    scores = [score for _, score in hypotheses]
    assert scores == sorted(scores, reverse=True) and len(hypotheses) >= 3


def test_beam_search_scores_are_length_normalised_log_probabilities():
    model = tiny_model(seed=2)
    source = WORDS.batch(["seven"], 40)
    for penalty in (0.0, 1.0):
        for ids, score in model.beam_search(source[0], beam_width=3, length_penalty=penalty):
            target = ids + [CharTokenizer.END] if len(ids) < 5 else ids
            target_in = torch.tensor([[CharTokenizer.START] + target[:-1]])
            with torch.no_grad():
                log_probs = model(source, target_in).log_softmax(-1)[0]
            total = float(log_probs[torch.arange(len(target)), torch.tensor(target)].sum())
            assert math.isclose(score, total / len(target) ** penalty, rel_tol=1e-4,
                                abs_tol=1e-5)


# --------------------------------------------------------------------------- training

def test_config_checks_its_ranges():
    with pytest.raises(ValueError, match="batch_size"):
        Seq2SeqConfig(batch_size=0)
    with pytest.raises(ValueError, match="multiple of eval_every"):
        Seq2SeqConfig(steps=10, eval_every=3)
    with pytest.raises(ValueError, match="label_smoothing"):
        Seq2SeqConfig(label_smoothing=1.0)


def test_a_short_training_run_lowers_the_loss():
    task = NumberTranslationTask(max_value=99, typo_rate=0.0, seed=0)
    model = tiny_model(source_length=24)
    config = Seq2SeqConfig(steps=60, batch_size=32, lr=3e-3, warmup_steps=5, eval_every=30,
                           eval_examples=40, log_every=10)
    history = train_seq2seq(model, task, WORDS, DIGITS, config, device="cpu", progress=False)
    losses = history.series("loss")
    assert losses[-1] < 0.6 * losses[0], f"the loss did not fall: {losses}"
    nats = history.series("val_nats")
    assert nats[-1] < nats[0]


# --------------------------------------------------------------------------- the checks

def test_check_shift_targets_accepts_right_and_rejects_wrong():
    def right(ids, length):
        return ([1] + ids + [0] * length)[:length], (ids + [2] + [0] * length)[:length]

    def swapped(ids, length):
        a, b = right(ids, length)
        return b, a

    def no_end(ids, length):
        return right(ids, length)[0], (ids + [0] * length)[:length]

    assert check_shift_targets(right).passed
    result = check_shift_targets(swapped)
    assert not result.passed and "swapped" in " ".join(result.messages)
    assert not check_shift_targets(no_end).passed
    assert check_shift_targets(lambda ids, length: None).status == "not attempted"


def test_check_normalised_score_accepts_right_and_rejects_wrong():
    assert check_normalised_score(lambda lp, alpha: sum(lp) / len(lp) ** alpha).passed
    raw = check_normalised_score(lambda lp, alpha: sum(lp))
    assert not raw.passed and "raw log-probability" in " ".join(raw.messages)
    minus_one = check_normalised_score(lambda lp, alpha: sum(lp) / (len(lp) - 1) ** alpha)
    assert not minus_one.passed and "end token included" in " ".join(minus_one.messages)
