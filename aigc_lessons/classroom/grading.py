"""Grade submitted notebooks: run each one in isolation, collect the self-checks' scores, write a CSV.

Each notebook runs in a fresh Python kernel (this interpreter's, through
``nbclient``), in a temporary copy of its own, in fast mode
(``AIGC_LESSONS_FAST=1``), with a time limit for the whole notebook. The
kernel's environment names a grade log (``AIGC_LESSONS_GRADE_LOG``): every
check the notebook runs appends its score and feedback to it (see
:func:`aigc_lessons.checks.report`). Cells that raise do not stop the run, so
one broken exercise costs only its own points; a cell that runs past the time
limit, or a kernel that dies, stops that notebook only, and the CSV says where.

Check cells are run as the student version shipped them: an edited check cell
is restored, a deleted one is added back at the end (both noted in the
feedback). This keeps honest mistakes from breaking the grading; it is not a
sandbox against a student who sets out to cheat (the notebook's own code runs
with the grader's permissions), so grade in a container or a throw-away
account if that matters.

The CSV has one row per submission and exercise, then a ``TOTAL`` row per
submission: ``student, submission, exercise, kind, score, max_score, status,
feedback``. ``status`` is ``passed``, ``partial``, ``failed``, ``not attempted``
or ``not run`` for checked exercises, ``answered`` or ``not answered`` for
written ones (graded by hand; the answer is in ``feedback``), and the run's
outcome on the ``TOTAL`` row (``completed``, ``errors``, ``timed out``,
``kernel died``, ``unreadable``). A check that never ran in a submission (the
notebook stopped before it) scores 0 out of the maximum it has in the other
submissions of the same notebook.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import GRADE_LOG_ENV
from ._convention import METADATA_KEY, Exercise, scan_exercises
from .student import ANSWER_PLACEHOLDER

FAST_ENV = "AIGC_LESSONS_FAST"  # the same name as aigc_lessons.core.FAST_ENV, without importing torch
CSV_COLUMNS = ["student", "submission", "exercise", "kind", "score", "max_score", "status", "feedback"]
DEFAULT_MAX_SCORE = 1.0  # a check that never ran in any submission is scored out of report()'s default
OUTPUT_LIMIT = 200_000  # characters of output kept per notebook; the rest is dropped with a note
FEEDBACK_LIMIT = 1500


@dataclass
class ExerciseGrade:
    """The grade of one exercise in one submission."""

    exercise: str
    kind: str
    score: float | None
    max_score: float | None
    status: str
    feedback: str


@dataclass
class RunReport:
    """How the execution of one notebook went."""

    status: str = "completed"
    seconds: float = 0.0
    errors: dict[int, str] = field(default_factory=dict)  # cell index -> "NameError: ..."
    stopped_at: int | None = None  # index of the cell where the run stopped (timeout, dead kernel)
    stop_reason: str = ""

    def summary(self) -> str:
        if self.status == "unreadable":
            return self.stop_reason
        parts = []
        if self.stopped_at is not None:
            parts.append(f"stopped in cell {self.stopped_at}: {self.stop_reason}" if self.stopped_at >= 0
                         else self.stop_reason)
        if self.errors:
            listed = "; ".join(f"cell {index}: {error}" for index, error in sorted(self.errors.items()))
            parts.append(f"{len(self.errors)} cell(s) raised an error ({listed})")
        parts.append(f"ran for {self.seconds:.1f} s")
        return "; ".join(parts)


@dataclass
class NotebookGrade:
    """The grades of one submitted notebook, and how its run went."""

    submission: str
    student: str
    exercises: list[ExerciseGrade]
    run: RunReport
    executed: object | None = None  # the executed notebook (nbformat), for the teacher to read
    notebook: str = ""  # which book notebook this is (the student version's source, else the file name)

    @property
    def score(self) -> float:
        return round(sum(e.score or 0.0 for e in self.exercises if e.kind == "checked"), 3)

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score or 0.0 for e in self.exercises if e.kind == "checked"), 3)

    def rows(self) -> list[dict]:
        """CSV rows: one per exercise, then the TOTAL row."""
        base = {"student": self.student, "submission": self.submission}
        rows = [{**base, "exercise": e.exercise, "kind": e.kind, "score": _number(e.score),
                 "max_score": _number(e.max_score), "status": e.status, "feedback": e.feedback}
                for e in self.exercises]
        rows.append({**base, "exercise": "TOTAL", "kind": "", "score": _number(self.score),
                     "max_score": _number(self.max_score), "status": self.run.status,
                     "feedback": self.run.summary()})
        return rows


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _short(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- running a notebook


def _client_classes():
    try:
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient
    except ImportError as error:  # pragma: no cover - these come with the book extra
        raise ImportError("grading needs nbclient and jupyter_client: pip install -e '.[book]'") from error

    class CurrentPythonKernelSpecs(KernelSpecManager):
        """Always this interpreter, whatever kernels the machine has registered."""

        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python (aigc-lessons grader)", language="python", resource_dir="")

    class GradingClient(NotebookClient):
        """A notebook client that keeps at most OUTPUT_LIMIT characters of output."""

        output_chars = 0
        output_truncated = False

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None:
                return out
            self.output_chars += len(json.dumps(out.get("text") or out.get("data") or out.get("traceback") or ""))
            if self.output_chars > OUTPUT_LIMIT and out.get("output_type") != "error":
                if out in outs:
                    outs.remove(out)
                if not self.output_truncated:
                    self.output_truncated = True
                    outs.append(_nbformat().v4.new_output(
                        "stream", name="stderr",
                        text=f"[grader: output beyond {OUTPUT_LIMIT} characters was dropped]\n"))
            return out

    return GradingClient, CurrentPythonKernelSpecs, AsyncKernelManager


def _nbformat():
    import nbformat

    return nbformat


def _first_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _short(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}", 300)
    return None


def execute_notebook(notebook, workdir: Path, env: dict[str, str], timeout: float) -> RunReport:
    """Run the code cells of ``notebook`` in place (outputs stored), within ``timeout`` seconds in all.

    The time limit counts from the moment the kernel is ready (its start has a
    limit of its own, ``startup_timeout``), so a slow machine does not eat into it.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client_class, spec_manager_class, kernel_manager_class = _client_classes()
    report = RunReport()
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in notebook.cells):
        return report  # an exercise sheet (written answers only): no kernel to start
    kernel_manager = kernel_manager_class(kernel_name="python3", kernel_spec_manager=spec_manager_class())
    client = client_class(notebook, km=kernel_manager, timeout=max(1, math.ceil(timeout)), allow_errors=True,
                          shutdown_kernel="immediate", shell_timeout_interval=1, iopub_timeout=4,
                          startup_timeout=120, resources={"metadata": {"path": str(workdir)}})
    started = time.monotonic()
    try:
        # the kernel's own stderr (warnings from its start-up) is not part of any cell's output
        with tempfile.TemporaryFile("w+", encoding="utf-8") as kernel_stderr, \
                client.setup_kernel(env=env, cwd=str(workdir), stderr=kernel_stderr, cleanup_kc=True):
            deadline = time.monotonic() + timeout  # the limit is for the notebook's cells, not the kernel's start
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    report.stopped_at, report.stop_reason = index, f"the time limit of {timeout:g} s was reached"
                    break
                client.timeout = max(1, math.ceil(remaining))
                try:
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                except CellTimeoutError:
                    report.stopped_at = index
                    report.stop_reason = (f"still running when the time limit of {timeout:g} s for the whole "
                                          "notebook ran out (an endless loop, or too much work for fast mode?)")
                    break
                except DeadKernelError:
                    report.stopped_at = index
                    report.stop_reason = "the Python kernel died (out of memory, a crash, or exit())"
                    break
                error = _first_error(cell)
                if error:
                    report.errors[index] = error
    except Exception as error:  # the kernel could not start, or the client failed: report, never crash
        if report.stopped_at is None:
            report.stopped_at = -1
            report.stop_reason = f"the grader could not run the notebook: {type(error).__name__}: {error}"
    report.seconds = time.monotonic() - started
    if report.stopped_at is not None:
        report.status = ("timed out" if "time limit" in report.stop_reason
                         else "kernel died" if "kernel died" in report.stop_reason else "not run")
    elif report.errors:
        report.status = "errors"
    return report


