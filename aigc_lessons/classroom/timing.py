"""Time the book's notebooks on this machine, as a teacher plans a lab session.

Each notebook runs from top to bottom in a fresh kernel (the grader's runner,
:func:`aigc_lessons.classroom.grading.execute_notebook`), in its own folder, in
fast mode (``AIGC_LESSONS_FAST=1``, the default) or in the full setting
(``--full``). The table it prints is the one in the teacher's guide::

    python -m aigc_lessons.classroom.timing                      # every notebook in _toc.yml, fast mode
    python -m aigc_lessons.classroom.timing --full book/vae/vae.ipynb

The times include starting the kernel and importing PyTorch (a few seconds).
Nothing is written back into the notebooks.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from .grading import FAST_ENV, RunReport, _nbformat, execute_notebook
from .student import find_book_root, toc_notebooks


def time_notebook(path: Path, fast: bool = True, timeout: float = 1800) -> RunReport:
    """Run ``path`` once in a fresh kernel (fast mode or the full setting); return how it went."""
    path = Path(path).resolve()
    notebook = _nbformat().read(path, as_version=4)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if fast:
        env[FAST_ENV] = "1"
    else:
        env.pop(FAST_ENV, None)
    return execute_notebook(notebook, path.parent, env, timeout)


def machine_description() -> str:
    """One line: processor, cores, threads PyTorch uses, GPU (if any), the machine's load."""
    parts = [f"{platform.machine()} CPU, {os.cpu_count()} core(s)"]
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        parts.append(f"OMP_NUM_THREADS={threads}")
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(f"GPU {torch.cuda.get_device_name(0)}")
        else:
            parts.append("no GPU")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if hasattr(os, "getloadavg"):
        parts.append("load average {:.2f} at the start".format(os.getloadavg()[0]))
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.classroom.timing", description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to time (default: every one in _toc.yml)")
    parser.add_argument("--full", action="store_true", help="the full setting instead of fast mode")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per notebook (default 1800)")
    args = parser.parse_args(argv)
    root = find_book_root() if not args.notebooks else None
    notebooks = args.notebooks or toc_notebooks(root)
    mode = "full" if args.full else "fast"
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_description()}")
    print("| notebook | mode | seconds | status |")
    print("|---|---|---|---|")
    failures = 0
    for path in notebooks:
        report = time_notebook(path, fast=not args.full, timeout=args.timeout)
        failures += report.status != "completed"
        name = path.resolve().relative_to(root).as_posix() if root else str(path)
        status = report.status if report.status == "completed" else f"{report.status}: {report.summary()}"
        print(f"| {name} | {mode} | {report.seconds:.0f} | {status} |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
