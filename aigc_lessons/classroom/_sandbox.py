"""Limits and clean-up for the processes that run a submission's code.

* ``python -m aigc_lessons.classroom._sandbox --memory MB --cpu S --files MB -- CMD ...``
  sets the limits with :func:`resource.setrlimit` in the process itself and then
  replaces itself with ``CMD`` (``os.execv``): the Jupyter kernel that runs a
  notebook, and the process that runs the hidden cases, are started this way, so
  the limits hold for them and for anything they start, and for nothing else.
  ``RLIMIT_AS`` caps the address space (an allocation beyond it raises
  ``MemoryError`` instead of filling the machine's memory), ``RLIMIT_CPU`` the
  processor seconds (a safety net behind the wall-clock limit), ``RLIMIT_FSIZE``
  the size of any one file written, and ``RLIMIT_CORE`` is 0 (no core dumps).
* :func:`become_subreaper` and :func:`kill_descendants`: the worker that grades
  one submission adopts every process its kernel starts, even one that detaches
  itself (``fork`` + ``setsid``), and kills them all when the submission is done,
  so that nothing a notebook started is still running when the next one is graded.
* :func:`snapshot` / :func:`changed_files`: the grader's own files (the package,
  the hidden cases, the data folder) are compared before and after each
  submission; a submission that deletes or rewrites one stops the grading.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
MIB = 2**20


def apply_limits(memory_mb: float | None, cpu_seconds: float | None, file_mb: float | None) -> None:
    """Set this process's limits (inherited by what it starts); a limit the system refuses is skipped."""
    import resource

    wanted = [(resource.RLIMIT_CORE, 0)]
    if memory_mb:
        wanted.append((resource.RLIMIT_AS, int(memory_mb * MIB)))
    if cpu_seconds:
        wanted.append((resource.RLIMIT_CPU, int(cpu_seconds)))
    if file_mb:
        wanted.append((resource.RLIMIT_FSIZE, int(file_mb * MIB)))
    for which, value in wanted:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, hard))
        except (ValueError, OSError):  # e.g. a container that forbids it: the wall-clock limit still holds
            pass


def limited_command(command: list[str], memory_mb: float | None, cpu_seconds: float | None,
                    file_mb: float | None) -> list[str]:
    """``command`` wrapped so that it starts under the limits."""
    wrapper = [sys.executable, "-m", "aigc_lessons.classroom._sandbox"]
    for flag, value in (("--memory", memory_mb), ("--cpu", cpu_seconds), ("--files", file_mb)):
        if value:
            wrapper += [flag, f"{value:g}"]
    return wrapper + ["--", *command]


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where the system has no such option."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one), from /proc (empty where /proc has no children files)."""
    pid = os.getpid() if pid is None else pid
    seen: list[int] = []
    todo = _children(pid)
    while todo:
        child = todo.pop()
        if child in seen:
            continue
        seen.append(child)
        todo += _children(child)
    return seen


def kill_descendants(rounds: int = 5) -> int:
    """SIGKILL every descendant of this process, and reap them; returns how many were killed."""
    killed = 0
    for _ in range(rounds):
        pids = descendants()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.02)
            except ChildProcessError:
                break
    return killed


def snapshot(roots: list[Path]) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``roots`` (caches left out)."""
    state: dict[str, tuple[int, int]] = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            paths = [root]
        elif root.is_dir():
            paths = [p for p in root.rglob("*") if "__pycache__" not in p.parts and p.is_file()]
        else:
            continue
        for path in paths:
            try:
                info = path.stat()
            except OSError:
                continue
            state[str(path)] = (info.st_size, info.st_mtime_ns)
    return state


def changed_files(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files deleted or changed between two snapshots, with what happened to each (new files are ignored)."""
    changes = [f"{path} (deleted)" for path in before if path not in after]
    changes += [f"{path} (changed)" for path in before if path in after and after[path] != before[path]]
    return sorted(changes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.classroom._sandbox",
                                     description="run a command under memory, CPU-time and file-size limits")
    parser.add_argument("--memory", type=float, help="address space, MiB")
    parser.add_argument("--cpu", type=float, help="processor seconds")
    parser.add_argument("--files", type=float, help="largest file written, MiB")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    apply_limits(args.memory, args.cpu, args.files)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
