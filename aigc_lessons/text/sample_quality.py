"""Measurements of generated text: diversity, repetition, likelihood under the model and a judge.

No single number says whether generated text is good, so the chapter on decoding puts
several side by side, each computed on the *continuation* (the generated characters,
without the prompt):

* :func:`distinct_n`: distinct word n-grams divided by all word n-grams (Li et al. 2016;
  they divide by the number of words, which for long texts is nearly the same); 1 means no
  n-gram repeats, values near 0 a text that says the same thing over and over;
* :func:`repetition_rate`: the share of characters that lie inside a stretch of ``length``
  characters that already occurred earlier in the same text (a loop scores near 1);
* :func:`known_word_share`: the share of words that are words of a reference vocabulary
  (the training plays): invented words lower it;
* :func:`gpt_log_likelihood`: the total log-probability the GPT itself gives the
  continuation, teacher-forced, conditioned exactly as during sampling (the last
  ``context_length`` tokens), and :func:`judge_log_likelihood`, the same under another
  model, here a Kneser-Ney n-gram model fitted on the training plays
  (:class:`~aigc_lessons.text.ngram.CharNGramModel`): a judge that did not produce the text.

:func:`sample_continuations` draws continuations of prompts with one decoding strategy
(greedy, beam search, or sampling with temperature, top-k and top-p),
:func:`measure_continuations` computes all the measures for a list of them, and
:func:`compare_strategies` does both for several strategies on the same prompts and seeds.

Example:
    >>> distinct_n("to be or not to be", 2)  # 5 bigrams, "to be" twice
    0.8
    >>> repetition_rate("abcabc", length=3)  # the second "abc" repeats the first
    0.5
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from .decoding import beam_search, check_sampling
from .tokens import CharVocab

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased: runs of letters, with inner apostrophes (``o'er``).

    Example:
        >>> words("O Romeo, Romeo! wherefore art thou Romeo? 'Tis o'er.")
        ['o', 'romeo', 'romeo', 'wherefore', 'art', 'thou', 'romeo', 'tis', "o'er"]
    """
    return WORD.findall(text.lower())


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _as_texts(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    if not all(isinstance(text, str) for text in texts):
        raise ValueError("expected a string or a list of strings")
    return texts


def distinct_n(texts: str | Sequence[str], n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams of ``texts`` (one text, or a list pooled).

    With a list, n-grams are taken inside each text (none spans two texts) and counted
    together, so a phrase that recurs in two texts counts once among the distinct ones.
    A text shorter than ``n`` words has no n-grams; with no n-gram at all the result is 0.

    Example:
        >>> distinct_n("the cat saw the cat", 1), distinct_n("the cat saw the cat", 2)
        (0.6, 0.75)
        >>> distinct_n(["to be", "to be"], 2)  # the same bigram in both texts
        0.5
    """
    _check_positive_int("n", n)
    grams = []
    for text in _as_texts(texts):
        tokens = words(text)
        grams += [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(text: str, length: int = 10) -> float:
    """The share of characters of ``text`` inside a stretch of ``length`` seen earlier in it.

    Every window ``text[i : i + length]`` that also starts at some earlier position marks
    its characters as repeated (the earlier copy may overlap it, as in ``"aaaa"``). Real
    Shakespeare repeats a few names and phrases; a decoding loop repeats almost everything.
    An empty text scores 0.

    Example:
        >>> repetition_rate("abcdabcd", length=4)  # the second half copies the first
        0.5
        >>> repetition_rate("abcdefgh", length=4)
        0.0
    """
    _check_positive_int("length", length)
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    repeated = [False] * len(text)
    seen = set()
    for start in range(len(text) - length + 1):
        window = text[start : start + length]
        if window in seen:
            repeated[start : start + length] = [True] * length
        seen.add(window)
    return sum(repeated) / len(text) if text else 0.0


def known_word_share(texts: str | Sequence[str], vocabulary: set[str] | frozenset[str]) -> float:
    """The share of the words of ``texts`` that are in ``vocabulary`` (0 when there are none).

    ``vocabulary`` is a set of lower-case words, for example ``set(words(training_text))``.

    Example:
        >>> known_word_share("Thou art a villain, grumblekin", {"thou", "art", "a", "villain"})
        0.8
    """
    tokens = [word for text in _as_texts(texts) for word in words(text)]
    return sum(word in vocabulary for word in tokens) / len(tokens) if tokens else 0.0


def _as_ids(ids) -> torch.Tensor:
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or ids.numel() < 2:
        raise ValueError(f"ids must be a 1-D sequence of at least 2 token ids, got shape "
                         f"{tuple(ids.shape)}")
    return ids


def _check_start(start, length: int) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < length:
        raise ValueError(f"start must be an integer in [1, {length - 1}] (the first scored "
                         f"position; the prompt's length for a continuation), got {start!r}")


@torch.no_grad()
def gpt_log_likelihood(model: torch.nn.Module, ids, start: int = 1, batch_size: int = 64
                       ) -> tuple[float, int]:
    """``sum_t log p(ids[t] | ids[t - C : t])`` over ``t = start .. len(ids) - 1`` and its count.

    ``C`` is ``model.context_length``: each token is conditioned on at most the ``C``
    tokens before it, as :meth:`~aigc_lessons.models.GPT.generate` and
    :func:`~aigc_lessons.text.decoding.beam_search` condition it when they produce it.
    The first ``C`` positions take one forward pass; every later token one window of
    ``C`` tokens (batched). ``start`` is the prompt's length to score a continuation only.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(vocab_size=3, context_length=4, embed_dim=8, heads=2, layers=1)
        >>> total, count = gpt_log_likelihood(model, [0, 1, 2, 0, 1, 2], start=2)
        >>> count, total < 0
        (4, True)
    """
    ids = _as_ids(ids)
    _check_start(start, len(ids))
    device = next(model.parameters()).device
    ids = ids.to(device)
    context = model.context_length
    was_training = model.training
    model.eval()
    try:
        head = ids[:context]  # positions 1 .. C-1 predicted from one pass
        log_probs = model(head[None])[0].float().log_softmax(-1)
        targets = torch.arange(start, max(len(head), start), device=device)
        total = log_probs[targets - 1, head[targets]].sum().item()
        # every later target t from the window ids[t - C : t]
        later = torch.arange(max(start, context), max(len(ids), context), device=device)
        for chunk in later.split(batch_size) if len(later) else ():
            windows = torch.stack([ids[t - context : t] for t in chunk.tolist()])
            last = model(windows)[:, -1].float().log_softmax(-1)
            total += last.gather(1, ids[chunk][:, None]).sum().item()
    finally:
        model.train(was_training)
    return total, len(ids) - start


def judge_log_likelihood(judge, ids, start: int = 1) -> tuple[float, int]:
    """The log-likelihood (nats) of ``ids[start:]`` given what precedes it, under ``judge``.

    ``judge`` is a :class:`~aigc_lessons.text.ngram.CharNGramModel` (anything whose
    ``log_likelihood(ids)`` returns ``(total, count)`` and scores each token from the ones
    before it). The continuation's score is that of the whole minus that of the prompt.

    Example:
        >>> from aigc_lessons.text.ngram import CharNGramModel
        >>> judge = CharNGramModel(order=2, vocab_size=2).fit([0, 1] * 50)
        >>> total, count = judge_log_likelihood(judge, [0, 1, 0, 1, 1], start=3)
        >>> count, round(total, 2)  # 0 -> 1 is expected, 1 -> 1 is not
        (2, -5.28)
    """
    ids = _as_ids(ids)
    _check_start(start, len(ids))
    whole, count = judge.log_likelihood(ids.numpy())
    prompt, prompt_count = judge.log_likelihood(ids[:start].numpy()) if start > 1 else (0.0, 0)
    return whole - prompt, count - prompt_count


def sample_continuations(model: torch.nn.Module, vocab: CharVocab, prompt: str, new_characters: int,
                         strategy: dict, samples: int = 1, seed: int = 0) -> list[str]:
    """``samples`` continuations (text after the prompt) of ``prompt`` with one strategy.

    ``strategy`` is ``{"greedy": True}``, ``{"beam_width": 4}`` (the most probable beam) or
    sampling settings ``{"temperature": ..., "top_k": ..., "top_p": ...}`` (missing ones
    off). Greedy decoding and beam search are deterministic and return one continuation
    whatever ``samples``; sampling draws ``samples`` at once from a generator seeded with
    ``seed``, so the same seed gives the same text.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> vocab = CharVocab("ab")
        >>> model = GPT(vocab_size=2, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> texts = sample_continuations(model, vocab, "ab", 5, {"temperature": 0.8}, samples=2)
        >>> [len(text) for text in texts]
        [5, 5]
    """
    _check_positive_int("new_characters", new_characters)
    _check_positive_int("samples", samples)
    prompt_ids = vocab.encode(prompt)
    unknown = set(strategy) - {"greedy", "beam_width", "temperature", "top_k", "top_p"}
    if unknown:
        raise ValueError(f"unknown strategy keys {sorted(unknown)}: use greedy, beam_width, "
                         "temperature, top_k, top_p")
    if strategy.get("greedy"):
        ids = model.generate(prompt_ids, new_characters, top_k=1)
        found = [ids]
    elif "beam_width" in strategy:
        found = [beam_search(model, prompt_ids, new_characters, strategy["beam_width"])[0][0]]
    else:
        settings = {key: strategy.get(key) for key in ("top_k", "top_p")}
        settings["temperature"] = strategy.get("temperature", 1.0)
        check_sampling(**settings)
        generator = torch.Generator().manual_seed(seed)
        batch = torch.tensor([prompt_ids] * samples)
        found = list(model.generate(batch, new_characters, generator=generator, **settings))
    return [vocab.decode(ids[len(prompt_ids):].tolist()) for ids in found]


MEASURES = ("distinct_1", "distinct_2", "repetition", "known_words", "gpt_nats", "judge_nats")


def measure_continuations(pairs: Sequence[tuple[str, str]], model: torch.nn.Module,
                          vocab: CharVocab, judge, vocabulary: set[str],
                          repeat_length: int = 10) -> dict[str, float]:
    """The chapter's measures of a list of ``(prompt, continuation)`` pairs, as a dict.

    ``distinct_1``, ``distinct_2`` and ``repetition`` (``repeat_length`` characters) are
    computed per continuation and averaged; ``known_words`` pools the words of all
    continuations; ``gpt_nats`` and ``judge_nats`` are nats per generated character
    (lower: more probable), pooled over all continuations, each conditioned on its prompt.
    """
    if not pairs:
        raise ValueError("pairs is empty: give at least one (prompt, continuation) pair")
    continuations = [continuation for _, continuation in pairs]
    result = {
        "distinct_1": sum(distinct_n(t, 1) for t in continuations) / len(pairs),
        "distinct_2": sum(distinct_n(t, 2) for t in continuations) / len(pairs),
        "repetition": sum(repetition_rate(t, repeat_length) for t in continuations) / len(pairs),
        "known_words": known_word_share(continuations, vocabulary),
    }
    totals = {"gpt_nats": [0.0, 0], "judge_nats": [0.0, 0]}
    for prompt, continuation in pairs:
        ids = vocab.encode(prompt + continuation)
        for key, score in (("gpt_nats", gpt_log_likelihood(model, ids, len(prompt))),
                           ("judge_nats", judge_log_likelihood(judge, ids, len(prompt)))):
            totals[key][0] += score[0]
            totals[key][1] += score[1]
    result.update({key: -total / count for key, (total, count) in totals.items()})
    return result


def compare_strategies(model: torch.nn.Module, vocab: CharVocab, prompts: Sequence[str],
                       strategies: dict[str, dict], new_characters: int, samples: int, judge,
                       vocabulary: set[str], seed: int = 0, repeat_length: int = 10
                       ) -> tuple[dict[str, dict[str, float]], dict[str, list[tuple[str, str]]]]:
    """Every strategy on the same prompts and seeds: its measures, and its (prompt, text) pairs.

    ``strategies`` maps a name to a strategy of :func:`sample_continuations`; prompt ``i``
    is sampled with seed ``seed + i`` under every strategy, so the strategies differ only in
    how they turn the same probabilities into text.
    """
    if not prompts or not strategies:
        raise ValueError("give at least one prompt and one strategy")
    measures, pairs = {}, {}
    for name, strategy in strategies.items():
        pairs[name] = [(prompt, text) for index, prompt in enumerate(prompts)
                       for text in sample_continuations(model, vocab, prompt, new_characters,
                                                        strategy, samples, seed + index)]
        measures[name] = measure_continuations(pairs[name], model, vocab, judge, vocabulary,
                                               repeat_length)
    return measures, pairs
