"""Find each exercise's cells in a submission, however the student rearranged them.

A submitted notebook is rarely the hand-out as it was shipped: students insert
cells, delete some, split a long cell in two, merge two, move a cell, or turn a
code cell into Markdown and back (which in some editors drops the cell's id and
metadata). The grader finds the cells of each exercise by several signals, the
strongest first:

1. the **cell id** the student version gave the cell (recorded in the notebook's
   metadata, ``student_version.exercises[].cells``);
2. the cell's **metadata** (``aigc_lessons.exercise`` on check cells,
   ``aigc_lessons.answer`` on written answers, ``aigc_lessons.code_for`` on the
   code a student completes);
3. the **exercise label** in the text (``# YOUR CODE HERE (exercise x)``,
   ``**Your answer** (exercise `x`)``), and for code, the **names** the exercise
   defines (``def my_kl``) and the check's own source (a check merged into
   another cell).

Then :func:`prepare_for_grading` repairs what would make an honest submission
lose points: a check cell that was edited is restored, a deleted one is added
back, a retyped one is made a code cell again, a check that now runs before the
code it tests is moved below it (and below the cells that code calls), and an
answer the student wrote as Markdown where code belongs (or the other way round)
is given the type it needs. Each repair is noted in the exercise's feedback.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field

from ._convention import METADATA_KEY, Exercise, parse_python

FENCED_CODE = re.compile(r"^\s*```[\w+-]*\s*\n(?P<code>.*?)\n\s*```\s*$", re.DOTALL)


@dataclass
class ExerciseCells:
    """Where one exercise lives in a prepared submission (indices into its cells)."""

    label: str
    kind: str
    check: int | None = None
    answers: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _meta(cell) -> dict:
    value = cell.get("metadata", {}).get(METADATA_KEY, {})
    return value if isinstance(value, dict) else {}


def _squash(text: str) -> str:
    return " ".join(text.split())


def _tree(source: str) -> ast.Module | None:
    return parse_python(source) if source.strip() else None


def top_level_definitions(source: str) -> set[str]:
    """Names a cell binds at its top level: functions, classes, assignments, imports."""
    tree = _tree(source)
    names: set[str] = set()
    for node in tree.body if tree is not None else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def defined_functions(source: str) -> set[str]:
    tree = _tree(source)
    return {node.name for node in (tree.body if tree is not None else [])
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def used_names(source: str) -> set[str]:
    tree = _tree(source)
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} if tree is not None else set()


def answer_names(sources: list[str]) -> list[str]:
    """What a coding exercise's answer defines (the names its check needs), in order."""
    names: list[str] = []
    for source in sources:
        tree = _tree(source)
        for node in tree.body if tree is not None else []:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def _markdown_as_code(source: str) -> str:
    """The code of a cell that was turned into Markdown (a ```python fence around it removed)."""
    match = FENCED_CODE.match(source)
    return match["code"] if match else source


def _retype(cell, cell_type: str, nbformat) -> object:
    """The same cell (id, metadata, text) as another type."""
    if cell_type == "code":
        new = nbformat.v4.new_code_cell(_markdown_as_code(cell.source))
    else:
        new = nbformat.v4.new_markdown_cell(cell.source)
    new.metadata = copy.deepcopy(cell.get("metadata", {}))
    if cell.get("id"):
        new["id"] = cell["id"]
    return new


def _plan_cells(exercise: Exercise) -> dict:
    return exercise.cells or {}


