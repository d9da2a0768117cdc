"""Grade submitted notebooks: each in its own process, kernel and folder, with limits; write a CSV.

What happens to one submission (:func:`grade_notebook`), in a worker process of
its own (``python -m aigc_lessons.classroom.grading``), which adopts and at the
end kills every process the notebook started:

1. its exercises are found however the student rearranged the cells, and what
   would cost an honest student points is repaired (see :mod:`._matching`);
2. it runs from top to bottom in a fresh Python kernel (this interpreter's,
   through ``nbclient``), in a temporary folder of its own, in fast mode
   (``AIGC_LESSONS_FAST=1``), with a time limit for the whole notebook and, set
   with ``resource.setrlimit`` in the kernel's process, limits on memory, CPU
   time and file size (:mod:`._sandbox`). Cells that raise do not stop the run;
   a cell that runs past the time limit, or a kernel that dies, stops that
   notebook only, and the CSV says where;
3. each check's score is what its check cell showed (the kernel's output), with
   the details the check recorded in the submission's own grade log
   (``AIGC_LESSONS_GRADE_LOG``, see :func:`aigc_lessons.checks.report`); a log
   line that does not match what the check showed is ignored, so writing to the
   log changes nothing;
4. after the kernel has stopped, the exercise's **hidden cases** (:mod:`.hidden`)
   run in another limited process, on the learner's code taken from the notebook.

The CSV has one row per submission and exercise (a hidden row ``<label>
(hidden)`` per exercise with hidden cases), then a ``TOTAL`` row per submission:
``student, submission, exercise, kind, score, max_score, status, feedback``.
``status`` is ``passed``, ``partial``, ``failed``, ``not attempted`` or ``not
run`` for checked and hidden rows, ``answered`` or ``not answered`` for written
ones (graded by hand; the answer is in ``feedback``), and the run's outcome on the
``TOTAL`` row (``completed``, ``errors``, ``timed out``, ``kernel died``,
``unreadable``, ``not graded``). A check that never ran in a submission scores 0
out of the maximum it has in the other submissions of the same notebook.

Check cells run as the student version shipped them. This keeps honest
mistakes and one student's mischief from changing anyone else's grade; within
one's own notebook a determined student can still fake a result (the
notebook's code runs with the grader's permissions): the container mode of the
teacher's guide keeps a notebook away from the grader's files altogether.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..checks import GRADE_LOG_ENV
from . import _sandbox
from ._convention import METADATA_KEY, Exercise, scan_exercises
from ._matching import ExerciseCells, learner_code, prepare_for_grading
from .student import ANSWER_PLACEHOLDER

FAST_ENV = "AIGC_LESSONS_FAST"  # the same name as aigc_lessons.core.FAST_ENV, without importing torch
CSV_COLUMNS = ["student", "submission", "exercise", "kind", "score", "max_score", "status", "feedback"]
DEFAULT_MAX_SCORE = 1.0  # a check that never ran in any submission is scored out of report()'s default
OUTPUT_LIMIT = 200_000  # characters of output kept per notebook; the rest is dropped with a note
FEEDBACK_LIMIT = 1500
DEFAULT_MEMORY_MB = 8192  # address space of a kernel (importing PyTorch alone maps about 3 GiB)
DEFAULT_FILE_MB = 512  # largest file a notebook may write
HIDDEN_TIMEOUT = 120  # seconds for the hidden cases of one submission
GRADED_KINDS = ("checked", "hidden")


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
    notes: list[str] = field(default_factory=list)  # what the grader did besides running it
    disturbed: bool = False  # its temporary folder vanished while it ran (another notebook deleted it?)

    def summary(self) -> str:
        if self.status in ("unreadable", "not graded"):
            return self.stop_reason
        parts = [self.stop_reason] if self.status == "tampered" else []
        if self.stopped_at is not None:
            parts.append(f"stopped in cell {self.stopped_at}: {self.stop_reason}" if self.stopped_at >= 0
                         else self.stop_reason)
        if self.errors:
            listed = "; ".join(f"cell {index}: {error}" for index, error in sorted(self.errors.items()))
            parts.append(f"{len(self.errors)} cell(s) raised an error ({listed})")
        parts.append(f"ran for {self.seconds:.1f} s")
        return "; ".join(parts + self.notes)


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
        return round(sum(e.score or 0.0 for e in self.exercises if e.kind in GRADED_KINDS), 3)

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score or 0.0 for e in self.exercises if e.kind in GRADED_KINDS), 3)

    def to_dict(self) -> dict:
        """Everything but the executed notebook, as JSON-ready values (the worker sends it this way)."""
        return {"submission": self.submission, "student": self.student, "notebook": self.notebook,
                "exercises": [asdict(e) for e in self.exercises], "run": asdict(self.run)}

    @classmethod
    def from_dict(cls, data: dict) -> "NotebookGrade":
        run = dict(data["run"])
        run["errors"] = {int(k): v for k, v in run.get("errors", {}).items()}
        return cls(data["submission"], data["student"], [ExerciseGrade(**e) for e in data["exercises"]],
                   RunReport(**run), notebook=data.get("notebook", ""))

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


def _client_classes(limits: dict | None = None):
    try:
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient
    except ImportError as error:  # pragma: no cover - these come with the book extra
        raise ImportError("grading needs nbclient and jupyter_client: pip install -e '.[book]'") from error

    class CurrentPythonKernelSpecs(KernelSpecManager):
        """Always this interpreter, whatever kernels the machine has registered."""

        def get_kernel_spec(self, kernel_name):
            argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
            if limits:
                argv = _sandbox.limited_command(argv, limits.get("memory_mb"), limits.get("cpu_seconds"),
                                                limits.get("file_mb"))
            return KernelSpec(argv=argv, display_name="Python (aigc-lessons grader)", language="python",
                              resource_dir="")

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


def execute_notebook(notebook, workdir: Path, env: dict[str, str], timeout: float,
                     limits: dict | None = None, private_dir: Path | None = None) -> RunReport:
    """Run the code cells of ``notebook`` in place (outputs stored), within ``timeout`` seconds in all.

    The time limit counts from the moment the kernel is ready (its start has a
    limit of its own, ``startup_timeout``), so a slow machine does not eat into it.
    ``limits`` (``memory_mb``, ``cpu_seconds``, ``file_mb``) are set in the
    kernel's process before it starts (:mod:`._sandbox`). With ``private_dir``,
    the kernel's connection file (which holds the key that signs its messages)
    is written there and deleted as soon as the kernel is connected, so that no
    other process can talk to this kernel.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client_class, spec_manager_class, kernel_manager_class = _client_classes(limits)
    report = RunReport()
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in notebook.cells):
        return report  # an exercise sheet (written answers only): no kernel to start
    kernel_manager = kernel_manager_class(kernel_name="python3", kernel_spec_manager=spec_manager_class())
    if private_dir is not None:
        kernel_manager.connection_file = str(Path(private_dir) / "kernel-connection.json")
    client = client_class(notebook, km=kernel_manager, timeout=max(1, math.ceil(timeout)), allow_errors=True,
                          shutdown_kernel="immediate", shell_timeout_interval=1, iopub_timeout=4,
                          startup_timeout=120, resources={"metadata": {"path": str(workdir)}})
    started = time.monotonic()
    try:
        # the kernel's own stderr (warnings from its start-up) is not part of any cell's output
        with tempfile.TemporaryFile("w+", encoding="utf-8") as kernel_stderr, \
                tempfile.TemporaryFile("w+", encoding="utf-8") as kernel_stdout, \
                client.setup_kernel(env=env, cwd=str(workdir), stderr=kernel_stderr, stdout=kernel_stdout,
                                    cleanup_kc=True):
            if private_dir is not None:
                try:
                    os.remove(kernel_manager.connection_file)
                except OSError:
                    pass
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
        return [Exercise(e["label"], e.get("title", ""), e.get("kind", "written"), e.get("check_source"),
                         cells=e.get("cells") if isinstance(e.get("cells"), dict) else None)
                for e in info["exercises"] if isinstance(e, dict) and "label" in e], True
    return scan_exercises(notebook), False


