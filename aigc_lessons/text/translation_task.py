"""A generated translation task: English number words, written with noise, into digits.

``"three hundred and forty-two thousand, five hundred and six"`` -> ``"342506"``. The
task is small enough for a CPU and still a real sequence-to-sequence problem: the
output is shorter than the input and in a different alphabet, its length is not fixed,
the digit for a word depends on the words around it (``"five"`` is a ``5`` in the
thousands place of ``"five thousand and six"`` but also stands for the zeros that the
words never say), and the same number has many spellings. Each example is drawn with:

* optional words: ``"and"`` after ``hundred`` / ``thousand`` (British and American usage),
  ``"a hundred"`` or ``"one hundred"``, a comma after ``thousand`` or none;
* a hyphen or a space inside ``forty-two``;
* a word-order variant: ``"nineteen hundred and ninety-eight"`` for 1998 (any number from
  1,100 to 9,999 whose hundreds digit is not 0 can be read in hundreds);
* a typo with probability ``typo_rate``: in one word of five letters or more, two inner
  letters swapped, one inner letter dropped or one doubled (``"hundred"`` -> ``"hunderd"``).

The values 0 .. ``max_value`` are split into training, validation and test values once,
from ``seed``, within each number of digits (so every split has numbers of every length);
the splits share no value, so test accuracy measures numbers the model never saw, not
spellings of numbers it saw. Examples are drawn with the number of digits uniform
(otherwise six-digit numbers would be 90% of the data) and the value uniform among those
of the split with that many digits.

:class:`CharTokenizer` turns text into ids with the three special tokens a
sequence-to-sequence model needs: padding (id 0), start (1) and end (2).

Example:
    >>> number_to_words(1998)
    'one thousand nine hundred and ninety-eight'
    >>> task = NumberTranslationTask(seed=0)
    >>> source, target = task.examples("test", 1)[0]
    >>> int(target) in set(task.values("test").tolist())
    True
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["CharTokenizer", "NumberTranslationTask", "SOURCE_CHARACTERS", "TARGET_CHARACTERS",
           "number_to_words"]

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SOURCE_CHARACTERS = " ,-abcdefghijklmnopqrstuvwxyz"
TARGET_CHARACTERS = "0123456789"
SPLITS = ("train", "validation", "test")


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum:,}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value!r}")
    return int(value)


def _below_hundred(n: int, hyphen: bool) -> str:
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (("-" if hyphen else " ") + ONES[ones] if ones else "")


def _below_thousand(n: int, hyphen: bool, use_and: bool, a_hundred: bool) -> str:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append(("a" if hundreds == 1 and a_hundred else ONES[hundreds]) + " hundred")
    if rest:
        words.append(("and " if hundreds and use_and else "") + _below_hundred(rest, hyphen))
    return " ".join(words)


def number_to_words(value: int, hyphen: bool = True, use_and: bool = True, comma: bool = False,
                    a_hundred: bool = False, in_hundreds: bool = False) -> str:
    """The English words of ``value`` (0 .. 999,999) in one chosen style.

    ``hyphen``: ``forty-two`` (else ``forty two``); ``use_and``: ``hundred and six``;
    ``comma``: ``thousand, six``; ``a_hundred``: ``a hundred``/``a thousand`` for one;
    ``in_hundreds``: ``nineteen hundred`` for 1,900 .. (only where that reading exists).

    Example:
        >>> number_to_words(342506, comma=True)
        'three hundred and forty-two thousand, five hundred and six'
        >>> number_to_words(1998, in_hundreds=True, use_and=False)
        'nineteen hundred ninety-eight'
    """
    value = _check_int("value", value, 0, 999_999)
    if value == 0:
        return "zero"
    if in_hundreds and 1100 <= value <= 9999 and (value // 100) % 10:
        head, rest = divmod(value, 100)
        tail = ((" and " if use_and else " ") + _below_hundred(rest, hyphen)) if rest else ""
        return _below_hundred(head, hyphen) + " hundred" + tail
    thousands, rest = divmod(value, 1000)
    parts = []
    if thousands:
        parts.append(_below_thousand(thousands, hyphen, use_and, a_hundred) + " thousand")
        if thousands == 1 and a_hundred:
            parts[-1] = "a thousand"
    if rest:
        words = _below_thousand(rest, hyphen, use_and, a_hundred and not thousands)
        if thousands and rest < 100 and use_and:
            words = "and " + words  # "one thousand and five"
        parts.append(words)
    if len(parts) == 1:
        return parts[0]
    return parts[0] + ("," if comma else "") + " " + parts[1]


def _typo(text: str, rng: random.Random) -> str:
    """One typo in one word of five letters or more: swap, drop or double an inner letter."""
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if sum(c.isalpha() for c in word) >= 5]
    if not long_words:
        return text
    index = rng.choice(long_words)
    word = words[index]
    inner = [i for i in range(1, len(word) - 1) if word[i].isalpha() and word[i + 1].isalpha()]
    if not inner:
        return text
    i = rng.choice(inner)
    kind = rng.randrange(3)
    if kind == 0:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap letters i and i + 1
    elif kind == 1:
        word = word[:i] + word[i + 1:]  # drop letter i
    else:
        word = word[:i] + word[i] + word[i:]  # double letter i
    words[index] = word
    return " ".join(words)


class NumberTranslationTask:
    """Noisy English number words -> digits, with training / validation / test split by value.

    ``max_value``: the largest number (at most 999,999); ``test_fraction`` and
    ``validation_fraction`` of the values of each length are held out; ``typo_rate``: the
    probability of one typo per example. Everything is determined by ``seed``.

    Example:
        >>> task = NumberTranslationTask(max_value=999, seed=1)
        >>> len(task.values("train")) + len(task.values("validation")) + len(task.values("test"))
        1000
    """

    def __init__(self, max_value: int = 999_999, test_fraction: float = 0.1,
                 validation_fraction: float = 0.05, typo_rate: float = 0.3, seed: int = 0) -> None:
        self.max_value = _check_int("max_value", max_value, 9, 999_999)
        for name, value in (("test_fraction", test_fraction),
                            ("validation_fraction", validation_fraction), ("typo_rate", typo_rate)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if test_fraction + validation_fraction >= 0.9:
            raise ValueError(f"test_fraction + validation_fraction must stay below 0.9 so that "
                             f"most values are left to train on, got {test_fraction} + "
                             f"{validation_fraction}")
        self.seed = _check_int("seed", seed, 0)
        self.typo_rate = float(typo_rate)
        self.test_fraction, self.validation_fraction = test_fraction, validation_fraction
        rng = np.random.default_rng(self.seed)
        # values by split and by number of digits: {split: [array of 1-digit values, ...]}
        self._by_length: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
        for digits in range(1, len(str(self.max_value)) + 1):
            low, high = (0 if digits == 1 else 10 ** (digits - 1)), min(10 ** digits - 1,
                                                                       self.max_value)
            values = rng.permutation(np.arange(low, high + 1))
            test = int(round(test_fraction * len(values)))
            validation = int(round(validation_fraction * len(values)))
            pieces = {"test": values[:test], "validation": values[test:test + validation],
                      "train": values[test + validation:]}
            for split in SPLITS:
                self._by_length[split].append(np.sort(pieces[split]))
        # the same as Python lists (drawing from a list is much faster than from an array)
        self._groups = {split: [group.tolist() for group in groups if len(group)]
                        for split, groups in self._by_length.items()}

    def _check_split(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return split

    def values(self, split: str) -> np.ndarray:
        """Every value of ``split``, sorted."""
        return np.concatenate(self._by_length[self._check_split(split)])

    def render(self, value: int, rng: random.Random) -> str:
        """One noisy spelling of ``value``, its style and typo drawn from ``rng``."""
        style = {"hyphen": rng.random() < 0.7, "use_and": rng.random() < 0.5,
                 "comma": rng.random() < 0.3, "a_hundred": rng.random() < 0.3,
                 "in_hundreds": rng.random() < 0.5}
        text = number_to_words(value, **style)
        return _typo(text, rng) if rng.random() < self.typo_rate else text

    def sample(self, split: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
        """``count`` pairs ``(words, digits)`` of values of ``split`` drawn with ``rng``.

        The number of digits is uniform among the lengths that ``split`` has, the value
        uniform among the split's values of that length, the spelling from :meth:`render`.
        """
        self._check_split(split)
        count = _check_int("count", count, 1)
        if not isinstance(rng, random.Random):
            raise ValueError(f"rng must be a random.Random (e.g. random.Random(0)), got "
                             f"{type(rng).__name__}")
        groups = self._groups[split]
        pairs = []
        for _ in range(count):
            group = groups[rng.randrange(len(groups))]
            value = group[rng.randrange(len(group))]
            pairs.append((self.render(value, rng), str(value)))
        return pairs

    def examples(self, split: str, count: int) -> list[tuple[str, str]]:
        """A fixed set of ``count`` examples of ``split`` (the same for the same task and seed)."""
        salt = {"train": 1, "validation": 2, "test": 3}[self._check_split(split)]
        return self.sample(split, count, random.Random(self.seed * 1_000_003 + salt))


class CharTokenizer:
    """Characters to ids, after three special tokens: ``<pad>`` 0, ``<s>`` 1 (start), ``</s>`` 2.

    Example:
        >>> tokenizer = CharTokenizer("0123456789")
        >>> tokenizer.encode("42", start=True, end=True)
        [1, 7, 5, 2]
        >>> tokenizer.decode([1, 7, 5, 2, 0, 0])
        '42'
    """

    PAD, START, END = 0, 1, 2
    SPECIALS = ("<pad>", "<s>", "</s>")

    def __init__(self, characters: str) -> None:
        if not isinstance(characters, str) or not characters:
            raise ValueError("characters must be a non-empty string of the allowed characters")
        if len(set(characters)) != len(characters):
            raise ValueError(f"characters must be distinct, got {characters!r}")
        self.characters = characters
        self.index = {c: i + len(self.SPECIALS) for i, c in enumerate(characters)}

    def __len__(self) -> int:
        return len(self.SPECIALS) + len(self.characters)

    def encode(self, text: str, start: bool = False, end: bool = False) -> list[int]:
        """The ids of ``text``, with the start and end tokens if asked for."""
        unknown = sorted(set(text) - set(self.characters))
        if unknown:
            raise ValueError(f"the text {text!r} has characters outside the tokenizer's alphabet: "
                             f"{unknown}; allowed: {self.characters!r} (lower-case the text and "
                             f"remove other characters first)")
        ids = [self.index[c] for c in text]
        return ([self.START] if start else []) + ids + ([self.END] if end else [])

    def decode(self, ids) -> str:
        """The text of ``ids``: start and padding skipped, everything from the end token cut."""
        characters = []
        for token in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            token = int(token)
            if token == self.END:
                break
            if token >= len(self) or token < 0:
                raise ValueError(f"token id {token} is outside [0, {len(self)})")
            if token >= len(self.SPECIALS):
                characters.append(self.characters[token - len(self.SPECIALS)])
        return "".join(characters)

    def batch(self, texts: list[str], length: int, start: bool = False, end: bool = False
              ) -> torch.Tensor:
        """A ``(len(texts), length)`` tensor of ids, each row padded with ``<pad>`` to ``length``."""
        rows = [self.encode(text, start, end) for text in texts]
        longest = max((len(row) for row in rows), default=0)
        if longest > length:
            raise ValueError(f"a text needs {longest} tokens but length is {length}; raise "
                             f"length (the model's source_length / target_length) or shorten it")
        out = torch.full((len(rows), length), self.PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out