# --------------------------------------------------------------------------- grading one notebook


def _planned_exercises(notebook) -> tuple[list[Exercise], bool]:
    """The exercises to grade: from the student version's metadata when present, else found in the cells."""
    info = notebook.metadata.get(METADATA_KEY, {}).get("student_version")
    if info and isinstance(info.get("exercises"), list):
        return [Exercise(e["label"], e.get("title", ""), e.get("kind", "written"), e.get("check_source"))
                for e in info["exercises"] if isinstance(e, dict) and "label" in e], True
    return scan_exercises(notebook), False


def _restore_checks(notebook, exercises: list[Exercise]) -> dict[str, str]:
    """Put back the shipped check cells; return a note per exercise whose check cell was changed."""
    nbformat = _nbformat()
    notes: dict[str, str] = {}
    for exercise in exercises:
        if exercise.kind != "checked" or exercise.check_source is None:
            continue
        cells = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                 and cell.get("metadata", {}).get(METADATA_KEY, {}).get("exercise") == exercise.label]
        if cells:
            index = cells[0]
            if notebook.cells[index].source.strip() != exercise.check_source.strip():
                notebook.cells[index].source = exercise.check_source
                notes[exercise.label] = "your check cell was edited; the grader ran the original"
        else:
            cell = nbformat.v4.new_code_cell(exercise.check_source)
            cell.metadata["tags"] = ["check"]
            cell.metadata[METADATA_KEY] = {"exercise": exercise.label}
            notebook.cells.append(cell)
            index = len(notebook.cells) - 1
            notes[exercise.label] = "the check cell was missing; the grader ran it at the end of the notebook"
        exercise.check_cell = index
    return notes


