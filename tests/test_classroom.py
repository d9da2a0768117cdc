"""The classroom tools: student versions of the notebooks, the grader, the self-check helpers.

Most tests use the tiny fixture chapter ``tests/fixtures/classroom/tiny_chapter.ipynb``
(three exercises: one written, two checked; no torch), so that grading a dozen
notebooks takes seconds. One module-scoped grading run covers the reference,
the untouched student version, a partly solved one, and notebooks that loop,
raise, kill their kernel, edit their checks or are not notebooks at all.
``tiny_text.md`` is a Markdown chapter (an exercise sheet). The tests at the end
run over whatever chapters ``_toc.yml`` lists: the convention, the student build,
and each chapter's checks against its reference solutions and placeholders.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from aigc_lessons.classroom import build_student_version, build_student_versions, grade_submissions, toc_pages
from aigc_lessons.checks import GRADE_LOG_ENV
from aigc_lessons.classroom._convention import (
    convention_problems,
    exercise_labels,
    parse_python,
    split_directives,
    strip_solution_code,
)
from aigc_lessons.classroom.student import _read_source

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "classroom" / "tiny_chapter.ipynb"
TEXT_FIXTURE = FIXTURE.parent / "tiny_text.md"  # a Markdown chapter: written exercises only
SECRETS = ("SECRET-WRITTEN-ANSWER", "SECRET-GATED-NOTE", "SECRET-CODE", "BEGIN SOLUTION", "END SOLUTION")
TIMEOUT = 8  # seconds per notebook in the grading run; the looping notebook uses all of it
MATCHING = FIXTURE.parent / "matching"  # submissions with rearranged cells (build_matching_fixtures.py)


@pytest.fixture(scope="module", autouse=True)
def _no_guard_on_a_shared_tree():
    """The grader watches its own files for changes during each submission; in a working tree that others
    edit at the same time that would stop grading for nothing, so the tests watch only what they name."""
    from aigc_lessons.classroom.grading import GUARD_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(GUARD_ENV, "")
        yield


def _all_text(notebook) -> str:
    return "\n".join(cell.source for cell in notebook.cells)


def _cell(notebook, predicate):
    matches = [cell for cell in notebook.cells if predicate(cell)]
    assert len(matches) == 1, f"expected one matching cell, found {len(matches)}"
    return matches[0]


def _answer_cell(notebook, function_name: str):
    return _cell(notebook, lambda c: c.cell_type == "code" and "answer" in c.metadata.get("tags", [])
                 and function_name in c.source)


# --------------------------------------------------------------------------- the student build


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("student")
    written = build_student_versions([FIXTURE], out)
    return {"out": out, "written": written, "notebook": nbformat.read(written[0], as_version=4)}


def test_student_build_writes_the_notebook_and_its_zip(built):
    names = [p.relative_to(built["out"]).as_posix() for p in built["written"]]
    assert names == ["tiny_chapter.ipynb", "zips/tiny_chapter.zip"], names
    assert (built["out"] / "figures" / "tiny.png").is_file(), "the image the notebook shows was not copied"


def test_student_version_holds_no_solution(built):
    text = _all_text(built["notebook"])
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"solution content left in the student version: {leaked}"
    assert "{solution" not in text and "{exercise" not in text, "MyST exercise directives left for Jupyter"


def test_placeholders_are_valid_python_that_returns_none(built):
    function = _answer_cell(built["notebook"], "def sum_of_squares")
    assert "YOUR CODE HERE (exercise tiny-ex-2)" in function.source
    namespace: dict = {}
    exec(function.source, namespace)
    assert namespace["sum_of_squares"]([1.0, 2.0]) is None, "the placeholder function must return None"
    module_level = _answer_cell(built["notebook"], "answer =")
    namespace = {}
    exec(module_level.source, namespace)
    assert namespace["answer"] is None, module_level.source


def test_student_version_keeps_exercises_checks_and_adds_instructions(built):
    notebook = built["notebook"]
    assert notebook.cells[0].source.startswith("# A tiny chapter"), "the title must stay the first cell"
    assert "Student version" in notebook.cells[1].source and "YOUR CODE HERE" in notebook.cells[1].source
    text = _all_text(notebook)
    for label in ("tiny-ex-1", "tiny-ex-2", "tiny-ex-3"):
        assert f"**Exercise `{label}`" in text, f"exercise {label} lost"
    checks = [c for c in notebook.cells if "check" in c.metadata.get("tags", [])]
    assert [c.metadata["aigc_lessons"]["exercise"] for c in checks] == ["tiny-ex-2", "tiny-ex-3"]
    answers = [c for c in notebook.cells if c.metadata.get("aigc_lessons", {}).get("answer")]
    assert [c.metadata["aigc_lessons"]["answer"] for c in answers] == ["tiny-ex-1"], "one answer cell per written exercise"
    exercises = notebook.metadata["aigc_lessons"]["student_version"]["exercises"]
    assert [(e["label"], e["kind"]) for e in exercises] == [
        ("tiny-ex-1", "written"), ("tiny-ex-2", "checked"), ("tiny-ex-3", "checked")]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in notebook.cells if c.cell_type == "code"), "outputs must be cleared"
    assert notebook.cells[-1].source == 'print("the end")', "cells after the exercises must stay"
    nbformat.validate(notebook)


def test_zip_holds_notebook_readme_and_images_only(built):
    with zipfile.ZipFile(built["out"] / "zips" / "tiny_chapter.zip") as archive:
        names = sorted(archive.namelist())
        assert names == ["tiny_chapter/README.txt", "tiny_chapter/figures/tiny.png",
                         "tiny_chapter/tiny_chapter.ipynb"], names
        zipped = archive.read("tiny_chapter/tiny_chapter.ipynb")
        readme = archive.read("tiny_chapter/README.txt").decode()
    assert zipped == built["written"][0].read_bytes(), "the zip must hold the student version, not the source"
    assert "tiny-ex-2" in readme and "Restart Kernel and Run All Cells" in readme
    assert not any(secret.encode() in zipped for secret in SECRETS)


def test_rendered_solutions_are_collapsed_dropdowns(tmp_path):
    """Render the fixture as the book does (MyST-NB + sphinx-exercise + sphinx-togglebutton, no execution):
    every solution, written or gated code, sits in a collapsed ``dropdown`` solution block and nowhere else."""
    bs4 = pytest.importorskip("bs4")
    sphinx_application = pytest.importorskip("sphinx.application")
    source = tmp_path / "src"
    source.mkdir()
    (source / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    (source / "figures").mkdir()
    (source / "figures" / "tiny.png").write_bytes((FIXTURE.parent / "figures" / "tiny.png").read_bytes())
    (source / "conf.py").write_text(  # the extensions Jupyter Book 1.x loads for these directives
        'extensions = ["myst_nb", "sphinx_exercise", "sphinx_togglebutton"]\n'
        'nb_execution_mode = "off"\nmyst_enable_extensions = ["dollarmath", "colon_fence"]\n'
        f'root_doc = "{FIXTURE.stem}"\n', encoding="utf-8")
    app = sphinx_application.Sphinx(str(source), str(source), str(tmp_path / "html"), str(tmp_path / "doctrees"),
                                    "html", status=None, warning=None, freshenv=True)
    app.build()
    html = (tmp_path / "html" / f"{FIXTURE.stem}.html").read_text(encoding="utf-8")
    assert "togglebutton" in html, "sphinx-togglebutton (which collapses dropdowns) is not loaded"
    soup = bs4.BeautifulSoup(html, "html.parser")
    solutions = soup.select("div.solution")
    assert len(solutions) == 3 and all("dropdown" in s.get("class", []) for s in solutions), solutions
    inside = " ".join(s.get_text() for s in solutions)
    for secret in ("SECRET-WRITTEN-ANSWER", "SECRET-CODE", "SECRET-GATED-NOTE"):
        assert secret in inside, f"{secret} is not inside a solution dropdown"
    for solution in solutions:
        solution.decompose()
    assert "SECRET" not in soup.get_text(), "solution content shown outside the dropdowns"


@pytest.mark.browser  # reads the built book, like tests/test_links.py: runs after the build (stage 2)
def test_built_book_collapses_every_solution():
    """In the real built site: every sphinx-exercise solution is a dropdown, on a page that loads the toggle."""
    bs4 = pytest.importorskip("bs4")
    from scripts import site_check

    site = site_check.find_site()
    if not (site / "index.html").exists():
        pytest.skip(f"no built book at {site}")
    problems, solutions = [], 0
    for page in site_check.site_pages(site):
        html = page.read_text(encoding="utf-8", errors="replace")
        if 'class="solution' not in html:
            continue
        found = bs4.BeautifulSoup(html, "html.parser").select("div.solution")
        solutions += len(found)
        name = page.relative_to(site)
        problems += [f"{name}: solution {div.get('id')} is not a dropdown" for div in found
                     if "dropdown" not in div.get("class", [])]
        if found and "togglebutton" not in html:
            problems.append(f"{name}: sphinx-togglebutton is not loaded, so dropdowns would show open")
    assert not problems, "\n".join(problems)
    if not solutions:
        pytest.skip("the built book has no solutions yet")


def test_rebuilding_gives_identical_files(built, tmp_path):
    again = build_student_versions([FIXTURE], tmp_path)
    for first, second in zip(built["written"], again):
        assert first.read_bytes() == second.read_bytes(), f"{first.name} differs between two builds"


def test_a_markdown_chapter_becomes_a_gradable_exercise_sheet(tmp_path):
    assert convention_problems(TEXT_FIXTURE) == []
    written = build_student_versions([TEXT_FIXTURE], tmp_path / "student")
    assert [p.relative_to(tmp_path / "student").as_posix() for p in written] == ["tiny_text.ipynb", "zips/tiny_text.zip"]
    sheet = nbformat.read(written[0], as_version=4)
    nbformat.validate(sheet)
    text = _all_text(sheet)
    assert sheet.cells[0].source.startswith("# A tiny text chapter") and "Student version" in sheet.cells[1].source
    assert "SECRET" not in text and "(tiny-text)=" not in text and "MyST comment" not in text, text
    assert "What is $1 + 1$?" in text and "Name a colour" in text and "Nothing here" not in text
    assert "# a comment, not a heading\n%time" in text, "code in an exercise must stay as it is"
    assert "Kernel" not in sheet.cells[1].source, "no code: no instructions about running cells"
    answers = [c for c in sheet.cells if c.metadata.get("aigc_lessons", {}).get("answer")]
    assert [c.metadata["aigc_lessons"]["answer"] for c in answers] == ["tiny-text-ex-1", "tiny-text-ex-2"]
    answers[0].source = "Two."
    (tmp_path / "in" / "bo").mkdir(parents=True)
    nbformat.write(sheet, tmp_path / "in" / "bo" / "tiny_text.ipynb")
    out = grade_submissions(tmp_path / "in", tmp_path / "grades.csv", timeout=5)
    rows = {r["exercise"]: r for r in csv.DictReader(open(out, newline="", encoding="utf-8"))}
    assert rows["tiny-text-ex-1"]["status"] == "answered" and rows["tiny-text-ex-1"]["feedback"] == "Two."
    assert rows["tiny-text-ex-2"]["status"] == "not answered"
    assert rows["TOTAL"]["status"] == "completed" and rows["TOTAL"]["max_score"] == "0", rows["TOTAL"]


def test_an_unclosed_gated_solution_is_refused(tmp_path):
    notebook = nbformat.read(FIXTURE, as_version=4)
    notebook.cells = [c for c in notebook.cells if "{solution-end}" not in c.source]
    broken = tmp_path / "broken.ipynb"
    nbformat.write(notebook, broken)
    with pytest.raises(ValueError, match="has no \\{solution-end\\}"):
        build_student_version(broken)


def test_solution_markers_at_module_level_and_in_functions():
    source = ("import math\n\n# BEGIN SOLUTION\nimport numpy as np\nscale = 2\n"
              "def area(r, *, pi=math.pi):\n    return pi * r * r\nfor k in range(3):\n    last = k\n"
              "# END SOLUTION\nprint(area)")
    stripped = strip_solution_code(source, "x-1")
    namespace: dict = {}
    exec(stripped, namespace)
    assert namespace["scale"] is None and namespace["last"] is None and namespace["area"](1.0) is None
    assert "import numpy as np" in stripped and "pi * r * r" not in stripped
    with pytest.raises(ValueError, match="no '# END SOLUTION'"):
        strip_solution_code("# BEGIN SOLUTION\nx = 1", "x-2")
    assert parse_python(strip_solution_code("%time y = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION", "x-3"))


def test_directives_round_trip_with_nested_fences():
    text = "A\n````{solution} ex-1\n:class: dropdown\n```python\nx = 1\n```\n````\nB"
    parts = split_directives(text)
    assert parts[0] == "A" and parts[2] == "B" and parts[1].name == "solution"
    assert parts[1].body == "```python\nx = 1\n```", parts[1].body
    assert "\n".join(p if isinstance(p, str) else p.raw for p in parts) == text
    shown = "How to write one:\n````md\n```{exercise} Shown, not set\n:label: ex-9\n```\n````\n```python\nx = 1\n```"
    assert split_directives(shown) == [shown], "a directive inside a code block is an example, not a directive"


# --------------------------------------------------------------------------- the self-check helpers


def test_check_helpers_say_what_is_wrong_and_by_how_much(tmp_path, monkeypatch):
    from aigc_lessons.checks import (describe_mismatch, describe_range, describe_shape, not_attempted, report,
                                     run_learner_code)

    assert describe_mismatch("loss", 1.0, 1.0 + 1e-7) is None
    assert describe_mismatch("loss", 2.5, 2.0) == "loss: got 2.5, expected 2 (off by +0.5)"
    assert "sign is flipped" in describe_mismatch("loss", -2.0, 2.0)
    assert "twice the expected value" in describe_mismatch("kl", 4.0, 2.0)
    assert "half the expected value" in describe_mismatch("kl", 1.0, 2.0)
    assert "expected about 2" in describe_mismatch("kl", float("nan"), 2.0)
    assert describe_shape("z", (4, 2), (4, 2)) is None
    assert describe_shape("z", (4,), (4, 2)) == "z: shape (4,), expected (4, 2)"
    assert describe_range("pixels", [0.0, 1.0], 0.0, 1.0) is None
    assert describe_range("pixels", [0.5, 1.5], 0.0, 1.0) == \
        "pixels: values from 0.5 to 1.5, expected within [0, 1] (1 of 2 outside)"
    assert "NaN" in describe_range("pixels", [float("nan")], 0.0, 1.0)
    assert run_learner_code(lambda x: 1 / x, 0)[1] == "your function raised ZeroDivisionError: division by zero"

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(GRADE_LOG_ENV, str(log))
    assert report("d-ex-1", []).status == "passed"
    partial = report("d-ex-2", ["a: got 1, expected 2"], max_score=4.0, partial=0.5)
    assert (partial.score, partial.status) == (2.0, "partial") and "NOT YET d-ex-2: 2/4" in str(partial)
    assert report("d-ex-3", ["x"], partial=1.0).score < 1.0, "a problem left never gives full marks"
    assert not_attempted("d-ex-4").status == "not attempted"
    assert report("d-ex-5", ["f returned None; write it"], partial=0.5).score == 0.0, "placeholders score 0"
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(r["exercise"], r["status"]) for r in records] == [
        ("d-ex-1", "passed"), ("d-ex-2", "partial"), ("d-ex-3", "partial"), ("d-ex-4", "not attempted"),
        ("d-ex-5", "not attempted")]

    monkeypatch.setenv(GRADE_LOG_ENV, str(tmp_path / "deleted folder" / "log.jsonl"))
    with pytest.warns(RuntimeWarning, match="could not write this check to the grade log"):
        unlogged = report("d-ex-6", [])
    assert unlogged.status == "passed", "a grade log that cannot be written must not hide the feedback"


# --------------------------------------------------------------------------- grading


def _student_copy(built) -> nbformat.NotebookNode:
    return nbformat.read(built["written"][0], as_version=4)


def _submit(folder: Path, notebook) -> None:
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / "tiny_chapter.ipynb")


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory) -> dict:
    submissions = tmp_path_factory.mktemp("submissions")
    (submissions / "reference").mkdir()
    (submissions / "reference" / "tiny_chapter.ipynb").write_bytes(FIXTURE.read_bytes())
    _submit(submissions / "untouched", _student_copy(built))

    partial = _student_copy(built)
    _answer_cell(partial, "def sum_of_squares").source = "def sum_of_squares(values):\n    return sum(abs(v) for v in values)"
    _answer_cell(partial, "answer =").source = "answer = 2 ** 10"
    _cell(partial, lambda c: c.metadata.get("aigc_lessons", {}).get("answer") == "tiny-ex-1").source = \
        "Squares are never negative."
    _submit(submissions / "partial", partial)

    looping = _student_copy(built)
    _answer_cell(looping, "def sum_of_squares").source = "def sum_of_squares(values):\n    while True:\n        pass"
    _submit(submissions / "looping", looping)

    raising = _student_copy(built)
    _answer_cell(raising, "def sum_of_squares").source = "def sum_of_squares(values):\n    return 1 / 0"
    _answer_cell(raising, "answer =").source = "answer = undefined_name"
    _submit(submissions / "raising", raising)

    killed = _student_copy(built)
    _answer_cell(killed, "answer =").source = "import os\nos._exit(1)"
    _submit(submissions / "killed", killed)

    tampered = _student_copy(built)
    check = _cell(tampered, lambda c: c.metadata.get("aigc_lessons", {}).get("exercise") == "tiny-ex-2")
    check.source = "report('tiny-ex-2', [], max_score=3.0)"
    tampered.cells = [c for c in tampered.cells if c.metadata.get("aigc_lessons", {}).get("exercise") != "tiny-ex-3"]
    _answer_cell(tampered, "answer =").source = "answer = 1024"
    _submit(submissions / "tampered", tampered)

    (submissions / "not_a_notebook.ipynb").write_text("this is not JSON", encoding="utf-8")

    out_csv = tmp_path_factory.mktemp("grades") / "grades.csv"
    returned = grade_submissions(submissions, out_csv, timeout=TIMEOUT)
    with open(out_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = {(row["student"], row["exercise"]): row for row in rows}
    return {"returned": returned, "csv": out_csv, "rows": rows, "table": table}


def _score(graded, student: str, exercise: str = "TOTAL") -> tuple[float, float]:
    row = graded["table"][(student, exercise)]
    return float(row["score"]), float(row["max_score"])


def test_grader_writes_one_row_per_exercise_and_a_total(graded):
    assert graded["returned"] == graded["csv"]
    students = {row["student"] for row in graded["rows"]}
    assert students == {"reference", "untouched", "partial", "looping", "raising", "killed", "tampered",
                        "not_a_notebook"}, students
    assert list(graded["rows"][0]) == ["student", "submission", "exercise", "kind", "score", "max_score",
                                       "status", "feedback"]
    executed = graded["csv"].parent / "grades_executed" / "partial" / "tiny_chapter.ipynb"
    assert executed.is_file(), "the executed notebooks are kept beside the CSV"


def test_reference_solutions_score_full_marks(graded):
    assert _score(graded, "reference") == (4.0, 4.0), graded["table"][("reference", "TOTAL")]
    assert graded["table"][("reference", "TOTAL")]["status"] == "completed"


def test_untouched_student_version_scores_zero_as_not_attempted(graded):
    assert _score(graded, "untouched") == (0.0, 4.0)
    for exercise in ("tiny-ex-2", "tiny-ex-3"):
        row = graded["table"][("untouched", exercise)]
        assert row["status"] == "not attempted" and "returned None" in row["feedback"], row
    assert graded["table"][("untouched", "tiny-ex-1")]["status"] == "not answered"
    assert graded["table"][("untouched", "TOTAL")]["status"] == "completed", "the student version must run to the end"


def test_partly_solved_notebook_gets_partial_credit(graded):
    assert _score(graded, "partial") == (2.0, 4.0)
    row = graded["table"][("partial", "tiny-ex-2")]
    assert row["status"] == "partial" and float(row["score"]) == 1.0, row
    assert "one value: got 3, expected 9" in row["feedback"], row["feedback"]
    assert graded["table"][("partial", "tiny-ex-3")]["status"] == "passed"
    written = graded["table"][("partial", "tiny-ex-1")]
    assert written["status"] == "answered" and "never negative" in written["feedback"]


def test_endless_loop_is_stopped_and_reported(graded):
    total = graded["table"][("looping", "TOTAL")]
    assert total["status"] == "timed out" and f"{TIMEOUT} s" in total["feedback"], total
    assert _score(graded, "looping") == (0.0, 4.0), "a check that never ran is scored out of its usual maximum"
    for exercise in ("tiny-ex-2", "tiny-ex-3"):
        row = graded["table"][("looping", exercise)]
        assert row["status"] == "not run" and "not reached" in row["feedback"], row
    # the next notebooks were still graded
    assert _score(graded, "reference") == (4.0, 4.0)


def test_raising_cells_are_contained_and_reported(graded):
    total = graded["table"][("raising", "TOTAL")]
    assert total["status"] == "errors" and "NameError" in total["feedback"], total
    failed = graded["table"][("raising", "tiny-ex-2")]
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["feedback"], failed
    not_run = graded["table"][("raising", "tiny-ex-3")]
    assert not_run["status"] == "not run" and "NameError" in not_run["feedback"], not_run


def test_dead_kernel_and_unreadable_files_are_reported(graded):
    killed = graded["table"][("killed", "TOTAL")]
    assert killed["status"] == "kernel died", killed
    assert graded["table"][("killed", "tiny-ex-2")]["status"] == "not attempted", "checks before the crash count"
    unreadable = graded["table"][("not_a_notebook", "TOTAL")]
    assert unreadable["status"] == "unreadable" and "not a readable notebook" in unreadable["feedback"]


def test_edited_and_deleted_checks_are_restored(graded):
    edited = graded["table"][("tampered", "tiny-ex-2")]
    assert edited["status"] == "not attempted" and "edited" in edited["feedback"], edited
    deleted = graded["table"][("tampered", "tiny-ex-3")]
    assert deleted["status"] == "passed" and "missing" in deleted["feedback"], deleted


# --------------------------------------------------------------------------- the book's notebooks
#
# Generic: whatever chapters _toc.yml lists today. Nothing here executes a whole
# chapter (nbval does that); the exercise cells alone run in a few seconds.


def _toc_chapters() -> list[list[Path]]:
    """The pages of _toc.yml that exist, one list per chapter (a chapter with its sections)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))

    def pages(entry: dict) -> list[Path]:
        found = [path for suffix in (".ipynb", ".md") if (path := ROOT / f"{entry['file']}{suffix}").is_file()][:1]
        for section in entry.get("sections", []) or []:
            found += pages(section)
        return found

    return [pages(chapter) for part in toc.get("parts", []) for chapter in part.get("chapters", []) or []
            if "file" in chapter]


