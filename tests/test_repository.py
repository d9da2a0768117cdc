"""The repository's own rules: dependencies agree, notebooks are stored clean, the toc is complete."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.book_build import ROOT, toc_entries, toc_files

sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as notebook_tool  # noqa: E402  (scripts/ is not a package on the path)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = set(map(_normalise, project["dependencies"]))
    for extra in ("book", "test"):
        wanted |= set(map(_normalise, project["optional-dependencies"][extra]))
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    listed = {_normalise(item) for item in pip_section if not item.startswith("-e")}
    assert listed == wanted, (
        f"environment.yml and pyproject.toml disagree. Only in environment.yml: {sorted(listed - wanted)}; "
        f"only in pyproject.toml: {sorted(wanted - listed)}"
    )


def test_dependencies_are_ranges_not_exact_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = [r for r in requirements if "==" in r]
    assert not pinned, f"exact pins make the book hard to install next to other tools: {pinned}"
    jupyter_book = next(r for r in requirements if r.startswith("jupyter-book"))
    assert "<2" in jupyter_book, "Jupyter Book 2.x is a different tool; keep jupyter-book<2"


def test_notebooks_are_stored_without_outputs_except_checked_cells_and_start_with_the_install_cell():
    problems = [p for path in notebook_tool.book_notebooks() for p in notebook_tool.problems(path)]
    assert not problems, "\n".join(problems)


def test_every_toc_entry_exists_and_every_page_is_in_the_toc():
    listed = set(toc_files())  # raises with the missing entry's name
    pages = {p.resolve() for suffix in ("*.md", "*.ipynb") for p in (ROOT / "book").rglob(suffix)
             if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts}
    orphans = sorted(str(p.relative_to(ROOT)) for p in pages - listed)
    assert not orphans, f"pages in book/ that _toc.yml does not list (add them or delete them): {orphans}"
    assert len(toc_entries()) == len(set(toc_entries())), "a page is listed twice in _toc.yml"


def test_checked_cells_assert_what_they_print():
    import nbformat

    weak = []
    for path in notebook_tool.book_notebooks():
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if notebook_tool.is_checked(cell) and "assert" not in cell.source:
                weak.append(f"{path.relative_to(ROOT)} cell {index}")
    assert not weak, f"checked cells must assert the agreement they print: {weak}"


def test_the_install_cell_installs_from_the_repository_of_the_config(tmp_path):
    import nbformat

    source = notebook_tool.install_cell_source()
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    assert f'%pip install -q "aigc-lessons @ git+{url}"' in source
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("import torch")]
    assert notebook_tool.add_install_cell(notebook) and not notebook_tool.add_install_cell(notebook)  # idempotent
    assert [c.source for c in notebook.cells][1:] == [source, "import torch"]
    path = tmp_path / "chapter.ipynb"
    notebook.cells[1].source = source.replace("install -q ", "install ")  # an outdated install cell
    nbformat.write(notebook, path)
    assert any("install cell" in problem for problem in notebook_tool.problems(path))
