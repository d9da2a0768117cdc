"""Student versions of the book's notebooks: solutions out, placeholders and instructions in.

What changes, cell by cell (see CONTRIBUTING.md for the convention):

* ``{exercise}`` directives become plain Markdown (Jupyter does not render
  MyST directives), titled with the exercise's label;
* each ``{solution}`` dropdown is removed and replaced by a **Your answer**
  cell; everything between ``{solution-start}`` and ``{solution-end}`` goes;
* the code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes a
  placeholder that returns ``None`` (so the check says "not attempted" and
  the notebook still runs from top to bottom);
* check cells stay, marked in their metadata with their exercise's label;
* every output is cleared, and an instructions cell follows the title.

A MyST Markdown chapter (no code) becomes an *exercise sheet*: a notebook of
its title and its ``## Exercises`` section, treated the same way.

Example:
    >>> from pathlib import Path
    >>> nb = build_student_version(Path("book/gan/first_gan.ipynb"))  # doctest: +SKIP
    >>> [e["label"] for e in nb.metadata["aigc_lessons"]["student_version"]["exercises"]]  # doctest: +SKIP
    ['first-gan-ex-1', 'first-gan-ex-2', 'first-gan-ex-3', 'first-gan-ex-4']
"""

from __future__ import annotations

import copy
import re
import shutil
import warnings
import zipfile
from pathlib import Path

from ._convention import (
    METADATA_KEY,
    SOLUTION_DIRECTIVES,
    BEGIN_SOLUTION,
    Directive,
    Exercise,
    cell_tags,
    has_solution_markers,
    parse_python,
    scan_exercises,
    split_directives,
    strip_solution_code,
)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
ANSWER_PLACEHOLDER = "*Double-click this cell and replace this line with your answer.*"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed, so that rebuilding gives byte-identical zips
_IMAGE_PATTERNS = [
    re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)"),
    re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE),
]


def _nbformat():
    try:
        import nbformat
    except ImportError as error:  # pragma: no cover - nbformat comes with the book extra
        raise ImportError("the classroom tools need nbformat: pip install -e '.[book]'") from error
    return nbformat


# --------------------------------------------------------------------------- which notebooks


def find_book_root(start: Path | None = None) -> Path:
    """The folder holding ``_toc.yml``: ``start`` (default: the current folder), else the repository."""
    candidates = [start] if start is not None else [Path.cwd(), PACKAGE_ROOT]
    for candidate in candidates:
        if candidate is not None and (candidate / "_toc.yml").is_file():
            return candidate.resolve()
    searched = ", ".join(str(c) for c in candidates if c is not None)
    raise FileNotFoundError(f"no _toc.yml in {searched}: run from the book's repository, "
                            "or name the notebooks to convert")


