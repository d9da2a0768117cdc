"""The two unconditional GAN families: the first chapter's MLP GAN and the DCGAN.

Each recipe's full setting is the dict next to it (``GAN_MLP_MNIST``,
``DCGAN_MNIST``): the recipe reads its numbers from it, the command line's
``gan_mlp`` and ``dcgan`` trainers take their defaults from it, and notebooks read
it with ``aigc_lessons.recipes.full_setting(name)``.
"""

from __future__ import annotations

import time

import torch

from ..core import Budget
from ..data import load_mnist
from ..family import CommandLineTrainer, Family, Option, Recipe, RecipeResult, TrainingSetup
from ..models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
from ..models.gan_mlp import DiscriminatorMLP, GeneratorMLP
from ..train.gan import GanConfig, count_parameters, gan_training, sample_images, train_gan

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
GAN_MLP_MNIST = {"epochs": 30, "batch_size": 128, "lr": 2e-4, "subset": None, "latent_dim": 100, "seed": 0}
GAN_MLP_MNIST_FAST = {"epochs": 1, "subset": 2048}
DCGAN_MNIST = {"epochs": 8, "batch_size": 64, "lr": 2e-4, "subset": None, "latent_dim": 100, "channels": 32,
               "seed": 0}
DCGAN_MNIST_FAST = {"epochs": 1, "subset": 1024}


def _setting(budget: Budget, full: dict, fast: dict) -> dict:
    return {**full, **fast} if budget.fast else dict(full)


def _gan_config(setting: dict) -> GanConfig:
    return GanConfig(epochs=setting["epochs"], batch_size=setting["batch_size"], lr_generator=setting["lr"],
                     lr_discriminator=setting["lr"], seed=setting["seed"])


def gan_mlp_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """The fully connected GAN of the first chapter, full setting ``GAN_MLP_MNIST`` (all 60 000 digits)."""
    setting = _setting(budget, GAN_MLP_MNIST, GAN_MLP_MNIST_FAST)
    config = _gan_config(setting)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=setting["subset"])
    generator, discriminator = GeneratorMLP(latent_dim=setting["latent_dim"]), DiscriminatorMLP()
    history = train_gan(generator, discriminator, train.images, config, device=device, progress=progress)
    last = history.rows[-1]
    card = {
        "description": "Fully connected GAN generator (100-256-512-1024-784, tanh output) for MNIST in [-1, 1].",
        "data": f"MNIST training set, {len(train)} images, pixels scaled to [-1, 1]",
        "training": config.to_dict(),
        "final_losses": {"loss_d": round(last["loss_d"], 4), "loss_g": round(last["loss_g"], 4)},
        "metrics": {},
    }
    return RecipeResult(generator, {"latent_dim": setting["latent_dim"]}, card)


def dcgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """The DCGAN chapter's generator, full setting ``DCGAN_MNIST``: 8 epochs of batch 64 on all 60 000 digits.

    The card also records FD, precision and recall on 2 000 samples after every
    epoch (``metrics.fd_by_epoch``; fewer samples than the final 10 000, so higher).
    """
    setting = _setting(budget, DCGAN_MNIST, DCGAN_MNIST_FAST)
    config = _gan_config(setting)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=setting["subset"])
    latent_dim, channels = setting["latent_dim"], setting["channels"]
    generator = GeneratorDCGAN(latent_dim=latent_dim, channels=channels)
    discriminator = DiscriminatorDCGAN(channels=channels)
    by_epoch: dict = {}

    def on_epoch_end(epoch: int) -> None:  # the learning curve: FD, precision, recall of 2 000 samples
        try:
            from ..metrics import classifier_features, frechet_distance, precision_recall, reference_images

            if "real" not in by_epoch:
                by_epoch["real"] = classifier_features(reference_images("test", 2000)[0], (0, 1), device=device,
                                                       progress=False)
            z = torch.randn(2000, latent_dim, generator=torch.Generator().manual_seed(7)).to(device)
            fake = classifier_features(sample_images(generator, z), (-1, 1), device=device, progress=False)
            precision, recall = precision_recall(by_epoch["real"], fake, k=3)
            by_epoch[str(epoch)] = {"fd_mnist": round(frechet_distance(by_epoch["real"], fake), 2),
                               "precision": round(float(precision), 3), "recall": round(float(recall), 3)}
        except Exception as error:  # a missing reference classifier must not stop the training
            by_epoch[str(epoch)] = f"not measured: {type(error).__name__}: {str(error)[:160]}"
        print(f"epoch {epoch}: {by_epoch[str(epoch)]}", flush=True)

    history = train_gan(generator, discriminator, train.images, config, device=device, progress=progress,
                        on_epoch_end=on_epoch_end)
    by_epoch.pop("real", None)
    last = history.rows[-1]
    metrics: dict = {}
    try:  # the evaluation chapter's metrics (FD of MNIST-classifier features)
        from ..metrics import evaluate_images

        started = time.perf_counter()
        noise = torch.randn(10_000, latent_dim, generator=torch.Generator().manual_seed(123)).to(device)
        samples = torch.cat([sample_images(generator, chunk) for chunk in noise.split(500)])
        scores = evaluate_images(samples, value_range=(-1, 1))
        metrics.update({k: round(float(v), 3) for k, v in scores.items() if isinstance(v, (int, float))})
        metrics["evaluated_samples"] = len(samples)
        metrics["evaluation_seconds"] = round(time.perf_counter() - started, 1)
        metrics["fd_by_epoch"] = {"samples": 2000, **by_epoch}
    except Exception as error:  # a missing reference classifier must not lose the weights
        metrics["fd_mnist"] = f"not measured: {type(error).__name__}: {str(error)[:160]}"
    card = {
        "description": "DCGAN generator for MNIST in [-1, 1]: z (100) -> 64x7x7 -> 32x14x14 -> 1x28x28, "
                       "batch norm and ReLU, tanh output; trained against DiscriminatorDCGAN(channels=32).",
        "data": f"MNIST training set, {len(train)} images, pixels scaled to [-1, 1]",
        "training": config.to_dict(),
        "parameters": {"generator": count_parameters(generator), "discriminator": count_parameters(discriminator)},
        "training_wall_seconds": round(history.seconds, 1),
        "training_cpu_seconds": round(history.cpu_seconds, 1),
        "cpu_seconds_per_epoch": round(history.cpu_seconds / config.epochs, 1),
        "final_losses": {"loss_d": round(last["loss_d"], 4), "loss_g": round(last["loss_g"], 4)},
        "metrics": metrics,
    }
    return RecipeResult(generator, {"latent_dim": latent_dim, "channels": channels}, card)


# --------------------------------------------------------------------------- the command line's trainers


def _gan_setup(generator, discriminator, config, device) -> TrainingSetup:
    """A GAN pair trained with the book's ``gan_step`` (D update, then G update), as ``train_gan`` trains it."""
    generator.to(device).train()
    discriminator.to(device).train()
    latent_dim = generator.latent_dim
    gan_config = GanConfig(lr_generator=config.lr, lr_discriminator=config.lr, precision=config.options["precision"])
    (opt_g, opt_d), step = gan_training(generator, discriminator, gan_config)

    def sample(noise_generator, count):
        return sample_images(generator, torch.randn(count, latent_dim, generator=noise_generator).to(device))

    return TrainingSetup({"generator": generator, "discriminator": discriminator},
                         {"generator": opt_g, "discriminator": opt_d}, step, sample)


def _build_gan_mlp(config, device) -> TrainingSetup:
    return _gan_setup(GeneratorMLP(latent_dim=config.options["latent_dim"]), DiscriminatorMLP(), config, device)


def _build_dcgan(config, device) -> TrainingSetup:
    channels = config.options["channels"]
    return _gan_setup(GeneratorDCGAN(latent_dim=config.options["latent_dim"], channels=channels),
                      DiscriminatorDCGAN(channels=channels), config, device)


PRECISION = Option("fp32", choices=("fp32", "bf16"))


def _latent(default: int) -> Option:
    return Option(default, minimum=1)


FAMILIES = (
    Family("gan_mlp", "fully connected GAN (first GAN chapter and the project)",
           classes=(GeneratorMLP, DiscriminatorMLP),
           recipes={"gan_mlp_mnist": Recipe(gan_mlp_mnist, GAN_MLP_MNIST, GAN_MLP_MNIST_FAST)},
           trainer=CommandLineTrainer(_build_gan_mlp, GAN_MLP_MNIST,
                                      {"latent_dim": _latent(GAN_MLP_MNIST["latent_dim"]), "precision": PRECISION})),
    Family("dcgan", "deep convolutional GAN (DCGAN chapter)",
           classes=(GeneratorDCGAN, DiscriminatorDCGAN),
           recipes={"dcgan_mnist": Recipe(dcgan_mnist, DCGAN_MNIST, DCGAN_MNIST_FAST)},
           trainer=CommandLineTrainer(_build_dcgan, DCGAN_MNIST,
                                      {"latent_dim": _latent(DCGAN_MNIST["latent_dim"]),
                                       "channels": Option(DCGAN_MNIST["channels"], minimum=1),
                                       "precision": PRECISION})),
)
