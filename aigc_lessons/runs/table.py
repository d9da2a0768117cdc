"""Finding runs and the runs table: the experiment tracking of the project chapters.

:func:`runs_table` joins the ``config.json`` and the latest evaluation of every
run in a folder; :func:`resolve_run` finds a run by path or by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .checkpoints import CONFIG_FILE, list_checkpoints, read_config
from .config import RunError

RUNS_ENV = "AIGC_LESSONS_RUNS"


def runs_root() -> Path:
    """Where run names are looked up: ``AIGC_LESSONS_RUNS`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV, "runs")).expanduser()


def resolve_run(run: str | os.PathLike) -> Path:
    """A run folder from a path or a name under :func:`runs_root`; clear error if it is not a run.

    Example:
        >>> resolve_run("no/such/run")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        RunError: no run folder 'no/such/run' ...
    """
    candidates = [Path(run).expanduser()]
    if not Path(run).is_absolute():
        candidates.append(runs_root() / run)
    for path in candidates:
        if (path / CONFIG_FILE).is_file():
            return path
    existing = [p for p in candidates if p.is_dir()]
    if existing:
        raise RunError(f"{existing[0]} is a folder but not a run folder (it has no {CONFIG_FILE}); "
                       "train a run into it with 'aigc-lessons train MODEL --run-dir ...'.")
    names = sorted(p.parent.name for p in runs_root().glob(f"*/{CONFIG_FILE}")) if runs_root().is_dir() else []
    known = f"runs in {runs_root()}: {', '.join(names)}" if names else f"there are no runs in {runs_root()}"
    raise RunError(f"no run folder {str(run)!r} (looked in {', '.join(str(p) for p in candidates)}); {known}. "
                   "See 'aigc-lessons list'.")


def list_runs(root: str | os.PathLike | None = None) -> list[dict]:
    """Summaries of the runs under ``root`` (default :func:`runs_root`): name, model, epochs done."""
    root = Path(root) if root is not None else runs_root()
    summaries = []
    for config_path in sorted(root.glob(f"*/{CONFIG_FILE}")):
        run_dir = config_path.parent
        try:
            config = read_config(run_dir)
        except RunError:
            continue
        done = list_checkpoints(run_dir)
        summaries.append({"name": run_dir.name, "path": str(run_dir), "model": config.model,
                          "epochs_done": done[-1] if done else 0, "epochs": config.epochs})
    return summaries


def runs_table(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per run under ``root``: its settings and the metrics of its latest evaluation.

    This is the experiment tracking of the project chapters: every run folder
    holds its ``config.json`` and, after ``aigc-lessons eval``, an
    ``eval_epoch_XXXX.json``; the table joins them. Runs without an evaluation
    have no metric columns.

    Example:
        >>> rows = runs_table("runs/study")  # doctest: +SKIP
        >>> rows[0]["lr"], rows[0]["seed"], rows[0]["fd_mnist"]  # doctest: +SKIP
    """
    rows = []
    for summary in list_runs(root):
        run_dir = Path(summary["path"])
        config = read_config(run_dir)
        row = {"name": summary["name"], "model": config.model, "lr": config.lr, "batch_size": config.batch_size,
               "seed": config.seed, "subset": config.subset, "epochs_done": summary["epochs_done"]}
        evaluations = sorted(run_dir.glob("eval_epoch_*.json"))
        if evaluations:
            result = json.loads(evaluations[-1].read_text(encoding="utf-8"))
            row.update({"eval_epoch": result["epoch"], "eval_count": result["count"]})
            row.update({k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))})
        rows.append(row)
    return rows
