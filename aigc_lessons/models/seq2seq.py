"""An encoder-decoder Transformer: it reads one sequence and writes another.

Vaswani et al. (2017), "Attention Is All You Need": the Transformer was introduced as
exactly this, a translation model, with an encoder and a decoder; Sutskever et al. (2014)
and Bahdanau et al. (2015) had done the same with recurrent networks. The blocks are the
pre-norm blocks of :mod:`aigc_lessons.models.gpt`, reused, plus the one piece a
decoder-only model lacks. Read top to bottom:

* the **encoder**: source embedding + position embedding, ``encoder_layers`` of
  :class:`~aigc_lessons.models.gpt.Block` with ``causal=False`` (every source position
  sees every other: the source is given whole), a final norm. Its output, the *memory*,
  is ``(B, S, C)``;
* :class:`CrossAttention`: the queries come from the decoder ``(B, T, C)``, the keys and
  values from the memory ``(B, S, C)``; the scores are ``(B, heads, T, S)``, each row a
  softmax over the source positions (padding excluded), so the output is ``(B, T, C)``,
  one mixture of source vectors per target position;
* :class:`DecoderBlock`: causal self-attention over the target so far (the GPT's
  :class:`~aigc_lessons.models.gpt.CausalSelfAttention`), cross-attention to the memory,
  an MLP; each added to its input after a layer norm;
* :class:`Seq2SeqTransformer`: ``forward(source, target_in)`` -> logits ``(B, T, V)`` where
  ``logits[:, t]`` scores the target token after ``target_in[:, :t + 1]``;
  :meth:`~Seq2SeqTransformer.greedy_decode` and :meth:`~Seq2SeqTransformer.beam_search`
  write a translation token by token until the end token.

Padding. The GPT's attention has no padding mask (a language model's blocks are never
padded), so the encoder reuses it by padding every source to the same ``source_length``:
the pad positions are then a fixed part of every input, and a sentence's translation
does not depend on what else is in its batch. Cross-attention, written here, does mask
them: no target position reads a pad.

Shapes: ``source`` ``(B, S)`` ids in ``[0, source_vocab_size)`` with ``S ==
source_length`` (pad with id ``pad_id``), ``target_in`` ``(B, T)`` with ``T <=
target_length``, starting with the start token.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .gpt import GPT, Block, CausalSelfAttention

# CrossAttention and DecoderBlock are building blocks, not models of their own.
__all__ = ["Seq2SeqTransformer"]


class CrossAttention(nn.Module):
    """Multi-head attention of the decoder's positions (queries) on the encoder's (keys, values).

    ``forward(x, memory, memory_mask)``: ``x`` ``(B, T, C)``, ``memory`` ``(B, S, C)``,
    ``memory_mask`` ``(B, S)`` booleans, ``True`` where the source holds a real token.
    Returns ``(B, T, C)`` and, with ``return_weights=True``, also the attention weights
    ``(B, heads, T, S)`` (each row sums to 1 over the source).
    """

    def __init__(self, embed_dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim = heads, embed_dim // heads
        self.query = nn.Linear(embed_dim, embed_dim)  # from the decoder
        self.key_value = nn.Linear(embed_dim, 2 * embed_dim)  # from the encoder's memory
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                return_weights: bool = False):
        batch, time, channels = x.shape
        source = memory.shape[1]
        q = self.query(x).view(batch, time, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.key_value(memory).split(channels, dim=2)
        k, v = (t.view(batch, source, self.heads, self.head_dim).transpose(1, 2) for t in (k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, heads, T, S)
        scores = scores.masked_fill(~memory_mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        y = self.attention_dropout(weights) @ v  # (B, heads, T, d)
        y = self.output_dropout(self.proj(y.transpose(1, 2).reshape(batch, time, channels)))
        return (y, weights) if return_weights else y


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to the memory, an MLP: each pre-norm and residual."""

    def __init__(self, embed_dim: int, heads: int, target_length: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.self_attention = CausalSelfAttention(embed_dim, heads, target_length, dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.cross_attention = CrossAttention(embed_dim, heads, dropout)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(),
                                 nn.Linear(4 * embed_dim, embed_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                return_weights: bool = False):
        x = x + self.self_attention(self.norm1(x))
        attended, weights = self.cross_attention(self.norm2(x), memory, memory_mask,
                                                 return_weights=True)
        x = x + attended
        x = x + self.mlp(self.norm3(x))
        return (x, weights) if return_weights else x


class Seq2SeqTransformer(nn.Module):
    """Encoder (unmasked self-attention) + decoder (causal self- and cross-attention) -> logits.

    The defaults (2 + 2 layers, 4 heads, 128 channels) are the book's number-translation
    model. ``pad_id``, ``start_id`` and ``end_id`` are the special tokens of both
    vocabularies (:class:`aigc_lessons.text.translation_task.CharTokenizer`: 0, 1, 2).

    Example:
        >>> model = Seq2SeqTransformer(source_vocab_size=12, target_vocab_size=9,
        ...                            source_length=10, target_length=6, embed_dim=16)
        >>> source = torch.randint(3, 12, (2, 10))
        >>> model(source, torch.ones(2, 4, dtype=torch.long)).shape
        torch.Size([2, 4, 9])
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, source_length: int,
                 target_length: int, embed_dim: int = 128, heads: int = 4, encoder_layers: int = 2,
                 decoder_layers: int = 2, dropout: float = 0.0, pad_id: int = 0, start_id: int = 1,
                 end_id: int = 2) -> None:
        super().__init__()
        for name, value in (("source_vocab_size", source_vocab_size),
                            ("target_vocab_size", target_vocab_size),
                            ("source_length", source_length), ("target_length", target_length),
                            ("embed_dim", embed_dim), ("heads", heads),
                            ("encoder_layers", encoder_layers), ("decoder_layers", decoder_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        specials = {"pad_id": pad_id, "start_id": start_id, "end_id": end_id}
        if len(set(specials.values())) != 3 or not all(
                0 <= v < min(source_vocab_size, target_vocab_size) for v in specials.values()):
            raise ValueError(f"pad_id, start_id and end_id must be distinct ids of both "
                             f"vocabularies, got {specials}")
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.source_length, self.target_length = source_length, target_length
        self.pad_id, self.start_id, self.end_id = pad_id, start_id, end_id
        # the encoder: GPT blocks without the causal mask
        self.source_embedding = nn.Embedding(source_vocab_size, embed_dim)
        self.source_position = nn.Embedding(source_length, embed_dim)
        self.encoder = nn.ModuleList(Block(embed_dim, heads, source_length, dropout, causal=False)
                                     for _ in range(encoder_layers))
        self.encoder_norm = nn.LayerNorm(embed_dim)
        # the decoder: causal self-attention, cross-attention, MLP
        self.target_embedding = nn.Embedding(target_vocab_size, embed_dim)
        self.target_position = nn.Embedding(target_length, embed_dim)
        self.decoder = nn.ModuleList(DecoderBlock(embed_dim, heads, target_length, dropout)
                                     for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, target_vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.apply(GPT._init_weights)  # the GPT's initialisation: N(0, 0.02), zero biases

    def _check_ids(self, ids: torch.Tensor, vocab_size: int, what: str) -> None:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"{what} must be a (batch, time) tensor of integer ids (torch.long), "
                             f"got {shape}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"{what} ids must lie in [0, {vocab_size}), got values from "
                             f"{int(ids.min())} to {int(ids.max())}")

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory ``(B, S, C)`` and the source mask ``(B, S)`` (``True``: a real token)."""
        self._check_ids(source, self.source_vocab_size, "source")
        if source.shape[1] != self.source_length:
            raise ValueError(f"source must be padded to source_length = {self.source_length} "
                             f"positions, got {source.shape[1]} (CharTokenizer.batch(texts, "
                             f"{self.source_length}) pads it)")
        positions = torch.arange(self.source_length, device=source.device)
        x = self.dropout(self.source_embedding(source) + self.source_position(positions))
        for block in self.encoder:
            x = block(x)
        mask = source != self.pad_id
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every source needs at least one token that is not padding")
        return self.encoder_norm(x), mask

    def decode(self, target_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
               return_weights: bool = False):
        """Logits ``(B, T, V)`` for ``target_in`` given the memory; with ``return_weights``
        also the cross-attention weights of every decoder layer, each ``(B, heads, T, S)``."""
        self._check_ids(target_in, self.target_vocab_size, "target_in")
        time = target_in.shape[1]
        if not 1 <= time <= self.target_length:
            raise ValueError(f"target_in must have 1 to target_length = {self.target_length} "
                             f"positions, got {time}")
        positions = torch.arange(time, device=target_in.device)
        x = self.dropout(self.target_embedding(target_in) + self.target_position(positions))
        weights = []
        for block in self.decoder:
            x, layer_weights = block(x, memory, memory_mask, return_weights=True)
            weights.append(layer_weights)
        logits = self.head(self.decoder_norm(x))
        return (logits, weights) if return_weights else logits

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(B, T, V)``; ``logits[:, t]`` scores the token after
        ``target_in[:, :t + 1]``."""
        memory, memory_mask = self.encode(source)
        if target_in.shape[0] != source.shape[0]:
            raise ValueError(f"source and target_in must have the same batch size, got "
                             f"{source.shape[0]} and {target_in.shape[0]}")
        return self.decode(target_in, memory, memory_mask)

    @torch.no_grad()
    def greedy_decode(self, source: torch.Tensor, max_length: int | None = None
                      ) -> list[list[int]]:
        """For each source row, the ids written by always taking the most probable next token.

        Starts from the start token and stops at the end token (not included in the
        result) or after ``max_length`` tokens (default ``target_length - 1``).
        """
        max_length = self._check_max_length(max_length)
        was_training = self.training
        self.eval()
        memory, memory_mask = self.encode(source)
        batch = source.shape[0]
        sequence = torch.full((batch, 1), self.start_id, dtype=torch.long, device=source.device)
        done = torch.zeros(batch, dtype=torch.bool, device=source.device)
        for _ in range(max_length):
            next_ids = self.decode(sequence, memory, memory_mask)[:, -1].argmax(dim=-1)
            next_ids = next_ids.masked_fill(done, self.pad_id)  # finished rows write padding
            sequence = torch.cat([sequence, next_ids[:, None]], dim=1)
            done |= next_ids == self.end_id
            if bool(done.all()):
                break
        self.train(was_training)
        results = []
        for row in sequence[:, 1:].tolist():
            results.append(row[:row.index(self.end_id)] if self.end_id in row else row)
        return results

    @torch.no_grad()
    def beam_search(self, source: torch.Tensor, beam_width: int = 4, length_penalty: float = 1.0,
                    max_length: int | None = None) -> list[tuple[list[int], float]]:
        """The best translations of one source ``(S,)`` or ``(1, S)``, best first: (ids, score).

        Unlike the character GPT's beam search, a translation ends: a beam that writes the
        end token is set aside as a finished hypothesis, and the search stops when
        ``beam_width`` hypotheses have finished (or after ``max_length`` tokens, when the
        unfinished beams are added). Finished hypotheses of different lengths are compared
        by ``log p(y | x) / L ** length_penalty`` with ``L`` the number of tokens written,
        end token included: ``length_penalty=0`` is the raw log-probability, which favours
        short outputs (every token adds a negative term), ``1`` the mean per token. At each
        step the ``2 * beam_width`` best extensions are looked at, so that ``beam_width``
        unfinished beams survive even when some extensions end. ``beam_width=1`` is greedy
        decoding.
        """
        if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
            raise ValueError(f"beam_width must be an integer >= 1, got {beam_width!r}")
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
                or not 0 <= length_penalty <= 2:
            raise ValueError(f"length_penalty must be a number in [0, 2], got {length_penalty!r}")
        max_length = self._check_max_length(max_length)
        source = source.unsqueeze(0) if source.dim() == 1 else source
        if source.shape[0] != 1:
            raise ValueError(f"beam_search translates one source at a time, got a batch of "
                             f"{source.shape[0]}; loop over the rows")
        was_training = self.training
        self.eval()
        memory, memory_mask = self.encode(source)
        device = source.device
        beams = torch.full((1, 1), self.start_id, dtype=torch.long, device=device)
        scores = torch.zeros(1, device=device)  # log p of each beam's tokens so far
        finished: list[tuple[list[int], float]] = []
        for step in range(1, max_length + 1):
            count = beams.shape[0]
            logits = self.decode(beams, memory.expand(count, -1, -1),
                                 memory_mask.expand(count, -1))[:, -1]
            candidates = (scores[:, None] + logits.float().log_softmax(dim=-1)).flatten()
            top_scores, top = torch.topk(candidates, min(2 * beam_width, candidates.numel()))
            vocab = logits.shape[-1]
            keep, keep_scores = [], []
            for rank, (score, index) in enumerate(zip(top_scores.tolist(), top.tolist())):
                beam, token = divmod(index, vocab)
                if token == self.end_id:
                    if rank < beam_width:  # an ending among the best: a finished hypothesis
                        finished.append((beams[beam, 1:].tolist(), score / step ** length_penalty))
                elif len(keep) < beam_width:
                    keep.append(torch.cat([beams[beam], beams.new_tensor([token])]))
                    keep_scores.append(score)
            if len(finished) >= beam_width or not keep:
                break
            beams, scores = torch.stack(keep), torch.tensor(keep_scores, device=device)
        else:  # max_length reached: the unfinished beams compete too
            finished += [(beam[1:].tolist(), score / max_length ** length_penalty)
                         for beam, score in zip(beams, scores.tolist())]
        self.train(was_training)
        return sorted(finished, key=lambda pair: -pair[1])

    def _check_max_length(self, max_length: int | None) -> int:
        limit = self.target_length - 1
        if max_length is None:
            return limit
        if isinstance(max_length, bool) or not isinstance(max_length, int) \
                or not 1 <= max_length <= limit:
            raise ValueError(f"max_length must be an integer in [1, target_length - 1 = {limit}],"
                             f" got {max_length!r}")
        return max_length
