"""A character-level GPT: a decoder-only Transformer that predicts the next token.

Vaswani et al. (2017), "Attention Is All You Need", for the Transformer; Radford et al.
(2018, 2019) for the decoder-only language model (GPT, GPT-2), whose pre-norm block this
file follows; the layout is that of Karpathy's nanoGPT ``model.py``. Read top to bottom:

* :class:`CausalSelfAttention`: every position ``t`` forms a query ``q_t``, a key ``k_t`` and a
  value ``v_t``; its output is ``sum_s softmax_s(q_t . k_s / sqrt(d)) v_s`` over the
  positions ``s <= t`` (the causal mask), computed by ``heads`` heads of size
  ``d = embed_dim / heads`` side by side. Dividing by ``sqrt(d)`` keeps the scores'
  variance near 1 whatever ``d`` (a sum of ``d`` products of unit-variance numbers has
  variance ``d``), so the softmax does not saturate;
* :class:`Block`: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``;
* :class:`GPT`: token embedding (+ a learned position embedding), the blocks, a final
  norm, a linear layer to the logits; :meth:`GPT.generate` samples a continuation, with a
  :class:`KeyValueCache` so that each new token costs one position, not the whole context.

Without the position embedding (``positional=False``) attention sees a set, not a
sequence: permuting the inputs of attention without the mask permutes its outputs
(permutation equivariance), and the chapter shows what that costs a language model.

Shapes: token ids ``(B, T)`` integers in ``[0, vocab_size)`` with ``T <= context_length``
-> logits ``(B, T, vocab_size)``, where ``logits[:, t]`` scores the token at ``t + 1``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..text.decoding import check_sampling, sample_next

# CausalSelfAttention and Block are building blocks of GPT, not models of their own.
__all__ = ["GPT", "KeyValueCache"]


class LayerCache:
    """The keys and values ``(B, heads, T, d)`` one attention layer has computed so far."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys and values; return all of them."""
        if self.keys is not None:
            keys = torch.cat([self.keys, keys], dim=2)
            values = torch.cat([self.values, values], dim=2)
        self.keys, self.values = keys, values
        return keys, values


