"""Recipes for the privacy chapter's shipped weights (Responsible AIGC part).

``dp_classifier_mnist``: :class:`~aigc_lessons.models.private_classifier.PrivateMnistCNN`
trained with DP-SGD (Opacus, RDP accountant) to ``(ε, δ) = (3, 1e-5)`` on the
60 000 MNIST training digits; scored on the 10 000 test digits.

``dp_cvae_mnist``: a small :class:`~aigc_lessons.models.ConditionalVAE` trained with
DP-SGD to ``(ε, δ) = (10, 1e-5)``. ``dp_merf_mnist``: a
:class:`~aigc_lessons.models.ConditionalGeneratorDCGAN` trained against one
``(10, 1e-5)``-DP release of the training digits' random-feature means (DP-MERF,
:mod:`aigc_lessons.privacy.mean_embedding`). Both generators are scored by training the
augmentation chapter's classifier on their samples only and testing it on the real
test digits. Retrain with::

    python -m aigc_lessons.recipes dp_classifier_mnist
    python -m aigc_lessons.recipes dp_cvae_mnist
    python -m aigc_lessons.recipes dp_merf_mnist
"""

from __future__ import annotations

import os

import torch

from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.private_classifier import PrivateMnistCNN
from ..privacy.dp_training import (DPConfig, DPGeneratorConfig, config_dict, synthetic_training_accuracy,
                                   train_dp_classifier, train_dp_cvae)
from ..privacy.mean_embedding import MerfConfig, train_dp_merf

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
DP_CLASSIFIER_MNIST = config_dict(DPConfig())
DP_CLASSIFIER_FAST = {"epochs": 1, "subset": 4096}
DP_CVAE_MNIST = {**config_dict(DPGeneratorConfig()), "synthetic_per_class": 1000, "classifier_steps": 1500}
DP_CVAE_FAST = {"epochs": 1, "subset": 4096, "synthetic_per_class": 50, "classifier_steps": 100}
DP_MERF_MNIST = {**config_dict(MerfConfig()), "synthetic_per_class": 1000, "classifier_steps": 1500}
DP_MERF_FAST = {"features": 500, "steps": 50, "subset": 4096, "synthetic_per_class": 50, "classifier_steps": 100}
SCORING_KEYS = ("synthetic_per_class", "classifier_steps")  # how a private generator is scored, not trained


def _hardware_note() -> str:
    return f"{torch.get_num_threads()} torch threads"


def generator_config(setting: dict, config_class: type):
    """The training config of a private generator's ``setting``: the scoring keys dropped, lists as tuples."""
    return config_class(**{key: tuple(value) if isinstance(value, list) else value
                           for key, value in setting.items() if key not in SCORING_KEYS})


def _run_fields(run) -> dict:
    """What every private run's card records about how it ran: times, load, threads, history."""
    return {"training_seconds": round(run.seconds, 1), "training_cpu_seconds": round(run.cpu_seconds, 1),
            "loadavg_after": [round(value, 2) for value in os.getloadavg()], "threads": _hardware_note(),
            "history": run.history}


def _synthetic_metrics(utility: dict) -> dict:
    """A private generator's score on its card: a classifier trained on its samples, tested on real digits."""
    return {"synthetic_trained_test_accuracy": utility["accuracy"], "synthetic_images": utility["samples"],
            "classifier": f"augmentation.train_classifier, {utility['steps']} steps, batch 128"}


