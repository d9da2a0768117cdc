"""What the grader writes besides its CSV: feedback pages, a class summary, gradebook exports, PDFs.

* :func:`write_feedback`: one HTML page per submission (the score, then each
  exercise's result and message) and ``index.html``, the class summary (score
  distribution and pass rate per exercise, as tables and as a plot embedded as a
  PNG). Plain HTML and CSS in each file: nothing is loaded from elsewhere, so
  the pages open offline and can be e-mailed or uploaded as they are.
* :func:`gradescope_results`: a submission's grade in the format of Gradescope's
  autograder (``results.json``: ``score``, ``execution_time``, ``output`` and a
  ``tests`` list of ``name``, ``score``, ``max_score``, ``status``, ``output``,
  ``visibility``); hidden cases are shown to students only when the teacher
  publishes the grades (``"visibility": "after_published"``).
* :func:`write_canvas`: a CSV in the layout Canvas imports into its gradebook
  (``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one
  column per assignment, and a ``Points Possible`` row). Canvas matches students
  by its IDs: give the gradebook exported from Canvas as ``roster`` and the
  grader copies them over, matching a student folder's name with a student's
  SIS login ID, SIS user ID, Canvas ID or name.
* :func:`write_pdfs`: each executed submission as a PDF, through nbconvert's HTML
  and headless Chromium (no LaTeX); one that fails is listed, never skipped
  silently.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

STATUS_CLASS = {"passed": "ok", "partial": "part", "failed": "bad", "not attempted": "none", "not run": "bad",
                "answered": "ok", "not answered": "none", "to grade by hand": "none", "not graded": "bad"}
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: #5f6368; } .score { font-size: 2rem; font-weight: 600; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f5f7; } td.num { text-align: right; white-space: nowrap; }
.tag { display: inline-block; padding: .05rem .45rem; border-radius: .6rem; font-size: .85rem; white-space: nowrap; }
.ok { background: #e6f4ea; color: #0d652d; } .part { background: #fef7e0; color: #8a5a00; }
.bad { background: #fce8e6; color: #a50e0e; } .none { background: #eceff1; color: #37474f; }
.msg { white-space: pre-wrap; font-size: .92rem; } img { max-width: 100%; }
.alert { border-left: 4px solid #a50e0e; background: #fce8e6; padding: .6rem 1rem; margin: 1rem 0; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _tag(status: str) -> str:
    return f'<span class="tag {STATUS_CLASS.get(status, "none")}">{html.escape(status)}</span>'


def _points(value) -> str:
    return "" if value is None else f"{value:g}"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "submission"


def feedback_name(grade) -> str:
    """The file name of a submission's feedback page (``alice/first_gan.ipynb`` → ``alice__first_gan.html``)."""
    return _safe(Path(grade.submission).with_suffix("").as_posix().replace("/", "__")) + ".html"


def feedback_page(grade, pdf_problem: str | None = None) -> str:
    """One student's feedback: the score, then each exercise's result and message."""
    rows = []
    for exercise in grade.exercises:
        points = (f"{_points(exercise.score)} / {_points(exercise.max_score)}" if exercise.kind != "written"
                  else "graded by your teacher")
        rows.append(f"<tr><td><code>{html.escape(exercise.exercise)}</code></td><td>{html.escape(exercise.kind)}</td>"
                    f'<td class="num">{points}</td><td>{_tag(exercise.status)}</td>'
                    f'<td class="msg">{html.escape(exercise.feedback)}</td></tr>')
    alert = ""
    if grade.run.status not in ("completed",):
        alert = (f'<div class="alert"><strong>How the run went: {html.escape(grade.run.status)}.</strong> '
                 f"{html.escape(grade.run.summary())}</div>")
    if pdf_problem:
        alert += f'<div class="alert"><strong>No PDF of this notebook:</strong> {html.escape(pdf_problem)}</div>'
    body = f"""<h1>Feedback: {html.escape(grade.notebook or grade.submission)}</h1>
<p class="muted">Student <strong>{html.escape(grade.student)}</strong>, submission
<code>{html.escape(grade.submission)}</code>. Graded automatically: the notebook ran from top to bottom in a fresh
kernel, in fast mode; checked and hidden exercises are scored, written ones are graded by hand.</p>
<p class="score">{_points(grade.score)} / {_points(grade.max_score)} points</p>
{alert}
<table><thead><tr><th>exercise</th><th>kind</th><th>points</th><th>result</th><th>message</th></tr></thead>
<tbody>
{chr(10).join(rows) or '<tr><td colspan="5">no exercise was found in this notebook</td></tr>'}
</tbody></table>
<p class="muted">Run: {html.escape(grade.run.summary())}.</p>"""
    return _page(f"Feedback: {grade.student}", body)