def _toc_notebooks() -> list[Path]:
    return [page for chapter in _toc_chapters() for page in chapter if page.suffix == ".ipynb"]


def _solution_lines(notebook) -> list[str]:
    """The telling lines between the solution markers of a reference notebook (not a lone bracket)."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source:
            for block in cell.source.split("# BEGIN SOLUTION")[1:]:
                lines += [line.strip() for line in block.split("# END SOLUTION")[0].splitlines()
                          if len(line.strip()) >= 8 and any(ch.isalpha() for ch in line)]  # not ")" or "else:"
    return lines


def _without_solutions(notebook):
    """A copy of a reference notebook without its solution cells and {solution} directives."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    copy.cells = [c for c in copy.cells if "solution" not in c.metadata.get("tags", [])]
    for cell in copy.cells:
        if cell.cell_type == "markdown":
            cell.source = "\n".join(p if isinstance(p, str) else ("" if p.name == "solution" else p.raw)
                                    for p in split_directives(cell.source))
    return copy


def _answers_in_markdown(notebook) -> list[str]:
    """The opening words of each {solution} dropdown of a reference notebook."""
    return [part.body.strip()[:60] for cell in notebook.cells if cell.cell_type == "markdown"
            for part in split_directives(cell.source)
            if not isinstance(part, str) and part.name == "solution" and part.body.strip()]