def _read_log(path: Path) -> dict[str, dict]:
    """The last result each exercise recorded (a check run twice counts once)."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[-10_000:]:
        try:
            record = json.loads(line)
            records[str(record["exercise"])] = record
        except (ValueError, KeyError, TypeError):
            continue  # a line the notebook garbled: ignore it
    return records


RESULT_HEAD = re.compile(r"^(?P<word>PASSED|NOT ATTEMPTED|NOT YET) (?P<label>\S+): "
                         r"(?P<score>[-+0-9.eE]+)/(?P<max>[-+0-9.eE]+)\s*$")


def shown_results(cell) -> dict[str, dict]:
    """The check results a cell's outputs show (``str(CheckResult)``): label → score, max_score, status, messages."""
    found: dict[str, dict] = {}
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text = output.get("text", "")
        elif output.get("output_type") in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain", "")
        else:
            continue
        text = "".join(text) if isinstance(text, list) else str(text)
        lines = text.splitlines()
        for number, line in enumerate(lines):
            match = RESULT_HEAD.match(line)
            if not match:
                continue
            try:
                score, maximum = float(match["score"]), float(match["max"])
            except ValueError:
                continue
            messages = []
            for following in lines[number + 1:]:
                if not following.startswith("  - "):
                    break
                messages.append(following[4:])
            status = {"PASSED": "passed", "NOT ATTEMPTED": "not attempted"}.get(
                match["word"], "partial" if score > 0 else "failed")
            found[match["label"]] = {"exercise": match["label"], "score": score, "max_score": maximum,
                                     "status": status, "messages": messages}
    return found


