"""The book's exercise convention, read out of a notebook (shared by the student build and the grader).

* MyST directives in markdown cells: ``{exercise}`` (with ``:label:``),
  ``{solution} <label>``, and the gated pair ``{solution-start} <label>`` /
  ``{solution-end}`` around the cells of a coding solution;
* code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (in a cell tagged
  ``solution``), which :func:`strip_solution_code` replaces with a placeholder;
* a code cell tagged ``check`` after each coding exercise.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

FENCE_OPEN = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[A-Za-z][\w-]*)\}[ \t]*(?P<argument>.*?)\s*$")
CODE_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})(?!\s*\{)")
OPTION_LINE = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*?)\s*$")
BEGIN_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)#+\s*BEGIN SOLUTION\b")
END_SOLUTION = re.compile(r"^[ \t]*#+\s*END SOLUTION\b")
SOLUTION_DIRECTIVES = {"solution", "solution-start", "solution-end"}
METADATA_KEY = "aigc_lessons"


@dataclass
class Directive:
    """One fenced MyST directive found in a markdown cell."""

    name: str
    argument: str
    options: dict[str, str]
    body: str
    raw: str


@dataclass
class Exercise:
    """An exercise of a notebook: ``checked`` (a check cell scores it) or ``written``."""

    label: str
    title: str = ""
    kind: str = "written"
    check_source: str | None = None
    check_cell: int | None = field(default=None, compare=False)
    # in a student version: the ids of the exercise's cells ("answers", "check") and the
    # names its code defines ("names"), which the grader uses to find them again
    cells: dict | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        info = {"label": self.label, "title": self.title, "kind": self.kind, "check_source": self.check_source}
        if self.cells:
            info["cells"] = self.cells
        return info


def split_directives(text: str) -> list[str | Directive]:
    """Split markdown into plain text and top-level fenced directives, in order.

    Joining the text parts and the directives' ``raw`` text with newlines gives
    back ``text``. Code blocks (```` ```python ````, ```` ````md ````) are plain
    text: a directive shown as an example inside one is not a directive.

    Example:
        >>> parts = split_directives("Intro\\n```{solution} ex-1\\n:class: dropdown\\nAnswer.\\n```\\nAfter")
        >>> [p if isinstance(p, str) else (p.name, p.argument, p.options, p.body) for p in parts]
        ['Intro', ('solution', 'ex-1', {'class': 'dropdown'}, 'Answer.'), 'After']
    """
    lines = text.split("\n")
    parts: list[str | Directive] = []
    plain: list[str] = []
    index = 0
    while index < len(lines):
        match = FENCE_OPEN.match(lines[index])
        code = CODE_FENCE.match(lines[index]) if not match else None
        if code:  # a code block (```python, ````md): its text is shown, never a directive
            fence = code["fence"]
            close = next((k for k in range(index + 1, len(lines))
                          if lines[k].strip() and set(lines[k].strip()) == {fence[0]}
                          and len(lines[k].strip()) >= len(fence)), len(lines) - 1)
            plain.extend(lines[index:close + 1])
            index = close + 1
            continue
        if not match:
            plain.append(lines[index])
            index += 1
            continue
        fence = match["fence"]
        close = index + 1
        while close < len(lines):
            stripped = lines[close].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            close += 1
        options, body = _options(lines[index + 1:close])
        if plain:
            parts.append("\n".join(plain))
            plain = []
        parts.append(Directive(match["name"], match["argument"], options, "\n".join(body).strip("\n"),
                               "\n".join(lines[index:close + 1])))
        index = close + 1
    if plain:
        parts.append("\n".join(plain))
    return parts


def _options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's options (``:key: value`` lines or a ``---`` block) and the rest of its body."""
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":
        for end in range(1, len(lines)):
            if lines[end].strip() == "---":
                for line in lines[1:end]:
                    key, _, value = line.partition(":")
                    options[key.strip()] = value.strip()
                return options, lines[end + 1:]
    count = 0
    for line in lines:
        match = OPTION_LINE.match(line)
        if not match:
            break
        options[match["key"]] = match["value"]
        count += 1
    return options, lines[count:]


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def scan_exercises(notebook) -> list[Exercise]:
    """The exercises of a notebook in order, with the index of each one's check cell.

    A check cell belongs to the exercise named in its metadata (student
    versions record it), else to the label of the gated solution just before
    it, else to the last exercise seen.
    """
    exercises: dict[str, Exercise] = {}
    last_label: str | None = None
    last_solution: str | None = None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            for part in split_directives(cell.source):
                if isinstance(part, str):
                    continue
                if part.name in ("exercise", "exercise-start"):
                    last_label = part.options.get("label") or f"exercise-{len(exercises) + 1}"
                    exercises.setdefault(last_label, Exercise(last_label, part.argument))
                    last_solution = None
                elif part.name == "solution-start":
                    last_solution = part.argument.strip() or last_label
        elif cell.cell_type == "code" and "check" in cell_tags(cell):
            recorded = cell.get("metadata", {}).get(METADATA_KEY, {}).get("exercise")
            label = recorded or last_solution or last_label or f"exercise-{len(exercises) + 1}"
            exercise = exercises.setdefault(label, Exercise(label))
            exercise.kind = "checked"
            exercise.check_source = cell.source
            exercise.check_cell = index
    return list(exercises.values())


