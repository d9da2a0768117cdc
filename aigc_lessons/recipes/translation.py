"""Recipes for the image-to-image translation chapters' pretrained generators.

* ``pix2pix_skeleton_mnist``: U-Net (16 base channels) trained with pix2pix's
  objective ``L_cGAN + 100 L1`` against a patch discriminator, skeleton -> digit,
  on all 60 000 training digits.
* ``l1_skeleton_mnist``: the same U-Net, same data and schedule, trained on the
  L1 term alone (no discriminator): the baseline that isolates the adversarial term.
* ``cyclegan_stroke_mnist``: CycleGAN's two U-Nets, A (digits as written) <->
  B (digits thickened by a 3 x 3 dilation), trained on two disjoint halves of
  the training set (30 000 digits each, no pairs).

Each card records the scores on the whole MNIST test set (10 000 digits) against
the known answers. Retrain with ``python -m aigc_lessons.recipes NAME``.
"""

from __future__ import annotations

import torch

from ..core import Budget
from ..data import load_mnist
from ..family import Family, Recipe, RecipeResult
from ..image_tasks import paired_skeletons, thicken, unpaired_stroke_domains
from ..models.translation import CycleGenerators, PatchDiscriminator, UNetGenerator
from ..train.gan import count_parameters
from ..train.translation import (
    CycleGanConfig,
    Pix2PixConfig,
    train_cyclegan,
    train_pix2pix,
    translate,
    translation_scores,
)

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
PIX2PIX_SKELETON_MNIST = {"epochs": 1, "subset": None}
L1_SKELETON_MNIST = {"epochs": 1, "subset": None}
CYCLEGAN_STROKE_MNIST = {"epochs": 1, "subset": None}
FAST = {"epochs": 1, "subset": 512}


def _rounded(scores: dict) -> dict:
    return {key: round(float(value), 4) for key, value in scores.items()}


def _paired_data(budget: Budget, device: torch.device):
    train = load_mnist("train", subset=budget.pick(full=None, fast=FAST["subset"]))
    test = load_mnist("test", subset=budget.pick(full=None, fast=500))
    return paired_skeletons(train.images, train.labels), paired_skeletons(test.images, test.labels)


def _pix2pix(budget: Budget, device: torch.device, progress: bool, adversarial: bool):
    full = PIX2PIX_SKELETON_MNIST if adversarial else L1_SKELETON_MNIST
    train, test = _paired_data(budget, device)
    config = Pix2PixConfig(epochs=budget.pick(full=full["epochs"], fast=FAST["epochs"]), adversarial=adversarial)
    torch.manual_seed(config.seed)
    generator = UNetGenerator(channels=16)
    discriminator = PatchDiscriminator(in_channels=2, channels=16) if adversarial else None
    history = train_pix2pix(generator, discriminator, train.inputs, train.targets, config, device=device,
                            progress=progress)
    outputs = translate(generator, test.inputs)
    scores = translation_scores(outputs, test.targets, test.labels, realism=True)
    baseline = translation_scores(test.inputs, test.targets, test.labels, realism=True)
    last = history.rows[-1]
    objective = "L_cGAN + 100 * L1 (pix2pix)" if adversarial else "L1 only (no discriminator)"
    card = {
        "description": f"U-Net generator (16 base channels, 28->14->7->14->28 with skips, sigmoid output), "
                       f"skeleton -> MNIST digit, trained with {objective}"
                       + ("; PatchDiscriminator(in_channels=2, channels=16), 18x18-pixel patches, 7x7 logits"
                          if adversarial else "") + ".",
        "data": f"MNIST training set, {len(train)} digits in [0, 1]; input: skeletonize(digit > 0.5), "
                f"target: the digit. Scored on {len(test)} test digits.",
        "training": config.to_dict(),
        "parameters": {"generator": count_parameters(generator),
                       **({"discriminator": count_parameters(discriminator)} if adversarial else {})},
        "training_wall_seconds": round(history.seconds, 1),
        "training_cpu_seconds": round(history.cpu_seconds, 1),
        "final_losses": _rounded({k: v for k, v in last.items() if k not in ("epoch", "step")}),
        "metrics": {**_rounded(scores), "test_images": len(test),
                    "input_as_output": _rounded(baseline),
                    "metric_notes": "l1: mean |output - target| per pixel; psnr in dB, ssim (Gaussian window), "
                                    "averaged per image; class_accuracy: classifier_mnist on the outputs against "
                                    "the true labels; fd_mnist: Frechet distance of classifier_mnist features, "
                                    "outputs vs targets; input_as_output: the same scores for the skeleton itself."},
    }
    return RecipeResult(generator.cpu().eval(), {"in_channels": 1, "out_channels": 1, "channels": 16}, card)