def class_statistics(grades) -> dict:
    """Per exercise: submissions, passed, pass rate, mean score; and every submission's total."""
    exercises: dict[str, dict] = {}
    for grade in grades:
        for exercise in grade.exercises:
            if exercise.kind == "written":
                continue
            entry = exercises.setdefault(exercise.exercise, {"kind": exercise.kind, "count": 0, "passed": 0,
                                                             "score": 0.0, "max_score": 0.0})
            entry["count"] += 1
            entry["passed"] += exercise.status == "passed"
            entry["score"] += exercise.score or 0.0
            entry["max_score"] = max(entry["max_score"], exercise.max_score or 0.0)
    for entry in exercises.values():
        entry["pass_rate"] = entry["passed"] / entry["count"] if entry["count"] else 0.0
        entry["mean"] = entry["score"] / entry["count"] if entry["count"] else 0.0
    totals = [(grade.submission, grade.score, grade.max_score) for grade in grades]
    return {"exercises": exercises, "totals": totals}


def summary_plot(statistics: dict) -> str:
    """The class summary's figure (score distribution, pass rate per exercise) as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = statistics["totals"]
    exercises = statistics["exercises"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    fractions = [100 * score / maximum for _, score, maximum in totals if maximum]
    left.hist(fractions, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.001], color="#4c78a8", edgecolor="white")
    left.set_xlabel("score (% of the maximum)")
    left.set_ylabel("submissions")
    left.set_title("Score distribution")
    names = list(exercises)
    rates = [100 * exercises[name]["pass_rate"] for name in names]
    right.barh(range(len(names)), rates, color=["#f58518" if exercises[n]["kind"] == "hidden" else "#54a24b"
                                                for n in names])
    right.set_yticks(range(len(names)), names, fontsize=8)
    right.invert_yaxis()
    right.set_xlim(0, 100)
    right.set_xlabel("submissions that passed (%)")
    right.set_title("Pass rate per exercise (orange: hidden cases)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def summary_page(course) -> str:
    """The class summary: problems first, then the plot, the exercises' pass rates and every submission's score."""
    grades = course.grades
    statistics = class_statistics(grades)
    problems = []
    for item in course.tampering:
        problems.append(f"<li><strong>changed the grader's files, grading stopped:</strong> {html.escape(item)}</li>")
    for submission, why in course.pdf_failures.items():
        problems.append(f"<li><strong>PDF failed</strong> for <code>{html.escape(submission)}</code>: "
                        f"{html.escape(why)}</li>")
    for grade in grades:
        if grade.run.status not in ("completed", "errors"):
            problems.append(f"<li><code>{html.escape(grade.submission)}</code>: {html.escape(grade.run.status)} "
                            f"({html.escape(grade.run.summary())})</li>")
    exercise_rows = "\n".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(e['kind'])}</td>"
        f'<td class="num">{e["passed"]} / {e["count"]}</td><td class="num">{100 * e["pass_rate"]:.0f}%</td>'
        f'<td class="num">{e["mean"]:.2f} / {e["max_score"]:g}</td></tr>'
        for name, e in statistics["exercises"].items())
    student_rows = "\n".join(
        f'<tr><td><a href="{feedback_name(g)}">{html.escape(g.student)}</a></td><td><code>{html.escape(g.submission)}'
        f'</code></td><td class="num">{_points(g.score)} / {_points(g.max_score)}</td><td>{_tag(g.run.status)}</td>'
        f'<td class="num">{g.run.seconds:.0f}</td></tr>' for g in grades)
    scores = [100 * s / m for _, s, m in statistics["totals"] if m]
    mean = f"{sum(scores) / len(scores):.0f}%" if scores else "n/a"
    figure = f'<img alt="Score distribution and pass rate per exercise" src="data:image/png;base64,' \
             f'{summary_plot(statistics)}">' if grades else ""
    body = f"""<h1>Class summary</h1>