def toc_notebooks(root: Path | None = None) -> list[Path]:
    """The notebooks listed in the book's ``_toc.yml``, in reading order.

    Example:
        >>> [p.name for p in toc_notebooks()][:1]  # doctest: +SKIP
        ['first_gan.ipynb']
    """
    import yaml

    root = find_book_root(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries: list[str] = [toc["root"]] if toc.get("root") else []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(str(node["file"]))
            for key, value in node.items():
                if key != "root":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    found = [root / f"{entry}.ipynb" for entry in entries]
    return [path for path in found if path.is_file()]


def toc_pages(root: Path | None = None) -> list[Path]:
    """What the student build converts by default: the ``_toc.yml`` notebooks, and its Markdown pages with exercises.

    Example:
        >>> [p.name for p in toc_pages()][:2]  # doctest: +SKIP
        ['what_is_aigc.md', 'math_foundations.ipynb']
    """
    import yaml

    root = find_book_root(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    pages = []
    for entry in entries:
        notebook, text = root / f"{entry}.ipynb", root / f"{entry}.md"
        if notebook.is_file():
            pages.append(notebook)
        elif text.is_file() and scan_exercises(_read_source(text)):
            pages.append(text)
    return pages


# --------------------------------------------------------------------------- one notebook


def _read_source(source: Path):
    """A notebook, or a MyST Markdown page as an *exercise sheet*: a notebook of its title and its exercises.

    The sheet holds the page's ``# `` title, a line pointing to the chapter in
    the book, and the page's ``## Exercises`` section (the whole page when it
    has no such section), with MyST labels and comments removed. Lines inside
    code blocks and directives are never taken for headings or comments.
    """
    nbformat = _nbformat()
    if source.suffix != ".md":
        return nbformat.read(source, as_version=4)
    text = source.read_text(encoding="utf-8")
    if text.startswith("---\n"):  # YAML front matter
        end = text.find("\n---", 4)
        text = text[end + 4:] if end != -1 else text
    lines: list[tuple[str, bool]] = []  # (line, outside any fence)
    fence = ""
    for line in text.split("\n"):
        opening = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if not fence and opening:
            fence = opening.group(1)
            lines.append((line, False))
        elif fence and line.strip() and set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            fence = ""
            lines.append((line, False))
        elif fence or not re.match(r"^\(\S+\)=\s*$|^%", line):
            lines.append((line, not fence))
    title = next((line[2:].strip() for line, outside in lines if outside and line.startswith("# ")), source.stem)
    start = next((i for i, (line, outside) in enumerate(lines)
                  if outside and re.match(r"^##\s+Exercises\s*$", line)), None)
    if start is None:
        body = [line for line, outside in lines if not (outside and line.startswith("# "))]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i][1] and re.match(r"^##?\s", lines[i][0])),
                   len(lines))
        body = [line for line, _ in lines[start:end]]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\nThe exercises of the chapter *{title}*: read it in the book "
                                      "first. This page has no code to run."),
        nbformat.v4.new_markdown_cell("\n".join(body).strip("\n")),
    ]
    return notebook


def build_student_version(source: Path, source_name: str | None = None):
    """Read the notebook ``source`` and return its student version (an ``nbformat`` notebook).

    A MyST Markdown page (``.md``) becomes an exercise sheet: its title and its
    exercises, with a **Your answer** cell under each (see :func:`_read_source`).

    Raises ``ValueError`` when the source breaks the exercise convention in a
    way that could leak a solution (an unclosed ``{solution-start}``, unpaired
    solution markers).
    """
    nbformat = _nbformat()
    source = Path(source)
    notebook = _read_source(source)
    exercises = scan_exercises(notebook)
    check_labels = {e.check_cell: e.label for e in exercises if e.check_cell is not None}
    by_label = {e.label: e for e in exercises}

    cells: list = []
    current_label: str | None = None  # the last exercise seen
    gated: str | None = None  # the label of the open {solution-start}, if any
    for index, cell in enumerate(notebook.cells):
        where = f"{source}, cell {index}"
        tags = cell_tags(cell)
        if cell.cell_type == "markdown":
            if "solution" in tags:
                continue
            pieces, current_label, gated = _student_markdown(cell, current_label, gated, by_label)
            cells.extend(pieces)
            continue
        if cell.cell_type != "code":
            if gated is None and "solution" not in tags:
                cells.append(cell)
            continue
        cell = copy.deepcopy(cell)
        if gated is not None or "solution" in tags or has_solution_markers(cell.source):
            label = gated or current_label or "exercise"
            try:
                cell.source = strip_solution_code(cell.source, label, whole_cell=True)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            cell.metadata["tags"] = [("answer" if tag == "solution" else tag) for tag in tags]
            cell.metadata[METADATA_KEY] = {"code_for": label}  # the grader finds the cell by it
            if parse_python(cell.source) is None and parse_python(notebook.cells[index].source) is not None:
                raise ValueError(f"{where}: the placeholder is not valid Python:\n{cell.source}")
            tags = cell.metadata["tags"]
        if "check" in tags and index in check_labels:
            cell.metadata[METADATA_KEY] = {"exercise": check_labels[index]}
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        cells.append(cell)
    if gated is not None:
        raise ValueError(f"{source}: {{solution-start}} {gated} has no {{solution-end}}; "
                         "every cell after it would be removed")

    student = nbformat.v4.new_notebook()
    student.metadata = copy.deepcopy(notebook.metadata)
    for key in ("widgets", "execution", METADATA_KEY):
        student.metadata.pop(key, None)
    title = _title(notebook)
    name = source_name or source.name
    insert_at = 1 if cells and cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# ") else 0
    has_code = any(cell.cell_type == "code" for cell in cells)
    cells.insert(insert_at, _markdown_cell(_instructions(title, name, exercises, has_code), "student-instructions"))
    student.cells = cells
    _ensure_ids(student)
    _record_cells(student, exercises)
    student.metadata[METADATA_KEY] = {"student_version": {
        "source": name, "title": title, "exercises": [e.to_dict() for e in exercises]}}
    _assert_no_solutions(student, source)
    nbformat.validate(student)
    return student


