"""The privacy chapter's measured records: the accuracy-against-ε sweep and the membership study.

Each writes a JSON file that the chapter reads (numbers are never typed in its prose)::

    python -m aigc_lessons.privacy sweep --out book/responsible/dp_sweep.json
    python -m aigc_lessons.privacy membership --out book/responsible/membership.json

``membership --part generator`` (or ``classifier``) reruns one half of the membership
study and keeps the other half's rows of the record. Run them under the shared lock on a
shared machine (``flock /tmp/aigc_heavy.lock ...``): each DP-SGD run of the sweep takes minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from ..pretrained import describe_machine
from .dp_training import DELTA, DPConfig, config_dict, train_dp_classifier
from .mechanisms import PrivacyError


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
              "machine": describe_machine(), "rows": []}
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


def _attack_row(name: str, result) -> dict:
    return {"model": name, "auc": round(result.auc, 4), "advantage": round(result.advantage, 4),
            "tpr_at_fpr_0.01": round(result.tpr_at(0.01), 4),
            "median_member_loss": round(result.member_loss, 5),
            "median_non_member_loss": round(result.non_member_loss, 5)}


def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


GENERATOR_DP_EPOCHS = 100    # the DP-SGD pair: fewer epochs than the memorising VAE (per-example gradients are slow)
GENERATOR_DP_EPSILON = 10.0  # DPGeneratorConfig's default: the budget of the shipped private generator


def generator_membership_study(size: int = 500, setting=None, dp_epochs: int = GENERATOR_DP_EPOCHS,
                               epsilon: float = GENERATOR_DP_EPSILON, seed: int = 0, progress: bool = False) -> dict:
    """The ELBO-threshold attack on four VAEs, ``size`` members against ``size`` test non-members.

    * ``vae_overfit``: the VAE trained ``setting.epochs`` epochs on the ``size`` members only;
    * ``vae_full_data``: the same VAE and the same number of steps on all 60 000 training digits
      (the members among them);
    * ``cvae_overfit`` and ``cvae_dp``: :func:`train_dp_cvae`'s conditional VAE of the same width on the
      members only, ``dp_epochs`` epochs of the same loop without privacy and with DP-SGD at ``epsilon``.

    Returns ``{"generator": settings and seconds, "rows": [...]}``.
    """
    from ..data import load_mnist
    from .dp_training import DPGeneratorConfig, train_dp_cvae
    from .membership import (ELBO_SAMPLES, OverfitVaeSetting, generator_membership_attack, member_split,
                             train_overfit_vae)

    if not isinstance(size, int) or size < 10:
        raise PrivacyError(f"size must be an integer >= 10, got {size!r}")
    setting = setting or OverfitVaeSetting()
    train, test = load_mnist("train"), load_mnist("test")
    members, non_members = member_split((train.images, train.labels), (test.images, test.labels), size, seed)
    seconds, rows = {}, []

    def attack(name, model):
        result = generator_membership_attack(model, members, non_members, ELBO_SAMPLES, seed)
        rows.append(_attack_row(name, result))
        if progress:
            print(f"{name}: AUC {result.auc:.3f} (median negative ELBO {result.member_loss:.1f} members, "
                  f"{result.non_member_loss:.1f} others), {seconds[name]:.0f} s", flush=True)

    started = time.perf_counter()
    overfit = train_overfit_vae(members[0], setting, seed=seed)
    seconds["vae_overfit"] = time.perf_counter() - started
    attack("vae_overfit", overfit)
    steps = setting.epochs * -(-size // setting.batch_size)
    started = time.perf_counter()
    full = train_overfit_vae(train.images, setting, seed=seed, steps=steps)
    seconds["vae_full_data"] = time.perf_counter() - started
    attack("vae_full_data", full)
    dp_settings = {}
    for name, target in (("cvae_overfit", None), ("cvae_dp", epsilon)):
        config = DPGeneratorConfig(target_epsilon=target, epochs=dp_epochs, batch_size=setting.batch_size,
                                   lr=setting.lr, latent_dim=setting.latent_dim,
                                   hidden_units=tuple(setting.hidden), seed=seed)
        run = train_dp_cvae(config, train=members)
        seconds[name] = run.seconds
        spent = None if run.epsilon is None else round(run.epsilon, 3)
        dp_settings[name] = {"target_epsilon": target, "epsilon": spent,
                             "noise_multiplier": round(run.noise_multiplier, 4), "steps": run.steps}
        attack(name, run.model)
    full_epoch = -(-len(train.images) // setting.batch_size)  # steps per epoch on the full training set
    full_steps = -(-steps // full_epoch) * full_epoch
    generator = {"vae": {**asdict(setting), "hidden": list(setting.hidden), "binarize": False,
                         "steps": steps, "full_data_steps": full_steps},
                 "cvae_epochs": dp_epochs, "cvae_runs": dp_settings, "delta": DPGeneratorConfig().delta,
                 "elbo_samples": ELBO_SAMPLES, "training_seconds": {k: round(v, 1) for k, v in seconds.items()}}
    return {"generator": generator, "rows": rows}


def membership_study(size: int = 500, steps: int = 2000, seed: int = 0, out: str | Path | None = None,
                     part: str = "all", progress: bool = False) -> dict:
    """Loss-threshold attack on three models, ``size`` members against ``size`` test non-members each.

    * ``overfit``: the small classifier trained ``steps`` steps on ``size`` training images;
    * ``full_data``: the shipped reference classifier ``classifier_mnist`` (60 000 images);
    * ``dp``: the shipped ``dp_classifier_mnist`` (DP-SGD), when it is installed;

    and, with ``part`` ``"all"`` or ``"generator"``, the rows of
    :func:`generator_membership_study` (``vae_overfit``, ``vae_full_data``, ``cvae_overfit``,
    ``cvae_dp``). With ``part="classifier"`` or ``"generator"`` the other part's rows and
    settings are kept from the record at ``out`` when it exists.
    """
    if part not in ("all", "classifier", "generator"):
        raise PrivacyError(f"part must be 'all', 'classifier' or 'generator', got {part!r}")
    if not isinstance(size, int) or size < 10:
        raise PrivacyError(f"size must be an integer >= 10, got {size!r}")
    previous = {}
    if out is not None and part != "all" and Path(out).exists():
        previous = json.loads(Path(out).read_text(encoding="utf-8"))
    if part == "generator":
        classifier = {key: value for key, value in previous.items() if key not in ("rows", "generator")}
        classifier_rows = [row for row in previous.get("rows", []) if not row["model"].startswith(("vae", "cvae"))]
        classifier.setdefault("command", "python -m aigc_lessons.privacy membership")
    else:
        classifier = _classifier_membership_study(size, steps, seed)
        classifier_rows = classifier.pop("rows")
    if part == "classifier":
        generator = {"generator": previous.get("generator"),
                     "rows": [row for row in previous.get("rows", []) if row["model"].startswith(("vae", "cvae"))]}
    else:
        generator = generator_membership_study(size, seed=seed, progress=progress)
    record = {**classifier, "generator": generator["generator"], "machine": describe_machine(), "date": _today(),
              "rows": classifier_rows + generator["rows"]}
    if generator["generator"] is None:
        del record["generator"]
    if out is not None:
        Path(out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def _classifier_membership_study(size: int, steps: int, seed: int) -> dict:
    from .. import pretrained
    from ..data import load_mnist
    from .membership import member_split, membership_attack, train_overfit_classifier

    train, test = load_mnist("train"), load_mnist("test")
    members, non_members = member_split((train.images, train.labels), (test.images, test.labels), size, seed)
    started = time.perf_counter()
    overfit = train_overfit_classifier(*members, steps=steps, seed=seed)
    seconds = time.perf_counter() - started
    models = {"overfit": overfit, "full_data": pretrained.load("classifier_mnist")}
    if pretrained.exists("dp_classifier_mnist"):
        models["dp"] = pretrained.load("dp_classifier_mnist")
    rows = [_attack_row(name, membership_attack(model, members, non_members)) for name, model in models.items()]
    return {"command": "python -m aigc_lessons.privacy membership", "members": size, "non_members": size,
            "overfit_steps": steps, "overfit_training_seconds": round(seconds, 1), "seed": seed, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_lessons.privacy", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="accuracy of the DP classifier against ε")
    sweep.add_argument("--epsilons", default="1,3,8,none", help="comma-separated targets; 'none' = no privacy")
    sweep.add_argument("--epochs", type=int, default=None)
    sweep.add_argument("--out", default="book/responsible/dp_sweep.json")
    study = commands.add_parser("membership", help="membership-inference AUC of three classifiers (loss "
                                "threshold) and four VAEs (negative-ELBO threshold)")
    study.add_argument("--size", type=int, default=500, help="members (and as many test non-members)")
    study.add_argument("--steps", type=int, default=2000, help="training steps of the overfitted classifier")
    study.add_argument("--part", choices=("all", "classifier", "generator"), default="all",
                       help="run the classifiers' attack, the generators' (VAE) attack, or both; a "
                            "part not run keeps its rows from the record at --out")
    study.add_argument("--out", default="book/responsible/membership.json")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        epsilons = tuple(None if text.strip().lower() == "none" else float(text) for text in args.epsilons.split(","))
        base = DPConfig() if args.epochs is None else DPConfig(epochs=args.epochs)
        dp_sweep(epsilons, base, progress=False, out=args.out)
    else:
        record = membership_study(args.size, args.steps, out=args.out, part=args.part, progress=True)
        for row in record["rows"]:
            print(f"{row['model']}: AUC {row['auc']:.3f}, advantage {row['advantage']:.3f}", flush=True)
    return 0


__all__ = ["DELTA", "dp_sweep", "generator_membership_study", "membership_study", "main"]