<p class="muted">{len(grades)} submission(s); mean score {mean} of the maximum; graded in {course.seconds:.0f} s.
Each student's feedback page is linked below.</p>
{('<div class="alert"><strong>Needs your attention</strong><ul>' + ''.join(problems) + '</ul></div>')
 if problems else '<p>Every submission ran to the end and every requested file was written.</p>'}
{figure}
<h2>Pass rate per exercise</h2>
<table><thead><tr><th>exercise</th><th>kind</th><th>passed</th><th>pass rate</th><th>mean points</th></tr></thead>
<tbody>
{exercise_rows}
</tbody></table>
<h2>Submissions</h2>
<table><thead><tr><th>student</th><th>submission</th><th>points</th><th>run</th><th>seconds</th></tr></thead>
<tbody>
{student_rows}
</tbody></table>"""
    return _page("Class summary", body)


def write_feedback(course, folder: Path) -> Path:
    """One page per submission and the class summary (``index.html``) in ``folder``; returns the summary."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for grade in course.grades:
        (folder / feedback_name(grade)).write_text(feedback_page(grade, course.pdf_failures.get(grade.submission)),
                                                   encoding="utf-8")
    summary = folder / "index.html"
    summary.write_text(summary_page(course), encoding="utf-8")
    course.files["feedback"] = folder
    course.files["summary"] = summary
    return summary


# --------------------------------------------------------------------------- Gradescope


def gradescope_results(grade) -> dict:
    """One submission's ``results.json`` for Gradescope's autograder (its documented fields only)."""
    tests = []
    for exercise in grade.exercises:
        if exercise.kind == "written":
            continue
        tests.append({
            "name": exercise.exercise,
            "score": exercise.score or 0.0,
            "max_score": exercise.max_score or 0.0,
            "status": "passed" if exercise.status == "passed" else "failed",
            "output": f"{exercise.status}: {exercise.feedback}" if exercise.feedback else exercise.status,
            "visibility": "after_published" if exercise.kind == "hidden" else "visible",
        })
    written = [e.exercise for e in grade.exercises if e.kind == "written"]
    output = f"Run: {grade.run.status}; {grade.run.summary()}."
    if written:
        output += " Written exercises, graded by hand: " + ", ".join(written) + "."
    return {"score": grade.score, "execution_time": round(grade.run.seconds, 1), "output": output,
            "stdout_visibility": "hidden", "tests": tests}


def write_gradescope(grades, target: Path, course=None) -> list[Path]:
    """``target.json`` for a single submission (the autograder's ``/autograder/results/results.json``);
    else a folder with ``<student>/<notebook>.json`` per submission."""
    target = Path(target)
    written = []
    if target.suffix == ".json" and len(grades) == 1:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(gradescope_results(grades[0]), indent=1), encoding="utf-8")
        written.append(target)
    else:
        for grade in grades:
            path = target / _safe(grade.student) / (_safe(Path(grade.submission).stem) + ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(gradescope_results(grade), indent=1), encoding="utf-8")
            written.append(path)
    if course is not None:
        course.files["gradescope"] = target
    return written


# --------------------------------------------------------------------------- Canvas

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _read_roster(roster: Path | None) -> list[dict]:
    if roster is None:
        return []
    with open(roster, newline="", encoding="utf-8-sig") as handle:
        return [row for row in csv.DictReader(handle)
                if row.get("Student", "").strip() and "Points Possible" not in row.get("Student", "")]


def _roster_row(student: str, roster: list[dict]) -> dict:
    key = student.strip().lower()
    for column in ("SIS Login ID", "SIS User ID", "ID", "Student"):
        for row in roster:
            if row.get(column, "").strip().lower() == key:
                return row
    return {}


