"""Preference data with a hidden rule: the stand-in for the human labellers of RLHF.

In Ziegler et al. (2019) and InstructGPT (Ouyang et al. 2022) people compare two
continuations of the same prompt and say which they prefer; a reward model is then fitted
to those comparisons. Here the people are replaced by a rule the reader can read, so that
everything a learned reward gets wrong can be measured against the truth:

* :func:`true_reward`, the *hidden rule*: a reader who likes cheerful words and dislikes
  repetition. Each distinct word of :data:`POSITIVE_WORDS` in the text scores +1, each
  distinct word of :data:`NEGATIVE_WORDS` scores -1 (a word counts once however often it
  appears: saying "love" ten times is not ten times as cheerful), and the share of words
  that repeat an earlier word costs up to ``repetition_weight``;
* :func:`preference_probability`: the labeller is noisy. Of two texts ``a`` and ``b`` it
  prefers ``a`` with the Bradley-Terry probability ``sigmoid((r(a) - r(b)) / temperature)``
  (Bradley & Terry 1952): a large gap in true reward is almost always labelled the right
  way round, a small one is close to a coin flip;
* :func:`make_preference_pairs`: texts sampled from the pretrained character GPT, paired,
  labelled by one Bradley-Terry draw each, split into training and held-out pairs, all
  from one seed. :func:`noise_ceiling` is the accuracy that the true rule itself reaches on
  such labels: no reward model can beat it in expectation.

Example:
    >>> true_reward(["O sweet love, good night!", "Death, death and blood."]).tolist()
    [3.0, -2.5]
    >>> round(float(preference_probability(torch.tensor(1.0), torch.tensor(0.0), 0.5)), 4)
    0.8808
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..family import Option, check_settings
from .text_rewards import words_of
from .tuning import sample_tokens

# The hidden rule's word lists: common in the plays, so the pretrained GPT writes them.
POSITIVE_WORDS = frozenset(
    "love loves loving lovely sweet sweetest fair good gentle joy joys happy merry kind dear "
    "grace gracious honour noble hope heaven bless blessed smile peace friend friends true "
    "beauty delight glad comfort praise virtue worthy pretty best fortune mercy".split())
NEGATIVE_WORDS = frozenset(
    "death dead die dies dying hate kill killed blood bloody grief woe sorrow fear curse "
    "cursed villain foul tears weep hell poison wretched vile murder false sick plague "
    "fool base slave shame traitor devil".split())


def true_reward(texts: list[str], repetition_weight: float = 2.0) -> torch.Tensor:
    """The hidden rule, one score per text: distinct cheerful words - distinct gloomy words - repetition.

    ``repetition_weight * (1 - distinct words / words)``: 0 when no word repeats, close to
    ``repetition_weight`` when one word fills the text. A text without words scores 0.

    Example:
        >>> true_reward(["love love love love"]).tolist()  # one distinct word, 3 of 4 repeat
        [-0.5]
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got one string; wrap it: [text]")
    scores = []
    for text in texts:
        words = words_of(text)
        distinct = set(words)
        sentiment = len(distinct & POSITIVE_WORDS) - len(distinct & NEGATIVE_WORDS)
        repeated = 1.0 - len(distinct) / len(words) if words else 0.0
        scores.append(sentiment - repetition_weight * repeated)
    return torch.tensor(scores, dtype=torch.float32)


