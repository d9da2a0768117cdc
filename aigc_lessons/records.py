"""The numbers the book states, read from the records that hold them.

A figure about a shipped model or a benchmark is written once, by the run that
measured it, into a record: the model card next to the weights
(``aigc_lessons/weights/NAME.json``), a JSON file such as the evaluation
chapter's table (``book/evaluation/results_full.json``), or a table of the
benchmark results (``benchmarks/RESULTS.md``). Pages never retype it: they
name it with a *reference*, and the book's ``{record}`` role (and code cells,
through :func:`record`) read the value when the page is built.

Three kinds of reference::

    card:NAME:PATH              a field of the card of pretrained weights NAME
    json:FILE.json:PATH         a field of a JSON file, FILE relative to the checkout
    bench:SECTION;COL=VALUE;...;COL
                                a cell of the table under heading SECTION of
                                benchmarks/RESULTS.md: the one row whose cells match
                                every COL=VALUE filter, in column COL

``PATH`` is dotted, with ``[KEY=VALUE]`` to pick the one element of a list whose
``KEY`` equals ``VALUE``, ``[N]`` to pick by position, and ``[NAME]`` for an
object's field whose name holds a dot: ``rows[model=dcgan_mnist].fd_mnist``,
``metrics.sample_statistics[lstm_T1.0].pitch_class_tv``. A card's path starts inside its ``card``
object (``metrics.fd_mnist``); the file's top level (``sha256``, ``bytes``)
answers what the card does not.

>>> record("card:classifier_mnist:metrics.test_accuracy") > 0.99
True
>>> record("card:music_lstm_bach:metrics.sample_statistics[lstm_T1.0].pitch_class_tv") < 1
True
>>> format_record(0.98571, ".1%")
'98.6%'
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"
CHECKOUT_DIR = PACKAGE_DIR.parent
BENCHMARK_RESULTS = CHECKOUT_DIR / "benchmarks" / "RESULTS.md"

_PATH_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")
_NUMBER = re.compile(r"^[-+−]?\d[\d,]*(\.\d+)?$")


class RecordError(LookupError):
    """A reference that names no record, or a path that the record does not have."""


def record(reference: str) -> Any:
    """The value that ``reference`` names (see the module docstring for the syntax).

    >>> record("json:book/evaluation/results_full.json:rows[model=real MNIST test digits].count")
    10000
    """
    kind, separator, rest = reference.strip().partition(":")
    if not separator:
        raise RecordError(f"{reference!r}: a reference starts with card:, json: or bench:")
    if kind == "card":
        name, _, path = rest.partition(":")
        whole = _read_json(_card_file(name))
        return _walk(whole.get("card", {}), path, reference, fallback=whole)
    if kind == "json":
        file, _, path = rest.partition(":")
        return _walk(_read_json(_checkout_file(file)), path, reference)
    if kind == "bench":
        return _bench_cell(rest, reference)
    raise RecordError(f"{reference!r}: unknown kind {kind!r}; use card:, json: or bench:")


def source_file(reference: str) -> Path:
    """The file that holds ``reference`` (the book build rebuilds a page when it changes)."""
    kind, _, rest = reference.strip().partition(":")
    if kind == "card":
        return _card_file(rest.partition(":")[0])
    if kind == "json":
        return _checkout_file(rest.partition(":")[0])
    if kind == "bench":
        return BENCHMARK_RESULTS
    raise RecordError(f"{reference!r}: unknown kind {kind!r}; use card:, json: or bench:")


def format_record(value: Any, spec: str = "") -> str:
    """``value`` as a page shows it: through a Python format ``spec`` (``.1f``, ``.1%``, ``,``) if given.

    Without a spec a number is shown as stored, with thousands separators from 10,000 on.
    """
    if spec:
        if not isinstance(value, (int, float)):
            raise RecordError(f"format {spec!r} needs a number, the record holds {value!r}")
        return format(value, spec)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def numbers_in_records() -> dict[str, float]:
    """Every measured number the records hold, reference -> value (for the book's typed-number test).

    Cards contribute their measurements (``metrics``, times, parameter counts), not their
    training settings, which pages may state as the recipe's inputs.
    """
    found: dict[str, float] = {}
    for card_file in sorted(WEIGHTS_DIR.glob("*.json")):
        card = _read_json(card_file).get("card", {})
        for key, value in card.items():
            if key not in {"training", "data", "description", "command", "hardware", "model"}:
                _collect(value, f"card:{card_file.stem}:{key}", found)
    for json_file in _checkout_json_records():
        _collect(_read_json(json_file), f"json:{json_file.relative_to(CHECKOUT_DIR)}:", found)
    if BENCHMARK_RESULTS.exists():
        for section, rows in _bench_tables().items():
            for index, row in enumerate(rows):
                for column, cell in list(row.items())[1:]:
                    number = _as_number(cell)
                    if isinstance(number, (int, float)):
                        found[f"bench:{section};row {index};{column}"] = number
    return found


# --- reading the records ------------------------------------------------------------


def _card_file(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.json"
    if not name or not path.exists():
        known = ", ".join(sorted(p.stem for p in WEIGHTS_DIR.glob("*.json")))
        raise RecordError(f"no model card {name!r}; the shipped cards are: {known}")
    return path


def _checkout_file(relative: str) -> Path:
    path = (CHECKOUT_DIR / relative).resolve()
    if CHECKOUT_DIR not in path.parents or path.suffix != ".json" or not path.exists():
        raise RecordError(
            f"no JSON record {relative!r} in the checkout {CHECKOUT_DIR} "
            "(json: references name a .json file relative to the repository root)"
        )
    return path


def _checkout_json_records() -> list[Path]:
    """The JSON records that pages may cite besides the cards (kept in the book's folders).

    Not records: what running the chapters writes (``runs/``, ignored by git), the
    build's output and the vendored site assets.
    """
    return sorted(p for p in (CHECKOUT_DIR / "book").glob("**/*.json")
                  if not {"_build", "runs", "_vendor"} & set(p.relative_to(CHECKOUT_DIR).parts))


@lru_cache(maxsize=None)
def _read_json_cached(path: Path, mtime: float) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_json(path: Path) -> Any:
    return _read_json_cached(path, path.stat().st_mtime)


def _walk(data: Any, path: str, reference: str, fallback: Any = None) -> Any:
    tokens = _PATH_TOKEN.findall(path)
    if not tokens:
        raise RecordError(f"{reference!r}: the reference names no field")
    value = data
    for step, (bracket, name) in enumerate(tokens):
        try:
            value = _step(value, bracket, name)
        except RecordError as error:
            if step == 0 and fallback is not None:
                return _walk(fallback, path, reference)
            raise RecordError(f"{reference!r}: {error}") from None
    return value


def _step(value: Any, bracket: str, name: str) -> Any:
    if name:
        if isinstance(value, dict) and name in value:
            return value[name]
        if isinstance(value, list) and name.isdigit() and int(name) < len(value):
            return value[int(name)]
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
        raise RecordError(f"no field {name!r} here (it has: {keys})")
    if isinstance(value, dict) and bracket in value:  # a field whose name a dotted path cannot spell
        return value[bracket]
    if not isinstance(value, list):
        raise RecordError(f"[{bracket}] needs a list or a field name, found {type(value).__name__}"
                          + (f" (it has: {', '.join(map(str, value))})" if isinstance(value, dict) else ""))
    if "=" not in bracket:
        if bracket.isdigit() and int(bracket) < len(value):
            return value[int(bracket)]
        raise RecordError(f"[{bracket}]: the list has {len(value)} elements")
    key, _, wanted = bracket.partition("=")
    matches = [item for item in value if isinstance(item, dict) and str(item.get(key)) == wanted]
    if len(matches) != 1:
        present = ", ".join(str(item.get(key)) for item in value if isinstance(item, dict))
        raise RecordError(f"[{bracket}] matches {len(matches)} elements (values of {key!r}: {present})")
    return matches[0]


def _collect(value: Any, prefix: str, found: dict[str, float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        found[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(item, f"{prefix}.{key}" if not prefix.endswith(":") else f"{prefix}{key}", found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, f"{prefix}[{index}]", found)


# --- benchmark tables ----------------------------------------------------------------


def _plain_cell(cell: str) -> str:
    return cell.strip().strip("*").strip("`").strip()


def _as_number(cell: str) -> Any:
    """``'1,379'`` -> 1379, ``'20.5'`` -> 20.5, ``'1.39×'`` -> 1.39; other text stays text."""
    text = cell.replace("\u2212", "-").rstrip("×x%s ").strip()
    if not _NUMBER.match(text):
        return cell
    text = text.replace(",", "")
    return float(text) if "." in text else int(text)


@lru_cache(maxsize=4)
def _bench_tables_cached(mtime: float) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    section, header = None, None
    for line in BENCHMARK_RESULTS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#+\s+(.*)$", line)
        if heading:
            section, header = heading.group(1).strip(), None
            continue
        if section is None or not line.startswith("|"):
            header = None if not line.startswith("|") else header
            continue
        cells = [_plain_cell(cell) for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not all(set(cell) <= set("-: ") for cell in cells):
            tables.setdefault(section, []).append(dict(zip(header, cells)))
    return tables


def _bench_tables() -> dict[str, list[dict[str, str]]]:
    if not BENCHMARK_RESULTS.exists():
        raise RecordError(f"no benchmark results at {BENCHMARK_RESULTS} (run python benchmarks/run.py)")
    return _bench_tables_cached(BENCHMARK_RESULTS.stat().st_mtime)


def _bench_cell(query: str, reference: str) -> Any:
    parts = [part.strip() for part in query.split(";")]
    if len(parts) < 2:
        raise RecordError(f"{reference!r}: write bench:SECTION;COLUMN=VALUE;...;COLUMN")
    section, *filters, column = parts
    tables = _bench_tables()
    if section not in tables:
        raise RecordError(f"{reference!r}: no table under heading {section!r}; headings: {', '.join(tables)}")
    rows = tables[section]
    for condition in filters:
        key, equals, wanted = condition.partition("=")
        if not equals:
            raise RecordError(f"{reference!r}: filter {condition!r} is not COLUMN=VALUE")
        rows = [row for row in rows if row.get(key.strip()) == wanted.strip()]
    if len(rows) != 1:
        raise RecordError(f"{reference!r}: the filters match {len(rows)} rows of {section!r}, not one")
    if column not in rows[0]:
        raise RecordError(f"{reference!r}: no column {column!r}; columns: {', '.join(rows[0])}")
    return _as_number(rows[0][column])
