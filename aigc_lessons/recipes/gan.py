"""Recipes for the GAN chapters' pretrained weights."""

from __future__ import annotations

import torch

from ..core import Budget
from ..data import load_mnist


def gan_mlp_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """The fully connected GAN of the first chapter, full setting: 30 epochs on all 60 000 digits."""
    from ..models import DiscriminatorMLP, GeneratorMLP
    from ..train import GanConfig, train_gan
    from . import RecipeResult

    config = GanConfig(epochs=budget.pick(full=30, fast=1), seed=0)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=budget.pick(full=None, fast=2048))
    generator, discriminator = GeneratorMLP(latent_dim=100), DiscriminatorMLP()
    history = train_gan(generator, discriminator, train.images, config, device=device, progress=progress)
    last = history.rows[-1]
    card = {
        "description": "Fully connected GAN generator (100-256-512-1024-784, tanh output) for MNIST in [-1, 1].",
        "data": f"MNIST training set, {len(train)} images, pixels scaled to [-1, 1]",
        "training": config.to_dict(),
        "final_losses": {"loss_d": round(last["loss_d"], 4), "loss_g": round(last["loss_g"], 4)},
        "metrics": {},
    }
    return RecipeResult(generator, {"latent_dim": 100}, card)


def dcgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """The DCGAN chapter's generator, full setting: 4 epochs on all 60 000 digits, width 32."""
    import time

    from ..models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
    from ..train import GanConfig, count_parameters, sample_images, train_gan
    from . import RecipeResult

    config = GanConfig(epochs=budget.pick(full=4, fast=1), seed=0)
    train = load_mnist("train", value_range=(-1, 1), device=device, subset=budget.pick(full=None, fast=1024))
    generator, discriminator = GeneratorDCGAN(latent_dim=100, channels=32), DiscriminatorDCGAN(channels=32)
    history = train_gan(generator, discriminator, train.images, config, device=device, progress=progress)
    last = history.rows[-1]
    metrics: dict = {}
    try:  # the evaluation chapter's metrics (FD of MNIST-classifier features), when they are installed
        from ..metrics import evaluate_images

        started = time.perf_counter()
        noise = torch.randn(10_000, 100, generator=torch.Generator().manual_seed(123)).to(device)
        samples = torch.cat([sample_images(generator, chunk) for chunk in noise.split(500)])
        scores = evaluate_images(samples, value_range=(-1, 1))
        metrics.update({k: round(float(v), 3) for k, v in scores.items() if isinstance(v, (int, float))})
        metrics["evaluated_samples"] = len(samples)
        metrics["evaluation_seconds"] = round(time.perf_counter() - started, 1)
    except Exception as error:  # a missing metrics module or reference classifier must not lose the weights
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
    return RecipeResult(generator, {"latent_dim": 100, "channels": 32}, card)