def write_canvas(grades, target: Path, roster: Path | None = None, assignment: str | None = None) -> Path:
    """A Canvas gradebook import: one row per student, one column per notebook (its total points).

    ``assignment`` names the column when every submission is of one notebook
    (default: the notebook's name); with several notebooks each gets its own
    column. A student missing from ``roster`` keeps empty ID columns (Canvas
    then reports the row: add the student's IDs, or name the folder after the
    SIS login ID).
    """
    target = Path(target)
    roster_rows = _read_roster(roster)
    notebooks = list(dict.fromkeys(grade.notebook or Path(grade.submission).name for grade in grades))
    names = {nb: (assignment if assignment and len(notebooks) == 1 else Path(nb).stem) for nb in notebooks}
    table: dict[str, dict] = {}
    points: dict[str, float] = {}
    for grade in grades:
        notebook = grade.notebook or Path(grade.submission).name
        row = table.setdefault(grade.student, {})
        row[names[notebook]] = f"{grade.score:g}"
        points[names[notebook]] = max(points.get(names[notebook], 0.0), grade.max_score)
    columns = CANVAS_COLUMNS + [names[nb] for nb in notebooks]
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerow({"Student": "    Points Possible", **{name: f"{value:g}" for name, value in points.items()}})
        for student, scores in table.items():
            match = _roster_row(student, roster_rows)
            ids = {column: match.get(column, "") for column in CANVAS_COLUMNS}
            ids["Student"] = ids["Student"] or student
            writer.writerow({**ids, **scores})
    return target


# --------------------------------------------------------------------------- PDF


def find_chromium() -> str | None:
    """Headless Chromium: ``$AIGC_LESSONS_CHROMIUM``, else ``chromium``, ``chromium-browser`` or Google Chrome."""
    for name in (os.environ.get("AIGC_LESSONS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and (found := shutil.which(name)):
            return found
    return None


def notebook_html(notebook) -> str:
    """nbconvert's HTML of an executed notebook, images inline, with no script or font from the internet."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.embed_images = True
    text, _ = exporter.from_notebook_node(notebook)
    # the lab template loads MathJax and require.js from a CDN: a PDF made offline must not wait for them
    for marker in ("https://cdnjs.cloudflare.com", "https://cdn.jsdelivr.net", "https://unpkg.com"):
        text = text.replace(f'src="{marker}', 'data-offline-src="' + marker)
    return text


def notebook_pdf(notebook, target: Path, timeout: float = 120) -> str | None:
    """Print ``notebook`` to ``target`` with headless Chromium; None on success, else why it failed."""
    chromium = find_chromium()
    if chromium is None:
        return "no Chromium found (install chromium, or set AIGC_LESSONS_CHROMIUM)"
    try:
        page = notebook_html(notebook)
    except Exception as error:  # nbconvert missing or a notebook it cannot render
        return f"nbconvert could not render the notebook: {type(error).__name__}: {error}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aigc-pdf-") as temporary:
        source = Path(temporary) / "notebook.html"
        source.write_text(page, encoding="utf-8")
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                   f"--user-data-dir={Path(temporary) / 'profile'}", f"--print-to-pdf={target}",
                   "--virtual-time-budget=10000", source.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"Chromium did not finish within {timeout:g} s"
        except OSError as error:
            return f"Chromium could not start: {error}"
    if not target.is_file() or target.stat().st_size < 500 or not target.read_bytes().startswith(b"%PDF"):
        last = (done.stderr.strip().splitlines() or [""])[-1][:200]
        return f"Chromium wrote no PDF (exit status {done.returncode}){': ' + last if last else ''}"
    return None


def write_pdfs(grades, folder: Path, course=None) -> dict[str, str]:
    """A PDF of each executed submission in ``folder``; returns ``{submission: why it failed}`` for the others."""
    failures: dict[str, str] = {}
    folder = Path(folder)
    for grade in grades:
        if grade.executed is None:
            failures[grade.submission] = f"the notebook did not run ({grade.run.status})"
            continue
        target = folder / Path(grade.submission).with_suffix(".pdf")
        problem = notebook_pdf(grade.executed, target)
        if problem:
            failures[grade.submission] = problem
    if course is not None:
        course.files["pdf"] = folder
    return failures
