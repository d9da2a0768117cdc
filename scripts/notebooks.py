"""Keep the book's notebooks in their committed form: no outputs, except checked cells.

Notebooks are stored without outputs and executed at build time. The one
exception is a cell whose first line is ``# NBVAL_CHECK_OUTPUT``: nbval compares
such a cell's fresh output with the stored one, so it keeps its reference text.

    python scripts/notebooks.py refresh-checked book/gan/gan_theory.ipynb
        execute in fast mode; store the text output of the checked cells only
    python scripts/notebooks.py strip [PATH ...]
        clear every output except the checked cells' (default: all of book/)
    python scripts/notebooks.py add-install-cell [PATH ...]
        make the first code cell the one that installs the book's package where
        it is missing (Colab), from the repository named in _config.yml
    python scripts/notebooks.py check [PATH ...]
        exit 1 when a notebook has outputs it should not have, a checked cell
        lacks its reference output, or the install cell is missing or outdated
        (tests/test_repository.py runs this)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
TEXT_OUTPUT_TYPES = {"stream", "execute_result"}
VOLATILE_METADATA = ("widgets", "execution")
INSTALL_TAGS = ["hide-input"]  # the rendered page shows the cell behind a toggle


def install_cell_source() -> str:
    """The first code cell of every notebook: installs ``aigc_lessons`` where it is missing.

    Binder and a local install already have the package; a notebook opened on
    Colab (or in any other fresh Python) does not. The package is installed from
    the repository that ``_config.yml`` names, weights included (package data).
    """
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    return (
        "# On Colab, or in any Python without the book's package, install it first\n"
        "# (a local install and Binder already have it). MNIST is downloaded the\n"
        "# first time a chapter needs it.\n"
        "try:\n"
        "    import aigc_lessons  # noqa: F401\n"
        "except ModuleNotFoundError:\n"
        f'    %pip install -q "aigc-lessons @ git+{url}"'
    )


def add_install_cell(notebook) -> bool:
    """Make the first code cell the install cell (insert it, or bring an old one up to date); True if changed."""
    source = install_cell_source()
    first = next((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"), len(notebook.cells))
    if first < len(notebook.cells) and "%pip install" in notebook.cells[first].source:
        cell = notebook.cells[first]
        if cell.source == source and cell.metadata.get("tags") == INSTALL_TAGS:
            return False
        cell.source, cell.metadata["tags"] = source, list(INSTALL_TAGS)
        return True
    cell = nbformat.v4.new_code_cell(source)
    cell["id"] = "install-package"  # a name of its own: the other cells keep their ids
    cell.metadata["tags"] = list(INSTALL_TAGS)
    notebook.cells.insert(first, cell)
    return True


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def book_notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _text_only(outputs: list) -> list:
    """Keep printed text; drop figures and rich reprs, which are not compared."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream":
            kept.append(output)
        elif output.get("output_type") == "execute_result" and "text/plain" in output.get("data", {}):
            output["data"] = {"text/plain": output["data"]["text/plain"]}
            output["metadata"] = {}
            kept.append(output)
    return kept


def strip(notebook, keep_checked: bool = True) -> None:
    """Clear outputs in place (the checked cells keep theirs when ``keep_checked``)."""
    for key in VOLATILE_METADATA:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if keep_checked and is_checked(cell) and cell.outputs:
            cell.outputs = _text_only(cell.outputs)
            continue
        cell.outputs = []
        cell.execution_count = None


def refresh_checked(path: Path, timeout: int = 600) -> int:
    """Execute ``path`` in fast mode and store the reference outputs of its checked cells."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("AIGC_LESSONS_FAST", "1")
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    checked = 0
    for cell in notebook.cells:
        if is_checked(cell):
            checked += 1
            cell.outputs = _text_only(cell.outputs)
            if not cell.outputs:
                raise SystemExit(f"{path}: a checked cell printed nothing; it must print the values it checks")
    strip(notebook, keep_checked=True)
    nbformat.write(notebook, path)
    return checked


def problems(path: Path) -> list[str]:
    """What is wrong with the committed form of one notebook (empty when fine)."""
    notebook = nbformat.read(path, as_version=4)
    found = []
    first = next((cell for cell in notebook.cells if cell.cell_type == "code"), None)
    if first is not None and (first.source != install_cell_source() or first.metadata.get("tags") != INSTALL_TAGS):
        found.append(f"{path}: the first code cell is not the install cell "
                     f"(run: python scripts/notebooks.py add-install-cell {path})")
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            if not cell.outputs or cell.execution_count is None:
                found.append(f"{path}: checked cell {index} has no stored reference output "
                             f"(run: python scripts/notebooks.py refresh-checked {path})")
            elif any(o.get("output_type") not in TEXT_OUTPUT_TYPES for o in cell.outputs):
                found.append(f"{path}: checked cell {index} stores non-text output")
        elif cell.outputs or cell.execution_count is not None:
            found.append(f"{path}: cell {index} has stored outputs (run: python scripts/notebooks.py strip {path})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["refresh-checked", "strip", "add-install-cell", "check"])
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or book_notebooks()
    if args.command == "refresh-checked":
        for path in paths:
            print(f"{path.relative_to(ROOT)}: {refresh_checked(path)} checked cell(s) refreshed")
    elif args.command == "add-install-cell":
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            if add_install_cell(notebook):
                nbformat.write(notebook, path)
                print(f"{path.relative_to(ROOT)}: install cell written")
    elif args.command == "strip":
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            strip(notebook)
            nbformat.write(notebook, path)
    else:
        found = [problem for path in paths for problem in problems(path)]
        print("\n".join(found) or f"{len(paths)} notebook(s) in committed form")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