def _read_log(path: Path) -> dict[str, dict]:
    """The last result each exercise recorded (a check run twice counts once)."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            records[str(record["exercise"])] = record
        except (ValueError, KeyError, TypeError):
            continue  # a line the notebook garbled: ignore it
    return records


def _checked_grade(exercise: Exercise, record: dict | None, run: RunReport, note: str | None) -> ExerciseGrade:
    if record is not None:
        try:
            score, max_score = float(record["score"]), float(record["max_score"])
        except (KeyError, TypeError, ValueError):
            score, max_score = 0.0, DEFAULT_MAX_SCORE
        score = min(max(score, 0.0), max_score)
        status = record.get("status") or ("passed" if score >= max_score else "partial" if score > 0 else "failed")
        messages = record.get("messages") or []
        messages = [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
        if status == "not attempted" and len(messages) > 1:
            messages = messages[:1]  # the same "returned None" for every case: once is enough
        feedback = "; ".join(messages)
    else:
        score, max_score, status = 0.0, DEFAULT_MAX_SCORE, "not run"
        index = exercise.check_cell
        if index is not None and index in run.errors:
            feedback = f"the check cell (cell {index}) raised {run.errors[index]}"
        elif run.stopped_at is not None and (index is None or run.stopped_at <= index):
            feedback = f"the check was not reached: {run.stop_reason} (cell {run.stopped_at})"
        elif index is None:
            feedback = "no check cell found for this exercise"
        else:
            feedback = f"the check cell (cell {index}) ran but recorded no score"
    if note:
        feedback = f"{note}; {feedback}"
    return ExerciseGrade(exercise.label, "checked", round(score, 3), max_score, status, _short(feedback))


def _written_grade(exercise: Exercise, notebook) -> ExerciseGrade:
    answers = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"
               and cell.get("metadata", {}).get(METADATA_KEY, {}).get("answer") == exercise.label]
    text = "\n".join(answers)
    for prefix in (f"**Your answer** (exercise `{exercise.label}`):", ANSWER_PLACEHOLDER):
        text = text.replace(prefix, "")
    if not answers:
        return ExerciseGrade(exercise.label, "written", None, None, "to grade by hand",
                             "no answer cell found: read the notebook")
    if not text.strip():
        return ExerciseGrade(exercise.label, "written", None, None, "not answered", "")
    return ExerciseGrade(exercise.label, "written", None, None, "answered", _short(text))


def grade_notebook(path: Path, timeout: float = 300, student: str | None = None,
                   submission: str | None = None) -> NotebookGrade:
    """Run one submitted notebook in isolation and grade its exercises.

    Example:
        >>> grade = grade_notebook(Path("alice/first_gan.ipynb"), timeout=120)  # doctest: +SKIP
        >>> grade.score, grade.max_score, grade.run.status  # doctest: +SKIP
        (1.0, 1.0, 'completed')
    """
    nbformat = _nbformat()
    path = Path(path)
    student = student or path.stem
    submission = submission or path.name
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook: report it as this submission's grade
        run = RunReport(status="unreadable", stopped_at=-1,
                        stop_reason=f"not a readable notebook: {type(error).__name__}: {_short(error, 200)}")
        return NotebookGrade(submission, student, [], run)
    exercises, from_metadata = _planned_exercises(notebook)
    notes = _restore_checks(notebook, exercises) if from_metadata else {}
    with tempfile.TemporaryDirectory(prefix="aigc-grade-") as temporary:
        workdir = Path(temporary) / "work"
        workdir.mkdir()
        shutil.copyfile(path, workdir / path.name)
        log = Path(temporary) / "grade_log.jsonl"
        env = {**os.environ, FAST_ENV: "1", GRADE_LOG_ENV: str(log), "MPLBACKEND": "Agg"}
        run = execute_notebook(notebook, workdir, env, timeout)
        records = _read_log(log)
    grades = []
    for exercise in exercises:
        if exercise.kind == "checked":
            grades.append(_checked_grade(exercise, records.pop(exercise.label, None), run, notes.get(exercise.label)))
        else:
            grades.append(_written_grade(exercise, notebook))
    for label, record in records.items():  # checks the plan did not know about (still worth reporting)
        grades.append(_checked_grade(Exercise(label, kind="checked"), record, run, None))
    source = notebook.metadata.get(METADATA_KEY, {}).get("student_version", {}).get("source") or path.name
    return NotebookGrade(submission, student, grades, run, executed=notebook, notebook=str(source))


def _fill_unknown_max_scores(grades: list[NotebookGrade]) -> None:
    """A check that never ran in one submission is scored out of what it gave in the others."""
    known: dict[tuple[str, str], float] = {}
    for grade in grades:
        for exercise in grade.exercises:
            if exercise.kind == "checked" and exercise.status != "not run" and exercise.max_score is not None:
                key = (grade.notebook, exercise.exercise)
                known[key] = max(known.get(key, 0.0), exercise.max_score)
    for grade in grades:
        for exercise in grade.exercises:
            if exercise.status == "not run" and (grade.notebook, exercise.exercise) in known:
                exercise.max_score = known[(grade.notebook, exercise.exercise)]


# --------------------------------------------------------------------------- the command


def find_submissions(submissions_dir: Path) -> list[Path]:
    """Every ``.ipynb`` under the folder (checkpoints and the grader's own output excluded), sorted."""
    found = []
    for path in sorted(Path(submissions_dir).rglob("*.ipynb")):
        parts = path.relative_to(submissions_dir).parts
        if any(part == ".ipynb_checkpoints" or part.endswith("_executed") for part in parts):
            continue
        found.append(path)
    return found


def grade_submissions(submissions_dir: Path, out_csv: Path, timeout: int = 300) -> Path:
    """Grade every notebook under ``submissions_dir`` and write the CSV ``out_csv``; return its path.

    Collect one folder per student (``submissions/alice/first_gan.ipynb``: the
    student is ``alice``), or put the notebooks side by side (the student is the
    file name's stem). Each notebook runs in a fresh kernel in a temporary
    folder, in fast mode, for at most ``timeout`` seconds. The executed notebooks
    (with their outputs, for reading the feedback in context) are written beside
    the CSV, in ``<csv name>_executed/``.

    Example:
        >>> grade_submissions(Path("submissions"), Path("grades.csv"), timeout=300)  # doctest: +SKIP
        PosixPath('grades.csv')
    """
    nbformat = _nbformat()
    submissions_dir, out_csv = Path(submissions_dir), Path(out_csv)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"{submissions_dir} is not a folder of submitted notebooks")
    submissions = find_submissions(submissions_dir)
    executed_dir = out_csv.parent / f"{out_csv.stem}_executed"
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    grades: list[NotebookGrade] = []
    for number, path in enumerate(submissions, start=1):
        relative = path.relative_to(submissions_dir)
        student = relative.parts[0] if len(relative.parts) > 1 else path.stem
        grade = grade_notebook(path, timeout=timeout, student=student, submission=relative.as_posix())
        if grade.executed is not None:
            target = executed_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(grade.executed, target)
            grade.executed = None  # written; do not keep every executed notebook in memory
        grades.append(grade)
        print(f"[{number}/{len(submissions)}] {relative.as_posix()}: {grade.score:g} point(s), "
              f"{grade.run.status} in {grade.run.seconds:.0f} s", flush=True)
    _fill_unknown_max_scores(grades)
    with open(out_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for grade in grades:
            writer.writerows(grade.rows())
    if not submissions:
        print(f"no notebooks found under {submissions_dir}; wrote an empty {out_csv}", flush=True)
    return out_csv