def test_every_chapter_in_the_toc_follows_the_exercise_convention():
    """Labels with solutions, hidden (dropdown) solutions, gated code, check cells; 4+ exercises a chapter."""
    problems, owners = [], {}
    for chapter in _toc_chapters():
        labels = []
        for page in chapter:
            problems += [f"{page.relative_to(ROOT)}: {p}" for p in convention_problems(page)]
            for label in exercise_labels(page):
                if label in owners:
                    problems.append(f"{page.relative_to(ROOT)}: label {label} is also used in {owners[label]}")
                owners[label] = page.relative_to(ROOT)
                labels.append(label)
        if any(page.suffix == ".ipynb" for page in chapter) and len(labels) < 4:
            problems.append(f"{chapter[0].relative_to(ROOT)}: {len(labels)} exercise(s); CONTRIBUTING asks for 4")
    assert not problems, "\n".join(problems)


def test_convention_problems_catch_what_would_leak_or_break(tmp_path):
    notebook = nbformat.read(FIXTURE, as_version=4)
    assert convention_problems(FIXTURE) == []
    notebook.cells[2].source = notebook.cells[2].source.replace(":class: dropdown\n", "", 1)  # tiny-ex-1 shown
    notebook.cells[3].source = "Some text."  # the {solution-start} of tiny-ex-2 gone: its code is visible
    notebook.cells[11].metadata["tags"] = []  # no check cell after tiny-ex-3's solution
    broken = tmp_path / "broken.ipynb"
    nbformat.write(notebook, broken)
    found = "\n".join(convention_problems(broken, min_exercises=4))
    for expected in ("{solution} of tiny-ex-1 is not hidden", "outside a {solution-start}/{solution-end}",
                     "{solution-end} without a {solution-start}", "exercise tiny-ex-2 has no {solution}",
                     "after the solution of tiny-ex-3 is not tagged 'check'", "3 exercise(s)"):
        assert expected in found, f"not reported: {expected}\n{found}"