def _agree(record: dict, shown: dict) -> bool:
    try:
        return (math.isclose(float(record["score"]), shown["score"], abs_tol=5e-4)
                and math.isclose(float(record["max_score"]), shown["max_score"], abs_tol=5e-4))
    except (KeyError, TypeError, ValueError):
        return False


def _checked_grade(exercise: Exercise, record: dict | None, run: RunReport, notes: list[str]) -> ExerciseGrade:
    if record is not None:
        try:
            score, max_score = float(record["score"]), float(record["max_score"])
        except (KeyError, TypeError, ValueError):
            score, max_score = 0.0, DEFAULT_MAX_SCORE
        if not (math.isfinite(score) and math.isfinite(max_score)) or max_score <= 0:
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
    if notes:
        feedback = "; ".join(notes + [feedback])
    return ExerciseGrade(exercise.label, "checked", round(score, 3), max_score, status, _short(feedback))


def _written_grade(exercise: Exercise, notebook, cells: ExerciseCells | None) -> ExerciseGrade:
    indices = cells.answers if cells is not None else [
        index for index, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"
        and cell.get("metadata", {}).get(METADATA_KEY, {}).get("answer") == exercise.label]
    answers = [notebook.cells[index].source for index in indices]
    text = "\n".join(answers)
    for prefix in (f"**Your answer** (exercise `{exercise.label}`):", ANSWER_PLACEHOLDER):
        text = text.replace(prefix, "")
    notes = "; ".join(cells.notes) + ": " if cells is not None and cells.notes else ""
    if not answers:
        return ExerciseGrade(exercise.label, "written", None, None, "to grade by hand",
                             "no answer cell found: read the notebook")
    if not text.strip():
        return ExerciseGrade(exercise.label, "written", None, None, "not answered", notes.rstrip(": "))
    return ExerciseGrade(exercise.label, "written", None, None, "answered", _short(notes + text.strip()))