def _record_cells(student, exercises: list[Exercise]) -> None:
    """Note in each exercise the ids of its cells and the names its code defines (see ``_matching``)."""
    from ._matching import answer_names

    for exercise in exercises:
        answers = [c for c in student.cells
                   if c.get("metadata", {}).get(METADATA_KEY, {}).get("code_for" if exercise.kind == "checked"
                                                                        else "answer") == exercise.label]
        checks = [c["id"] for c in student.cells
                  if c.get("metadata", {}).get(METADATA_KEY, {}).get("exercise") == exercise.label]
        info = {"answers": [c["id"] for c in answers], "check": checks[0] if checks else None}
        if exercise.kind == "checked":
            info["names"] = answer_names([c.source for c in answers])
        exercise.cells = info


def _student_markdown(cell, current_label, gated, by_label) -> tuple[list, str | None, str | None]:
    """One markdown cell of the source → its student cells (split where answer cells go)."""
    pieces: list = []
    kept: list[str] = []

    def flush() -> None:
        text = "\n".join(kept).strip("\n")
        kept.clear()
        if text.strip():
            piece = copy.deepcopy(cell)
            piece.source = text
            piece.metadata.pop("execution", None)
            if pieces:
                piece["id"] = None
            pieces.append(piece)

    for part in split_directives(cell.source):
        if isinstance(part, str):
            if gated is None:
                kept.append(part)
            continue
        if part.name == "solution-start":
            gated = part.argument.strip() or current_label or "exercise"
        elif part.name == "solution-end":
            gated = None
        elif gated is not None:
            continue  # anything inside a gated solution is solution content
        elif part.name == "solution":
            label = part.argument.strip() or current_label or "exercise"
            flush()
            if by_label.get(label, Exercise(label)).kind != "checked":
                pieces.append(_markdown_cell(f"**Your answer** (exercise `{label}`):\n\n{ANSWER_PLACEHOLDER}",
                                             None, {METADATA_KEY: {"answer": label}}))
        elif part.name in ("exercise", "exercise-start"):
            current_label = part.options.get("label") or current_label
            kept.append(_exercise_markdown(part, current_label))
        elif part.name == "exercise-end":
            continue
        else:
            kept.append(part.raw)
    flush()
    return pieces, current_label, gated


def _exercise_markdown(part: Directive, label: str | None) -> str:
    title = part.argument.strip()
    head = "**Exercise" + (f" `{label}`" if label else "") + (f": {title}" if title else "") + "**"
    return head + ("\n\n" + part.body if part.body.strip() else "") + "\n"


def _markdown_cell(text: str, cell_id: str | None, metadata: dict | None = None):
    cell = _nbformat().v4.new_markdown_cell(text)
    cell["id"] = cell_id
    if metadata:
        cell.metadata.update(metadata)
    return cell


def _title(notebook) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "notebook"


