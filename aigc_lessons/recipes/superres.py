"""Recipes for the super-resolution chapter's pretrained networks.

* ``edsr_x4_mnist``, ``edsr_x2_mnist``: :class:`~aigc_lessons.models.superres.EDSR`
  (32 channels, 4 residual blocks, global bicubic skip) trained with the L1 loss on
  the 60 000 training digits degraded by antialiased bicubic downsampling
  (28 -> 7 or 14 pixels a side).
* ``srgan_x4_mnist``: the ``edsr_x4_mnist`` weights fine-tuned for one pass over the
  first 30 000 training digits with the L1 loss plus ``0.01 x`` the non-saturating adversarial loss against a
  ``DiscriminatorDCGAN``; its card also records a *control* run, the same fine-tuning
  without the adversarial term, so that the effect of the adversarial loss is
  separated from the effect of training longer.

Every card holds PSNR, SSIM, the reference classifier's accuracy and the Fréchet
distance of classifier features, for the network and for bicubic interpolation,
on all 10 000 test digits. Retrain with ``python -m aigc_lessons.recipes edsr_x4_mnist``.
"""

from __future__ import annotations

import copy
import time

import torch

from .. import pretrained
from ..core import Budget
from ..data import load_mnist
from ..family import Family, Recipe, RecipeResult
from ..models.dcgan import DiscriminatorDCGAN
from ..models.superres import EDSR, degrade
from ..train.gan import count_parameters
from ..train.superres import SuperResConfig, evaluate_bicubic, evaluate_superres, train_superres, upscale

EDSR_KWARGS = {"channels": 32, "blocks": 4, "residual_scale": 0.1, "global_skip": True}
ADVERSARIAL_WEIGHT = 1e-2

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
EDSR_X4_MNIST = {"epochs": 3, "subset": None, "scale": 4}
EDSR_X2_MNIST = {"epochs": 1, "subset": None, "scale": 2}
SRGAN_X4_MNIST = {"epochs": 1, "subset": 30_000, "lr": 1e-4, "adversarial_weight": ADVERSARIAL_WEIGHT}
FAST = {"epochs": 1, "subset": 2048}


def _rounded(scores: dict) -> dict:
    return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in scores.items()}


def _test_scores(model, test, scale: int, device) -> tuple[dict, dict, float]:
    """(model scores, bicubic scores, seconds) on the test images given."""
    started = time.perf_counter()
    images, labels = test.images.cpu(), test.labels.cpu()
    model_scores = evaluate_superres(upscale(model, degrade(images, scale).to(device)), images, labels, device=device)
    bicubic_scores = evaluate_bicubic(images, scale, labels, device=device)
    return _rounded(model_scores), _rounded(bicubic_scores), time.perf_counter() - started


def _edsr(full: dict, budget: Budget, device: torch.device, progress: bool):
    setting = {**full, **FAST} if budget.fast else dict(full)
    scale = setting["scale"]
    config = SuperResConfig(epochs=setting["epochs"])
    train = load_mnist("train", device=device, subset=setting["subset"])
    test = load_mnist("test", subset=budget.pick(full=None, fast=500))
    torch.manual_seed(config.seed)
    model = EDSR(scale=scale, **EDSR_KWARGS)
    started = time.process_time()
    history = train_superres(model, train.images, config, device=device, progress=progress)
    cpu_seconds = time.process_time() - started
    scores, bicubic, eval_seconds = _test_scores(model, test, scale, device)
    card = {
        "description": f"EDSR-style x{scale} super-resolution for 28x28 digits in [0, 1]: head conv, 4 residual "
                       "blocks (32 channels, no batch norm, residual scaling 0.1), long skip, PixelShuffle "
                       "upsampling, tail conv, plus the bicubic upsample of the input (global skip).",
        "data": f"MNIST, {len(train)} training digits in [0, 1]; inputs made by antialiased bicubic downsampling "
                f"(F.interpolate(mode='bicubic', antialias=True)) to {28 // scale}x{28 // scale}; "
                f"scored on {len(test)} test digits",
        "training": {**config.to_dict(), "optimizer": "Adam", "loss": "L1 (mean absolute pixel error)"},
        "parameters": count_parameters(model),
        "training_wall_seconds": round(history.seconds, 1),
        "training_cpu_seconds": round(cpu_seconds, 1),
        "final_loss": round(history.rows[-1]["loss"], 5),
        "metrics": {**scores, "evaluation_seconds": round(eval_seconds, 1),
                    "units": "psnr in dB, mean over images of 10 log10(1/MSE); ssim mean over images (11x11 "
                             "Gaussian window, sigma 1.5); class_accuracy of classifier_mnist on the upscaled "
                             "digits; fd_mnist: Frechet distance of classifier features to the real test digits"},
        "bicubic_baseline": bicubic,
    }
    return RecipeResult(model.cpu().eval(), {"scale": scale, **EDSR_KWARGS}, card)


