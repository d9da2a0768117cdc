"""Numbers in the book come from their records, never retyped.

Two rules, run over the prose of every page of ``_toc.yml`` (markdown cells of the
notebooks and ``.md`` pages; code, math and roles are not prose):

1. *No copies*: a typed number that equals, at the precision it is written, a measured
   value of a record (a model card's metrics, times and sizes; a JSON record under book/;
   a benchmark table) must be a ``{record}`` role instead.
2. *No unsourced figures*: a sentence that names a shipped model and states a metric figure
   (FD, precision, accuracy, nats, seconds, ...) must take it from a record, unless the
   sentence cites its source (``{cite}``) or states a target ("at most 30").

Every ``{record}`` reference in the pages must also resolve. The fixtures under
``tests/fixtures/records/`` show each rule failing on a page that breaks it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aigc_lessons.records import RecordError, format_record, numbers_in_records, record
from tests.book_build import ROOT, toc_files

FIXTURES = Path(__file__).parent / "fixtures" / "records"

# Record fields that are settings or sample sizes, which a page may state as inputs.
SETTING_FIELD = re.compile(r"(count|samples|images|seed|epochs?|batch\w*|steps|_k|bytes)\b[^.]*$")

ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
CODE_FENCES = {"", "python", "py", "bash", "sh", "console", "text", "yaml", "json", "toml", "ini", "md",
               "markdown", "{code-cell}", "{code-block}", "{code}", "{mermaid}", "{math}", "{literalinclude}"}
NUMBER = re.compile(
    r"(?<![\w.\-/#])(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<unit>\s*%|×|x\b|\s*ms\b|\s*s\b)?(?![\w.]\d)"
)
METRIC_BEFORE = re.compile(
    r"(\b(FD|FID|IS|ELBO|NLL|PSNR|SSIM|AUC)\b|(?i:\b(Fréchet distance|Inception score|classifier score"
    r"|precision|recall|accuracy|loss|nats?)\b))[^.;:\d]{0,15}$"
)
UNIT_AFTER = re.compile(r"^\s*(%|nats?\b|dB\b|ms\b|s\b|seconds?\b|minutes?\b|images/s\b|×)")
TARGET_BEFORE = re.compile(r"(≤|≥|<|>|at most|at least|below|above|under|over|target\w*|up to|bar of)\s*\S{0,12}\s*$", re.I)
MODEL_WORDS = ["DCGAN", "MLP GAN", "fully connected GAN", "cGAN", "conditional GAN", "cVAE", "VAE", "EDSR",
               "SRGAN", "pix2pix", "CycleGAN", "reference classifier", "LSTM"]


def prose_of(markdown: str) -> str:
    """The text a reader reads as sentences: code blocks, math, roles, comments and URLs removed."""

    def drop_code_fence(match: re.Match) -> str:
        info = match.group("info").strip().split(" ")[0]
        return "\n" if info in CODE_FENCES or not info.startswith("{") else match.group("body")

    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    text = FENCE.sub(drop_code_fence, text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$\n]+\$", " ", text)
    text = ROLE.sub(lambda m: " CITED " if m.group("name").startswith("cite") else " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"^\s*:[\w-]+:.*$", " ", text, flags=re.M)  # directive options (:label:, :class:)
    text = re.sub(r"^\s*\(?[\w-]+\)=\s*$", " ", text, flags=re.M)  # (target)= lines
    return text


def sentences_of(prose: str) -> list[str]:
    pieces = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*[-*|#])", prose):
        pieces.extend(re.split(r"(?<=[.!?])\s+(?=[A-Z(])", " ".join(paragraph.split())))
    return [piece for piece in pieces if piece.strip()]


def typed_numbers(sentence: str):
    """(text, value, decimals, is_percent, start, end) for each number in a sentence."""
    for match in NUMBER.finditer(sentence):
        whole = match.group("int").replace(",", "")
        fraction = match.group("frac") or ""
        value = float(f"{whole}.{fraction}") if fraction else int(whole)
        unit = (match.group("unit") or "").strip()
        yield match.group(0), value, len(fraction), unit == "%", match.start(), match.end()


def significant_digits(text: str) -> int:
    """Significant digits as written: 90.0 has three, 100 has one, 0.44 has two."""
    number = re.sub(r"[^\d.]", "", text)
    digits = number.replace(".", "").lstrip("0")
    return len(digits if "." in number else digits.rstrip("0"))


def measured_values() -> dict[str, float]:
    """The records' measurements, without settings, sample sizes, losses, per-digit lists and curves.

    A point of a training curve (an object with a ``step`` field, one per logged step) is plotted,
    not quoted: its hundreds of values would match any number a page types by chance.
    """
    values = numbers_in_records()
    curve_points = {ref.rsplit(".", 1)[0] for ref in values if ref.endswith(".step")}
    return {
        ref: value
        for ref, value in values.items()
        if not SETTING_FIELD.search(ref)
        and ref.rsplit(".", 1)[0] not in curve_points
        and not (ref.startswith("card:") and ("[" in ref or "final_losses" in ref or "by_epoch" in ref))
    }


def in_figure_context(sentence: str, start: int, end: int, percent: bool) -> bool:
    """A number stated as a measurement: a percentage, with a unit, after a metric or near a model."""
    before, after = sentence[max(0, start - 40):start], sentence[end:end + 12]
    return bool(
        percent
        or METRIC_BEFORE.search(before)
        or UNIT_AFTER.match(after)
        or sentence[start:end].strip().endswith(("s", "×"))
        or any(re.search(rf"\b{re.escape(word)}\b", sentence) for word in MODEL_WORDS)
    )


def copies_of_records(sentence: str, values: dict[str, float]) -> list[str]:
    """Rule 1: typed numbers that equal a record's value at their written precision."""
    if "CITED" in sentence:
        return []
    found = []
    for text, value, decimals, percent, start, end in typed_numbers(sentence):
        if significant_digits(text) < 3 or (decimals == 0 and 1900 <= value <= 2100):
            continue
        if not in_figure_context(sentence, start, end, percent):
            continue
        before = sentence[max(0, start - 40):start]
        for reference, stored in values.items():
            if decimals == 0 and not percent and isinstance(stored, float) and not METRIC_BEFORE.search(before):
                continue  # a whole number matches a measured fraction only where a metric is named
            scaled = 100 * stored if percent else stored
            if abs(round(scaled, decimals) - value) < 1e-9 * max(1.0, abs(value)):
                found.append(f"{text.strip()!r} equals {reference} = {stored}")
                break
    return found