def _hidden_grades(notebook, exercises: list[Exercise], cells: dict[str, ExerciseCells], hidden_files: list[str],
                   limits: dict, workdir: Path, env: dict[str, str], timeout: float) -> list[ExerciseGrade]:
    """Run the hidden cases of every exercise that has some, in a fresh limited process (after the kernel)."""
    if not hidden_files:
        return []
    from .hidden import declared_exercises

    try:
        declared = declared_exercises([Path(p) for p in hidden_files])
    except Exception as error:  # a broken hidden file: the teacher's problem, reported on every row
        return [ExerciseGrade("hidden cases", "hidden", 0.0, 0.0, "not run",
                              _short(f"the hidden-case file could not be loaded: {type(error).__name__}: {error}"))]
    labels = [e.label for e in exercises if e.label in declared]
    if not labels:
        return []
    nonce = secrets.token_hex(16)
    request = {"nonce": nonce, "files": [str(p) for p in hidden_files],
               "code": {label: learner_code(notebook, cells[label]) if label in cells else [] for label in labels}}
    command = _sandbox.limited_command([sys.executable, "-m", "aigc_lessons.classroom._run_hidden"],
                                       limits.get("memory_mb"), limits.get("cpu_seconds"), limits.get("file_mb"))
    hidden_env = {key: value for key, value in env.items() if key != GRADE_LOG_ENV}
    error = ""
    results: dict = {}
    try:
        done = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True, cwd=workdir,
                              env=hidden_env, timeout=timeout)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        answer = json.loads(lines[-1]) if lines else {}
        if answer.get("nonce") != nonce:
            error = "the hidden cases gave no answer" + (f" (exit status {done.returncode})" if done.returncode else "")
        elif "error" in answer:
            error = f"the hidden cases could not run: {answer['error']}"
        else:
            results = answer.get("results", {})
    except subprocess.TimeoutExpired:
        error = f"the hidden cases ran past their time limit of {timeout:g} s (an endless loop in your function?)"
    except (ValueError, OSError) as problem:
        error = f"the hidden cases gave no readable answer ({type(problem).__name__})"
    grades = []
    for label in labels:
        result = results.get(label)
        if result is None:
            grades.append(ExerciseGrade(f"{label} (hidden)", "hidden", 0.0, declared[label], "not run",
                                        _short(error or "no result")))
            continue
        score, maximum = float(result["score"]), float(result["max_score"])
        status = "passed" if score >= maximum else "partial" if score > 0 else "failed"
        grades.append(ExerciseGrade(f"{label} (hidden)", "hidden", round(score, 3), maximum, status,
                                    _short("; ".join(result.get("messages", [])))))
    return grades