def test_student_build_of_every_book_page(tmp_path):
    """The one command over the real book (every toc notebook, and each Markdown chapter with exercises):
    valid notebooks, no solution left, every exercise kept with an answer or a check cell, a zip each."""
    pages = toc_pages(ROOT)
    if not pages:
        pytest.skip("_toc.yml lists no page with exercises yet")
    written = build_student_versions(pages, tmp_path / "student")
    assert len(written) == 2 * len(pages), [p.name for p in written]
    for source, target, archive_path in zip(pages, written[0::2], written[1::2]):
        name = source.relative_to(ROOT)
        assert target == tmp_path / "student" / source.relative_to(ROOT / "book").with_suffix(".ipynb"), target
        student = nbformat.read(target, as_version=4)
        nbformat.validate(student)
        reference = _read_source(source)
        text = _all_text(student)
        # a solution line may also be part of the chapter's own text (code shown earlier): count, not find
        elsewhere = _all_text(_without_solutions(reference))
        leaked = [line for line in _solution_lines(reference) if text.count(line) > elsewhere.count(line)]
        assert not leaked, f"{name}: reference solution lines left in the student version: {leaked}"
        leaked = [answer for answer in _answers_in_markdown(reference) if text.count(answer) > elsewhere.count(answer)]
        assert not leaked, f"{name}: written answers left in the student version: {leaked}"
        exercises = student.metadata["aigc_lessons"]["student_version"]["exercises"]
        assert [e["label"] for e in exercises] == exercise_labels(source), f"{name}: exercises lost"
        answers = {c.metadata["aigc_lessons"]["answer"] for c in student.cells
                   if c.metadata.get("aigc_lessons", {}).get("answer")}
        assert answers == {e["label"] for e in exercises if e["kind"] == "written"}, f"{name}: answer cells"
        for cell in student.cells:
            if cell.cell_type == "code":
                assert parse_python(cell.source) is not None, f"{name}: invalid student cell:\n{cell.source}"
                if "check" in cell.metadata.get("tags", []):
                    assert cell.metadata.get("aigc_lessons", {}).get("exercise"), f"{name}: unlabelled check"
        with zipfile.ZipFile(archive_path) as archive:
            member = f"{source.stem}/{source.stem}.ipynb"
            assert member in archive.namelist() and f"{source.stem}/README.txt" in archive.namelist()
            assert archive.read(member) == target.read_bytes()


