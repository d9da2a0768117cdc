"""Helpers shared by the notebook tests and the book-build test (not a test module).

The table of contents is the single list of chapters: nbval runs exactly the
notebooks it names, and the strict build renders exactly those pages.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
EXECUTED = BUILD / "executed"
STAGE = BUILD / "ci_book"
# Top-level entries the book build never reads; everything else is staged.
NOT_BOOK = {".git", ".venv", "_build", "aigc_lessons", "tests", "scripts", "benchmarks", "runs",
            "data", "device_data", ".ci", ".pytest_cache", "node_modules", "conftest.py"}


def toc_entries(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``root``/``file`` entry of the table of contents, in reading order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in toc.items() if key != "root"})
    return entries


def toc_files() -> list[Path]:
    """The source file of every toc entry (``.ipynb`` or ``.md``); missing ones raise."""
    found = []
    for entry in toc_entries():
        candidates = [ROOT / f"{entry}{suffix}" for suffix in (".ipynb", ".md")]
        existing = [path for path in candidates if path.exists()]
        if not existing:
            raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.ipynb nor {entry}.md exists")
        found.append(existing[0].resolve())
    return found


def toc_notebooks() -> list[Path]:
    return [path for path in toc_files() if path.suffix == ".ipynb"]


def source_hash(path: Path) -> str:
    """Hash of a notebook's cell sources: an executed copy is fresh while this matches."""
    notebook = nbformat.read(path, as_version=4)
    digest = hashlib.sha256()
    for cell in notebook.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return digest.hexdigest()


def executed_copy(path: Path) -> Path:
    return EXECUTED / path.resolve().relative_to(ROOT)


def save_executed(path: Path, notebook) -> Path:
    """Store a notebook executed by nbval, marked so that the build renders it as is."""
    target = executed_copy(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    notebook.metadata["aigc_lessons"] = {"source_sha256": source_hash(path)}
    notebook.metadata["mystnb"] = {"execution_mode": "off"}
    nbformat.write(notebook, target)
    return target


def fresh_executed(path: Path) -> Path | None:
    """The executed copy of ``path`` if it exists and matches the current source."""
    copy = executed_copy(path)
    if not copy.exists():
        return None
    stored = nbformat.read(copy, as_version=4).metadata.get("aigc_lessons", {}).get("source_sha256")
    return copy if stored == source_hash(path) else None


def stage_book() -> tuple[Path, list[Path], list[Path]]:
    """Copy the book sources to ``_build/ci_book`` with nbval's executed notebooks in place.

    Returns the stage folder, the notebooks reused from nbval, and those the
    build will execute itself (no fresh executed copy).
    """
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name in NOT_BOOK or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, STAGE / entry.name, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
        else:
            shutil.copy2(entry, STAGE / entry.name)
    reused, to_execute = [], []
    for path in toc_notebooks():
        copy = fresh_executed(path)
        if copy is None:
            to_execute.append(path)
        else:
            shutil.copy2(copy, STAGE / path.relative_to(ROOT))
            reused.append(path)
    return STAGE, reused, to_execute


def build_book(source: Path, output_root: Path = ROOT, strict: bool = True, timeout: int = 3600) -> subprocess.CompletedProcess:
    """Run ``jupyter-book build`` (strict: ``-W --keep-going``); HTML lands in ``output_root/_build/html``."""
    executable = Path(sys.executable).parent / "jupyter-book"
    command = [str(executable) if executable.exists() else "jupyter-book", "build", str(source),
               "--path-output", str(output_root)]
    if strict:
        command += ["-W", "--keep-going"]
    env = {**os.environ, "AIGC_LESSONS_FAST": os.environ.get("AIGC_LESSONS_FAST", "1")}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


# --------------------------------------------------------------- the site checker's fixture

FIXTURE_SITE = ROOT / "tests" / "fixtures" / "site"
_FIXTURE_MERMAID_IMPORT = re.compile(
    r'<script type="module">\s*import mermaid from "\./(?P<path>_vendor/mermaid/[^"]+?)(?:\.esm)?(?:\.min)?\.mjs";')


def copy_fixture_site(target: Path, *, mermaid: str = "classic") -> Path:
    """Copy the checker's mini-site (``tests/fixtures/site``) to ``target`` with ``book/_vendor`` as ``_vendor``.

    The fixture pages import Mermaid as an ES module, as sphinxcontrib-mermaid does. The
    book loads the classic build instead (``book/_ext/aigc_site.py``: module scripts do not
    load from ``file://``), and only that build is vendored, so by default each page is
    converted to the book's loader: a ``<script defer>`` of the classic file, then the page's
    module script with ``window.mermaid`` instead of the import (``no-such-file.mjs`` becomes
    ``no-such-file.js``: still missing). ``mermaid="module"`` keeps the import and puts the
    ES-module build's file name in place (a stand-in module that loads the classic build and
    exports it), to show what a module-loaded page does from disk.
    """
    shutil.copytree(FIXTURE_SITE, target)
    shutil.copytree(ROOT / "book" / "_vendor", target / "_vendor")
    if mermaid == "module":
        (target / "_vendor" / "mermaid" / "mermaid.esm.min.mjs").write_text(
            "// Test stand-in for Mermaid's ES-module build: loads the classic build, exports it.\n"
            "const script = document.createElement('script');\n"
            "script.src = new URL('./mermaid.min.js', import.meta.url).href;\n"
            "await new Promise((resolve, reject) => {\n"
            "  script.onload = resolve; script.onerror = reject; document.head.append(script); });\n"
            "export default globalThis.mermaid;\n", encoding="utf-8")
        return target
    if mermaid != "classic":
        raise ValueError(f"mermaid must be 'classic' or 'module', not {mermaid!r}")

    def classic(match: re.Match) -> str:
        path = match.group("path")
        name = "mermaid.min.js" if path.endswith("/mermaid") else f"{path.rsplit('/', 1)[1]}.js"
        return (f'<script defer src="_vendor/mermaid/{name}"></script>\n'
                '<script type="module">\nconst mermaid = window.mermaid;')

    for page in target.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        converted = _FIXTURE_MERMAID_IMPORT.sub(classic, text)
        if "mermaid" in text and converted == text:
            raise AssertionError(f"{page.name}: no Mermaid import to convert (did the fixture change?)")
        page.write_text(converted, encoding="utf-8")
    return target
