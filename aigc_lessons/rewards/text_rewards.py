"""A programmatic reward for generated text that a reader can check by eye: words of love.

:class:`WordFrequencyReward` scores a text with the fraction of its words that belong to a
chosen set, :data:`LOVE_WORDS` by default (``love``, ``heart``, ``sweet``, ``kiss``, ...).
A word is a maximal run of letters and apostrophes (``[A-Za-z']+``), compared in lower
case; a text without words scores 0. So ``"O sweet love, my heart"`` scores 3/5 = 0.6.

The reward is made to be *hackable*: the text that maximises it is ``"love love love
..."`` (reward 1), which is not Shakespeare at all. Without a KL penalty to the pretrained
model, fine-tuning finds such texts (reward hacking, the chapter shows the samples); with
the penalty it has to stay close to the pretrained model's style while writing more
words of love.

Example:
    >>> reward = WordFrequencyReward()
    >>> reward(["O sweet love, my heart", "To be or not", ""]).tolist()
    [0.6000000238418579, 0.0, 0.0]
"""

from __future__ import annotations

import re
from typing import Iterable

import torch

__all__ = ["LOVE_WORDS", "WORD_PATTERN", "WordFrequencyReward", "love_reward", "words_of"]

# Love and its neighbours, with the inflections Shakespeare uses; all lower case.
LOVE_WORDS = frozenset({
    "love", "loves", "loved", "lover", "lovers", "loving", "lovely", "love's",
    "heart", "hearts", "heart's", "sweet", "sweetest", "sweetly", "kiss", "kisses", "kissed",
    "dear", "dearest", "darling", "fair", "fairest", "beauty", "beauteous", "beautiful",
    "gentle", "tender", "adore", "embrace", "cupid", "venus", "passion", "desire", "woo",
    "wooing", "wooed",
})

WORD_PATTERN = re.compile(r"[A-Za-z']+")


def words_of(text: str) -> list[str]:
    """The words of ``text`` in lower case, leading and trailing apostrophes removed.

    Example:
        >>> words_of("'Tis my love's heart!")
        ['tis', 'my', "love's", 'heart']
    """
    words = (word.strip("'").lower() for word in WORD_PATTERN.findall(text))
    return [word for word in words if word]


class WordFrequencyReward:
    """``reward(texts)``: for each text the fraction of its words that are in ``words``.

    ``words`` (lower case) defaults to :data:`LOVE_WORDS`. Returns a float tensor
    ``(len(texts),)`` in [0, 1], without gradient (a reward is a measurement, not a loss).

    Example:
        >>> WordFrequencyReward({"king"})(["the king, the KING"]).tolist()
        [0.5]
    """

    def __init__(self, words: Iterable[str] = LOVE_WORDS) -> None:
        words = frozenset(words)
        if not words or not all(isinstance(word, str) and word for word in words):
            raise ValueError("words must be a non-empty collection of non-empty strings")
        lowered = {word.lower() for word in words}
        if lowered != set(words):
            raise ValueError("words must be lower case (texts are compared in lower case)")
        self.words = words

    def hits(self, text: str) -> tuple[int, int]:
        """``(words in the set, all words)`` of one text."""
        words = words_of(text)
        return sum(word in self.words for word in words), len(words)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not one string")
        scores = []
        for text in texts:
            hits, total = self.hits(text)
            scores.append(hits / total if total else 0.0)
        return torch.tensor(scores, dtype=torch.float32)


love_reward = WordFrequencyReward()  # the chapter's reward