def _instructions(title: str, source_name: str, exercises: list[Exercise], has_code: bool = True) -> str:
    listed = []
    for exercise in exercises:
        how = ("coding, checked automatically by the check cell under it" if exercise.kind == "checked"
               else "written answer, graded by your teacher")
        listed.append(f"> - `{exercise.label}`" + (f" {exercise.title}" if exercise.title else "") + f" ({how})")
    coding = any(exercise.kind == "checked" for exercise in exercises)
    bullets = ["> - Run the notebook from top to bottom first: it works as it is, with the solutions left out."
               ] if has_code else []
    bullets += [
        "> - **Coding exercises**: replace the lines under `# YOUR CODE HERE` with your code. Keep the name"
        " and the arguments of the function you are given. Then run the **check** cell under it: it says what"
        " is still wrong (a shape, a range, a value and by how much) and shows your score."
        " *Not attempted* means the placeholder is still there.",
    ] if coding else []
    bullets.append("> - **Written exercises**: write your answer in the **Your answer** cell under the exercise.")
    if has_code:
        bullets.append(
            "> - **Before you hand in**: save, then *Kernel → Restart Kernel and Run All Cells*. Your notebook is"
            " graded the same way: from top to bottom in a fresh kernel, in fast mode (`AIGC_LESSONS_FAST=1`),"
            " with a time limit, so an endless loop or an error stops your own exercises only. Do not edit the"
            " check cells: the grader runs the original ones.")
    else:
        bullets.append("> - **Before you hand in**: save the notebook; hand in the `.ipynb` file.")
    return "\n".join([
        f"> **Student version** of *{title}* (built from `{source_name}`)."
        + (" The exercises are at the end." if has_code else ""),
        ">",
        *bullets,
        ">",
        "> Exercises in this notebook:",
        ">",
        *(listed or ["> - (none)"]),
    ])


def _ensure_ids(notebook) -> None:
    """Give every cell a unique, stable id (new cells get ids derived from their neighbours)."""
    notebook.nbformat_minor = max(notebook.nbformat_minor, 5)
    seen: set[str] = set()
    previous = "start"
    for cell in notebook.cells:
        answer = cell.get("metadata", {}).get(METADATA_KEY, {}).get("answer")
        wanted = cell.get("id") or (f"answer-{answer}" if answer else f"{previous}-next")
        wanted = re.sub(r"[^A-Za-z0-9_-]", "-", wanted)[:56] or "cell"
        unique, counter = wanted, 1
        while unique in seen:
            counter += 1
            unique = f"{wanted[:52]}-{counter}"
        cell["id"] = unique
        seen.add(unique)
        previous = unique


def _assert_no_solutions(notebook, source: Path) -> None:
    """The safety net: a student version with solution content left in is never written."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            for part in split_directives(cell.source):
                if isinstance(part, Directive) and part.name in SOLUTION_DIRECTIVES:
                    raise ValueError(f"{source}: a {{{part.name}}} directive is left in student cell {index} "
                                     "(nested inside another directive?): move it to the top level")
        elif cell.cell_type == "code" and any(BEGIN_SOLUTION.match(line) for line in cell.source.split("\n")):
            raise ValueError(f"{source}: solution markers left in student cell {index}")


# --------------------------------------------------------------------------- files and zips


def _relative_name(path: Path, root: Path | None) -> Path:
    """Where a notebook goes in the output folder: its path under ``book/``, else its name."""
    if root is not None:
        try:
            return path.relative_to(root / "book")
        except ValueError:
            pass
    return Path(path.name)


def _local_assets(source: Path, notebook) -> list[Path]:
    """Images that markdown cells show from the notebook's own folder (relative paths)."""
    found: list[Path] = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        targets = [m.group(1) for pattern in _IMAGE_PATTERNS for m in pattern.finditer(cell.source)]
        targets += [part.argument for part in split_directives(cell.source)
                    if isinstance(part, Directive) and part.name in ("figure", "image")]
        for target in targets:
            target = target.strip()
            if not target or "://" in target or target.startswith(("/", "data:", "#")):
                continue
            relative = Path(target)
            if ".." in relative.parts:
                warnings.warn(f"{source}: {target} lies outside the notebook's folder and is not copied "
                              "into the student version", stacklevel=3)
                continue
            if (source.parent / relative).is_file() and relative not in found:
                found.append(relative)
    return found


