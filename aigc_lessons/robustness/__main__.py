"""``python -m aigc_lessons.robustness overfitting``: measure catastrophic overfitting, write the chapter's record.

Trains the robust classifier's network with FGSM adversarial training three ways, without the
early stop, and records the PGD-20 accuracy of the held-out check batch after every epoch:

* ``fgsm_rs``: random start, alpha = 1.25 epsilon (Wong et al.'s setting, the shipped recipe's);
* ``fgsm_rs_large_step``: random start, alpha = 2 epsilon (a step too large);
* ``fgsm_zero_start``: no random start, alpha = epsilon (plain FGSM training).

Writes ``book/responsible/catastrophic_overfitting.json`` (``--out`` to change it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..data import load_mnist
from ..models.robust_classifier import RobustMnistCNN
from .adversarial_training import AdversarialTrainingConfig, train_adversarial

RUNS = {"fgsm_rs": {"step_ratio": 1.25, "random_start": True},
        "fgsm_rs_large_step": {"step_ratio": 2.0, "random_start": True},
        "fgsm_zero_start": {"step_ratio": 1.0, "random_start": False}}
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "book" / "responsible" / "catastrophic_overfitting.json"


def catastrophic_overfitting(epochs: int = 5, subset: int | None = None, progress: bool = False) -> dict:
    """Train each of :data:`RUNS` for ``epochs`` epochs (no early stop) and return their per-epoch records."""
    from ..recipes.robustness import HELD_OUT, ROBUST_MNIST

    train = load_mnist("train")
    count = len(train) - HELD_OUT if subset is None else subset
    check = slice(len(train) - HELD_OUT, len(train) - HELD_OUT + ROBUST_MNIST["check_images"])
    record = {"epochs": epochs, "training_images": count, "check_images": ROBUST_MNIST["check_images"],
              "epsilon": ROBUST_MNIST["epsilon"], "runs": {}}
    started = time.perf_counter()
    for name, change in RUNS.items():
        config = AdversarialTrainingConfig(
            epsilon=ROBUST_MNIST["epsilon"], epochs=epochs, batch_size=ROBUST_MNIST["batch_size"],
            lr_max=ROBUST_MNIST["lr"], epsilon_warmup_epochs=ROBUST_MNIST["epsilon_warmup_epochs"],
            early_stopping=False, seed=ROBUST_MNIST["seed"], **change)
        torch.manual_seed(config.seed)
        model = RobustMnistCNN(channels=tuple(ROBUST_MNIST["channels"]), hidden=ROBUST_MNIST["hidden"])
        result = train_adversarial(model, train.images[:count], train.labels[:count], train.images[check],
                                   train.labels[check], config, progress=progress)
        record["runs"][name] = result.to_dict()
        print(name, [row["check_pgd_accuracy"] for row in result.epochs], flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.robustness")
    parser.add_argument("command", choices=["overfitting"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from ..pretrained import describe_hardware

    record = catastrophic_overfitting(args.epochs)
    record["hardware"] = describe_hardware()
    record["command"] = f"python -m aigc_lessons.robustness overfitting --epochs {args.epochs}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
