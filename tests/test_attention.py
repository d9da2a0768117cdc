"""The attention chapter: the attention-map helpers and the exercises' self-checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from aigc_lessons.checks.attention import check_causal_attention, check_heads, check_score_scale
from aigc_lessons.models import GPT
from aigc_lessons.models.gpt import CausalSelfAttention
from aigc_lessons.text.attention_maps import attention_weights, layer_attention_weights

# --------------------------------------------------------------------------- attention maps


def small_gpt(**kwargs) -> GPT:
    torch.manual_seed(0)
    settings = {"vocab_size": 11, "context_length": 12, "embed_dim": 16, "heads": 4, "layers": 3}
    settings.update(kwargs)
    return GPT(**settings).eval()


@pytest.mark.parametrize("causal", [True, False])
def test_the_recomputed_weights_give_the_layers_own_output(causal):
    torch.manual_seed(1)
    layer = CausalSelfAttention(embed_dim=16, heads=4, context_length=8, causal=causal).eval()
    x = torch.randn(2, 6, 16)
    weights = layer_attention_weights(layer, x)
    values = layer.qkv(x).split(16, dim=2)[2].view(2, 6, 4, 4).transpose(1, 2)
    rebuilt = layer.proj((weights @ values).transpose(1, 2).reshape(2, 6, 16))
    assert torch.allclose(rebuilt, layer(x), atol=1e-6), "weights @ values is not the layer output"
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 6), atol=1e-6), "rows must sum to 1"
    above = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    if causal:
        assert (weights[..., above] == 0).all(), "a causal layer gave weight to a later position"
    else:
        assert (weights[..., above] > 0).all(), "an unmasked layer should see every position"


@pytest.mark.parametrize("fused", [False, True])
def test_the_weights_of_every_layer_match_the_hooked_inputs(fused):
    model = small_gpt(fused_attention=fused)
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1]])
    weights = attention_weights(model, tokens)
    assert weights.shape == (2, 3, 4, 7, 7)
    # layer by layer by hand: the input of block i's attention is norm1 of the residual stream
    x = model.token_embedding(tokens) + model.position_embedding(torch.arange(7))
    with torch.no_grad():
        for index, block in enumerate(model.blocks):
            expected = layer_attention_weights(block.attention, block.norm1(x))
            assert torch.allclose(weights[:, index], expected, atol=1e-6), f"layer {index} differs"
            x = block(x)
    single = attention_weights(model, [1, 2, 3])
    assert single.shape == (3, 4, 3, 3), "a 1-D prompt gives (layers, heads, T, T)"
    assert torch.allclose(single, weights[0, :, :, :3, :3], atol=1e-6), \
        "the weights of a prefix must not depend on later tokens (the mask)"


def test_the_model_keeps_its_mode_and_no_hook_is_left_behind():
    model = small_gpt(dropout=0.1).train()
    attention_weights(model, [1, 2, 3])
    assert model.training, "the model should be back in training mode"
    assert all(not block.attention._forward_pre_hooks for block in model.blocks), "a hook remained"


def test_bad_inputs_are_refused_with_a_clear_message():
    model = small_gpt()
    with pytest.raises(ValueError, match="no CausalSelfAttention"):
        attention_weights(torch.nn.Linear(2, 2), [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        attention_weights(model, [])
    with pytest.raises(ValueError, match="do not fit the context"):
        attention_weights(model, list(range(11)) + [0, 1])
    layer = model.blocks[0].attention
    with pytest.raises(ValueError, match=r"shape \(batch, time, 16\)"):
        layer_attention_weights(layer, torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="must be a CausalSelfAttention"):
        layer_attention_weights(torch.nn.Linear(16, 16), torch.randn(1, 3, 16))


# --------------------------------------------------------------------------- self-checks


def causal_attention(q, k, v):
    time = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.tril(torch.ones(time, time, dtype=torch.bool))
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


def attention_with_mask_diagonal(diagonal: int, fill: float = float("-inf")):
    def attend(q, k, v):
        time = q.shape[-2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        allowed = torch.tril(torch.ones(time, time, dtype=torch.bool), diagonal=diagonal)
        return torch.softmax(scores.masked_fill(~allowed, fill), dim=-1) @ v
    return attend


def test_causal_attention_check_accepts_right_answers():
    assert check_causal_attention(causal_attention).passed
    fused = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    assert check_causal_attention(fused).passed


@pytest.mark.parametrize("wrong, words", [
    (attention_with_mask_diagonal(1), "sees t + 1"),
    (attention_with_mask_diagonal(-1, fill=-1e9), "does not see itself"),
    (attention_with_mask_diagonal(-1), "NaN"),
    (lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v,
     "no mask"),
    (lambda q, k, v: causal_attention(q * math.sqrt(q.shape[-1]), k, v), "not scaled"),
    (lambda q, k, v: causal_attention(q / math.sqrt(q.shape[-1]), k, v), "divided by d"),
])
def test_causal_attention_check_rejects_typical_mistakes(wrong, words):
    result = check_causal_attention(wrong)
    assert not result.passed, "a wrong attention passed"
    assert any(words in message for message in result.messages), result.messages


def test_the_leak_test_catches_a_future_peek_that_the_values_alone_would_miss():
    # right on the test cases' outputs is impossible to fake, but a leak is named as such
    result = check_causal_attention(attention_with_mask_diagonal(1))
    assert any("leak test" in message for message in result.messages), result.messages
    assert result.score < result.max_score


def test_causal_attention_check_handles_the_placeholder_and_errors():
    assert check_causal_attention(lambda q, k, v: None).status == "not attempted"
    result = check_causal_attention(lambda q, k, v: q[:, 0])
    assert not result.passed and any("shape" in message for message in result.messages)

    def raises(q, k, v):
        raise RuntimeError("boom")
    assert any("raised RuntimeError" in m for m in check_causal_attention(raises).messages)


def split_heads(x, heads):
    batch, time, channels = x.shape
    return x.view(batch, time, heads, channels // heads).transpose(1, 2)


def merge_heads(y):
    batch, heads, time, d = y.shape
    return y.transpose(1, 2).reshape(batch, time, heads * d)


def test_heads_check_accepts_the_modules_layout():
    assert check_heads(split_heads, merge_heads).passed


def test_heads_check_rejects_a_view_that_mixes_positions_and_a_strided_split():
    def mixed(x, heads):
        batch, time, channels = x.shape
        return x.reshape(batch, heads, time, channels // heads)

    def strided(x, heads):
        batch, time, channels = x.shape
        return x.view(batch, time, channels // heads, heads).permute(0, 3, 1, 2)

    def merge_without_transpose(y):
        batch, heads, time, d = y.shape
        return y.reshape(batch, time, heads * d)

    result = check_heads(mixed, merge_heads)
    assert not result.passed and any("mixes positions" in m for m in result.messages)
    result = check_heads(strided, merge_heads)
    assert not result.passed and any("contiguous slice" in m for m in result.messages)
    result = check_heads(split_heads, merge_without_transpose)
    assert not result.passed and any("transpose(1, 2) back" in m for m in result.messages)
    assert result.score == pytest.approx(0.5), "the right split earns half the credit"
    assert check_heads(lambda x, h: None, lambda y: None).status == "not attempted"


def test_score_scale_check():
    assert check_score_scale(lambda d, sq, sk: 1 / (math.sqrt(d) * sq * sk)).passed
    result = check_score_scale(lambda d, sq, sk: 1 / math.sqrt(d))
    assert not result.passed and any("standard deviations also" in m for m in result.messages)
    result = check_score_scale(lambda d, sq, sk: 1 / (d * sq * sk))
    assert not result.passed and any("square root" in m for m in result.messages)
    result = check_score_scale(lambda d, sq, sk: 1 / (math.sqrt(d) * sq**2 * sk**2))
    assert not result.passed and any("not by the variances" in m for m in result.messages)
    assert check_score_scale(lambda d, sq, sk: None).status == "not attempted"


def test_the_scale_of_the_check_gives_unit_variance_empirically():
    generator = torch.Generator().manual_seed(0)
    d, query_std, key_std = 64, 2.0, 0.5
    q = torch.randn(20000, d, generator=generator) * query_std
    k = torch.randn(20000, d, generator=generator) * key_std
    scores = (q * k).sum(-1) / (math.sqrt(d) * query_std * key_std)
    assert abs(float(scores.var()) - 1) < 0.05
