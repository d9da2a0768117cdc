"""Attention weights of a GPT, per layer and head, for looking at what a trained model attends to.

:class:`~aigc_lessons.models.gpt.CausalSelfAttention` returns only its output, and its fused
path (``F.scaled_dot_product_attention``) never forms the weight matrix at all. The
functions here recompute the weights from the layer's own query and key projection:
:func:`layer_attention_weights` for one layer and its input, :func:`attention_weights` for
every layer of a :class:`~aigc_lessons.models.GPT` at once, the input of each layer caught
by a forward pre-hook during one ordinary forward pass (the hooks are removed afterwards).

Shapes: ``softmax(q k^T / sqrt(d))`` with the causal mask, ``(B, heads, T, T)`` for one
layer; row ``t`` holds the weights position ``t`` gives to positions ``0 .. T-1`` (zero
after ``t`` when the layer is causal) and sums to 1.

Example:
    >>> from aigc_lessons.models import GPT
    >>> model = GPT(vocab_size=5, context_length=8, embed_dim=8, heads=2, layers=3)
    >>> attention_weights(model, torch.tensor([1, 2, 3, 4])).shape
    torch.Size([3, 2, 4, 4])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models.gpt import CausalSelfAttention

__all__ = ["attention_weights", "layer_attention_weights"]


def layer_attention_weights(layer: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """The attention weights ``(B, heads, T, T)`` of ``layer`` on its input ``x`` ``(B, T, C)``.

    The same queries, keys, scaling and mask as ``layer.forward`` (without a cache and
    without dropout), so ``weights @ values`` is what the layer mixes before its output
    projection.

    Example:
        >>> layer = CausalSelfAttention(embed_dim=8, heads=2, context_length=4)
        >>> weights = layer_attention_weights(layer, torch.randn(1, 3, 8))
        >>> weights.shape, bool(weights[0, 0, 0, 1] == 0)
        (torch.Size([1, 2, 3, 3]), True)
    """
    if not isinstance(layer, CausalSelfAttention):
        raise ValueError(f"layer must be a CausalSelfAttention, got {type(layer).__name__}")
    if x.dim() != 3 or x.shape[-1] != layer.heads * layer.head_dim:
        raise ValueError(f"x must have shape (batch, time, {layer.heads * layer.head_dim}), "
                         f"got {tuple(x.shape)}")
    batch, time, channels = x.shape
    if time > layer.mask.shape[0]:
        raise ValueError(f"{time} positions do not fit the layer's context of "
                         f"{layer.mask.shape[0]}; crop x to its last positions")
    q, k, _ = layer.qkv(x).split(channels, dim=2)
    q, k = (t.view(batch, time, layer.heads, layer.head_dim).transpose(1, 2) for t in (q, k))
    scores = q @ k.transpose(-2, -1) / math.sqrt(layer.head_dim)
    if layer.causal:
        scores = scores.masked_fill(~layer.mask[:time, :time], float("-inf"))
    return torch.softmax(scores, dim=-1)


@torch.no_grad()
def attention_weights(model: nn.Module, tokens) -> torch.Tensor:
    """The weights of every head of every layer of ``model`` on ``tokens``.

    ``tokens``: a list or 1-D tensor of ids (result ``(layers, heads, T, T)``) or a
    ``(B, T)`` tensor (result ``(B, layers, heads, T, T)``). The model runs once in
    evaluation mode (no dropout) and is put back in the mode it was in.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(vocab_size=5, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> weights = attention_weights(model, [0, 1, 2])
        >>> torch.allclose(weights.sum(-1), torch.ones(1, 2, 3))
        True
    """
    layers = [module for module in model.modules() if isinstance(module, CausalSelfAttention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no CausalSelfAttention layer; pass a GPT "
                         f"from aigc_lessons.models")
    device = next(model.parameters()).device
    ids = torch.as_tensor(tokens, dtype=torch.long, device=device)
    one_sequence = ids.dim() == 1
    if one_sequence:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ValueError(f"tokens must be a non-empty list, 1-D tensor or (batch, time) tensor "
                         f"of token ids, got shape {tuple(ids.shape)}")
    inputs: dict[int, torch.Tensor] = {}

    def keep_input(index: int):
        def hook(module, args):
            inputs[index] = args[0]
        return hook

    handles = [layer.register_forward_pre_hook(keep_input(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        model(ids)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    weights = torch.stack([layer_attention_weights(layer, inputs[i])
                           for i, layer in enumerate(layers)], dim=1)  # (B, layers, heads, T, T)
    return weights[0] if one_sequence else weights