def dp_classifier_mnist(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """DP-SGD to ε = 3 at δ = 1e-5; returns the model and a card with its test accuracy and ε."""
    setting = {**DP_CLASSIFIER_MNIST, **DP_CLASSIFIER_FAST} if budget.fast else dict(DP_CLASSIFIER_MNIST)
    config = DPConfig(**{**setting, "channels": tuple(setting["channels"])})
    run = train_dp_classifier(config, progress=progress, device=device)
    kwargs = {"channels": list(config.channels), "hidden": config.hidden}
    card = {
        "description": "MNIST classifier trained with DP-SGD (Opacus): conv8x8/2(16)-GroupNorm-tanh-pool-"
                       "conv4x4/2(32)-GroupNorm-tanh-pool-fc32-tanh-fc10; inputs in [0, 1].",
        "data": f"MNIST, {config.subset or 60000} training digits (Poisson-sampled batches); "
                f"scored on the 10000 test digits",
        "training": setting,
        "privacy": {"epsilon": run.epsilon, "delta": config.delta, "accountant": config.accountant,
                    "noise_multiplier": round(run.noise_multiplier, 4), "max_grad_norm": config.max_grad_norm,
                    "sampling": "Poisson, rate batch_size / N", "steps": run.steps},
        **_run_fields(run),
        "metrics": {"test_accuracy": round(run.accuracy, 4), "test_images": 10000},
    }
    return RecipeResult(run.model, kwargs, card)


def dp_cvae_mnist(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """DP-SGD conditional VAE to ε = 10 at δ = 1e-5; the card holds the train-on-synthetic accuracy."""
    setting = {**DP_CVAE_MNIST, **DP_CVAE_FAST} if budget.fast else dict(DP_CVAE_MNIST)
    config = generator_config(setting, DPGeneratorConfig)
    run = train_dp_cvae(config, progress=progress, device=device)
    utility = synthetic_training_accuracy(run.model, per_class=setting["synthetic_per_class"],
                                          steps=setting["classifier_steps"], seed=config.seed)
    kwargs = {"latent_dim": config.latent_dim, "hidden": list(config.hidden_units), "likelihood": "bernoulli",
              "num_classes": 10}
    card = {
        "description": "Conditional VAE (MLP, Bernoulli decoder) trained with DP-SGD (Opacus); its samples "
                       "are as private as its weights (post-processing).",
        "data": f"MNIST, {config.subset or 60000} training digits in [0, 1] (not binarized), Poisson-sampled",
        "training": setting,
        "privacy": {"epsilon": run.epsilon, "delta": config.delta, "accountant": config.accountant,
                    "noise_multiplier": round(run.noise_multiplier, 4), "max_grad_norm": config.max_grad_norm,
                    "sampling": "Poisson, rate batch_size / N", "steps": run.steps},
        **_run_fields(run),
        "metrics": {**_synthetic_metrics(utility), "negative_elbo_last_epoch": run.history[-1]["negative_elbo"]},
    }
    return RecipeResult(run.model, kwargs, card)


def dp_merf_mnist(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """DP-MERF at ε = 10, δ = 1e-5: one Gaussian release, then a generator fitted to it; scored as above."""
    setting = {**DP_MERF_MNIST, **DP_MERF_FAST} if budget.fast else dict(DP_MERF_MNIST)
    config = generator_config(setting, MerfConfig)
    run = train_dp_merf(config, progress=progress, device=device)
    utility = synthetic_training_accuracy(run.model, per_class=setting["synthetic_per_class"],
                                          steps=setting["classifier_steps"], seed=config.seed)
    kwargs = {"latent_dim": config.latent_dim, "channels": config.channels, "num_classes": 10}
    card = {
        "description": "Conditional DCGAN generator trained by DP-MERF: it matches one (ε, δ)-DP release of "
                       "the training digits' per-class means of random Fourier features (Gaussian kernel); "
                       "no training step touches the data, so its weights and samples are as private as "
                       "the release (post-processing).",
        "data": f"MNIST, {config.subset or 60000} training digits in [0, 1] (not binarized), read once",
        "training": setting,
        "privacy": {"epsilon": run.epsilon, "delta": config.delta, "mechanism": "Gaussian, analytic calibration "
                    "(Balle and Wang 2018), L2 sensitivity 1 (add or remove one example)",
                    "noise_sigma": round(run.noise_multiplier, 4), "releases": 1},
        **_run_fields(run),
        "release_seconds": run.history[0]["seconds"],
        "metrics": {**_synthetic_metrics(utility), "embedding_distance_last": run.history[-1]["embedding_distance"]},
    }
    return RecipeResult(run.model, kwargs, card)


FAMILIES = (
    Family("privacy", "Private classifier and generators (Responsible AIGC: privacy chapter)",
           classes=(PrivateMnistCNN,),
           recipes={"dp_classifier_mnist": Recipe(dp_classifier_mnist, DP_CLASSIFIER_MNIST, DP_CLASSIFIER_FAST),
                    "dp_cvae_mnist": Recipe(dp_cvae_mnist, DP_CVAE_MNIST, DP_CVAE_FAST),
                    "dp_merf_mnist": Recipe(dp_merf_mnist, DP_MERF_MNIST, DP_MERF_FAST)}),
)