def grade_prepared(notebook, name: str, student: str, submission: str, timeout: float,
                   limits: dict | None = None, hidden_files: list[str] | None = None,
                   keep: Path | None = None) -> NotebookGrade:
    """Grade one notebook (already read) in this process: prepare, run in a kernel, score, run the hidden cases.

    Called by the worker process (:func:`grade_notebook` starts one per submission).
    """
    limits = limits or {}
    exercises, from_metadata = _planned_exercises(notebook)
    nbformat = _nbformat()
    if from_metadata:
        cells = prepare_for_grading(notebook, exercises, nbformat)
    else:  # a notebook without a student version's plan (a reference): its cells are taken as they are
        cells = {e.label: ExerciseCells(e.label, e.kind, check=e.check_cell) for e in exercises if e.kind == "checked"}
    for exercise in exercises:
        if exercise.label in cells:
            exercise.check_cell = cells[exercise.label].check
    with tempfile.TemporaryDirectory(prefix="aigc-grade-", ignore_cleanup_errors=True) as temporary:
        private = Path(temporary) / "grader"
        workdir = Path(temporary) / "work"
        private.mkdir(mode=0o700)
        workdir.mkdir()
        sentinel = private / "still-here"
        sentinel.write_text("the grader checks that this folder survived the notebook\n", encoding="utf-8")
        (workdir / name).write_text(nbformat.writes(notebook), encoding="utf-8")
        log = Path(temporary) / "grade_log.jsonl"
        env = {**os.environ, FAST_ENV: "1", GRADE_LOG_ENV: str(log), "MPLBACKEND": "Agg"}
        env.pop("AIGC_LESSONS_HIDDEN", None)
        run = execute_notebook(notebook, workdir, env, timeout, limits=limits, private_dir=private)
        disturbed = not sentinel.is_file()
        records = _read_log(log)
        hidden_dir = Path(temporary) / "hidden-run"
        hidden_dir.mkdir(parents=True, exist_ok=True)
        hidden = _hidden_grades(notebook, exercises, cells, hidden_files or [], limits, hidden_dir,
                                {k: v for k, v in env.items()}, min(HIDDEN_TIMEOUT, max(30.0, timeout)))
    grades = []
    for exercise in exercises:
        if exercise.kind != "checked":
            grades.append(_written_grade(exercise, notebook, cells.get(exercise.label)))
            continue
        notes = list(cells[exercise.label].notes) if exercise.label in cells else []
        record = records.pop(exercise.label, None)
        index = exercise.check_cell
        shown = shown_results(notebook.cells[index]).get(exercise.label) if index is not None and \
            index < len(notebook.cells) else None
        if shown is not None:
            if record is not None and _agree(record, shown):
                shown = record
            elif record is not None:
                notes.append("a grade-log entry that did not match the check's output was ignored")
            record = shown
        elif record is not None and index is not None and index in run.errors:
            notes.append("a grade-log entry from a check cell that raised was ignored")
            record = None
        grades.append(_checked_grade(exercise, record, run, notes))
    if not from_metadata:
        for label, record in records.items():  # checks found only in the log (a notebook without a plan)
            grades.append(_checked_grade(Exercise(label, kind="checked"), record, run, []))
    grades += hidden
    source = notebook.metadata.get(METADATA_KEY, {}).get("student_version", {}).get("source") or name
    run.disturbed = disturbed
    return NotebookGrade(submission, student, grades, run, executed=notebook, notebook=str(source))


def _unreadable(submission: str, student: str, reason: str) -> NotebookGrade:
    run = RunReport(status="unreadable", stopped_at=-1, stop_reason=reason)
    return NotebookGrade(submission, student, [], run)


def _worker_main() -> None:
    """``python -m aigc_lessons.classroom.grading``: grade one submission sent on stdin; the grade on stdout."""
    _sandbox.become_subreaper()
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    nbformat = _nbformat()
    try:
        notebook = nbformat.reads(request["text"], as_version=4)
    except Exception as error:  # not JSON, not a notebook: report it as this submission's grade
        grade = _unreadable(request["submission"], request["student"],
                            f"not a readable notebook: {type(error).__name__}: {_short(error, 200)}")
    else:
        grade = grade_prepared(notebook, request["name"], request["student"], request["submission"],
                               request["timeout"], request.get("limits"), request.get("hidden_files"))
    _sandbox.kill_descendants()
    answer = {"nonce": request["nonce"], "grade": grade.to_dict(),
              "executed": nbformat.writes(grade.executed) if grade.executed is not None else None}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _limits(timeout: float, memory_mb: float | None) -> dict:
    return {"memory_mb": memory_mb, "cpu_seconds": int(2 * timeout + 120), "file_mb": DEFAULT_FILE_MB}


