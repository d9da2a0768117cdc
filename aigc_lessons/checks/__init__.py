"""Self-check functions for the book's coding exercises.

A check runs the learner's function or inspects their result, and says what is
wrong: the shape, the range, or a value and by how much, never just "wrong".
Each check returns a :class:`CheckResult`, prints it, and, when the grader runs
the notebook, records it (see :mod:`aigc_lessons.grading`).

The exercise convention used in every chapter:

* an ``{exercise}`` directive with a label such as ``first-gan-ex-2``;
* for coding exercises, the reference solution in a code cell tagged
  ``solution`` whose body sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
  (the student build replaces those lines with a placeholder), wrapped in
  ``{solution-start}``/``{solution-end}`` so the rendered book hides it;
* then a code cell tagged ``check`` that calls the chapter's check function.

Chapter-specific checks live in submodules (``checks.gan``, ...); this module
holds the shared machinery.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

GRADE_LOG_ENV = "AIGC_LESSONS_GRADE_LOG"


@dataclass
class CheckResult:
    """The outcome of one exercise check: a score and feedback the learner can act on."""

    exercise: str
    score: float
    max_score: float
    messages: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    def __str__(self) -> str:
        head = f"{'PASSED' if self.passed else 'NOT YET'} {self.exercise}: {self.score:g}/{self.max_score:g}"
        return "\n".join([head] + [f"  - {m}" for m in self.messages])

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython display
        printer.text(str(self))


def report(exercise: str, problems: list[str], max_score: float = 1.0, partial: float | None = None) -> CheckResult:
    """Turn a list of problems into a result: full marks when there are none.

    ``partial`` (a fraction in [0, 1]) gives partial credit when some parts passed.
    """
    if problems:
        fraction = 0.0 if partial is None else min(max(partial, 0.0), 0.999)
        result = CheckResult(exercise, round(fraction * max_score, 3), max_score, list(problems))
    else:
        result = CheckResult(exercise, max_score, max_score, ["all checks passed"])
    _record(result)
    return result


def _record(result: CheckResult) -> None:
    path = os.environ.get(GRADE_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(result)) + "\n")


def run_learner_code(function: Callable, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's function; return (result, None) or (None, a description of the error)."""
    try:
        return function(*args, **kwargs), None
    except Exception as error:  # the learner's code may raise anything: report it, do not crash
        return None, f"your function raised {type(error).__name__}: {error}"


def describe_mismatch(name: str, actual: float, expected: float, rel_tol: float = 1e-4, abs_tol: float = 1e-6) -> str | None:
    """None when ``actual`` is close to ``expected``; otherwise how far off it is and in which direction."""
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return f"{name}: got {actual!r}, expected about {expected:.6g}"
    if math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return None
    diff = actual - expected
    hint = ""
    if expected != 0 and math.isclose(actual, -expected, rel_tol=rel_tol, abs_tol=abs_tol):
        hint = " (the sign is flipped)"
    elif expected != 0 and math.isclose(actual / expected, 2.0, rel_tol=1e-3):
        hint = " (twice the expected value: a factor 1/2 missing?)"
    elif expected != 0 and math.isclose(actual / expected, 0.5, rel_tol=1e-3):
        hint = " (half the expected value: summed where a mean or a factor 2 was needed?)"
    return f"{name}: got {actual:.6g}, expected {expected:.6g} (off by {diff:+.3g}){hint}"


def describe_shape(name: str, actual_shape: tuple, expected_shape: tuple) -> str | None:
    """None when the shapes agree; otherwise both shapes."""
    if tuple(actual_shape) == tuple(expected_shape):
        return None
    return f"{name}: shape {tuple(actual_shape)}, expected {tuple(expected_shape)}"
