"""Tokens: characters (:class:`CharVocab`) and a small byte-pair encoding (:func:`train_bpe`).

A language model predicts token ids, so text must become ids and ids text again. Two
choices, both short enough to read:

* **characters**: every distinct character of a text is one token (about 75 for the
  Shakespeare corpus). Nothing to learn, but a sequence is as long as the text;
* **byte-pair encoding** (BPE; Gage 1994, for words Sennrich, Haddow & Birch 2016, on bytes
  GPT-2, Radford et al. 2019): start from the 256 byte values and repeatedly give the most
  frequent adjacent pair of tokens a new id. After ``merges`` merges the vocabulary has
  ``256 + merges`` tokens and a text takes fewer of them. As in GPT-2, the text is first
  cut into chunks (a word with its leading space, a run of punctuation, whitespace), and
  pairs are merged inside chunks only, so no token spans two words.

(``tiktoken``, GPT-2's and GPT-4's tokenizer, downloads its merge tables on first use
and fails offline; the book trains its own.)

Example:
    >>> vocab = CharVocab.from_text("to be or not")
    >>> vocab.decode(vocab.encode("not to be"))
    'not to be'
    >>> bpe = train_bpe("to be or not to be", merges=3)
    >>> bpe.decode(bpe.encode("to be")), len(bpe.encode("to be")) < len("to be")
    ('to be', True)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: ``characters[i]`` is the character of token ``i`` (sorted)."""

    characters: str
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.characters)) != len(self.characters):
            raise ValueError("CharVocab characters must be distinct")
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.characters)})

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of every distinct character in ``text``.

        Example:
            >>> CharVocab.from_text("abba").characters
            'ab'
        """
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``; ``ValueError`` naming the characters outside the vocabulary.

        Example:
            >>> CharVocab("ab").encode("abba")
            [0, 1, 1, 0]
        """
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            where = min(text.index(c) for c in unknown)
            shown = ", ".join(repr(c) for c in unknown[:10])
            shown += ", ..." if len(unknown) > 10 else ""
            raise ValueError(
                f"{len(unknown)} character(s) not in the vocabulary: {shown} (first at position "
                f"{where}). The vocabulary has {len(self)} characters, from the text it was built "
                "from; remove or replace these characters, or build the vocabulary from a text "
                "that contains them"
            )
        return [self.index[character] for character in text]

    def decode(self, ids) -> str:
        """The text of token ids (a list, 1-D tensor or array); ``ValueError`` for ids out of range.

        Example:
            >>> CharVocab("ab").decode([1, 0])
            'ba'
        """
        ids = [int(i) for i in ids]
        bad = sorted({i for i in ids if not 0 <= i < len(self)})
        if bad:
            raise ValueError(f"token ids {bad[:10]} are outside the vocabulary [0, {len(self)})")
        return "".join(self.characters[i] for i in ids)


# GPT-2's chunks without its Unicode classes: a word with its leading space, a number, a run of
# other symbols, whitespace (all but the last space of a run, which starts the next word).
CHUNK = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+| ?_+")


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``ids`` with each occurrence of ``pair`` (left to right, not overlapping) made ``new_id``.

    Example:
        >>> merge_pair([1, 2, 1, 2, 2], (1, 2), 9)
        [9, 9, 2]
    """
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


@dataclass
class BytePairEncoding:
    """A trained BPE: merge ``i`` turns the pair ``merges[i]`` into token ``256 + i``.

    Tokens 0..255 are single bytes (UTF-8), so every text can be encoded and decoded.
    """

    merges: list[tuple[int, int]]
    _cache: dict[str, list[int]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def token_bytes(self, token: int) -> bytes:
        """The bytes token ``token`` stands for.

        Example:
            >>> BytePairEncoding([(116, 111)]).token_bytes(256)
            b'to'
        """
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token {token} is outside the vocabulary [0, {self.vocab_size})")
        if token < 256:
            return bytes([token])
        left, right = self.merges[token - 256]
        return self.token_bytes(left) + self.token_bytes(right)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(chunk.encode("utf-8"))
        ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        while len(ids) > 1:  # apply the earliest-learned merge present, as training did
            pair = min(pairwise(ids), key=lambda p: ranks.get(p, len(ranks)))
            if pair not in ranks:
                break
            ids = merge_pair(ids, pair, 256 + ranks[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` (chunk by chunk; a chunk seen before is looked up)."""
        ids = []
        for chunk in CHUNK.findall(text):
            if chunk not in self._cache:
                self._cache[chunk] = self._encode_chunk(chunk)
            ids.extend(self._cache[chunk])
        return ids

    def decode(self, ids) -> str:
        """The text of token ids (bytes that are not valid UTF-8 show as U+FFFD)."""
        return b"".join(self.token_bytes(int(i)) for i in ids).decode("utf-8", errors="replace")


def train_bpe(text: str, merges: int) -> BytePairEncoding:
    """Learn ``merges`` byte-pair merges from ``text`` (fewer if no pair occurs twice any more).

    Each distinct chunk is kept once with its count, so the work depends on the size of
    the chunk vocabulary, not the length of the text.

    Example:
        >>> bpe = train_bpe("aaab aaab", merges=2)
        >>> [bpe.token_bytes(t) for t in range(256, bpe.vocab_size)]
        [b'aa', b'aaa']
    """
    if not isinstance(merges, int) or merges < 0:
        raise ValueError(f"merges must be an integer >= 0, got {merges!r}")
    counted = Counter(CHUNK.findall(text))
    chunks = {tuple(chunk.encode("utf-8")): count for chunk, count in counted.items()}
    learned: list[tuple[int, int]] = []
    for new_id in range(256, 256 + merges):
        pairs: Counter = Counter()
        for ids, count in chunks.items():
            for pair in pairwise(ids):
                pairs[pair] += count
        if not pairs or max(pairs.values()) < 2:
            break
        best = max(pairs, key=lambda pair: (pairs[pair], pair))  # a tie: the larger ids
        learned.append(best)
        chunks = {tuple(merge_pair(list(ids), best, new_id)): count for ids, count in chunks.items()}
    return BytePairEncoding(learned)