def pix2pix_skeleton_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """pix2pix, skeleton -> digit: 1 epoch on 60 000 pairs, lambda = 100, batch 32, Adam 2e-4 (0.5, 0.999)."""
    return _pix2pix(budget, device, progress, adversarial=True)


def l1_skeleton_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """The L1-only baseline of the pix2pix chapter: same network, data and schedule, no discriminator."""
    return _pix2pix(budget, device, progress, adversarial=False)


def cyclegan_stroke_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """CycleGAN, digits as written <-> thickened digits, two disjoint halves of the training set, 1 epoch."""
    train = load_mnist("train", subset=budget.pick(full=None, fast=FAST["subset"]))
    test = load_mnist("test", subset=budget.pick(full=None, fast=500))
    domains = unpaired_stroke_domains(train.images, train.labels, size=3, seed=0)
    config = CycleGanConfig(epochs=budget.pick(full=CYCLEGAN_STROKE_MNIST["epochs"], fast=FAST["epochs"]))
    torch.manual_seed(config.seed)
    generators = CycleGenerators(channels=16)
    discriminator_a, discriminator_b = PatchDiscriminator(channels=16), PatchDiscriminator(channels=16)
    history = train_cyclegan(generators, discriminator_a, discriminator_b, domains.domain_a, domains.domain_b,
                             config, device=device, progress=progress)
    thin_test, thick_test = test.images, thicken(test.images)
    to_b = translate(generators.a_to_b, thin_test)
    to_a = translate(generators.b_to_a, thick_test)
    round_trip_a = translate(generators.b_to_a, to_b)
    round_trip_b = translate(generators.a_to_b, to_a)
    last = history.rows[-1]
    card = {
        "description": "CycleGAN generators a_to_b (G) and b_to_a (F), each a U-Net with 16 base channels; "
                       "A = MNIST digits as written, B = digits dilated by a 3x3 max filter; discriminators "
                       "PatchDiscriminator(channels=16) (not shipped), least-squares GAN losses.",
        "data": f"MNIST training set shuffled (seed 0) and split into two disjoint halves: {len(domains.domain_a)} "
                f"digits as domain A, {len(domains.domain_b)} other digits thickened as domain B; no pairs. "
                f"Scored on {len(test)} test digits, whose true translations are known (thicken / the original).",
        "training": config.to_dict(),
        "parameters": {"generators": count_parameters(generators),
                       "discriminators": count_parameters(discriminator_a) + count_parameters(discriminator_b)},
        "training_wall_seconds": round(history.seconds, 1),
        "training_cpu_seconds": round(history.cpu_seconds, 1),
        "final_losses": _rounded({k: v for k, v in last.items() if k not in ("epoch", "step")}),
        "metrics": {
            "test_images": len(test),
            "a_to_b_vs_truth": _rounded(translation_scores(to_b, thick_test, test.labels)),
            "b_to_a_vs_truth": _rounded(translation_scores(to_a, thin_test, test.labels)),
            "cycle_l1_a": round(float((round_trip_a - thin_test).abs().mean()), 4),
            "cycle_l1_b": round(float((round_trip_b - thick_test).abs().mean()), 4),
            "cycle_a": _rounded(translation_scores(round_trip_a, thin_test, test.labels)),
            "untranslated_a_vs_thick_truth": _rounded(translation_scores(thin_test, thick_test, test.labels)),
            "classifier_on_true_thick": _rounded(translation_scores(thick_test, thick_test, test.labels)),
            "metric_notes": "a_to_b_vs_truth: G(a) against thicken(a); b_to_a_vs_truth: F(thicken(a)) against a; "
                            "cycle_l1_a: mean |F(G(a)) - a| per pixel; class_accuracy: classifier_mnist on the "
                            "outputs against the true labels; untranslated_a_vs_thick_truth: doing nothing.",
        },
    }
    return RecipeResult(generators.cpu().eval(), {"channels": 16}, card)


FAMILIES = (
    Family("translation", "image-to-image translation: pix2pix, its L1 baseline and CycleGAN (translation chapters)",
           classes=(UNetGenerator, PatchDiscriminator, CycleGenerators),
           recipes={"pix2pix_skeleton_mnist": Recipe(pix2pix_skeleton_mnist, PIX2PIX_SKELETON_MNIST, FAST),
                    "l1_skeleton_mnist": Recipe(l1_skeleton_mnist, L1_SKELETON_MNIST, FAST),
                    "cyclegan_stroke_mnist": Recipe(cyclegan_stroke_mnist, CYCLEGAN_STROKE_MNIST, FAST)}),
)
