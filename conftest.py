"""Root pytest configuration: which notebooks nbval runs, and keeping what it executed.

nbval (``pytest --nbval-lax``) executes every notebook listed in ``_toc.yml``.
The book build then needs the same notebooks executed; rather than running each
notebook a second time, this plugin saves each notebook nbval executed without
a failure to ``_build/executed/`` (with a hash of its source), and
``tests/book_build.py`` builds the book from those copies. A notebook that has
no fresh copy is executed by the build itself, so the build never shows stale
outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config):
    """Collect only the notebooks the book lists; never anything under _build or .venv."""
    parts = set(collection_path.parts)
    if parts & {"_build", ".venv", ".ipynb_checkpoints", "node_modules"}:
        return True
    if collection_path.suffix == ".ipynb":
        from tests.book_build import toc_notebooks

        return collection_path.resolve() not in set(toc_notebooks())
    return None


_executed: dict[Path, dict] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or outputs is None or not hasattr(item, "cell"):
        return
    path = Path(str(item.parent.path)).resolve()
    state = _executed.setdefault(path, {"notebook": item.parent.nb, "failed": False, "count": 0})
    state["failed"] |= outcome.get_result().failed
    state["count"] += 1
    item.cell.outputs = _coalesced(outputs)
    if _ends_with_semicolon(item.cell.source):
        # IPython hides the value of a line ending in ";". nbval's kernel calls do not store
        # history, so the kernel cannot see the ";" and reports the value anyway; drop it, as
        # Jupyter would, or the book shows a stray repr and a duplicate figure.
        item.cell.outputs = [output for output in item.cell.outputs if output.get("output_type") != "execute_result"]
    item.cell.execution_count = state["count"]


def _ends_with_semicolon(source: str) -> bool:
    """IPython's own test for a cell whose value is hidden by a trailing ";"."""
    from IPython.core.displayhook import DisplayHook

    return DisplayHook.semicolon_at_end_of_expression(source)


def _coalesced(outputs: list) -> list:
    """Merge consecutive stream chunks and apply carriage returns, as Jupyter does on save."""
    from nbval.plugin import coalesce_streams

    return coalesce_streams(list(outputs))


def pytest_sessionfinish(session, exitstatus):
    from tests.book_build import save_executed

    for path, state in _executed.items():
        if not state["failed"]:
            save_executed(path, state["notebook"])
