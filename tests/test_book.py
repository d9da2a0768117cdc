"""The strict book build: zero warnings, every page rendered.

Run after the notebook tests (``scripts/test.sh`` does): notebooks that nbval
already executed are rendered from those executions instead of being run again.
"""

from __future__ import annotations

import re

import pytest

from tests.book_build import ROOT, build_book, stage_book, toc_entries

pytestmark = pytest.mark.build


def _kernel_chatter(line: str) -> bool:
    """A kernel's own start-up notice (ipykernel on TCP), printed when the build runs a notebook; not Sphinx's."""
    return "[IPKernelApp]" in line and "without encryption" in line


def test_book_builds_strictly_with_every_page():
    stage, reused, executed_here = stage_book()
    result = build_book(stage, output_root=ROOT, strict=True)
    log = result.stdout + result.stderr
    (ROOT / "_build" / "build.log").write_text(log, encoding="utf-8")
    warnings = [line for line in log.splitlines()
                if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line) and not _kernel_chatter(line)]
    assert result.returncode == 0 and not warnings, (
        f"strict build failed (exit {result.returncode}; full log in _build/build.log):\n" + "\n".join(warnings[:40])
        + ("\n" + log[-3000:] if not warnings else "")
    )
    html = ROOT / "_build" / "html"
    missing = [entry for entry in toc_entries() if not (html / f"{entry}.html").exists()]
    assert not missing, f"pages listed in _toc.yml but not rendered: {missing}"
    print(f"rendered {len(toc_entries())} pages; {len(reused)} notebooks reused from nbval, "
          f"{len(executed_here)} executed by the build: {[p.name for p in executed_here]}")