class KeyValueCache:
    """One :class:`LayerCache` per block; ``length`` is the number of positions stored.

    During generation only the newest token's query, key and value are new: the keys and
    values of earlier positions do not change (the mask hides later tokens from them), so
    they are kept here instead of being recomputed for every new token.
    """

    def __init__(self, layers: int) -> None:
        self.layers = [LayerCache() for _ in range(layers)]

    @property
    def length(self) -> int:
        keys = self.layers[0].keys if self.layers else None
        return 0 if keys is None else keys.shape[2]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; with ``causal=True`` position ``t`` sees positions ``<= t`` only.

    ``fused=True`` computes the same thing with ``F.scaled_dot_product_attention`` (one
    fused kernel); the default writes the four lines out. ``causal=False`` removes the
    mask, for the chapter's demonstrations only: a language model must not see the future.
    """

    def __init__(self, embed_dim: int, heads: int, context_length: int, dropout: float = 0.0,
                 causal: bool = True, fused: bool = False) -> None:
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim = heads, embed_dim // heads
        self.causal, self.fused, self.dropout = causal, fused, dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)  # queries, keys, values of all heads
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)
        mask = torch.tril(torch.ones(context_length, context_length, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)  # mask[t, s]: may t attend to s?

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        batch, time, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=2)
        # (B, T, C) -> (B, heads, T, d): each head attends on its own slice of the channels
        q, k, v = (t.view(batch, time, self.heads, self.head_dim).transpose(1, 2)
                   for t in (q, k, v))
        if cache is not None:
            k, v = cache.append(k, v)  # keys and values of every position so far
        total = k.shape[2]
        # the rows of the mask for the new positions (the last `time` of `total`)
        mask = self.mask[total - time : total, :total] if self.causal else None
        if self.fused:  # without a cache the mask is the whole triangle: is_causal says so
            whole = mask is not None and time == total
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if whole else mask,
                                               dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=whole)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, heads, T, total)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = self.attention_dropout(torch.softmax(scores, dim=-1))
            y = weights @ v  # (B, heads, T, d)
        y = y.transpose(1, 2).reshape(batch, time, channels)  # the heads side by side again
        return self.output_dropout(self.proj(y))


class Block(nn.Module):
    """A pre-norm Transformer block: attention, then a two-layer MLP, each added to its input."""

    def __init__(self, embed_dim: int, heads: int, context_length: int, dropout: float = 0.0,
                 causal: bool = True, fused: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attention = CausalSelfAttention(embed_dim, heads, context_length, dropout, causal,
                                             fused)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(),
                                 nn.Linear(4 * embed_dim, embed_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Token (+ position) embedding -> ``layers`` blocks -> layer norm -> next-token logits.

    The defaults (4 layers, 4 heads, 128 channels, a context of 128 characters: about
    0.8 M parameters with 75 characters) are nanoGPT's CPU recipe with a longer context.

    Example:
        >>> model = GPT(vocab_size=10, context_length=8, embed_dim=16, heads=2, layers=1)
        >>> model(torch.zeros(3, 5, dtype=torch.long)).shape
        torch.Size([3, 5, 10])
    """

    def __init__(self, vocab_size: int, context_length: int = 128, embed_dim: int = 128,
                 heads: int = 4, layers: int = 4, dropout: float = 0.0, positional: bool = True,
                 fused_attention: bool = False) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("context_length", context_length),
                            ("embed_dim", embed_dim), ("heads", heads), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.vocab_size, self.context_length = vocab_size, context_length
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)
        self.position_embedding = nn.Embedding(context_length, embed_dim) if positional else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(embed_dim, heads, context_length, dropout, fused=fused_attention)
            for _ in range(layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, vocab_size)
        self.apply(self._init_weights)
        # GPT-2: the projections that add to the residual stream scaled down with depth
        for name, parameter in self.named_parameters():
            if name.endswith(("attention.proj.weight", "mlp.2.weight")):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _check_tokens(self, tokens: torch.Tensor, already: int = 0) -> None:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (batch, time) tensor of integers, got shape "
                             f"{tuple(tokens.shape)} and dtype {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got values from "
                             f"{int(tokens.min())} to {int(tokens.max())}")
        if already + tokens.shape[1] > self.context_length:
            context = self.context_length
            raise ValueError(f"{already + tokens.shape[1]} positions do not fit the context of "
                             f"{context}; crop the input to its last {context} tokens "
                             f"(tokens[:, -{context}:], or prompt[-{context}:] for a prompt)")

    def forward(self, tokens: torch.Tensor, cache: KeyValueCache | None = None) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)``; with a ``cache``, ``tokens`` continue its positions."""
        start = cache.length if cache is not None else 0
        self._check_tokens(tokens, start)
        x = self.token_embedding(tokens)
        if self.position_embedding is not None:
            positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
            x = x + self.position_embedding(positions)
        x = self.dropout(x)
        for index, block in enumerate(self.blocks):
            x = block(x, cache.layers[index] if cache is not None else None)
        return self.head(self.norm(x))

    @torch.no_grad()
    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
        """The prompt followed by ``max_new_tokens`` sampled tokens.

        ``prompt_ids``: a list or 1-D tensor of ids (the result is 1-D), or ``(B, T)`` (the
        result is ``(B, T + max_new_tokens)``). Each token is drawn from
        ``softmax(logits / temperature)`` restricted by ``top_k`` and ``top_p``
        (:func:`aigc_lessons.text.decoding.filter_logits`); ``top_k=1`` is greedy decoding.

        With ``use_cache`` each step feeds only the newest token and reuses the stored keys
        and values. Past the context the window slides, every token changes position, and
        the learned position embedding makes the stored keys stale: the cache is then
        rebuilt from the window at every step, so both ways give the same tokens (a test
        checks it) and past the context the cache saves nothing.

        Example:
            >>> model = GPT(vocab_size=5, context_length=8, embed_dim=8, heads=2, layers=1)
            >>> model.generate([1, 2], 4, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([6])
        """
        check_sampling(temperature, top_k, top_p)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
                or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        device = next(self.parameters()).device
        prompt = torch.as_tensor(prompt_ids, dtype=torch.long, device=device)
        one_sequence = prompt.dim() == 1
        sequence = prompt.unsqueeze(0) if one_sequence else prompt
        if sequence.dim() != 2 or sequence.shape[1] == 0:
            raise ValueError(f"prompt_ids must be a non-empty list, 1-D tensor or (batch, time) "
                             f"tensor of token ids, got shape {tuple(prompt.shape)}")
        self._check_tokens(sequence)  # ids in range, and the prompt fits the context
        was_training = self.training
        self.eval()
        try:
            cache = KeyValueCache(len(self.blocks)) if use_cache else None
            logits = self(sequence, cache)[:, -1]
            for step in range(max_new_tokens):
                next_ids = sample_next(logits, temperature, top_k, top_p, generator)
                sequence = torch.cat([sequence, next_ids[:, None]], dim=1)
                if step == max_new_tokens - 1:
                    break
                if cache is not None and cache.length < self.context_length:
                    logits = self(next_ids[:, None], cache)[:, -1]  # one new position
                else:  # the window slides: recompute it (and, with a cache, refill the cache)
                    cache = KeyValueCache(len(self.blocks)) if use_cache else None
                    logits = self(sequence[:, -self.context_length:], cache)[:, -1]
        finally:
            self.train(was_training)
        return sequence[0] if one_sequence else sequence