def unsourced_figures(sentence: str) -> list[str]:
    """Rule 2: a metric figure in a sentence about a shipped model, with no citation and not a target."""
    if "CITED" in sentence or not any(re.search(rf"\b{re.escape(word)}\b", sentence) for word in MODEL_WORDS):
        return []
    found = []
    for text, value, decimals, percent, start, end in typed_numbers(sentence):
        before = sentence[max(0, start - 40):start]
        if TARGET_BEFORE.search(before) or significant_digits(text) < 2 or (decimals == 0 and 1900 <= value <= 2100):
            continue
        if percent or METRIC_BEFORE.search(before) or UNIT_AFTER.match(sentence[end:end + 12]) or text.strip().endswith(("s", "×")):
            found.append(f"{text.strip()!r} in {sentence[:160]!r}")
    return found


def page_markdown(path: Path) -> list[tuple[str, str]]:
    """(where, markdown) for every markdown cell of a notebook, or the whole of a .md page."""
    if path.suffix == ".md":
        return [(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))]
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [
        (f"{path.relative_to(ROOT)} cell {index} ({cell.get('id', '?')})", "".join(cell["source"]))
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "markdown"
    ]


def problems_in(markdown: str, values: dict[str, float]) -> list[str]:
    problems = []
    for sentence in sentences_of(prose_of(markdown)):
        problems += [f"typed copy of a record: {p}" for p in copies_of_records(sentence, values)]
        problems += [f"metric figure not from a record: {p}" for p in unsourced_figures(sentence)]
    return problems


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return measured_values()


def test_every_record_reference_in_the_book_resolves():
    broken = []
    for path in toc_files():
        for where, markdown in page_markdown(path):
            for match in ROLE.finditer(markdown):
                if match.group("name") != "record":
                    continue
                reference, _, spec = match.group("body").replace("\\|", "|").rpartition("|")
                reference, spec = (reference, spec) if reference else (spec, "")
                try:
                    format_record(record(reference), spec.strip())
                except RecordError as error:
                    broken.append(f"{where}: {error}")
    assert not broken, "{record} references that do not resolve:\n" + "\n".join(broken)


def test_pages_take_figures_from_records(values):
    problems = []
    for path in toc_files():
        for where, markdown in page_markdown(path):
            problems += [f"{where}: {problem}" for problem in problems_in(markdown, values)]
    assert not problems, (
        f"{len(problems)} figures typed by hand; write them as {{record}}`...` roles "
        "(see aigc_lessons/records.py), cite their source, or state them as a target:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize(
    "fixture, rule",
    [("typed_copy.md", "typed copy of a record"), ("unsourced_figure.md", "metric figure not from a record")],
)
def test_the_rules_fail_on_pages_that_break_them(fixture, rule, values):
    problems = problems_in((FIXTURES / fixture).read_text(encoding="utf-8"), values)
    assert any(problem.startswith(rule) for problem in problems), f"{fixture} should break {rule!r}: {problems}"


def test_the_rules_pass_on_a_page_that_follows_them(values):
    problems = problems_in((FIXTURES / "from_records.md").read_text(encoding="utf-8"), values)
    assert not problems, problems


def test_a_copy_is_found_at_the_precision_it_is_written(values):
    fd = record("card:dcgan_mnist:metrics.fd_mnist")
    for written in (f"{fd:.1f}", f"{fd:.0f}" if fd >= 100 else f"{fd:.2f}"):
        assert copies_of_records(f"The DCGAN scores an FD of {written}.", values), written
    assert not copies_of_records("The learning rate is 0.5 and we train 3 models.", values)
