"""Classroom tools: student versions of the notebooks, and a grader for submissions.

Two functions, behind the command-line tool's ``student`` and ``grade`` commands:

* :func:`build_student_versions` turns the book's notebooks into hand-outs:
  reference solutions replaced by placeholders (a function returns ``None``, so
  its check reports *not attempted* and the notebook still runs top to bottom),
  solution dropdowns removed, an instructions cell added, outputs cleared; plus
  one zip per chapter.
* :func:`grade_submissions` (and :func:`grade_course`, which also returns what
  went wrong) grades each submitted notebook in a worker process, kernel and
  temporary folder of its own, under time, memory and CPU limits
  (:mod:`._sandbox`); finds each exercise's cells however the student
  rearranged them (:mod:`._matching`); scores the self-checks from their
  output; runs the grader-only hidden cases (:mod:`.hidden`) in a separate
  process after the kernel; and writes one CSV row per submission and exercise,
  with the checks' feedback, plus feedback pages, a class summary, Gradescope
  and Canvas files and PDFs (:mod:`.reports`). A notebook that loops forever,
  raises, kills its kernel, floods its output, deletes files or writes to the
  grade logs is stopped and reported, never the grader, and changes nobody
  else's grade.

:func:`convention_problems` lists what a page does wrong against the
exercise convention, and ``python -m aigc_lessons.classroom.timing`` times the
notebooks on the machine at hand (the teacher's guide has the commands).

The exercise convention they rely on is the book's (CONTRIBUTING.md): coding
solutions between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` in a cell tagged
``solution``, followed by a cell tagged ``check`` that calls a function from
:mod:`aigc_lessons.checks`.

Example (a teacher's term, from the repository root)::

    >>> from pathlib import Path
    >>> from aigc_lessons.classroom import build_student_versions, grade_submissions
    >>> build_student_versions(None, Path("_build/student"))  # doctest: +SKIP
    >>> grade_submissions(Path("submissions"), Path("grades.csv"), timeout=300)  # doctest: +SKIP
"""

from ._convention import convention_problems, exercise_labels
from .grading import CourseGrades, NotebookGrade, grade_course, grade_notebook, grade_submissions
from .hidden import hidden_case
from .student import build_student_version, build_student_versions, toc_notebooks, toc_pages

__all__ = [
    "CourseGrades",
    "NotebookGrade",
    "build_student_version",
    "build_student_versions",
    "convention_problems",
    "exercise_labels",
    "hidden_case",
    "grade_course",
    "grade_notebook",
    "grade_submissions",
    "toc_notebooks",
    "toc_pages",
]
