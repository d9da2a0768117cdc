"""Hidden cases: grader-only tests of a coding exercise, run by ``aigc-lessons grade`` and nowhere else.

The self-check under an exercise shows the student what it tests, by design.
A hidden case tests the same function on inputs the student has not seen, so a
function written to pass the visible cases only (or one that hard-codes their
answers) is caught. Hidden cases live in a **teacher's folder**, one Python file
per notebook, named after it: ``<folder>/math_foundations.py`` for
``math_foundations.ipynb``. The book's own ones are in ``book/teaching/hidden/``
of the repository (the default folder when the grader runs from the
repository); a teacher's private ones go in any folder given with
``aigc-lessons grade --hidden FOLDER`` (its cases are added to, or replace by
exercise, the book's). They are not part of the installed package, of the
student versions or of the rendered book.

A case is a function decorated with :func:`hidden_case`; it receives the
learner's objects named by ``uses`` and returns a
:class:`~aigc_lessons.checks.CheckResult` (``report(...)``, as a self-check does)::

    from aigc_lessons.checks import call_learner, describe_mismatch, report
    from aigc_lessons.classroom.hidden import hidden_case

    @hidden_case("my-course-ex-1", uses="sum_of_squares", points=2)
    def larger_inputs(sum_of_squares):
        value, problem = call_learner(sum_of_squares, "ten values", list(range(10)), expect_number=True)
        problem = problem or describe_mismatch("ten values", value, 285.0)
        return report("my-course-ex-1", [problem] if problem else [])

When the grader runs them, the notebook's kernel has already finished: the
cases run in a separate process (memory, CPU and time limits as for the
notebook), started after the notebook, in an empty folder. That process runs
the learner's *code* taken from the submitted notebook (imports, function and
class definitions, constants, and the exercise's own cells; see
:func:`aigc_lessons.classroom._matching.learner_code`), not the chapter's
training cells. Nothing of the hidden cases is ever sent to the kernel.
"""

from __future__ import annotations

import importlib.util
import io
import os
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HIDDEN_DIR_ENV = "AIGC_LESSONS_HIDDEN"  # the grader's default folder, when set


@dataclass
class HiddenCase:
    exercise: str
    uses: tuple[str, ...]
    points: float
    function: Callable
    name: str


_REGISTRY: list[HiddenCase] = []


def hidden_case(exercise: str, uses: str | tuple[str, ...] | list[str], points: float = 1.0):
    """Declare a hidden case of ``exercise``: it is called with the learner's objects named in ``uses``.

    ``points`` is what the case is worth in the grade (its result's score is
    scaled to it).
    """
    names = (uses,) if isinstance(uses, str) else tuple(uses)

    def register(function: Callable) -> Callable:
        _REGISTRY.append(HiddenCase(exercise, names, float(points), function, function.__name__))
        return function

    return register


def default_hidden_dir() -> Path | None:
    """The folder of the book's hidden cases: ``$AIGC_LESSONS_HIDDEN``, else ``book/teaching/hidden`` of the repository."""
    if os.environ.get(HIDDEN_DIR_ENV):
        return Path(os.environ[HIDDEN_DIR_ENV])
    try:
        from .student import find_book_root

        folder = find_book_root() / "book" / "teaching" / "hidden"
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


def hidden_files(notebook_name: str, folders: list[Path | None]) -> list[Path]:
    """The hidden-case files for a notebook (``math_foundations.ipynb`` → ``math_foundations.py``) in ``folders``."""
    stem = Path(notebook_name).stem
    return [Path(folder) / f"{stem}.py" for folder in folders if folder and (Path(folder) / f"{stem}.py").is_file()]


def load_cases(paths: list[Path]) -> list[HiddenCase]:
    """Import the files (in order) and return their cases; a later file replaces an earlier one's exercises."""
    by_file: list[list[HiddenCase]] = []
    for number, path in enumerate(paths):
        _REGISTRY.clear()
        spec = importlib.util.spec_from_file_location(f"aigc_hidden_{number}_{Path(path).stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        by_file.append(list(_REGISTRY))
    _REGISTRY.clear()
    cases: list[HiddenCase] = []
    for file_cases in by_file:
        replaced = {case.exercise for case in file_cases}
        cases = [case for case in cases if case.exercise not in replaced] + file_cases
    return cases


def declared_exercises(paths: list[Path]) -> dict[str, float]:
    """Exercise label → total points of its hidden cases, read without running any learner code."""
    totals: dict[str, float] = {}
    for case in load_cases(paths):
        totals[case.exercise] = totals.get(case.exercise, 0.0) + case.points
    return totals


# --------------------------------------------------------------------------- the runner (a child process)


def _run(request: dict) -> dict:
    """Run the learner's code, then every hidden case; return ``{label: {score, max_score, messages}}``."""
    from ..checks import CheckResult

    cases = load_cases([Path(p) for p in request["files"]])  # before any learner code runs
    results: dict[str, dict] = {}
    for label, statements in request["code"].items():
        wanted = [case for case in cases if case.exercise == label]
        if not wanted:
            continue
        namespace: dict = {"__name__": "__main__"}
        failed: list[str] = []
        sink = io.StringIO()
        with redirect_stdout(sink), redirect_stderr(sink):
            for statement in statements:
                try:
                    exec(compile(statement, "<your notebook>", "exec"), namespace)
                except BaseException as error:  # noqa: BLE001 - the learner's code may raise anything, even exit
                    first = statement.strip().splitlines()[0][:60] if statement.strip() else ""
                    failed.append(f"{type(error).__name__} in `{first}`: {error}")
        score = maximum = 0.0
        messages: list[str] = []
        for case in wanted:
            maximum += case.points
            missing = [name for name in case.uses if name not in namespace]
            if missing:
                messages.append(f"{case.name}: {', '.join(missing)} is not defined by your notebook's code"
                                + (f" ({failed[0]})" if failed else ""))
                continue
            started = time.monotonic()
            try:
                with redirect_stdout(sink), redirect_stderr(sink):
                    result = case.function(*[namespace[name] for name in case.uses])
            except BaseException as error:  # noqa: BLE001
                messages.append(f"{case.name}: the hidden test could not finish ({type(error).__name__}: {error})")
                continue
            if not isinstance(result, CheckResult):
                messages.append(f"{case.name}: the hidden test returned no result (a bug in the hidden file)")
                continue
            fraction = result.score / result.max_score if result.max_score else 0.0
            score += case.points * min(max(fraction, 0.0), 1.0)
            status = "passed" if result.passed else "not attempted" if not result.attempted else "failed"
            detail = "; ".join(m for m in result.messages if m != "all checks passed")
            messages.append(f"{case.name}: {status}" + (f" ({detail})" if detail and not result.passed else "")
                            + f" [{time.monotonic() - started:.1f} s]")
        results[label] = {"score": round(score, 3), "max_score": round(maximum, 3), "messages": messages}
    return results