def _is_install_cell(cell) -> bool:
    """The cell before a chapter's setup that installs the package on Colab (scripts/notebooks.py writes it)."""
    return cell.cell_type == "code" and "%pip install" in cell.source


def _setup_part(source: str) -> str:
    """The setup statements of a chapter's setup cell: imports, ``setup(...)``, ``torch.set_*(...)``.

    The rest (a chapter may train a model there) is left out: the exercise cells
    rarely need it, and a check that does is skipped here and run by nbval.
    """
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    def is_setup_call(node) -> bool:
        if not isinstance(node, ast.Call):
            return False
        name = ast.unparse(node.func)
        return name == "setup" or name.endswith(".setup") or name.startswith("torch.set_")

    kept = [node for node in ast.parse(TransformerManager().transform_cell(source)).body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            or (isinstance(node, (ast.Assign, ast.Expr)) and is_setup_call(node.value))]
    return "\n".join(ast.unparse(node) for node in kept)


def _run_exercise_cells(notebook, tags: set[str], log: Path) -> tuple[dict[str, dict], list[str]]:
    """Run the setup part of the notebook's setup cell and its exercise cells (tagged ``tags``).

    Returns the results the checks recorded, by exercise, and the errors of the
    cells skipped because they use a name that an unrun cell of the chapter defines.
    """
    import torch
    from IPython.core.inputtransformer2 import TransformerManager

    code_cells = [c for c in notebook.cells if c.cell_type == "code" and not _is_install_cell(c)]
    sources = [_setup_part(code_cells[0].source)] + [
        TransformerManager().transform_cell(c.source) for c in code_cells[1:] if tags & set(c.metadata.get("tags", []))]
    namespace: dict = {"__name__": "__main__"}
    skipped = []
    try:
        for source in sources:
            try:
                exec(compile(source, "<cell>", "exec"), namespace)
            except NameError as error:  # needs a variable from the middle of the chapter: nbval runs it in place
                skipped.append(f"{error}")
    finally:
        torch.set_default_dtype(torch.float32)  # a chapter may change it; the next one must not inherit that
    records = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["exercise"]] = record
        log.unlink()
    return records, skipped


