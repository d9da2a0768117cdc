"""The provenance chapter's record: detectors of every generator, the cross matrix, the watermark table.

    flock /tmp/aigc_heavy.lock python -m aigc_lessons.provenance study \\
        --out book/responsible/provenance_full.json

writes one JSON file that ``book/responsible/provenance.ipynb`` reads through ``{record}``
roles (its prose never types a number). ``--fast`` runs the notebook's fast setting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from ..pretrained import describe_machine
from .detection import GENERATORS, DetectorConfig, check_generator, cross_generator_study, real_digits
from .watermark import amplitude_sweep, watermark_study

FULL_SETTING = {"train_count": 3000, "test_count": 1500, "epochs": 5, "ddpm_steps": 10, "watermark_images": 4000}
"""Per generator: 3 000 real + 3 000 generated digits train a detector for 5 epochs, 1 500 + 1 500
evaluate it (``ddpm_mnist`` sampled with 10 DDIM steps, its card's default); the watermark study uses 4 000 real test digits (half calibrate the threshold)."""
FAST_SETTING = {"train_count": 150, "test_count": 100, "epochs": 4, "ddpm_steps": 4, "watermark_images": 1000}


def full_study(setting: dict | None = None, generators: tuple[str, ...] = GENERATORS, seed: int = 0,
               out: str | Path | None = None, progress: bool = False) -> dict:
    """Run the detectors and the watermark study in ``setting`` (default :data:`FULL_SETTING`).

    Checks every argument before anything runs; writes ``out`` (JSON) at the end when given.
    """
    setting = {**FULL_SETTING, **(setting or {})}
    for name in generators:
        check_generator(name)
    config = DetectorConfig(epochs=setting["epochs"], seed=seed)
    if out is not None and not Path(out).parent.is_dir():
        raise ValueError(f"the folder of {out} does not exist")
    started = time.perf_counter()
    detectors = cross_generator_study(tuple(generators), setting["train_count"], setting["test_count"],
                                      config, seed=seed, progress=progress,
                                      ddpm_steps=setting["ddpm_steps"])
    detector_seconds = time.perf_counter() - started
    # Real test digits from the evaluation half only: none of them trained a detector.
    images = real_digits("eval", setting["watermark_images"], seed).numpy()
    watermark = watermark_study(images)
    sweep = amplitude_sweep(images)
    record = {"command": "python -m aigc_lessons.provenance study", "source": "aigc_lessons.provenance",
              "date": datetime.date.today().isoformat(), "seed": seed, "setting": setting,
              "machine": describe_machine(), "detector_seconds": round(detector_seconds, 1),
              "seconds": round(time.perf_counter() - started, 1),
              "detectors": detectors, "watermark": watermark, "amplitude_sweep": sweep}
    if out is not None:
        Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.provenance",
                                     description="The provenance chapter's measured record.")
    commands = parser.add_subparsers(dest="command", required=True)
    study = commands.add_parser("study", help="detectors, cross matrix and watermark table -> JSON")
    study.add_argument("--out", default="book/responsible/provenance_full.json")
    study.add_argument("--fast", action="store_true", help="the notebook's fast setting")
    study.add_argument("--generators", nargs="+", default=list(GENERATORS))
    study.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        for name in args.generators:
            check_generator(name)
        full_study(FAST_SETTING if args.fast else FULL_SETTING, tuple(args.generators), args.seed,
                   out=args.out, progress=True)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.out}")
    return 0