def has_solution_markers(source: str) -> bool:
    return any(BEGIN_SOLUTION.match(line) for line in source.split("\n"))


def parse_python(source: str) -> ast.Module | None:
    """Parse a code cell (IPython magics allowed); None when it is not valid Python."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # not Python, or IPython missing: the caller decides what that means
        return None


def strip_solution_code(source: str, label: str, whole_cell: bool = False) -> str:
    """Replace every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region with a placeholder.

    Inside a function the placeholder is ``return None`` (the check then reports
    "not attempted"); at module level it assigns ``None`` to each name the
    solution defined (functions get a stub that returns ``None``), so that the
    notebook still runs from top to bottom. Without markers, ``whole_cell``
    treats the whole cell as the solution.

    Example:
        >>> print(strip_solution_code("def f(x):\\n    # BEGIN SOLUTION\\n    return 2 * x\\n    # END SOLUTION", "ex-2"))
        def f(x):
            # YOUR CODE HERE (exercise ex-2): replace the placeholder line below with your solution.
            return None  # placeholder: the check reports "not attempted" until you replace it
    """
    lines = source.split("\n")
    if not has_solution_markers(source):
        return "\n".join(_placeholder(lines, "", label, in_function=False)) if whole_cell else source
    tree = parse_python(source)
    result: list[str] = []
    index = 0
    while index < len(lines):
        match = BEGIN_SOLUTION.match(lines[index])
        if not match:
            if END_SOLUTION.match(lines[index]):
                raise ValueError(f"'# END SOLUTION' on line {index + 1} without a '# BEGIN SOLUTION' before it")
            result.append(lines[index])
            index += 1
            continue
        end = next((k for k in range(index + 1, len(lines)) if END_SOLUTION.match(lines[k])), None)
        if end is None:
            raise ValueError(f"'# BEGIN SOLUTION' on line {index + 1} has no '# END SOLUTION' after it")
        indent = match["indent"]
        in_function = _inside_function(tree, index + 1) if tree is not None else bool(indent)
        result.extend(_placeholder(lines[index + 1:end], indent, label, in_function))
        index = end + 1
    return "\n".join(result)


def _inside_function(tree: ast.Module, line: int) -> bool:
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and node.lineno < line <= (node.end_lineno or node.lineno)
               for node in ast.walk(tree))


def _placeholder(region: list[str], indent: str, label: str, in_function: bool) -> list[str]:
    note = f"{indent}# YOUR CODE HERE (exercise {label}): replace the placeholder line"
    if in_function:
        return [note + " below with your solution.",
                f'{indent}return None  # placeholder: the check reports "not attempted" until you replace it']
    stubs = _module_stubs(textwrap.dedent("\n".join(region)))
    return [note + ("s" if len(stubs) > 1 else "") + " below with your solution."] + [indent + s for s in stubs]


def _module_stubs(code: str) -> list[str]:
    """Lines that define, as placeholders, every name a module-level solution defines."""
    tree = parse_python(code)
    stubs: list[str] = []
    for node in tree.body if tree is not None else []:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            stubs.append(ast.unparse(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            stubs.append(f"{keyword} {node.name}({ast.unparse(node.args)}):")
            stubs.append('    return None  # placeholder: the check reports "not attempted" until you replace it')
        elif isinstance(node, ast.ClassDef):
            stubs.append(f"{node.name} = None  # placeholder: define the class {node.name}")
        else:
            stubs.extend(f"{name} = None  # placeholder" for name in _assigned_names(node))
    unique = list(dict.fromkeys(stubs))
    return unique or ["pass  # placeholder"]


def _assigned_names(node: ast.AST) -> list[str]:
    """Names a statement binds at its own level (not inside nested functions, classes or comprehensions)."""
    names: list[str] = []

    def visit(item: ast.AST) -> None:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(item.name)
            return
        if isinstance(item, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            names.append(item.id)
        for child in ast.iter_child_nodes(item):
            visit(child)

    visit(node)
    return names


# --------------------------------------------------------------------------- checking a page


def convention_problems(path, min_exercises: int = 0) -> list[str]:
    """Every way the page ``path`` (a notebook or a MyST Markdown file) breaks the exercise convention.

    An empty list means: each ``{exercise}`` has a unique label and a solution;
    each solution names an exercise of the page and is a collapsed dropdown
    (``:class: dropdown``), so the rendered book hides it; each
    ``{solution-start}`` is closed; solution code (``# BEGIN SOLUTION`` ...
    ``# END SOLUTION``, balanced) sits in a cell tagged ``solution`` inside a
    gated solution, and the code cell after such a gate is tagged ``check``;
    and the page has at least ``min_exercises`` exercises.

    Example:
        >>> import pathlib, tempfile
        >>> page = pathlib.Path(tempfile.mkdtemp()) / "page.md"
        >>> _ = page.write_text("```{exercise} Why?\\n:label: demo-ex-1\\nWhy?\\n```\\n")
        >>> convention_problems(page)
        ['page.md: exercise demo-ex-1 has no {solution} or {solution-start}']
    """
    from pathlib import Path

    path = Path(path)
    name = path.name
    if path.suffix == ".ipynb":
        import nbformat

        cells = [(cell.cell_type, cell.source, cell_tags(cell)) for cell in nbformat.read(path, as_version=4).cells]
    else:
        cells = [("markdown", path.read_text(encoding="utf-8"), [])]
    problems: list[str] = []
    labels: list[str] = []
    solved: set[str] = set()
    named_by_solutions: list[str] = []
    gate: str | None = None  # label of the open {solution-start}
    gate_has_code = False
    awaiting_check: str | None = None  # label of the gated coding solution just closed
    for index, (kind, source, tags) in enumerate(cells):
        where = f"{name}, cell {index}" if path.suffix == ".ipynb" else name
        if kind == "markdown":
            for part in split_directives(source):
                if isinstance(part, str):
                    continue
                if part.name in ("exercise", "exercise-start"):
                    label = part.options.get("label")
                    if not label:
                        problems.append(f"{where}: exercise '{part.argument}' has no :label:")
                    elif label in labels:
                        problems.append(f"{where}: the label {label} is used by two exercises")
                    else:
                        labels.append(label)
                elif part.name in ("solution", "solution-start"):
                    label = part.argument.strip()
                    if not label:
                        problems.append(f"{where}: a {{{part.name}}} names no exercise label")
                    solved.add(label)
                    named_by_solutions.append(label)
                    if part.options.get("class", "").split().count("dropdown") == 0:
                        problems.append(f"{where}: the {{{part.name}}} of {label} is not hidden: "
                                        "add ':class: dropdown'")
                    if part.name == "solution-start":
                        if gate is not None:
                            problems.append(f"{where}: {{solution-start}} {label} opens inside "
                                            f"{{solution-start}} {gate}")
                        gate, gate_has_code = label, False
                elif part.name == "solution-end":
                    if gate is None:
                        problems.append(f"{where}: {{solution-end}} without a {{solution-start}} before it")
                    elif gate_has_code:
                        awaiting_check = gate
                    gate = None
        elif kind == "code":
            markers = has_solution_markers(source)
            if markers:
                try:
                    strip_solution_code(source, "lint")
                except ValueError as error:
                    problems.append(f"{where}: {error}")
            if gate is not None:
                gate_has_code = True
                if "solution" not in tags:
                    problems.append(f"{where}: a code cell inside the solution of {gate} is not tagged 'solution'")
                continue
            if markers or "solution" in tags:
                problems.append(f"{where}: solution code outside a {{solution-start}}/{{solution-end}} "
                                "pair would show in the book")
            if awaiting_check is not None and "check" not in tags:
                problems.append(f"{where}: the code cell after the solution of {awaiting_check} "
                                "is not tagged 'check'")
            awaiting_check = None
    if gate is not None:
        problems.append(f"{name}: {{solution-start}} {gate} has no {{solution-end}}")
    if awaiting_check is not None:
        problems.append(f"{name}: no check cell after the solution of {awaiting_check}")
    problems += [f"{name}: exercise {label} has no {{solution}} or {{solution-start}}"
                 for label in labels if label not in solved]
    problems += [f"{name}: a solution names {label}, which is no exercise of this page"
                 for label in dict.fromkeys(named_by_solutions) if label and label not in labels]
    if len(labels) < min_exercises:
        problems.append(f"{name}: {len(labels)} exercise(s), the convention asks for at least {min_exercises}")
    return problems


def exercise_labels(path) -> list[str]:
    """The labels of the ``{exercise}`` directives of a notebook or MyST Markdown page, in order."""
    from pathlib import Path

    path = Path(path)
    if path.suffix == ".ipynb":
        import nbformat

        sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    else:
        sources = [path.read_text(encoding="utf-8")]
    return [part.options["label"] for source in sources for part in split_directives(source)
            if not isinstance(part, str) and part.name in ("exercise", "exercise-start") and part.options.get("label")]