def test_book_checks_pass_the_reference_and_mark_the_placeholder_not_attempted(tmp_path, monkeypatch):
    """For every checked exercise of the book: the reference solution passes, the student version scores 0."""
    notebooks = _toc_notebooks()
    log = tmp_path / "grade_log.jsonl"
    monkeypatch.setenv(GRADE_LOG_ENV, str(log))
    monkeypatch.setenv("AIGC_LESSONS_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # whatever the cells write lands here, not in the repository
    problems, verified, total = [], 0, 0
    for path in notebooks:
        name = path.relative_to(ROOT)
        student = build_student_version(path)
        checked = [e["label"] for e in student.metadata["aigc_lessons"]["student_version"]["exercises"]
                   if e["kind"] == "checked"]
        if not checked:
            continue
        reference, skipped = _run_exercise_cells(nbformat.read(path, as_version=4), {"solution", "check"}, log)
        placeholder, _ = _run_exercise_cells(student, {"answer", "check"}, log)
        for label in checked:
            if label not in reference and skipped:
                continue  # its cells need the chapter's earlier state; nbval runs the whole chapter
            ran = reference.get(label, {})
            if ran.get("status") != "passed":
                problems.append(f"{name} {label}: the reference solution gets {ran or 'no result'}")
            left = placeholder.get(label, {})
            if left.get("status") != "not attempted" or left.get("score") != 0:
                problems.append(f"{name} {label}: the untouched placeholder gets {left or 'no result'}")
            verified += 1
        total += len(checked)
    assert not problems, "\n".join(problems)
    assert verified > 0 or total == 0, "no checked exercise of the book could be run on its own"


def test_a_book_chapter_through_the_grader(tmp_path):
    """The grader with real checks (PyTorch in the kernel): the reference exercise cells of a checked chapter.

    One kernel only (starting PyTorch is the slow part); the student versions'
    placeholders are covered by the test above and by the tiny chapter.
    """
    chapter = next((p for p in _toc_notebooks() if any(
        e["kind"] == "checked" for e in build_student_version(p).metadata["aigc_lessons"]["student_version"]["exercises"])),
        None)
    if chapter is None:
        pytest.skip("no chapter in _toc.yml has a checked exercise yet")
    reference = nbformat.read(chapter, as_version=4)
    first_code = next(c for c in reference.cells if c.cell_type == "code" and not _is_install_cell(c))
    trimmed = nbformat.v4.new_notebook()  # in the chapter's order: the grader finds the exercises in the markdown
    trimmed.cells = [c for c in reference.cells if c.cell_type == "markdown" or c is first_code
                     or {"solution", "check"} & set(c.metadata.get("tags", []))]
    folder = tmp_path / "submissions" / "reference"
    folder.mkdir(parents=True)
    nbformat.write(trimmed, folder / chapter.name)
    out = grade_submissions(tmp_path / "submissions", tmp_path / "grades.csv", timeout=120)
    with open(out, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "checked"]
    # "not run": a check that needs a variable from the middle of the chapter, which the trimmed copy lacks
    ran = [r for r in rows if r["status"] != "not run"]
    assert ran, f"no check of {chapter.name} could run on its own: {rows}"
    assert all(r["status"] == "passed" and r["score"] == r["max_score"] for r in ran), ran


def test_cli_student_and_grade_call_the_classroom_functions(tmp_path, capsys):
    from aigc_lessons.cli import main

    assert main(["student", str(FIXTURE), "--out", str(tmp_path / "student")]) == 0
    assert (tmp_path / "student" / "zips" / "tiny_chapter.zip").is_file()
    submissions = tmp_path / "submissions" / "ada"
    submissions.mkdir(parents=True)
    (submissions / "tiny_chapter.ipynb").write_bytes(FIXTURE.read_bytes())
    assert main(["grade", str(tmp_path / "submissions"), "--out", str(tmp_path / "g.csv"), "--timeout", "30"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "g.csv", newline="", encoding="utf-8")))
    assert [(r["exercise"], r["score"]) for r in rows if r["kind"] != "written"] == [
        ("tiny-ex-2", "3"), ("tiny-ex-3", "1"), ("TOTAL", "4")], rows
    assert "grades written to" in capsys.readouterr().out
    json.dumps(rows)  # plain strings only


# --------------------------------------------------------------------------- robust matching
#
# tests/fixtures/classroom/matching/: the math-foundations chapter's student version, trimmed and
# solved, then rearranged as students do (build_matching_fixtures.py says how each was made).

MATCHING_NOTES = {  # what the grader says it repaired, per variant
    "deleted": "the check cell was missing",
    "merged": "merged with other code",
    "moved": "the check ran before the code it tests",
    "retyped": "turned into Markdown; the grader ran it as code",
    "edited": "your check cell was edited",
}


def test_matching_fixtures_are_what_the_builder_makes(tmp_path):
    from tests.fixtures.classroom import build_matching_fixtures as builder

    names = sorted(p.name for p in MATCHING.iterdir() if p.is_dir())
    assert names == sorted(builder.VARIANTS), names
    solved = nbformat.read(MATCHING / "solved" / "math_foundations.ipynb", as_version=4)
    plan = solved.metadata["aigc_lessons"]["student_version"]["exercises"]
    assert [e["label"] for e in plan if e["kind"] == "checked"] == list(builder.LABELS)
    for name in builder.VARIANTS:  # each variant is the builder's function of the committed baseline
        rebuilt = builder.variant(solved, name)
        committed = nbformat.read(MATCHING / name / "math_foundations.ipynb", as_version=4)
        assert [c.source for c in rebuilt.cells] == [c.source for c in committed.cells], name


def test_matching_finds_every_exercise_however_the_cells_moved():
    """Without running anything: each variant's check cells end up restored, as code, after their code."""
    from aigc_lessons.classroom._matching import prepare_for_grading
    from aigc_lessons.classroom.grading import _planned_exercises

    for folder in sorted(p for p in MATCHING.iterdir() if p.is_dir()):
        notebook = nbformat.read(folder / "math_foundations.ipynb", as_version=4)
        exercises, from_plan = _planned_exercises(notebook)
        assert from_plan
        found = prepare_for_grading(notebook, exercises, nbformat)
        checks = {e.label: e.check_source for e in exercises if e.kind == "checked"}
        for label, source in checks.items():
            entry = found[label]
            check = notebook.cells[entry.check]
            assert check.cell_type == "code" and " ".join(source.split()) in " ".join(check.source.split()), \
                (folder.name, label, check.source)
            assert entry.answers, (folder.name, label)
            defining = [k for k in entry.answers if "def my_" in notebook.cells[k].source]
            assert defining and min(defining) <= entry.check, (folder.name, label, entry)
            assert all(notebook.cells[k].cell_type == "code" for k in entry.answers), (folder.name, label)
        notes = " ".join(n for entry in found.values() for n in entry.notes)
        if folder.name in MATCHING_NOTES:
            assert MATCHING_NOTES[folder.name] in notes, (folder.name, notes)
        elif folder.name in ("solved", "inserted", "split", "recreated", "hardcoded"):
            assert not notes, (folder.name, notes)
        written = found["math-ex-1"]
        assert written.answers and all(notebook.cells[k].cell_type == "markdown" for k in written.answers)


@pytest.fixture(scope="module")
def matched(tmp_path_factory) -> dict:
    """Every matching fixture through the grader (two at a time), with the book's hidden cases."""
    from aigc_lessons.classroom import grade_course

    out = tmp_path_factory.mktemp("matching") / "grades.csv"
    course = grade_course(MATCHING, out, timeout=180, jobs=2, pdf=False,
                          gradescope=out.parent / "gradescope", canvas=out.parent / "canvas.csv")
    return {"course": course, "grades": {g.student: g for g in course.grades}, "csv": out}


