"""The diffusion family: the DDPM chapter's class-conditional diffusion model on MNIST.

* ``ddpm_mnist``: a U-Net noise predictor (:class:`~aigc_lessons.models.DiffusionModel`)
  trained with DDPM's loss, linear schedule over 1,000 steps, labels dropped 10% of the
  time so that the same network is also the unconditional model (label 10 = "no label")
  that classifier-free guidance needs. Sampled with DDIM.

The card scores 10,000 guided samples (1,000 per digit; seed 0, as the evaluation table draws
them) and 2,000 unconditional ones (sampling is the slow part on a CPU) with
the evaluation chapter's metrics, and trains the augmentation chapter's small classifier
on 10,000 generated digits only, beside the same classifier trained on the convolutional
cGAN's digits and on 10,000 real ones, all tested on the real test set.

The full setting is ``DDPM_MNIST``; the command line's ``diffusion`` trainer takes its
defaults from it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from .. import pretrained
from ..augmentation import ClassifierConfig, evaluate_classifier, train_classifier
from ..core import Budget
from ..data import load_mnist
from ..family import CommandLineTrainer, Family, Option, Recipe, RecipeResult, TrainingSetup
from ..metrics.quality import evaluate_images
from ..models.diffusion import DiffusionModel
from ..train.diffusion import DIFFUSION_RULES, DiffusionConfig, diffusion_training, train_diffusion

# The full setting of the shipped weights (what they were trained with) and what fast mode changes.
DDPM_MNIST = {"epochs": 6, "batch_size": 128, "lr": 1e-3, "warmup_steps": 500, "grad_clip": 1.0,
              "label_dropout": 0.1, "ema_decay": 0.999, "channels": [32, 64, 64], "embed_dim": 128,
              "schedule": "linear", "timesteps": 1000, "sampling_steps": 10, "guidance": 1.0,
              "subset": None, "seed": 0, "evaluation_samples": 10_000, "unconditional_samples": 2000}
FAST = {"epochs": 1, "subset": 512, "evaluation_samples": 200, "unconditional_samples": 100, "sampling_steps": 5}

# The classifier that learns from generated digits only (the augmentation chapter's, trained longer).
SYNTHETIC_CLASSIFIER = ClassifierConfig(steps=3000, batch_size=128)
BASELINE_GAN = "cgan_dcgan_mnist"

MODEL_KEYS = ("channels", "embed_dim", "schedule", "timesteps", "sampling_steps", "guidance")
CONFIG_KEYS = ("epochs", "batch_size", "lr", "warmup_steps", "grad_clip", "label_dropout", "ema_decay", "seed")


def _classifier_on(images: torch.Tensor, labels: torch.Tensor, test, device, steps: int) -> float:
    """Real-test-set accuracy of the small classifier trained only on ``images`` in [0, 1]."""
    classifier = train_classifier(images, labels, replace(SYNTHETIC_CLASSIFIER, steps=steps), seed=0, device=device)
    return round(evaluate_classifier(classifier, test.images, test.labels)["accuracy"], 4)


def _rounded(scores: dict) -> dict:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in scores.items()}


def ddpm_mnist(budget: Budget, device: torch.device, progress: bool = True) -> RecipeResult:
    """The class-conditional DDPM of the diffusion chapters, scored guided and unguided."""
    setting = {**DDPM_MNIST, **FAST} if budget.fast else dict(DDPM_MNIST)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=setting["subset"])
    kwargs = {key: setting[key] for key in MODEL_KEYS} | {"num_classes": 10}
    torch.manual_seed(setting["seed"])
    model = DiffusionModel(**kwargs)
    config = DiffusionConfig(**{key: setting[key] for key in CONFIG_KEYS})
    started = time.perf_counter()
    history, averaged = train_diffusion(model, train.images, config, labels=train.labels, device=device,
                                        progress=progress)
    seconds = round(time.perf_counter() - started, 1)

    count = setting["evaluation_samples"]
    started = time.perf_counter()
    images, labels = averaged.sample_for_evaluation(count, torch.Generator().manual_seed(0))
    sampling_seconds = round(time.perf_counter() - started, 1)
    guided = _rounded(evaluate_images(images, (0, 1), labels=labels, device=device, progress=progress))
    # The same network with the "no label" index and no guidance is the unconditional model.
    unconditional_count, noise = setting["unconditional_samples"], torch.Generator().manual_seed(2)
    unconditional_images = torch.cat([
        (averaged.sample(size, torch.full((size,), 10), guidance=0.0, generator=noise).cpu() + 1) / 2
        for size in (min(500, unconditional_count - s) for s in range(0, unconditional_count, 500))])
    unconditional = _rounded(evaluate_images(unconditional_images, (0, 1), device=device, progress=progress))

    test = load_mnist("test", value_range=(0, 1), subset=budget.pick(full=None, fast=500))
    steps = budget.pick(full=SYNTHETIC_CLASSIFIER.steps, fast=20)
    real = load_mnist("train", value_range=(0, 1), subset=count)
    gan = pretrained.load(BASELINE_GAN, device=device)
    gan_images, gan_labels = gan.sample_for_evaluation(count, torch.Generator().manual_seed(1))
    train_on_generated = {
        "ddpm_mnist": _classifier_on(images, labels, test, device, steps),
        BASELINE_GAN: _classifier_on(gan_images, gan_labels, test, device, steps),
        "real_training_images": _classifier_on(real.images, real.labels, test, device, steps),
        "images_each": count, "classifier_steps": steps, "test_images": len(test),
    }
    card = {
        "description": (f"Class-conditional DDPM: U-Net noise predictor with widths {setting['channels']} at "
                        f"28/14/7 pixels, sinusoidal time embedding and a label embedding (index 10 = no label), "
                        f"{setting['schedule']} schedule over {setting['timesteps']} steps; the weights are the "
                        f"EMA (decay {setting['ema_decay']}) of the trained ones"),
        "data": f"MNIST, {len(train)} training images scaled to [-1, 1]",
        "training": {**config.to_dict(), "subset": setting["subset"]},
        "training_seconds": seconds,
        "final_loss": round(history.rows[-1]["loss"], 4),
        "sampling": {"sampler": "DDIM, eta = 0", "steps": setting["sampling_steps"], "guidance": setting["guidance"],
                     "seconds_for_evaluation_samples": sampling_seconds},
        "metrics": {**guided, "unconditional": unconditional, "train_on_generated": train_on_generated,
                    "units": "fd_mnist etc. as in the evaluation chapter (reference classifier features); "
                             "guided samples 1/10 per digit, unconditional samples with label 10 and no guidance"},
    }
    return RecipeResult(averaged, kwargs, card)


# --------------------------------------------------------------------------- the command line's trainer

def _build_diffusion(config, device) -> TrainingSetup:
    """A class-conditional diffusion model trained as ``train_diffusion`` trains it (EMA included)."""
    options = config.options
    model = DiffusionModel(channels=tuple(options["channels"]), num_classes=10).to(device).train()
    settings = DiffusionConfig(lr=config.lr, label_dropout=options["label_dropout"], ema_decay=options["ema_decay"])
    optimizer, ema, step = diffusion_training(model, settings, conditional=True)
    modules = {"model": model} if ema is None else {"model": model, "ema": ema}

    @torch.no_grad()
    def sample(noise_generator, count):
        sampler = model if ema is None else ema.module
        labels = torch.arange(count) % 10
        return sampler.sample(count, labels, sampling_steps=options["sampling_steps"],
                              guidance=options["guidance"], generator=noise_generator).cpu()

    return TrainingSetup(modules, {"model": optimizer}, step, sample, with_labels=True)


FAMILIES = (
    Family("diffusion", "denoising diffusion, class-conditional with guidance (diffusion chapters)",
           classes=(DiffusionModel,),
           recipes={"ddpm_mnist": Recipe(ddpm_mnist, DDPM_MNIST, FAST)},
           trainer=CommandLineTrainer(_build_diffusion, DDPM_MNIST,
                                      {"channels": Option(DDPM_MNIST["channels"], minimum=8),
                                       "label_dropout": replace(DIFFUSION_RULES["label_dropout"],
                                                                default=DDPM_MNIST["label_dropout"]),
                                       "ema_decay": replace(DIFFUSION_RULES["ema_decay"],
                                                            default=DDPM_MNIST["ema_decay"]),
                                       "sampling_steps": Option(DDPM_MNIST["sampling_steps"], minimum=1),
                                       "guidance": Option(DDPM_MNIST["guidance"], minimum=0.0)})),
)