def _readme(title: str, notebook_name: str, exercises: list[dict]) -> str:
    listed = "\n".join(f"  - {e['label']}: {e['title'] or '(untitled)'} "
                       f"({'checked automatically' if e['kind'] == 'checked' else 'written answer'})"
                       for e in exercises) or "  (none)"
    return f"""AIGC Lessons: {title} (student version)

This folder holds {notebook_name}, one notebook of the AIGC Lessons book with
the exercise solutions removed. Exercises:
{listed}

1. Set up (once): install the aigc_lessons package as your teacher says
   (in a lab: pip install aigc-lessons from the lab's package index) and set
   AIGC_LESSONS_DATA to the folder that holds MNIST/ (your teacher tells you
   where it is). Check with: aigc-lessons doctor
2. Open {notebook_name} in Jupyter and run it from top to bottom.
   AIGC_LESSONS_FAST=1 makes every training cell short.
3. Coding exercises: replace the lines under "# YOUR CODE HERE" and run the
   check cell under each: it tells you what is wrong and shows your score.
   Written exercises: write in the "Your answer" cell.
4. Before you hand in: save, then Kernel > Restart Kernel and Run All Cells.
   The grader runs your notebook the same way (fresh kernel, fast mode, a
   time limit) and runs the original check cells. Hand in the .ipynb file.
"""


def _write_zip(zip_path: Path, members: dict[str, bytes]) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])


# --------------------------------------------------------------------------- the command


def build_student_versions(notebooks: list[Path] | None, out_dir: Path, zip_per_chapter: bool = True) -> list[Path]:
    """Write the student version of each notebook into ``out_dir``, plus one zip per chapter.

    ``notebooks=None`` converts every notebook listed in ``_toc.yml``, and each
    Markdown page of it that has exercises, as an exercise sheet
    (:func:`toc_pages`). A notebook under ``book/`` keeps its path below
    ``book/`` (``book/gan/first_gan.ipynb`` → ``out_dir/gan/first_gan.ipynb``;
    ``book/x/page.md`` → ``out_dir/x/page.ipynb``), any other one goes to ``out_dir`` by name;
    images its markdown shows from its own folder are copied beside it. Each
    chapter's zip (``out_dir/zips/gan-first_gan.zip``) holds a folder with the
    notebook, its images and a README with instructions. Returns the notebooks
    and zips written, in that order per chapter.

    Example:
        >>> written = build_student_versions(None, Path("_build/student"))  # doctest: +SKIP
        >>> [p.name for p in written][:2]  # doctest: +SKIP
        ['first_gan.ipynb', 'gan-first_gan.zip']
    """
    nbformat = _nbformat()
    out_dir = Path(out_dir)
    try:
        root: Path | None = find_book_root()
    except FileNotFoundError:
        if notebooks is None:
            raise
        root = None
    sources = [Path(p).resolve() for p in notebooks] if notebooks else toc_pages(root)
    if not sources:
        raise FileNotFoundError("no notebooks to convert: _toc.yml lists none")
    written: list[Path] = []
    for source in sources:
        relative = _relative_name(source, root).with_suffix(".ipynb")  # a Markdown page becomes a notebook
        source_name = (source.relative_to(root).as_posix() if root is not None and source.is_relative_to(root)
                       else source.name)
        student = build_student_version(source, source_name=source_name)
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        written.append(target)
        assets = _local_assets(source, student)
        for asset in assets:
            (target.parent / asset).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.parent / asset, target.parent / asset)
        if zip_per_chapter:
            folder = relative.stem
            info = student.metadata[METADATA_KEY]["student_version"]
            members = {
                f"{folder}/{relative.name}": target.read_bytes(),
                f"{folder}/README.txt": _readme(info["title"], relative.name, info["exercises"]).encode(),
            }
            members.update({f"{folder}/{asset.as_posix()}": (source.parent / asset).read_bytes() for asset in assets})
            zip_path = out_dir / "zips" / (relative.with_suffix("").as_posix().replace("/", "-") + ".zip")
            _write_zip(zip_path, members)
            written.append(zip_path)
    return written
