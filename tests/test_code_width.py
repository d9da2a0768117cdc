"""Code cells fit the page: no code line of a chapter is wider than ``CODE_COLUMNS`` (88).

Measured in headless Chromium at a 1280 px wide window (``book/_ext/aigc_site.py`` has the
numbers): with the site's code size a code cell shows 91 monospace columns (the theme's
default size showed 77), so a line of 88 columns is read without scrolling sideways, and
``tests/test_browser.py`` checks that on the built site. This test keeps every line of every
code cell of every notebook in ``_toc.yml`` within the limit, naming notebook, cell and line.
Columns are counted as a monospace font shows them: a tab goes to the next multiple of 8, a
wide (CJK) character takes two columns, a combining mark none.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import nbformat

from scripts.site_check import CODE_COLUMNS
from tests.book_build import ROOT, toc_notebooks


def columns(line: str) -> int:
    """The monospace columns ``line`` takes."""
    width = 0
    for character in line.expandtabs(8):
        if unicodedata.combining(character):
            continue
        width += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return width


def long_lines(notebook, limit: int = CODE_COLUMNS) -> list[tuple[int, str, int, int, str]]:
    """``(cell number, cell id, line number, columns, line)`` of every code line wider than ``limit``.

    Cells and lines are numbered from 1, cells counting every cell of the notebook (as
    Jupyter shows them, markdown included).
    """
    found = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        for line_number, line in enumerate(cell.source.splitlines(), start=1):
            width = columns(line)
            if width > limit:
                found.append((number, cell.get("id", "?"), line_number, width, line))
    return found


def _where(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def test_every_code_line_fits_the_page() -> None:
    per_notebook: dict[str, int] = {}
    problems = []
    for path in toc_notebooks():
        found = long_lines(nbformat.read(path, as_version=4))
        if found:
            per_notebook[_where(path)] = len(found)
        for cell, cell_id, line_number, width, line in found:
            problems.append(f"{_where(path)}: cell {cell} (id {cell_id}), line {line_number}: "
                            f"{width} columns > {CODE_COLUMNS}: {line.strip()[:70]!r}")
    summary = "\n".join(f"  {name}: {count} line(s)" for name, count in per_notebook.items())
    assert not problems, (
        f"{len(problems)} code line(s) wider than {CODE_COLUMNS} columns (they scroll sideways in the "
        f"rendered book at 1280 px) in {len(per_notebook)} notebook(s):\n{summary}\n" + "\n".join(problems[:300]))


# ----------------------------------------------------------- the rule itself


def test_the_rule_flags_a_long_line_and_counts_columns_as_a_monospace_font_does() -> None:
    fits = "x = " + "'" + "a" * (CODE_COLUMNS - 6) + "'"
    assert columns(fits) == CODE_COLUMNS  # exactly at the limit: not flagged
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("A markdown line is prose, not code: " + "m" * 200),
        nbformat.v4.new_code_cell(f"{fits}\n{'y' * CODE_COLUMNS}\n{'z' * (CODE_COLUMNS + 1)}"),
        nbformat.v4.new_code_cell("label = '" + "生成" * 20 + "'"),  # 50 characters, 9 + 80 + 1 columns
        nbformat.v4.new_code_cell("\tvalue = 1  # a tab takes 8 columns" + " " * 50),  # 85 characters
    ])
    found = [(cell, line, width) for cell, _id, line, width, _text in long_lines(notebook)]
    assert found == [(2, 3, CODE_COLUMNS + 1), (3, 1, 90), (4, 1, 92)], found
    assert columns("e\u0301") == 1  # a combining accent takes no column


def test_the_limit_is_at_most_88_and_the_site_style_uses_the_same() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("aigc_site", ROOT / "book" / "_ext" / "aigc_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert CODE_COLUMNS <= 88
    assert module.CODE_COLUMNS == CODE_COLUMNS, "book/_ext/aigc_site.py and scripts/site_check.py disagree"