def _outcome(grade) -> dict:
    return {e.exercise: (e.kind, e.score, e.max_score, e.status) for e in grade.exercises if e.kind != "written"}


def test_rearranged_submissions_get_the_solved_notebooks_grade(matched):
    grades = matched["grades"]
    solved = grades["solved"]
    assert solved.run.status == "completed", solved.run.summary()
    assert solved.score == solved.max_score == 6.0, _outcome(solved)  # three checks and three hidden exercises
    assert {e.exercise for e in solved.exercises if e.kind == "hidden"} == {
        "math-ex-2 (hidden)", "math-ex-3 (hidden)", "math-ex-4 (hidden)"}
    for name, grade in grades.items():
        if name in ("solved", "hardcoded"):
            continue
        assert _outcome(grade) == _outcome(solved), (name, _outcome(grade), grade.run.summary())
        written = next(e for e in grade.exercises if e.exercise == "math-ex-1")
        assert written.status == "answered" and "forward KL" in written.feedback, (name, written)


def test_hidden_cases_catch_what_the_self_check_does_not(matched):
    outcome = _outcome(matched["grades"]["hardcoded"])
    assert outcome["math-ex-2"][3] == "passed", outcome  # the visible cases have at most four outcomes
    kind, score, maximum, status = outcome["math-ex-2 (hidden)"]
    assert kind == "hidden" and status in ("partial", "failed") and score < maximum, outcome
    row = next(e for e in matched["grades"]["hardcoded"].exercises if e.exercise == "math-ex-2 (hidden)")
    assert "random distributions" in row.feedback, row.feedback


def test_hidden_cases_stay_out_of_the_student_build_and_the_kernel(matched, built):
    """No hidden case text reaches a student version, and none reached the kernel's outputs."""
    hidden = (ROOT / "book" / "teaching" / "hidden" / "math_foundations.py").read_text(encoding="utf-8")
    marker = "kl_on_unseen_distributions"
    assert marker in hidden
    student = build_student_version(ROOT / "book" / "foundations" / "math_foundations.ipynb")
    assert marker not in json.dumps(student) and "hidden" not in json.dumps(student.metadata)
    executed = matched["csv"].parent / "grades_executed" / "solved" / "math_foundations.ipynb"
    assert executed.is_file() and marker not in executed.read_text(encoding="utf-8")
    import aigc_lessons

    package = Path(aigc_lessons.__file__).parent
    assert not list(package.rglob("math_foundations.py")), "hidden cases must not ship inside the package"


# --------------------------------------------------------------------------- feedback and exports


def test_feedback_pages_and_class_summary_are_self_contained(matched):
    course = matched["course"]
    folder = course.files["feedback"]
    summary = (folder / "index.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in summary and "Pass rate per exercise" in summary
    assert "math-ex-2 (hidden)" in summary and "Score distribution" in summary
    page = (folder / "solved__math_foundations.html").read_text(encoding="utf-8")
    assert "6 / 6 points" in page and "math-ex-4" in page and "all checks passed" in page
    for text in (summary, page):
        assert "http://" not in text and "https://" not in text, "nothing may load from elsewhere"
        assert "<script" not in text


def test_gradescope_results_follow_the_documented_schema(matched):
    folder = matched["course"].files["gradescope"]
    result = json.loads((folder / "solved" / "math_foundations.json").read_text(encoding="utf-8"))
    assert set(result) <= {"score", "execution_time", "output", "visibility", "stdout_visibility", "extra_data",
                           "tests", "leaderboard"}
    assert result["score"] == 6.0 and isinstance(result["tests"], list) and len(result["tests"]) == 6
    for test in result["tests"]:
        assert {"name", "score", "max_score", "output"} <= set(test) <= {
            "name", "score", "max_score", "output", "status", "visibility", "number", "tags", "extra_data"}
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    hidden = [t for t in result["tests"] if t["name"].endswith("(hidden)")]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)
    from aigc_lessons.classroom.reports import write_gradescope

    single = matched["csv"].parent / "single" / "results.json"
    write_gradescope([matched["grades"]["solved"]], single)
    assert json.loads(single.read_text(encoding="utf-8"))["score"] == 6.0


def test_canvas_gradebook_import(matched, tmp_path):
    rows = list(csv.reader(open(matched["course"].files["canvas"], newline="", encoding="utf-8")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "math_foundations"], rows[0]
    assert rows[1][0].strip() == "Points Possible" and rows[1][5] == "6"
    assert {r[0] for r in rows[2:]} == set(matched["grades"]), rows
    roster = tmp_path / "export.csv"  # as Canvas exports its gradebook
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Week 2 (123)\n"
                      "    Points Possible,,,,,6\n"
                      '"Lovelace, Ada",4711,S-1,solved,Lab A,\n', encoding="utf-8")
    from aigc_lessons.classroom.reports import write_canvas

    out = write_canvas(matched["course"].grades, tmp_path / "canvas.csv", roster=roster, assignment="Week 2 (123)")
    table = {r["SIS Login ID"] or r["Student"]: r for r in csv.DictReader(open(out, newline="", encoding="utf-8"))}
    assert table["solved"]["ID"] == "4711" and table["solved"]["Student"] == "Lovelace, Ada"
    assert table["solved"]["Week 2 (123)"] == "6" and table["solved"]["Section"] == "Lab A"


def test_pdf_export_through_chromium_and_a_visible_failure(tmp_path, monkeypatch, capsys):
    from aigc_lessons.classroom import reports
    from aigc_lessons.cli import main

    if reports.find_chromium() is None:
        pytest.skip("no Chromium on this machine (scripts/ensure_browser.sh installs it)")
    submissions = tmp_path / "in" / "ada"
    submissions.mkdir(parents=True)
    (submissions / "tiny_chapter.ipynb").write_bytes(FIXTURE.read_bytes())
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "g.csv"), "--timeout", "30", "--pdf"]) == 0
    pdf = tmp_path / "g_pdf" / "ada" / "tiny_chapter.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    monkeypatch.setenv("AIGC_LESSONS_CHROMIUM", "false")  # a browser that fails: /bin/false
    code = main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "h.csv"), "--timeout", "30", "--pdf"])
    assert code == 3, "a failed PDF must make the command fail"
    assert "PDF FAILED: ada/tiny_chapter.ipynb" in capsys.readouterr().err
    summary = (tmp_path / "h_feedback" / "index.html").read_text(encoding="utf-8")
    assert "PDF failed" in summary and "ada/tiny_chapter.ipynb" in summary