def prepare_for_grading(notebook, exercises: list[Exercise], nbformat) -> dict[str, ExerciseCells]:
    """Repair ``notebook`` in place for grading; return where each exercise's cells are.

    ``exercises`` is the plan recorded in the student version (or found in the
    submission itself when it has no plan: then nothing is restored).
    """
    found: dict[str, ExerciseCells] = {}
    cells = notebook.cells

    # written answers first: a retyped answer cell must not be taken for code
    for exercise in exercises:
        if exercise.kind == "checked":
            continue
        entry = found.setdefault(exercise.label, ExerciseCells(exercise.label, exercise.kind))
        header = f"(exercise `{exercise.label}`)"
        planned = set(_plan_cells(exercise).get("answers", []))
        for index, cell in enumerate(cells):
            if (cell.get("id") in planned or _meta(cell).get("answer") == exercise.label
                    or ("Your answer" in cell.source and header in cell.source)):
                if cell.cell_type == "code":
                    cells[index] = _retype(cell, "markdown", nbformat)
                    entry.notes.append("your answer was in a code cell; the grader read it as text")
                entry.answers.append(index)

    written = {index for entry in found.values() for index in entry.answers}
    for exercise in exercises:
        if exercise.kind != "checked":
            continue
        entry = found.setdefault(exercise.label, ExerciseCells(exercise.label, exercise.kind))
        plan = _plan_cells(exercise)
        names = plan.get("names") or []
        marker = f"(exercise {exercise.label})"
        # the code the student completes
        for index, cell in enumerate(cells):
            if index in written:
                continue
            strong = cell.get("id") in set(plan.get("answers", [])) or _meta(cell).get("code_for") == exercise.label
            if cell.cell_type != "code":
                if strong and _tree(_markdown_as_code(cell.source)) is not None:
                    cells[index] = _retype(cell, "code", nbformat)
                    entry.notes.append("your code cell had been turned into Markdown; the grader ran it as code")
                    entry.answers.append(index)
                continue
            if strong or marker in cell.source or (names and defined_functions(cell.source) & set(names)):
                entry.answers.append(index)
        # the check cell
        check_source = (exercise.check_source or "").strip()
        candidates = [k for k, c in enumerate(cells) if c.get("id") and c.get("id") == plan.get("check")]
        candidates += [k for k, c in enumerate(cells) if _meta(c).get("exercise") == exercise.label]
        if check_source:
            candidates += [k for k, c in enumerate(cells) if c.cell_type == "code" and k not in entry.answers
                           and _squash(check_source) in _squash(c.source)]
            candidates += [k for k, c in enumerate(cells) if c.cell_type == "code"
                           and _squash(check_source) in _squash(c.source)]
        check_index = candidates[0] if candidates else None
        if check_index is not None:
            cell = cells[check_index]
            if cell.cell_type != "code":
                cells[check_index] = cell = _retype(cell, "code", nbformat)
                entry.notes.append("the check cell had been turned into Markdown; the grader ran it as code")
            if check_source and _squash(cell.source) != _squash(check_source):
                if _squash(check_source) in _squash(cell.source) and _tree(cell.source) is not None:
                    entry.notes.append("the check was merged with other code; the grader ran that cell")
                else:
                    cell.source = exercise.check_source
                    entry.notes.append("your check cell was edited; the grader ran the original")
            cell.metadata.setdefault("tags", [])
            if "check" not in cell.metadata["tags"]:
                cell.metadata["tags"].append("check")
            cell.metadata[METADATA_KEY] = {**_meta(cell), "exercise": exercise.label}
            if check_index in entry.answers and not _squash(cell.source).startswith(_squash(check_source)):
                pass  # a merged cell: it is both the answer and the check
            elif check_index in entry.answers:
                entry.answers.remove(check_index)
        elif check_source:
            cell = nbformat.v4.new_code_cell(exercise.check_source)
            cell.metadata["tags"] = ["check"]
            cell.metadata[METADATA_KEY] = {"exercise": exercise.label}
            cells.append(cell)
            check_index = len(cells) - 1
            entry.notes.append("the check cell was missing; the grader added it back")
        entry.check = check_index

    _move_checks_below_their_code(notebook, found)
    return found


