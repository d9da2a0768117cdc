"""The conditional GAN family: the conditional chapter's class-controlled GANs.

* ``cgan_mnist``: MLP generator with a label embedding, projection discriminator.
* ``cgan_dcgan_mnist``: the DCGAN networks with a label embedding and a projection discriminator.

Each recipe's full setting is the dict named like it (``CGAN_MNIST``,
``CGAN_DCGAN_MNIST``); the command line's ``cgan`` trainer takes its defaults
from ``CGAN_MNIST``. Class accuracy is judged by the reference classifier, with
the helpers of :mod:`aigc_lessons.recipes.vae` (the conditional VAE uses them too).
"""

from __future__ import annotations

import time

import torch

from .. import pretrained
from ..data import load_mnist
from ..core import Budget
from ..family import CommandLineTrainer, Family, Option, Recipe, RecipeResult, TrainingSetup
from ..models.conditional import (
    ConditionalDiscriminator,
    ConditionalDiscriminatorDCGAN,
    ConditionalGenerator,
    ConditionalGeneratorDCGAN,
)
from ..train.conditional import CganConfig, cgan_training, conditional_class_accuracy, train_cgan
from ..train.gan import sample_images
from .vae import JUDGE, _class_accuracy

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
CGAN_MNIST = {"epochs": 20, "batch_size": 128, "lr": 2e-4, "subset": None, "latent_dim": 64, "seed": 0}
CGAN_DCGAN_MNIST = {**CGAN_MNIST, "epochs": 6, "channels": 32}
FAST = {"epochs": 1, "subset": 2048}


def _setting(budget: Budget, full: dict) -> dict:
    return {**full, **FAST} if budget.fast else dict(full)


def cgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Conditional GAN: embedding+concatenation generator, projection discriminator, full setting ``CGAN_MNIST``."""
    setting = _setting(budget, CGAN_MNIST)
    kwargs = {"latent_dim": setting["latent_dim"], "num_classes": 10, "embed_dim": 16, "hidden": [256, 512]}
    torch.manual_seed(setting["seed"])
    return _conditional_gan(
        ConditionalGenerator(**kwargs), ConditionalDiscriminator(mode="projection", hidden=(256, 128)), kwargs,
        setting=setting, check_every=5, device=device, progress=progress,
        description="Conditional GAN generator (z 64 + label embedding 16 -> 256 -> 512 -> 784, tanh); "
                    "trained against a projection discriminator 784-256-128 (Miyato & Koyama 2018).",
        discriminator_note="projection, hidden (256, 128), dropout 0.3")


def cgan_dcgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Convolutional conditional GAN: the DCGAN networks with a label embedding and a projection discriminator."""
    setting = _setting(budget, CGAN_DCGAN_MNIST)
    kwargs = {"latent_dim": setting["latent_dim"], "num_classes": 10, "embed_dim": 16, "channels": setting["channels"]}
    torch.manual_seed(setting["seed"])
    return _conditional_gan(
        ConditionalGeneratorDCGAN(**kwargs), ConditionalDiscriminatorDCGAN(channels=setting["channels"]), kwargs,
        setting=setting, check_every=1, device=device, progress=progress,
        description="Convolutional conditional GAN generator (z 64 + label embedding 16, projected to 64x7x7, "
                    "transposed convolutions 7 -> 14 -> 28, tanh); trained against a projection "
                    "discriminator on the DCGAN discriminator's convolutional features.",
        discriminator_note="projection on DCGAN features (channels 32, batch norm)")


def _conditional_gan(generator, discriminator, kwargs: dict, *, setting: dict, check_every: int,
                     device: torch.device, progress: bool, description: str, discriminator_note: str):
    """Train a conditional GAN recipe; the card records class accuracy during and after training."""
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=setting["subset"])
    config = CganConfig(epochs=setting["epochs"], batch_size=setting["batch_size"], lr_generator=setting["lr"],
                        lr_discriminator=setting["lr"], seed=setting["seed"])
    latent_dim = kwargs["latent_dim"]

    def sample_fn(labels, seed_generator):  # the judge reads images in [0, 1]; G writes [-1, 1]
        z = torch.randn(len(labels), latent_dim, generator=seed_generator).to(device)
        return (sample_images(generator, z, labels).to(device) + 1) / 2

    # Class accuracy during training (200 samples per digit every check_every epochs).
    judge_model = pretrained.load(JUDGE, device=device)
    during_training: dict[int, float] = {}

    def on_epoch_end(epoch: int) -> None:
        if epoch % check_every == 0 or epoch == config.epochs:
            noise = torch.Generator().manual_seed(2)
            accuracy, _ = conditional_class_accuracy(judge_model, lambda y: sample_fn(y, noise), per_class=200,
                                                     device=device)
            during_training[epoch] = round(accuracy, 3)

    started = time.perf_counter()
    history = train_cgan(generator, discriminator, train.images, train.labels, config, device=device,
                         progress=progress, on_epoch_end=on_epoch_end)
    seconds = time.perf_counter() - started
    noise_generator = torch.Generator().manual_seed(1)
    metrics = _class_accuracy(lambda y: sample_fn(y, noise_generator), device)
    if during_training:
        metrics["class_accuracy_by_epoch"] = {"samples": 2000, **{str(k): v for k, v in during_training.items()}}
    card = {
        "description": description,
        "data": f"MNIST training set, {len(train)} images with labels, pixels scaled to [-1, 1]",
        "training": {**config.to_dict(), "discriminator": discriminator_note},
        "training_seconds": round(seconds, 1),
        "final_losses": {k: round(v, 4) for k, v in history.rows[-1].items() if k not in ("epoch", "step")},
        "metrics": metrics,
    }
    return RecipeResult(generator, kwargs, card)


# --------------------------------------------------------------------------- the command line's trainer


def _build_cgan(config, device) -> TrainingSetup:
    """The conditional GAN with its default networks, as ``train_cgan`` trains it."""
    latent_dim = config.options["latent_dim"]
    generator = ConditionalGenerator(latent_dim=latent_dim).to(device).train()
    discriminator = ConditionalDiscriminator().to(device).train()
    cgan_config = CganConfig(lr_generator=config.lr, lr_discriminator=config.lr, precision=config.options["precision"])
    (opt_g, opt_d), step = cgan_training(generator, discriminator, cgan_config)

    def sample(noise_generator, count):
        labels = (torch.arange(count) % 10).to(device)  # in a grid 10 wide, each column is one class
        z = torch.randn(count, latent_dim, generator=noise_generator).to(device)
        return sample_images(generator, z, labels)

    return TrainingSetup({"generator": generator, "discriminator": discriminator},
                         {"generator": opt_g, "discriminator": opt_d}, step, sample, with_labels=True)


FAMILIES = (
    Family("cgan", "conditional GAN, class-controlled digits (conditional chapter)",
           classes=(ConditionalGenerator, ConditionalDiscriminator, ConditionalGeneratorDCGAN,
                    ConditionalDiscriminatorDCGAN),
           recipes={"cgan_mnist": Recipe(cgan_mnist, CGAN_MNIST, FAST),
                    "cgan_dcgan_mnist": Recipe(cgan_dcgan_mnist, CGAN_DCGAN_MNIST, FAST)},
           trainer=CommandLineTrainer(_build_cgan, CGAN_MNIST,
                                      {"latent_dim": Option(CGAN_MNIST["latent_dim"], minimum=1),
                                       "precision": Option("fp32", choices=("fp32", "bf16"))})),
)
