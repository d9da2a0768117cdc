"""Does a language model copy its training text? The longest span of a text found in a source.

A sample that repeats long stretches of the training text verbatim is memorised, not
generated. :func:`longest_copied_span` finds the longest substring of a text (a sample)
that occurs anywhere in a source text (the training plays). On its own the length means
little: ordinary English shares phrases of a few words with any large text ("I will
not", "my good lord"), so the same measure on human text that the model never saw (a
held-out play) is the yardstick: :func:`copied_span_lengths` measures it piece by piece,
so a sample and a passage of the same length can be compared.

The search grows the best match one character at a time: at each start ``i`` of the text
it asks only whether a match *longer* than the best so far starts there (if
``text[i:i+k]`` occurs in the source, so does every shorter prefix of it). That is
``len(text) + longest`` substring searches of the source, each a fast ``in`` test of
Python's string search, instead of one per pair of start and length.

Example:
    >>> longest_copied_span("to be or not to be", "not to bed, or to be")
    'not to be'
    >>> copied_span_lengths("abcdxyqq", "abc xyz", piece=4)
    [3, 2]
"""

from __future__ import annotations


def _check_texts(text: str, source: str) -> None:
    if not isinstance(text, str) or not isinstance(source, str):
        raise ValueError(f"text and source must be strings, got {type(text).__name__} and "
                         f"{type(source).__name__}; decode token ids first (vocab.decode(ids))")


def longest_copied_span(text: str, source: str) -> str:
    """The longest substring of ``text`` that occurs in ``source`` (the first one if tied).

    An empty ``text`` or ``source``, or no shared character, gives ``""``.

    Example:
        >>> longest_copied_span("the king is dead", "long live the king")
        'the king'
        >>> longest_copied_span("xyz", "abc")
        ''
    """
    _check_texts(text, source)
    best = ""
    for start in range(len(text)):
        # grow while a match one longer than the best so far starts here
        while start + len(best) < len(text) and text[start : start + len(best) + 1] in source:
            best = text[start : start + len(best) + 1]
    return best


def copied_span_lengths(text: str, source: str, piece: int) -> list[int]:
    """The length of :func:`longest_copied_span` of each consecutive ``piece`` characters of ``text``.

    The last, shorter piece is left out unless it is the only one. Pieces of equal
    length make a sample and a held-out passage comparable.

    Example:
        >>> copied_span_lengths("aaaabbbb", "aab", piece=4)
        [2, 1]
    """
    _check_texts(text, source)
    if isinstance(piece, bool) or not isinstance(piece, int) or piece < 1:
        raise ValueError(f"piece must be an integer >= 1 (characters per piece), got {piece!r}")
    count = max(1, len(text) // piece)
    return [len(longest_copied_span(text[k * piece : (k + 1) * piece], source))
            for k in range(count)]
