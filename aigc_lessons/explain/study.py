"""The explanation chapter's study in one run, written as a record.

``python -m aigc_lessons.explain --out book/responsible/explanation_full.json`` explains
the first test digits with the three methods on the reference classifier
(``classifier_mnist``) and the adversarially trained one (``robust_mnist``), and
measures, per model:

* ``completeness``: the mean absolute completeness error of integrated gradients
  (captum's convergence delta) and of the midpoint Riemann sum, per number of steps,
  next to the mean absolute target logit it should add up to;
* ``alignment``: per method, the share of the map's magnitude on the digit and its
  high-frequency share (:func:`~aigc_lessons.explain.faithfulness.alignment_scores`);
* ``randomisation``: the cascading randomisation test, per method and measure, the
  similarity to the trained maps at every stage, and after the last (``final``);
* ``deletion``: the deletion curve of each method and of a random order.

Setting and timing go in the record too; ``--fast`` runs the notebook's small setting.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from .attributions import METHODS, attribute, completeness_error, integrated_gradients_riemann, target_scores
from .faithfulness import alignment_scores, deletion_curve
from .sanity import cascading_randomisation

MODELS = {"standard": "classifier_mnist", "robust": "robust_mnist"}
FULL = {"images": 500, "randomisation_images": 200, "steps": 64, "completeness_steps": [4, 16, 64, 256],
        "completeness_images": 100, "fractions": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5], "seed": 0}
FAST = {"images": 32, "randomisation_images": 16, "steps": 16, "completeness_steps": [4, 16, 64],
        "completeness_images": 16, "fractions": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5], "seed": 0}


def _round(value, digits: int = 4):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: _round(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_round(item, digits) for item in value]
    return value


def study_model(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, setting: dict) -> dict:
    """The four measurements of the module docstring for one classifier (explaining the true class)."""
    torch.manual_seed(setting["seed"])
    few = setting["completeness_images"]
    completeness = {"steps": setting["completeness_steps"], "captum_delta": [], "riemann": [],
                    "mean_abs_score": float(target_scores(model, images[:few], labels[:few]).abs().mean())}
    for steps in setting["completeness_steps"]:
        _, delta = attribute(model, images[:few], labels[:few], "integrated_gradients", steps=steps,
                             return_delta=True)
        riemann = integrated_gradients_riemann(model, images[:few], labels[:few], steps=steps)
        completeness["captum_delta"].append(float(delta.abs().mean()))
        completeness["riemann"].append(float(completeness_error(model, images[:few], labels[:few],
                                                                riemann).abs().mean()))
    alignment, deletion = {}, {}
    for method in METHODS:
        maps = attribute(model, images, labels, method, steps=setting["steps"])
        alignment[method] = alignment_scores(maps, images)
        curve = deletion_curve(model, images, labels, maps, tuple(setting["fractions"]))
        deletion[method] = {"curve": curve.tolist(), "area": float(curve.mean())}
    curve = deletion_curve(model, images, labels, torch.rand_like(images), tuple(setting["fractions"]))
    deletion["random"] = {"curve": curve.tolist(), "area": float(curve.mean())}
    count = setting["randomisation_images"]
    result = cascading_randomisation(model, images[:count], labels[:count], steps=setting["steps"],
                                     seed=setting["seed"])
    randomisation = {"layers": result.layers}
    for method, measures in result.scores.items():
        randomisation[method] = {**measures, "final": {name: values[-1] for name, values in measures.items()}}
    return {"completeness": completeness, "alignment": alignment, "deletion": deletion,
            "randomisation": randomisation}


def run_study(setting: dict) -> dict:
    """Both models' measurements, with the setting, the time taken and the hardware."""
    from .. import pretrained
    from ..data import load_mnist

    started = time.perf_counter()
    test = load_mnist("test", subset=setting["images"])
    record = {"setting": setting, "models": MODELS}
    for short, name in MODELS.items():
        record[short] = study_model(pretrained.load(name).eval(), test.images, test.labels, setting)
    record["seconds"] = time.perf_counter() - started
    record["hardware"] = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    record["command"] = "python -m aigc_lessons.explain --out book/responsible/explanation_full.json"
    return _round(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.explain", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where to write the JSON record (printed when omitted)")
    parser.add_argument("--fast", action="store_true", help="the notebook's fast setting")
    arguments = parser.parse_args(argv)
    record = run_study(FAST if arguments.fast else FULL)
    text = json.dumps(record, indent=1)
    if arguments.out:
        arguments.out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {arguments.out} in {record['seconds']:.0f} s")
    else:
        print(text)
    return 0