def grade_text(text: str, name: str, student: str, submission: str, timeout: float = 300,
               memory_mb: float | None = DEFAULT_MEMORY_MB, hidden_files: list[str] | None = None) -> NotebookGrade:
    """Grade one submission (the notebook's text) in a worker process of its own; return its grade."""
    nonce = secrets.token_hex(16)
    request = {"nonce": nonce, "text": text, "name": name, "student": student, "submission": submission,
               "timeout": timeout, "limits": _limits(timeout, memory_mb), "hidden_files": hidden_files or []}
    # generous: the kernel's start, the notebook, the hidden cases, the clean-up
    limit = timeout + min(HIDDEN_TIMEOUT, max(30.0, timeout)) + 240
    try:
        done = subprocess.run([sys.executable, "-m", "aigc_lessons.classroom.grading"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=limit, start_new_session=True)
    except subprocess.TimeoutExpired:
        return _failed(submission, student, f"the grader's worker ran past {limit:g} s and was stopped")
    for line in reversed(done.stdout.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and answer.get("nonce") == nonce:
            grade = NotebookGrade.from_dict(answer["grade"])
            if answer.get("executed"):
                grade.executed = _nbformat().reads(answer["executed"], as_version=4)
            return grade
    tail = _short(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "", 300)
    return _failed(submission, student, f"the grader's worker stopped without a grade (exit status "
                                        f"{done.returncode}){': ' + tail if tail else ''}")


def _failed(submission: str, student: str, reason: str) -> NotebookGrade:
    run = RunReport(status="not run", stopped_at=-1, stop_reason=reason)
    return NotebookGrade(submission, student, [], run)


def grade_notebook(path: Path, timeout: float = 300, student: str | None = None, submission: str | None = None,
                   memory_mb: float | None = DEFAULT_MEMORY_MB, hidden: list[Path] | None = None) -> NotebookGrade:
    """Grade one submitted notebook in a process, kernel and folder of its own.

    ``hidden``: folders of hidden cases (default: the book's, see :mod:`.hidden`).

    Example:
        >>> grade = grade_notebook(Path("alice/first_gan.ipynb"), timeout=120)  # doctest: +SKIP
        >>> grade.score, grade.max_score, grade.run.status  # doctest: +SKIP
        (1.0, 1.0, 'completed')
    """
    from .hidden import default_hidden_dir, hidden_files

    path = Path(path)
    student = student or path.stem
    submission = submission or path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return _unreadable(submission, student, f"not a readable notebook: {type(error).__name__}: {error}")
    folders = [default_hidden_dir()] + list(hidden or [])
    files = [str(p.resolve()) for p in hidden_files(_notebook_name(text, path.name), folders)]
    return grade_text(text, path.name, student, submission, timeout, memory_mb, files)


def _notebook_name(text: str, fallback: str) -> str:
    """The book notebook a submission is a copy of (its student version's source), else its file name."""
    try:
        source = json.loads(text).get("metadata", {}).get(METADATA_KEY, {}).get("student_version", {}).get("source")
    except (ValueError, AttributeError):
        source = None
    return Path(source).name if isinstance(source, str) and source else fallback


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


@dataclass
class CourseGrades:
    """What :func:`grade_course` produced: the grades, the files written, and what went wrong."""

    grades: list[NotebookGrade]
    csv: Path
    files: dict[str, Path] = field(default_factory=dict)  # what was written: "feedback", "summary", "canvas", ...
    pdf_failures: dict[str, str] = field(default_factory=dict)  # submission -> why its PDF failed
    tampering: list[str] = field(default_factory=list)  # "submission: files it changed"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.pdf_failures and not self.tampering


GUARD_ENV = "AIGC_LESSONS_GRADE_GUARD"  # the folders to watch, separated by os.pathsep ("" watches none)


def _guarded_paths(hidden_folders: list[Path]) -> list[Path]:
    """The grader's files a notebook must not change: the package, the hidden cases, the data folder.

    ``$AIGC_LESSONS_GRADE_GUARD`` replaces the list (folders separated by ``:``).
    """
    if GUARD_ENV in os.environ:
        return [Path(p) for p in os.environ[GUARD_ENV].split(os.pathsep) if p]
    package = Path(__file__).resolve().parents[1]
    paths = [package] + [Path(p) for p in hidden_folders if p]
    data = os.environ.get("AIGC_LESSONS_DATA")
    if data:
        paths.append(Path(data))
    return paths


def grade_course(submissions_dir: Path, out_csv: Path, timeout: int = 300, jobs: int = 1,
                 memory_mb: float | None = DEFAULT_MEMORY_MB, hidden: list[Path] | None = None,
                 feedback: bool = True, gradescope: Path | None = None, canvas: Path | None = None,
                 roster: Path | None = None, pdf: bool = False, assignment: str | None = None,
                 quiet: bool = False) -> CourseGrades:
    """Grade every notebook under ``submissions_dir``; write the CSV and, as asked, feedback, exports and PDFs.

    Every submission is read into memory before any runs (a notebook that
    deletes the folder changes nothing), each is graded in a worker process of
    its own (``jobs`` at a time), and everything is written at the end, from the
    grader's memory. After each submission the grader's own files (package,
    hidden cases, data folder) are compared with their state before it: if the
    submission changed any, grading stops there, that submission is reported as
    ``tampered`` and the ones not yet graded as ``not graded``.
    """
    from . import reports
    from .hidden import default_hidden_dir, hidden_files

    started = time.monotonic()
    nbformat = _nbformat()
    submissions_dir, out_csv = Path(submissions_dir), Path(out_csv).resolve()
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"{submissions_dir} is not a folder of submitted notebooks")
    folders = [default_hidden_dir()] + [Path(p).resolve() for p in hidden or []]
    queue = []
    for path in find_submissions(submissions_dir):
        relative = path.relative_to(submissions_dir)
        student = relative.parts[0] if len(relative.parts) > 1 else path.stem
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            text = None
            reason = f"not a readable notebook: {type(error).__name__}: {error}"
        queue.append((relative, student, text, reason if text is None else ""))
    guarded = _guarded_paths(folders)
    results: dict[int, NotebookGrade] = {}
    tampering: list[str] = []
    stop = False

    def grade_one(number: int) -> NotebookGrade:
        relative, student, text, reason = queue[number]
        if text is None:
            return _unreadable(relative.as_posix(), student, reason)
        files = [str(p.resolve()) for p in hidden_files(_notebook_name(text, relative.name), folders)]
        return grade_text(text, relative.name, student, relative.as_posix(), timeout, memory_mb, files)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending: dict = {}
        next_number = 0
        before = _sandbox.snapshot(guarded)
        while (next_number < len(queue) and not stop) or pending:
            while not stop and next_number < len(queue) and len(pending) < max(1, jobs):
                pending[pool.submit(grade_one, next_number)] = next_number
                next_number += 1
            future = next(iter(_wait_first(pending)))
            number = pending.pop(future)
            grade = future.result()
            after = _sandbox.snapshot(guarded)
            changes = _sandbox.changed_files(before, after)
            before = after
            if stop:  # it ran beside the submission that changed the grader's files
                _mark_not_graded(grade)
            elif changes:
                stop = True
                tampering.append(f"{grade.submission}: {', '.join(changes[:5])}"
                                 + (f" and {len(changes) - 5} more" if len(changes) > 5 else ""))
                grade.run.status = "tampered"
                grade.run.stop_reason = ("while it ran, the grader's own files changed: " + ", ".join(changes[:3])
                                         + "; grading stopped (restore the files, then grade the rest)")
                for exercise in grade.exercises:
                    if exercise.kind in GRADED_KINDS:
                        exercise.score, exercise.status = 0.0, "not graded"
            results[number] = grade
            if not quiet:
                print(f"[{len(results)}/{len(queue)}] {grade.submission}: {grade.score:g} point(s), "
                      f"{grade.run.status} in {grade.run.seconds:.0f} s", flush=True)
    # A notebook whose folder vanished, whose worker failed, or (beside others) whose kernel died may have
    # been hit by another notebook: grade it again, alone (its second grade stands)
    again = [number for number, grade in results.items() if not stop and (
        grade.run.disturbed or (grade.run.stopped_at == -1 and "worker" in grade.run.stop_reason)
        or (jobs > 1 and grade.run.status == "kernel died"))]
    for number in again:
        before = _sandbox.snapshot(guarded)
        grade = grade_one(number)
        changes = _sandbox.changed_files(before, _sandbox.snapshot(guarded))
        if changes:
            stop = True
            tampering.append(f"{grade.submission}: {', '.join(changes[:5])}")
            grade.run.status = "tampered"
            grade.run.stop_reason = "while it ran, the grader's own files changed: " + ", ".join(changes[:3])
            _mark_not_graded(grade)
            grade.run.status = "tampered"
        grade.run.notes.append("graded a second time on its own (the first run was disturbed"
                               + (": its folder vanished" if grade.run.disturbed or results[number].run.disturbed
                                  else "") + ")")
        results[number] = grade
        if not quiet:
            print(f"[again] {grade.submission}: {grade.score:g} point(s), {grade.run.status} in "
                  f"{grade.run.seconds:.0f} s", flush=True)
    for number in range(len(queue)):
        if number not in results:
            relative, student, _, _ = queue[number]
            results[number] = NotebookGrade(relative.as_posix(), student, [], RunReport(
                status="not graded", stopped_at=-1, stop_reason="grading stopped before this submission"))
    grades = [results[number] for number in sorted(results)]
    _fill_unknown_max_scores(grades)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    executed_dir = out_csv.parent / f"{out_csv.stem}_executed"
    course = CourseGrades(grades, out_csv, tampering=tampering)
    for grade, (relative, _, _, _) in zip(grades, queue):
        if grade.executed is not None:
            target = executed_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(grade.executed, target)
            course.files.setdefault("executed", executed_dir)
    with open(out_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for grade in grades:
            writer.writerows(grade.rows())
    if pdf:
        course.pdf_failures = reports.write_pdfs(grades, out_csv.parent / f"{out_csv.stem}_pdf", course)
    if feedback:
        reports.write_feedback(course, out_csv.parent / f"{out_csv.stem}_feedback")
    if gradescope is not None:
        reports.write_gradescope(grades, Path(gradescope), course)
    if canvas is not None:
        reports.write_canvas(grades, Path(canvas), roster=roster, assignment=assignment)
        course.files["canvas"] = Path(canvas)
    for grade in grades:
        grade.executed = None  # written; do not keep every executed notebook in memory
    course.seconds = time.monotonic() - started
    if not queue and not quiet:
        print(f"no notebooks found under {submissions_dir}; wrote an empty {out_csv}", flush=True)
    return course


def _mark_not_graded(grade: NotebookGrade) -> None:
    grade.run.status = "not graded"
    grade.run.stop_reason = "graded while another submission changed the grader's files: grade it again"
    for exercise in grade.exercises:
        if exercise.kind in GRADED_KINDS:
            exercise.score, exercise.status = 0.0, "not graded"


def _wait_first(pending: dict):
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
    return done


def grade_submissions(submissions_dir: Path, out_csv: Path, timeout: int = 300, **options) -> Path:
    """Grade every notebook under ``submissions_dir`` and write the CSV ``out_csv``; return its path.

    Collect one folder per student (``submissions/alice/first_gan.ipynb``: the
    student is ``alice``), or put the notebooks side by side (the student is the
    file name's stem). The executed notebooks (with their outputs, for reading
    the feedback in context) are written beside the CSV, in
    ``<csv name>_executed/``, and the feedback pages in ``<csv name>_feedback/``.
    ``options`` are :func:`grade_course`'s (``jobs``, ``hidden``, ``pdf``, ...).

    Example:
        >>> grade_submissions(Path("submissions"), Path("grades.csv"), timeout=300)  # doctest: +SKIP
        PosixPath('grades.csv')
    """
    grade_course(submissions_dir, out_csv, timeout=timeout, **options)
    return Path(out_csv)


if __name__ == "__main__":
    _worker_main()
