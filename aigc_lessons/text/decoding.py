"""Decoding: turning a language model's next-token logits into text.

* **temperature** ``tau`` divides the logits: ``tau < 1`` sharpens the distribution,
  ``tau > 1`` flattens it (``tau -> 0`` is greedy decoding, so ``tau <= 0`` is refused:
  ask for greedy instead);
* **top-k** keeps the ``k`` most probable tokens (Fan, Lewis & Dauphin 2018);
* **top-p** (nucleus sampling, Holtzman et al. 2020) keeps the smallest set of most
  probable tokens whose probabilities add up to at least ``p``;
* **greedy** takes the most probable token at every step; **beam search** keeps the
  ``beam_width`` most probable sequences so far and extends each by every token.

:func:`filter_logits` applies temperature, top-k and top-p in that order (as Hugging Face
``transformers`` does), :func:`sample_next` draws from the result; the model's
``generate`` uses both. :func:`greedy_decode` and :func:`beam_search` work with any model
that maps ``(B, T)`` token ids to ``(B, T, vocab)`` logits and has ``context_length``.

Example:
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    >>> filter_logits(logits, top_k=2).isfinite().tolist()
    [[True, True, False, False]]
"""

from __future__ import annotations

import math

import torch


def check_sampling(temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> None:
    """A ``ValueError`` saying what to do for ``temperature <= 0``, ``top_k < 1``, bad ``top_p``.

    ``top_p`` must lie in (0, 1]; ``None`` switches a filter off.

    Example:
        >>> check_sampling(temperature=0.8, top_k=10, top_p=0.9)  # nothing to say
    """
    number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if not number or not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}; "
                         "for the most probable token at every step use greedy decoding (top_k=1)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None (no top-k filter), got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None (no nucleus filter), "
                         f"got {top_p!r}")


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """``logits / temperature`` with every token outside the top-k and the nucleus set to ``-inf``.

    ``logits`` has the vocabulary last (``(..., vocab)``). The most probable token always
    survives, so the result is a valid distribution after ``softmax``.

    Example:
        >>> logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
        >>> [round(p, 3) for p in filter_logits(logits, top_p=0.7).softmax(-1).tolist()]
        [0.625, 0.375, 0.0, 0.0]
    """
    check_sampling(temperature, top_k, top_p)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = sorted_logits.softmax(dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the better tokens
        drop_sorted = mass_before >= top_p  # the set already reached p without this token
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """One token id per row of ``logits`` ``(B, vocab)``, from the filtered distribution."""
    probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(dim=-1)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)  # a CPU generator draws on the CPU, also for a GPU model
    drawn = torch.multinomial(probs, num_samples=1, generator=generator)
    return drawn.squeeze(-1).to(logits.device)


def _as_prompt(prompt_ids) -> torch.Tensor:
    prompt = torch.as_tensor(prompt_ids, dtype=torch.long)
    if prompt.dim() != 1 or prompt.numel() == 0:
        raise ValueError(f"prompt_ids must be a non-empty 1-D sequence of token ids, got shape "
                         f"{tuple(prompt.shape)}")
    return prompt


@torch.no_grad()
def greedy_decode(model: torch.nn.Module, prompt_ids, max_new_tokens: int) -> torch.Tensor:
    """The prompt followed by ``max_new_tokens`` tokens, each the most probable one (1-D tensor).

    The same as ``model.generate(prompt_ids, max_new_tokens, top_k=1)``; written out so
    that the chapter can show the loop.
    """
    sequence = _as_prompt(prompt_ids).to(next(model.parameters()).device)
    model.eval()
    for _ in range(max_new_tokens):
        logits = model(sequence[-model.context_length:].unsqueeze(0))[0, -1]
        sequence = torch.cat([sequence, logits.argmax().view(1)])
    return sequence


@torch.no_grad()
def beam_search(model: torch.nn.Module, prompt_ids, max_new_tokens: int, beam_width: int = 4
                ) -> list[tuple[torch.Tensor, float]]:
    """The ``beam_width`` most probable continuations found, best first: ``(sequence, log-prob)``.

    Every beam is extended by every token, and the ``beam_width`` highest total
    log-probabilities ``sum_t log p(x_t | x_<t)`` of the new tokens survive. A character
    model has no end token, so all beams have the same length and no length penalty is
    needed. ``beam_width=1`` is greedy decoding.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be an integer >= 1, got {beam_width!r}")
    model.eval()
    device = next(model.parameters()).device
    beams = _as_prompt(prompt_ids).to(device).unsqueeze(0)  # (beams, T)
    scores = torch.zeros(1, device=device)
    for _ in range(max_new_tokens):
        log_probs = model(beams[:, -model.context_length:])[:, -1].float().log_softmax(dim=-1)
        candidates = (scores[:, None] + log_probs).flatten()  # (beams * vocab,)
        scores, best = torch.topk(candidates, min(beam_width, candidates.numel()))
        vocab = log_probs.shape[-1]
        beams = torch.cat([beams[best // vocab], (best % vocab)[:, None]], dim=1)
    return [(beam, float(score)) for beam, score in zip(beams, scores)]
