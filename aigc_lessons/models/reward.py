"""A small reward model for text: a bag of words with one learned weight per word.

InstructGPT (Ouyang et al. 2022) and Ziegler et al. (2019) take the pretrained language
model itself, replace its next-token head by a scalar head and fit it to preferences. On 2
CPU cores the shipped character GPT costs about a second per training step and, fitted to
a couple of thousand comparisons, memorises them (a character CNN did too: training
accuracy near 1, held-out accuracy near chance). This book therefore uses the smallest
model whose inductive bias matches what the labels are about, words:

    r(y) = b + sum over the words w of y of  weight[bucket(w)]

Each word (lower case, :func:`aigc_lessons.rewards.text_rewards.words_of`) is hashed with
CRC-32 into one of ``buckets`` weights (a fixed hash, so a saved model scores the same
everywhere); the score is the sum over the text's words. It trains in seconds. Because it
*adds* the weight of a word every time the word appears, it cannot know that saying "love"
ten times is not ten times as cheerful: that is the blind spot a policy tuned against it
can exploit, and the chapter measures what that does to the true reward.

Shapes: a list of ``B`` texts -> rewards ``(B,)``; :meth:`WordRewardModel.bucket_ids` gives
the hashed words of each text.
"""

from __future__ import annotations

import re
import zlib

import torch
from torch import nn

__all__ = ["WordRewardModel"]

_WORD = re.compile(r"[A-Za-z']+")  # the word rule of aigc_lessons.rewards.text_rewards


class WordRewardModel(nn.Module):
    """``bias + sum_w weight[crc32(w) % buckets]`` over the words ``w`` of a text.

    Example:
        >>> model = WordRewardModel(buckets=64)
        >>> model(["O sweet love", "", "love love"]).shape
        torch.Size([3])
    """

    def __init__(self, buckets: int = 4096) -> None:
        super().__init__()
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ValueError(f"buckets must be an integer >= 1, got {buckets!r}")
        self.buckets = buckets
        self.weights = nn.EmbeddingBag(buckets, 1, mode="sum")
        nn.init.zeros_(self.weights.weight)  # start from "every text is as good as any other"
        self.bias = nn.Parameter(torch.zeros(()))

    def bucket_ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The hashed words of all texts, flat, and where each text's words start (``offsets``)."""
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise TypeError("texts must be a list of strings (wrap one text: [text])")
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            words = (word.strip("'").lower() for word in _WORD.findall(text))
            ids.extend(zlib.crc32(word.encode()) % self.buckets for word in words if word)
        device = self.bias.device
        return (torch.tensor(ids, dtype=torch.long, device=device),
                torch.tensor(offsets, dtype=torch.long, device=device))

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, offsets = self.bucket_ids(texts)
        return self.weights(ids, offsets).squeeze(-1) + self.bias  # an empty text scores bias