def preference_probability(reward_a: torch.Tensor, reward_b: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Bradley-Terry: the probability that ``a`` is preferred, ``sigmoid((r_a - r_b) / temperature)``.

    Example:
        >>> float(preference_probability(torch.tensor(2.0), torch.tensor(2.0), 1.0))
        0.5
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    return torch.sigmoid((reward_a - reward_b) / temperature)


def noise_ceiling(probabilities: torch.Tensor) -> float:
    """The expected accuracy of the true rule on labels drawn with these probabilities.

    The best any predictor can do on a pair labelled ``a`` with probability ``p`` is to
    say ``a`` when ``p > 1/2``: it is right with probability ``max(p, 1 - p)``.

    Example:
        >>> round(noise_ceiling(torch.tensor([0.5, 0.9, 0.2])), 4)
        0.7333
    """
    return float(torch.maximum(probabilities, 1 - probabilities).mean())


PREFERENCE_RULES = {
    "texts": Option(2000, minimum=4),
    "comparisons_per_text": Option(8, minimum=1),
    "heldout_fraction": Option(0.2, above=0.0, below=1.0),
    "new_characters": Option(64, minimum=1),
    "temperature": Option(0.5, above=0.0),
    "sampling_temperature": Option(1.0, above=0.0),
    "repetition_weight": Option(2.0, minimum=0.0),
    "batch_size": Option(250, minimum=1),
    "seed": Option(0, minimum=0),
}


@dataclass
class PreferenceConfig:
    """How the preference data is made (every field checked against :data:`PREFERENCE_RULES`).

    ``texts`` completions of ``new_characters`` characters each are sampled after
    ``prompt`` at ``sampling_temperature`` (``batch_size`` at a time); the last
    ``heldout_fraction`` of them are held out. Each training text is compared with
    ``comparisons_per_text`` others drawn at random from the training texts (as an
    InstructGPT labeller ranks several outputs of one prompt, giving many comparisons per
    output), each held-out text with 2 held-out others, so no held-out pair shares a text
    with a training pair. ``temperature`` is the labeller's Bradley-Terry noise (in units
    of true reward).
    """

    texts: int = 2000
    comparisons_per_text: int = 8
    heldout_fraction: float = 0.2
    new_characters: int = 64
    prompt: str = "\n"
    temperature: float = 0.5
    sampling_temperature: float = 1.0
    repetition_weight: float = 2.0
    batch_size: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(asdict(self), PREFERENCE_RULES)
        if not isinstance(self.prompt, str) or not self.prompt:
            raise ValueError(f"prompt must be a non-empty string, got {self.prompt!r}")
        heldout = round(self.texts * self.heldout_fraction)
        if heldout < 2 or self.texts - heldout < 2:
            raise ValueError(f"texts={self.texts} with heldout_fraction={self.heldout_fraction} "
                             "leaves fewer than 2 training or 2 held-out texts; ask for more "
                             "texts")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreferencePairs:
    """Labelled pairs: ``chosen[i]`` was preferred to ``rejected[i]`` after the same prompt.

    ``chosen_tokens``/``rejected_tokens``: ``(N, P + C)`` prompt and completion ids
    (``prompt_length = P``); ``chosen``/``rejected``: the completions as text;
    ``probability``: the probability that the labeller agrees with the true rule on this
    pair, ``sigmoid(|r(a) - r(b)| / temperature)`` (1/2 for a tie), whichever way the
    label fell;
    ``true_chosen``/``true_rejected``: the hidden rule's scores.
    """

    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor
    chosen: list[str]
    rejected: list[str]
    true_chosen: torch.Tensor
    true_rejected: torch.Tensor
    probability: torch.Tensor
    prompt_length: int

    def __len__(self) -> int:
        return len(self.chosen)

    def subset(self, index: slice | torch.Tensor) -> "PreferencePairs":
        """The pairs at ``index`` (a slice or a tensor of positions)."""
        pick = (lambda items: items[index]) if isinstance(index, slice) else \
            (lambda items: [items[i] for i in index.tolist()])
        return PreferencePairs(self.chosen_tokens[index], self.rejected_tokens[index],
                               pick(self.chosen), pick(self.rejected), self.true_chosen[index],
                               self.true_rejected[index], self.probability[index],
                               self.prompt_length)

    def label_agreement(self) -> float:
        """The share of labels that agree with the true rule (ties count one half)."""
        difference = self.true_chosen - self.true_rejected
        return float(((difference > 0).float() + 0.5 * (difference == 0).float()).mean())


@dataclass
class PreferenceData:
    """The training and held-out pairs and the config that made them."""

    train: PreferencePairs
    heldout: PreferencePairs
    config: PreferenceConfig

    def summary(self) -> dict:
        """Sizes, label agreement with the true rule and the noise ceiling of the held-out pairs."""
        return {"train_pairs": len(self.train), "heldout_pairs": len(self.heldout),
                "heldout_label_agreement": round(self.heldout.label_agreement(), 4),
                "heldout_noise_ceiling": round(noise_ceiling(self.heldout.probability), 4),
                "heldout_ties": int((self.heldout.true_chosen
                                     == self.heldout.true_rejected).sum())}


def _sample_in_batches(model: torch.nn.Module, vocab, config: PreferenceConfig,
                       generator: torch.Generator) -> torch.Tensor:
    """``texts`` sequences (prompt + completion), ``batch_size`` at a time (memory)."""
    pieces = []
    for start in range(0, config.texts, config.batch_size):
        pieces.append(sample_tokens(model, vocab, min(config.batch_size, config.texts - start),
                                    config.new_characters, config.prompt, generator,
                                    config.sampling_temperature).cpu())
    return torch.cat(pieces)


def label_pairs(tokens: torch.Tensor, texts: list[str], rewards: torch.Tensor,
                first: torch.Tensor, second: torch.Tensor, temperature: float,
                generator: torch.Generator, prompt_length: int) -> PreferencePairs:
    """Label the pairs ``(first[i], second[i])`` (positions in ``texts``) by one Bradley-Terry draw each.

    Example:
        >>> tokens = torch.zeros(3, 2, dtype=torch.long)
        >>> pairs = label_pairs(tokens, ["a", "b", "c"], torch.tensor([5.0, 0.0, 0.0]),
        ...                     torch.tensor([0, 1]), torch.tensor([1, 2]), 0.1,
        ...                     torch.Generator().manual_seed(0), 1)
        >>> pairs.chosen[0], round(float(pairs.probability[1]), 2)  # a gap of 5: always "a"
        ('a', 0.5)
    """
    p_first = preference_probability(rewards[first], rewards[second], temperature)
    first_wins = torch.rand(len(first), generator=generator) < p_first
    chosen = torch.where(first_wins, first, second)
    rejected = torch.where(first_wins, second, first)
    probability = torch.maximum(p_first, 1 - p_first)  # that the label agrees with the truth
    return PreferencePairs(tokens[chosen], tokens[rejected], [texts[i] for i in chosen.tolist()],
                           [texts[i] for i in rejected.tolist()], rewards[chosen],
                           rewards[rejected], probability, prompt_length)


def _random_partners(low: int, high: int, per_text: int, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every text of ``[low, high)`` paired ``per_text`` times with another one of the range."""
    first = torch.arange(low, high).repeat(per_text)
    offset = torch.randint(1, high - low, (len(first),), generator=generator)
    second = low + (first - low + offset) % (high - low)  # never the text itself
    return first, second


def make_preference_pairs(model: torch.nn.Module, vocab, config: PreferenceConfig | None = None
                          ) -> PreferenceData:
    """Sample ``texts`` completions from ``model``, pair them, label each pair by one Bradley-Terry draw.

    The sampling, the pairing and the labels come from one generator seeded with
    ``config.seed``, so the same config gives the same pairs.

    Example:
        >>> data = make_preference_pairs(gpt, vocab, PreferenceConfig(texts=100))  # doctest: +SKIP
        >>> data.summary()["heldout_noise_ceiling"]  # doctest: +SKIP
    """
    config = config or PreferenceConfig()
    generator = torch.Generator().manual_seed(config.seed)
    tokens = _sample_in_batches(model, vocab, config, generator)
    prompt_length = tokens.shape[1] - config.new_characters
    texts = [vocab.decode(row[prompt_length:].tolist()) for row in tokens]
    rewards = true_reward(texts, config.repetition_weight)
    cut = config.texts - round(config.texts * config.heldout_fraction)
    train = label_pairs(tokens, texts, rewards,
                        *_random_partners(0, cut, config.comparisons_per_text, generator),
                        config.temperature, generator, prompt_length)
    heldout = label_pairs(tokens, texts, rewards,
                          *_random_partners(cut, config.texts, 2, generator),
                          config.temperature, generator, prompt_length)
    return PreferenceData(train, heldout, config)


__all__ = ["NEGATIVE_WORDS", "POSITIVE_WORDS", "PREFERENCE_RULES", "PreferenceConfig",
           "PreferenceData", "PreferencePairs", "label_pairs", "make_preference_pairs",
           "noise_ceiling", "preference_probability", "true_reward"]
