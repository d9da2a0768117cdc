"""The privacy chapter's measured records: the accuracy-against-ε sweep and the membership study.

Each writes a JSON file that the chapter reads (numbers are never typed in its prose)::

    python -m aigc_lessons.privacy sweep --out book/responsible/dp_sweep.json
    python -m aigc_lessons.privacy membership --out book/responsible/membership.json

Run them under the shared lock on a shared machine (``flock /tmp/aigc_heavy.lock ...``):
each DP-SGD run of the sweep takes minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from .dp_training import DELTA, DPConfig, config_dict, train_dp_classifier
from .mechanisms import PrivacyError


def _machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "loadavg_1_5_15": [round(value, 2) for value in load]}


# Without clipping the gradients are larger than the clipped, noisy mean DP-SGD steps with:
# lr 2.0 diverges there (measured on 4 096 digits: loss 3.9 then 11.7), lr 0.5 trains.
NO_PRIVACY_LR = 0.5


def dp_sweep(epsilons: tuple = (1.0, 3.0, 8.0, None), base: DPConfig | None = None, progress: bool = False,
             out: str | Path | None = None, no_privacy_lr: float = NO_PRIVACY_LR) -> dict:
    """Train the DP classifier once per target ε (``None``: no privacy) with one setting; record each run.

    The no-privacy baseline is the same network and loop without clipping or noise, with
    learning rate ``no_privacy_lr`` (DP-SGD's large step diverges on unclipped gradients).

    Writes ``out`` (JSON) after every run, so an interrupted sweep keeps what it measured.

    Example:
        >>> sweep = dp_sweep((3.0,), DPConfig(epochs=1, subset=2048))  # doctest: +SKIP
        >>> sweep["rows"][0]["accuracy"]  # doctest: +SKIP
    """
    base = base or DPConfig()
    record = {"command": "python -m aigc_lessons.privacy sweep", "delta": base.delta,
              "setting": {key: value for key, value in config_dict(base).items() if key != "target_epsilon"},
              "machine": _machine(), "rows": []}
    for epsilon in epsilons:
        lr = base.lr if epsilon is not None else no_privacy_lr
        config = DPConfig(**{**config_dict(base), "target_epsilon": epsilon, "lr": lr,
                             "channels": tuple(base.channels)})
        started_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        run = train_dp_classifier(config, progress=progress)
        row = {"target_epsilon": epsilon, "lr": lr, **run.record(), "loadavg_1min_start": round(started_load, 2),
               "loadavg_1min_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        record["rows"].append(row)
        if out is not None:
            Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"target ε = {epsilon}: accuracy {row['accuracy']:.4f}, ε = {row['epsilon']}, "
              f"{row['seconds']:.0f} s", flush=True)
    return record


def membership_study(size: int = 500, steps: int = 2000, seed: int = 0, out: str | Path | None = None) -> dict:
    """Loss-threshold attack on three models, ``size`` members against ``size`` test non-members each.

    * ``overfit``: the small classifier trained ``steps`` steps on ``size`` training images;
    * ``full_data``: the shipped reference classifier ``classifier_mnist`` (60 000 images);
    * ``dp``: the shipped ``dp_classifier_mnist`` (DP-SGD), when it is installed.
    """
    from .. import pretrained
    from ..data import load_mnist
    from .membership import member_split, membership_attack, train_overfit_classifier

    if not isinstance(size, int) or size < 10:
        raise PrivacyError(f"size must be an integer >= 10, got {size!r}")
    train, test = load_mnist("train"), load_mnist("test")
    members, non_members = member_split((train.images, train.labels), (test.images, test.labels), size, seed)
    started = time.perf_counter()
    overfit = train_overfit_classifier(*members, steps=steps, seed=seed)
    seconds = time.perf_counter() - started
    models = {"overfit": overfit, "full_data": pretrained.load("classifier_mnist")}
    if pretrained.exists("dp_classifier_mnist"):
        models["dp"] = pretrained.load("dp_classifier_mnist")
    rows = []
    for name, model in models.items():
        result = membership_attack(model, members, non_members)
        rows.append({"model": name, "auc": round(result.auc, 4), "advantage": round(result.advantage, 4),
                     "tpr_at_fpr_0.01": round(result.tpr_at(0.01), 4),
                     "median_member_loss": round(result.member_loss, 5),
                     "median_non_member_loss": round(result.non_member_loss, 5)})
    record = {"command": "python -m aigc_lessons.privacy membership", "members": size, "non_members": size,
              "overfit_steps": steps, "overfit_training_seconds": round(seconds, 1), "seed": seed,
              "machine": _machine(), "rows": rows}
    if out is not None:
        Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.privacy", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="accuracy of the DP classifier against ε")
    sweep.add_argument("--epsilons", default="1,3,8,none", help="comma-separated targets; 'none' = no privacy")
    sweep.add_argument("--epochs", type=int, default=None)
    sweep.add_argument("--out", default="book/responsible/dp_sweep.json")
    study = commands.add_parser("membership", help="membership-inference AUC of three models")
    study.add_argument("--size", type=int, default=500)
    study.add_argument("--steps", type=int, default=2000)
    study.add_argument("--out", default="book/responsible/membership.json")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        epsilons = tuple(None if text.strip().lower() == "none" else float(text) for text in args.epsilons.split(","))
        base = DPConfig() if args.epochs is None else DPConfig(epochs=args.epochs)
        dp_sweep(epsilons, base, progress=False, out=args.out)
    else:
        record = membership_study(args.size, args.steps, out=args.out)
        for row in record["rows"]:
            print(f"{row['model']}: AUC {row['auc']:.3f}, advantage {row['advantage']:.3f}", flush=True)
    return 0


__all__ = ["DELTA", "dp_sweep", "membership_study", "main"]
