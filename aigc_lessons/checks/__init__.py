"""Self-check functions for the book's coding exercises.

A check runs the learner's function or inspects their result, and says what is
wrong: the shape, the range, or a value and by how much, never just "wrong".
Each check returns a :class:`CheckResult` (shown as the cell's result) and,
when the grader runs the notebook, records it: :func:`report` appends one JSON
line per result to the file named by the environment variable
``AIGC_LESSONS_GRADE_LOG`` (see :mod:`aigc_lessons.classroom`). A line holds
``exercise``, ``score``, ``max_score``, ``messages``, ``attempted`` and
``status`` (``passed``, ``partial``, ``failed`` or ``not attempted``).

A learner's function that still holds the student version's placeholder
returns ``None``. A check says so with a message containing "returned None"
(for example "the function returned None; write its body"), and :func:`report`
then marks the exercise *not attempted*; a check can also say it explicitly
with ``report(..., attempted=False)`` or :func:`not_attempted`.

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
import warnings
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
    attempted: bool = True

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    @property
    def status(self) -> str:
        """``passed``, ``partial`` (some credit), ``failed`` (none) or ``not attempted`` (placeholder left)."""
        if self.passed:
            return "passed"
        if not self.attempted:
            return "not attempted"
        return "partial" if self.score > 0 else "failed"

    def __str__(self) -> str:
        word = {"passed": "PASSED", "not attempted": "NOT ATTEMPTED"}.get(self.status, "NOT YET")
        head = f"{word} {self.exercise}: {self.score:g}/{self.max_score:g}"
        return "\n".join([head] + [f"  - {m}" for m in self.messages])

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython display
        printer.text(str(self))


NOT_ATTEMPTED_MARK = "returned None"


def report(exercise: str, problems: list[str], max_score: float = 1.0, partial: float | None = None,
           attempted: bool | None = None) -> CheckResult:
    """Turn a list of problems into a result: full marks when there are none.

    ``partial`` (a fraction in [0, 1]) gives partial credit when some parts passed.
    ``attempted=None`` (the default) infers whether the learner has started: not
    when every problem says the function "returned None" (the placeholder).

    Example:
        >>> print(report("demo-ex-1", ["f(2): got 5, expected 4"], partial=0.5))
        NOT YET demo-ex-1: 0.5/1
          - f(2): got 5, expected 4
        >>> report("demo-ex-1", ["the function returned None; write its body"]).status
        'not attempted'
    """
    if attempted is None:
        attempted = not problems or not all(NOT_ATTEMPTED_MARK in problem for problem in problems)
    if problems:
        fraction = 0.0 if partial is None or not attempted else min(max(partial, 0.0), 0.999)
        result = CheckResult(exercise, round(fraction * max_score, 3), max_score, list(problems), attempted)
    else:
        result = CheckResult(exercise, max_score, max_score, ["all checks passed"])
    _record(result)
    return result


def not_attempted(exercise: str, what: str = "the function", max_score: float = 1.0) -> CheckResult:
    """The result for a placeholder left as it is: score 0, status ``not attempted``.

    Example:
        >>> print(not_attempted("demo-ex-2", "my_loss"))
        NOT ATTEMPTED demo-ex-2: 0/1
          - my_loss returned None: replace the placeholder with your code, run its cell, then this check
    """
    message = f"{what} {NOT_ATTEMPTED_MARK}: replace the placeholder with your code, run its cell, then this check"
    return report(exercise, [message], max_score=max_score, attempted=False)


def _record(result: CheckResult) -> None:
    """Append the result to the grade log when the grader set ``AIGC_LESSONS_GRADE_LOG``."""
    path = os.environ.get(GRADE_LOG_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**asdict(result), "status": result.status}) + "\n")
        except OSError as error:  # the learner still gets the feedback; the grader reports the missing entry
            warnings.warn(f"could not write this check to the grade log {path} ({error}); "
                          f"unset {GRADE_LOG_ENV} unless a grader set it", RuntimeWarning, stacklevel=3)


def run_learner_code(function: Callable, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's function; return (result, None) or (None, a description of the error)."""
    try:
        return function(*args, **kwargs), None
    except Exception as error:  # the learner's code may raise anything: report it, do not crash
        return None, f"your function raised {type(error).__name__}: {error}"


def call_learner(function: Callable, label: str, *args: Any, returns: str = "a tensor",
                 expect_tensor: bool = False, expect_number: bool = False) -> tuple[Any, str | None]:
    """Run the learner's function on one test case: ``(result, None)``, or ``(None, problem)``.

    The problem names the case and says what happened: an exception, the
    placeholder's ``None`` (worded so that :func:`report` counts it as not attempted),
    with ``expect_tensor=True`` a result that is not a ``torch.Tensor``, and with
    ``expect_number=True`` a result that is not one number (the result is then a ``float``).

    Example:
        >>> call_learner(lambda x: None, "case 1", 2.0)
        (None, 'case 1: the function returned None; write its body (it should return a tensor)')
        >>> call_learner(lambda x: x + 1, "case 1", 2.0)
        (3.0, None)
    """
    value, error = run_learner_code(function, *args)
    if error:
        return None, f"{label}: {error}"
    if value is None:
        return None, f"{label}: the function {NOT_ATTEMPTED_MARK}; write its body (it should return {returns})"
    if expect_tensor:
        import torch  # here, not at the top: importing the checks package stays fast

        if not isinstance(value, torch.Tensor):
            return None, f"{label}: expected a torch.Tensor, got {type(value).__name__}"
    if expect_number:
        try:
            return float(value), None
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several elements
            shape = f" of shape {tuple(value.shape)}" if hasattr(value, "shape") else ""
            return None, f"{label}: expected one number (a float or a 0-d tensor), got {type(value).__name__}{shape}"
    return value, None


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


def describe_range(name: str, values: Any, low: float, high: float) -> str | None:
    """None when every value lies in ``[low, high]``; otherwise the range found and the one expected.

    ``values`` is a tensor, an array or a sequence of numbers. NaN counts as out of range.

    Example:
        >>> describe_range("pixels", [0.0, 0.5, 1.0], -1.0, 1.0) is None
        True
        >>> describe_range("pixels", [0.0, 3.5, -2.0], -1.0, 1.0)
        'pixels: values from -2 to 3.5, expected within [-1, 1] (2 of 3 outside)'
    """
    if hasattr(values, "detach"):  # a torch tensor: no torch import needed here
        values = values.detach().flatten().tolist()
    elif hasattr(values, "ravel"):  # a NumPy array
        values = values.ravel().tolist()
    values = [float(v) for v in values]
    if not values:
        return f"{name}: no values, expected some within [{low:g}, {high:g}]"
    if any(math.isnan(v) for v in values):
        return f"{name}: contains NaN, expected values within [{low:g}, {high:g}]"
    smallest, largest = min(values), max(values)
    if low <= smallest and largest <= high:
        return None
    outside = sum(not low <= v <= high for v in values)
    return (f"{name}: values from {smallest:.4g} to {largest:.4g}, expected within [{low:g}, {high:g}] "
            f"({outside} of {len(values)} outside)")
