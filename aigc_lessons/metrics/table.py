"""The book's generators side by side: sample every pretrained generator and score it the same way.

``python -m aigc_lessons.metrics --count 10000 --out book/evaluation/results_full.json`` runs :func:`main`."""

from __future__ import annotations

import torch

from .quality import MetricsError, evaluate_images, reference_images


@torch.no_grad()
def sample_pretrained(name: str, count: int, seed: int = 0, device: str | torch.device = "cpu"
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draw ``count`` images in [0, 1] from the pretrained generator ``name``; also return labels if conditional.

    The model's class says how (its ``sample_for_evaluation`` method, see
    :mod:`aigc_lessons.models._sampling`): unconditional GANs map ``z ~ N(0, I)``
    through ``tanh`` (rescaled from [-1, 1]); VAEs decode prior draws and return
    the mean image of ``p(x | z)`` (what the book plots); conditional models get
    labels 0..9 in turn, ``count / 10`` of each.

    Example:
        >>> images, labels = sample_pretrained("cgan_mnist", 20)  # doctest: +SKIP
        >>> images.shape, labels[:12].tolist()  # doctest: +SKIP
        (torch.Size([20, 1, 28, 28]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    """
    from .. import pretrained
    from ..core import get_device

    model = pretrained.load(name, device=get_device(device))
    if not hasattr(model, "sample_for_evaluation"):
        raise MetricsError(f"{name!r} is a {type(model).__name__}, which is not a generator (it has no "
                           "sample_for_evaluation method)")
    return model.sample_for_evaluation(count, generator=torch.Generator().manual_seed(seed))


def generator_names() -> list[str]:
    """The pretrained entries that generate images: their class has ``sample_for_evaluation``."""
    from .. import pretrained
    from ..models import MODEL_CLASSES

    return [name for name, record in pretrained.cards().items()
            if hasattr(MODEL_CLASSES.get(record["model"]["class"]), "sample_for_evaluation")]


def results_table(names: list[str] | None = None, count: int = 10_000, seed: int = 0,
                  device: str | torch.device = "auto", progress: bool = True, real_row: bool = True) -> list[dict]:
    """Evaluate every pretrained generator (and real test digits, as the yardstick) on the same metrics.

    Returns one dict per row: ``model`` (the name), ``class``, the keys of
    :func:`evaluate_images` (``class_accuracy`` is ``None`` for unconditional
    models), ``test_nll`` (nats per binarized test image, from the model card's
    importance-weighted bound when the model has a likelihood, else ``None``; for a
    conditional model it is ``-log p(x | y)`` given the true label, not comparable with an
    unconditional NLL, and ``test_nll_given_label`` is then True) and
    ``training_seconds`` from the card. ``real_row=False`` leaves out the first row (real
    test digits scored against training digits, the yardstick).
    """
    from .. import pretrained

    names = generator_names() if names is None else names
    test_images, test_labels = reference_images("test", count)
    rows = [{"model": "real MNIST test digits", "class": "data", "training_seconds": None, "test_nll": None,
             **evaluate_images(test_images, (0, 1), labels=test_labels, reference="train", count=count,
                               device=device, progress=progress)}] if real_row else []
    for name in names:
        images, labels = sample_pretrained(name, count, seed=seed, device=device)
        record = pretrained.card(name)
        card_metrics = record["card"].get("metrics", {})
        nll = card_metrics.get("iwae_nll_first1000")
        seconds = record["card"].get("training_seconds", record["card"].get("seconds"))
        scores = evaluate_images(images, (0, 1), labels=labels, reference="test", count=count, device=device,
                                 progress=progress)
        rows.append({"model": name, "class": record["model"]["class"], "weights_sha256": record["sha256"],
                     "training_seconds": seconds,
                     "test_nll": nll, "test_nll_given_label": nll is not None and labels is not None, **scores})
    for row in rows:
        row.setdefault("class_accuracy", None)
    return rows


_COLUMNS = [  # (key, heading, format)
    ("model", "model", "{}"),
    ("fd_mnist", "FD (MNIST classifier) ↓", "{:.2f}"),
    ("is_mnist", "IS (MNIST classifier) ↑", "{:.2f}"),
    ("precision", "precision ↑", "{:.3f}"),
    ("recall", "recall ↑", "{:.3f}"),
    ("class_accuracy", "class accuracy ↑", "{:.3f}"),
    ("nn_distance_mean", "nearest-train distance", "{:.2f}"),
    ("test_nll", "test NLL (nats, IWAE)", "{:.1f}"),
    ("training_seconds", "training (s)", "{:.0f}"),
]


def format_results(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table of :func:`results_table` rows (``-`` where a metric does not apply).

    ``columns`` picks keys (``model`` always comes first); default: all of them.

    Example:
        >>> print(format_results([{"model": "m", "fd_mnist": 1.234}], columns=["fd_mnist", "recall"]))
        | model | FD (MNIST classifier) ↓ | recall ↑ |
        |---|---:|---:|
        | m | 1.23 | - |
    """
    chosen = [column for column in _COLUMNS if columns is None or column[0] == "model" or column[0] in columns]
    lines = ["| " + " | ".join(heading for _, heading, _ in chosen) + " |",
             "|" + "|".join("---" if key == "model" else "---:" for key, _, _ in chosen) + "|"]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in chosen]
        if row.get("test_nll_given_label") and row.get("test_nll") is not None:
            cells = [cell + " (given y)" if key == "test_nll" else cell for cell, (key, _, _) in zip(cells, chosen)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m aigc_lessons.metrics [--count N] [--out FILE]``: the chapter's results table, full setting."""
    import argparse
    import json
    import sys
    import time
    from pathlib import Path

    from ..pretrained import describe_hardware

    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.metrics",
                                     description="Evaluate every pretrained generator with the evaluation chapter's metrics.")
    parser.add_argument("--count", type=int, default=10_000, help="images per model and reference images (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="write the rows, settings and timing as JSON to this file")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="score only these generators and replace (or add) their rows in the existing --out "
                             "file, keeping the others (for one retrained model: sampling every model takes long)")
    args = parser.parse_args(argv)
    command = "python -m aigc_lessons.metrics " + " ".join(argv if argv is not None else sys.argv[1:])
    previous = None
    if args.models:  # every check before anything is sampled or written
        unknown = sorted(set(args.models) - set(generator_names()))
        if unknown:
            parser.error(f"not pretrained generators: {', '.join(unknown)}; known: {', '.join(generator_names())}")
        if args.out is None or not args.out.is_file():
            parser.error("--models updates rows of an existing table: give --out with the file to update")
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        if (previous.get("count"), previous.get("seed")) != (args.count, args.seed):
            parser.error(f"{args.out} was scored with count {previous.get('count')} and seed {previous.get('seed')}; "
                         f"rows of one table share them (got --count {args.count} --seed {args.seed})")
    started = time.perf_counter()
    rows = results_table(args.models, count=args.count, seed=args.seed, device=args.device,
                         real_row=previous is None)
    seconds = time.perf_counter() - started
    print(format_results(rows))
    print(f"\n{args.count} images per row, seed {args.seed}, {seconds:.0f} s on {describe_hardware()}")
    if previous is not None:
        fresh = {row["model"]: row for row in rows}
        kept = [fresh.pop(row["model"], row) for row in previous["rows"]]
        previous["rows"] = kept + list(fresh.values())
        previous.setdefault("updates", []).append({"command": command, "models": args.models,
                                                   "seconds": round(seconds, 1), "hardware": describe_hardware()})
        args.out.write_text(json.dumps(previous, indent=2) + "\n", encoding="utf-8")
    elif args.out:
        record = {"command": command, "count": args.count, "seed": args.seed, "seconds": round(seconds, 1),
                  "hardware": describe_hardware(), "rows": rows}
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0