def edsr_x4_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """EDSR-style x4 (7x7 -> 28x28), L1 loss, 3 epochs on the 60 000 training digits."""
    return _edsr(EDSR_X4_MNIST, budget, device, progress)


def edsr_x2_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """EDSR-style x2 (14x14 -> 28x28), L1 loss, 1 epoch on the 60 000 training digits."""
    return _edsr(EDSR_X2_MNIST, budget, device, progress)


def srgan_x4_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """``edsr_x4_mnist`` fine-tuned on 30 000 digits with L1 + 0.01 x adversarial loss (SRGAN-style), with a control."""
    setting = {**SRGAN_X4_MNIST, **FAST} if budget.fast else dict(SRGAN_X4_MNIST)
    if not budget.fast:
        start = pretrained.load("edsr_x4_mnist", device=device)
        start_from = f"pretrained edsr_x4_mnist (sha256 {pretrained.card('edsr_x4_mnist')['sha256'][:16]}...)"
    else:
        start = edsr_x4_mnist(budget, device, progress).model.to(device)
        start_from = f"edsr_x4_mnist retrained in this run ({budget.name} setting)"
    train = load_mnist("train", device=device, subset=setting["subset"])
    test = load_mnist("test", subset=budget.pick(full=None, fast=500))
    config = SuperResConfig(epochs=setting["epochs"], lr=setting["lr"], cosine_decay=False,
                            adversarial_weight=setting["adversarial_weight"])

    generator = copy.deepcopy(start)
    torch.manual_seed(config.seed)
    discriminator = DiscriminatorDCGAN(channels=32)
    started = time.process_time()
    history = train_superres(generator, train.images, config, discriminator=discriminator, device=device,
                             progress=progress)
    cpu_seconds = time.process_time() - started
    scores, bicubic, eval_seconds = _test_scores(generator, test, 4, device)

    # The control: the same fine-tuning (same start, steps, learning rate) with the adversarial term off.
    control = copy.deepcopy(start)
    control_config = SuperResConfig(epochs=setting["epochs"], lr=setting["lr"], cosine_decay=False,
                                    adversarial_weight=0.0)
    control_history = train_superres(control, train.images, control_config, device=device, progress=progress)
    control_scores, _, _ = _test_scores(control, test, 4, device)
    start_scores, _, _ = _test_scores(start, test, 4, device)

    last = history.rows[-1]
    card = {
        "description": "SRGAN-style x4 super-resolution: the EDSR network of edsr_x4_mnist fine-tuned with "
                       f"L1 + {ADVERSARIAL_WEIGHT} x non-saturating adversarial loss against "
                       "DiscriminatorDCGAN(channels=32) (inputs mapped to [-1, 1]). No VGG/content loss.",
        "start_from": start_from,
        "data": f"MNIST, {len(train)} training digits in [0, 1], antialiased bicubic downsampling to 7x7; "
                f"scored on {len(test)} test digits",
        "training": {**config.to_dict(), "optimizer": "Adam for both networks",
                     "loss": f"L1 + {ADVERSARIAL_WEIGHT} * (-log D(G(x_LR)))"},
        "parameters": {"generator": count_parameters(generator), "discriminator": count_parameters(discriminator)},
        "training_wall_seconds": round(history.seconds, 1),
        "training_cpu_seconds": round(cpu_seconds, 1),
        "final_losses": {key: round(last[key], 4) for key in ("loss_d", "loss_g", "pixel", "adversarial")},
        "metrics": {**scores, "evaluation_seconds": round(eval_seconds, 1)},
        "control_without_adversarial_loss": {
            "description": "the same start, the same digits and steps at lr 1e-4, adversarial_weight 0 (L1 only)",
            "training_wall_seconds": round(control_history.seconds, 1),
            "metrics": control_scores,
        },
        "start_metrics": start_scores,
        "bicubic_baseline": bicubic,
    }
    return RecipeResult(generator.cpu().eval(), {"scale": 4, **EDSR_KWARGS}, card)


FAMILIES = (
    Family("superres", "super-resolution networks: EDSR-style, and SRGAN-style fine-tuning (super-resolution chapter)",
           classes=(EDSR,),
           recipes={"edsr_x4_mnist": Recipe(edsr_x4_mnist, EDSR_X4_MNIST, FAST),
                    "edsr_x2_mnist": Recipe(edsr_x2_mnist, EDSR_X2_MNIST, FAST),
                    "srgan_x4_mnist": Recipe(srgan_x4_mnist, SRGAN_X4_MNIST, FAST)}),
)
