"""Helpers for writing book notebooks from Python (used by authors, not at build time).

    from scripts.nbbuild import md, code, write_notebook
    write_notebook("book/x/chapter.ipynb", [md("# Title"), code("print(1)")])

Cells can carry tags (``code(src, tags=["solution"])``) and myst-nb figure
metadata (``code(src, figure=("caption", "fig-name"))``).
"""

from __future__ import annotations

import textwrap

import nbformat


def md(source: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(source).strip("\n"))


def code(source: str, tags: list[str] | None = None, figure: tuple[str, str] | None = None):
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    if figure:
        caption, name = figure
        cell.metadata["mystnb"] = {"figure": {"caption": caption, "name": name}}
    return cell


def write_notebook(path: str, cells: list) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