def _move_checks_below_their_code(notebook, found: dict[str, ExerciseCells]) -> None:
    """Move each check that would run before a name it needs is first defined.

    The names: what the exercise's code cells define, and the functions and
    classes that code calls (followed through the cells that define them). A
    later redefinition (a student's scratch cell) does not move the check.
    """
    cells = notebook.cells
    for entry in found.values():
        if entry.kind != "checked" or entry.check is None or not entry.answers:
            continue
        first_function: dict[str, int] = {}
        first_any: dict[str, int] = {}
        for index, cell in enumerate(cells):
            if cell.cell_type != "code" or index == entry.check:
                continue
            for name in defined_functions(cell.source):
                first_function.setdefault(name, index)
            for name in top_level_definitions(cell.source):
                first_any.setdefault(name, index)
        answers = [k for k in entry.answers if k != entry.check]
        needed = {name: first_any[name] for k in answers for name in top_level_definitions(cells[k].source)
                  if name in first_any}
        todo = list(answers)
        seen = set(todo)
        while todo:
            for name in used_names(cells[todo.pop()].source):
                index = first_function.get(name)
                if index is not None and name not in needed:
                    needed[name] = index
                    if index not in seen:
                        seen.add(index)
                        todo.append(index)
        if not needed or entry.check > max(needed.values()):
            continue
        target = max(needed.values())
        check_cell = cells[entry.check]
        identities = {label: ([id(cells[k]) for k in e.answers], id(cells[e.check]) if e.check is not None else None)
                      for label, e in found.items()}
        original = entry.check
        del cells[original]
        cells.insert(target, check_cell)  # the cell at ``target`` moved up by one: this is just below it
        imports = _imports_of(check_cell.source)
        if imports:  # later cells may use what the check cell imported: keep that where it was
            kept = _nbformat().v4.new_code_cell(imports)
            kept.metadata[METADATA_KEY] = {"grader": "the imports of a check cell the grader moved"}
            cells.insert(original, kept)
        entry.notes.append("the check ran before the code it tests; the grader ran it after that code")
        positions = {id(c): k for k, c in enumerate(cells)}
        for label, (answer_ids, check_identity) in identities.items():
            other = found[label]
            other.answers = [positions[a] for a in answer_ids]
            other.check = positions[check_identity] if check_identity is not None else None


def _imports_of(source: str) -> str:
    tree = _tree(source)
    return "\n".join(ast.unparse(node) for node in (tree.body if tree is not None else [])
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def _nbformat():
    import nbformat

    return nbformat


def learner_code(notebook, entry: ExerciseCells) -> list[str]:
    """The code the hidden cases of an exercise run: the learner's definitions, without the chapter's work.

    From every code cell before the exercise's check: the imports, the function
    and class definitions, assignments of plain constants, and the
    ``setup(...)`` call; then the exercise's own code cells in full. Each
    statement is one string (the grader runs them one by one, so one that fails
    costs only what depends on it).
    """
    stop = entry.check if entry.check is not None else len(notebook.cells)
    if entry.check is not None and entry.check in entry.answers:
        stop += 1  # a check merged into the exercise's code: that cell's definitions count, its check call not
    statements: list[ast.AST] = []
    own: list[bool] = []
    for index, cell in enumerate(notebook.cells[:stop]):
        if cell.cell_type != "code":
            continue
        tree = _tree(cell.source)
        if tree is None:
            continue
        for node in tree.body:
            if index == entry.check:
                keep = not isinstance(node, ast.Expr)
            elif index in entry.answers:
                keep = not (isinstance(node, ast.Expr) and "get_ipython" in ast.unparse(node))
            else:
                keep = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                                         ast.ClassDef)) or _constant_or_setup(node)
            if keep:
                statements.append(node)
                own.append(index in entry.answers or index == entry.check)
    # the chapter's imports and set-up lines that nothing kept uses are left out (importing matplotlib
    # costs a second); the exercise's own cells are kept whole
    optional = [not mine and (isinstance(n, (ast.Import, ast.ImportFrom))
                              or (isinstance(n, (ast.Assign, ast.AnnAssign)) and isinstance(n.value, ast.Call)))
                for n, mine in zip(statements, own)]
    needed = set()
    for node, is_optional in zip(statements, optional):
        if not is_optional:
            needed |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    kept = []
    for node, is_optional in zip(statements, optional):
        bound = top_level_definitions(ast.unparse(node)) if is_optional else set()
        if not is_optional or bound & needed or not bound:
            kept.append(ast.unparse(node))
    return kept


def _constant_or_setup(node: ast.AST) -> bool:
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    try:
        ast.literal_eval(node.value)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError):
        pass
    if isinstance(node.value, ast.Call):
        name = ast.unparse(node.value.func)
        return name == "setup" or name.endswith(".setup")
    return False