# --------------------------------------------------------------------------- safety
#
# Submissions that attack the grading run beside honest ones (two at a time): their own grades
# may suffer, nobody else's may change.


def _attack(built, code: str):
    notebook = _student_copy(built)
    _answer_cell(notebook, "answer =").source = code
    return notebook


@pytest.fixture(scope="module")
def hostile(built, tmp_path_factory) -> dict:
    submissions = tmp_path_factory.mktemp("hostile")
    out_dir = tmp_path_factory.mktemp("hostile-out")
    target = f"{str(submissions)!r}, {str(out_dir)!r}"

    def honest_partial():
        partial = _student_copy(built)
        _answer_cell(partial, "def sum_of_squares").source = \
            "def sum_of_squares(values):\n    return sum(abs(v) for v in values)"
        _answer_cell(partial, "answer =").source = "answer = 2 ** 10"
        return partial

    _submit(submissions / "a_honest", honest_partial())
    _submit(submissions / "b_deleter", _attack(built, (
        "import glob, os, shutil\n"
        f"for folder in [{target}] + glob.glob(tempfile_dir + '/aigc-grade-*'):\n"
        "    shutil.rmtree(folder, ignore_errors=True)\n"
        "answer = 1024").replace("tempfile_dir", "__import__('tempfile').gettempdir()")))
    _submit(submissions / "c_honest", honest_partial())
    _submit(submissions / "d_tamperer", _attack(built, (
        "import glob, json, os, tempfile, time\n"
        "fake = ''.join(json.dumps({'exercise': label, 'score': 9.0, 'max_score': 9.0, 'messages': [],\n"
        "                           'attempted': True, 'status': 'passed'}) + '\\n'\n"
        "               for label in ('tiny-ex-2', 'tiny-ex-3', 'bonus'))\n"
        "def spray():\n"
        "    logs = glob.glob(os.path.join(tempfile.gettempdir(), 'aigc-grade-*', 'grade_log.jsonl'))\n"
        "    for path in logs + [os.environ.get('AIGC_LESSONS_GRADE_LOG', '')]:\n"
        "        try:\n"
        "            with open(path, 'a') as handle:\n"
        "                handle.write(fake)\n"
        "        except OSError:\n"
        "            pass\n"
        "if os.fork() == 0:  # a detached process that keeps at it after this notebook is done\n"
        "    os.setsid()\n"
        "    for _ in range(600):\n"
        "        spray()\n"
        "        time.sleep(0.1)\n"
        "    os._exit(0)\n"
        "spray()\n"
        "answer = None")))
    _submit(submissions / "e_honest", honest_partial())
    _submit(submissions / "f_printer", _attack(built, "while True:\n    print('x' * 1000)"))
    _submit(submissions / "g_honest", honest_partial())
    _submit(submissions / "h_memory", _attack(built, "hog = bytearray(20 * 2**30)\nanswer = 1024"))
    _submit(submissions / "i_honest", honest_partial())
    out_csv = out_dir / "grades.csv"
    from aigc_lessons.classroom import grade_course

    private_tmp = tmp_path_factory.mktemp("hostile-tmp")  # the workers' folders, the only ones the attacks find
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(private_tmp))
        course = grade_course(submissions, out_csv, timeout=TIMEOUT, jobs=2)
    rows = list(csv.DictReader(open(out_csv, newline="", encoding="utf-8")))
    return {"course": course, "table": {(r["student"], r["exercise"]): r for r in rows}, "out": out_dir}


def test_attacks_do_not_change_anyone_elses_grade(hostile):
    table = hostile["table"]
    for student in ("a_honest", "c_honest", "e_honest", "g_honest", "i_honest"):
        total = table[(student, "TOTAL")]
        assert (total["score"], total["max_score"], total["status"]) == ("2", "4", "completed"), total
        assert table[(student, "tiny-ex-2")]["status"] == "partial", table[(student, "tiny-ex-2")]
    assert not hostile["course"].tampering


def test_a_tampered_grade_log_changes_nothing_even_for_the_tamperer(hostile):
    table = hostile["table"]
    assert table[("d_tamperer", "TOTAL")]["score"] == "0", table[("d_tamperer", "TOTAL")]
    assert table[("d_tamperer", "tiny-ex-3")]["status"] == "not attempted"
    assert ("d_tamperer", "bonus") not in table, "an exercise the plan does not know cannot add points"


def test_deleting_files_loops_and_endless_output_are_contained(hostile):
    table = hostile["table"]
    deleter = table[("b_deleter", "TOTAL")]  # it deleted its own grade log too: its checks could not record
    assert deleter["status"] in ("errors", "completed") and "graded a second time" in deleter["feedback"], deleter
    assert (hostile["out"] / "grades.csv").is_file(), "the grader writes its results after every run"
    printer = table[("f_printer", "TOTAL")]
    assert printer["status"] == "timed out", printer
    executed = hostile["out"] / "grades_executed" / "f_printer" / "tiny_chapter.ipynb"
    assert executed.stat().st_size < 1_000_000 and "output beyond" in executed.read_text(encoding="utf-8")


def test_memory_limit_turns_a_huge_allocation_into_an_error(hostile):
    total = hostile["table"][("h_memory", "TOTAL")]
    assert "MemoryError" in total["feedback"], total
    assert hostile["table"][("h_memory", "tiny-ex-2")]["status"] == "not attempted", "the other cells still ran"


def test_a_submission_that_changes_the_graders_files_stops_the_grading(built, tmp_path, monkeypatch):
    from aigc_lessons.classroom import grade_course
    from aigc_lessons.classroom.grading import GUARD_ENV

    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.bin").write_bytes(b"1234")
    monkeypatch.setenv(GUARD_ENV, str(data))
    submissions = tmp_path / "in"
    (submissions / "a").mkdir(parents=True)
    (submissions / "a" / "tiny_chapter.ipynb").write_bytes(FIXTURE.read_bytes())
    _submit(submissions / "b", _attack(built, f"import os\nos.remove({str(data / 'labels.bin')!r})\nanswer = 1024"))
    (submissions / "c").mkdir()
    (submissions / "c" / "tiny_chapter.ipynb").write_bytes(FIXTURE.read_bytes())
    course = grade_course(submissions, tmp_path / "grades.csv", timeout=30, jobs=1, feedback=True)
    status = {g.student: g.run.status for g in course.grades}
    assert status == {"a": "completed", "b": "tampered", "c": "not graded"}, status
    assert course.tampering and "labels.bin (deleted)" in course.tampering[0]
    assert [g.score for g in course.grades] == [4.0, 0.0, 0.0]
