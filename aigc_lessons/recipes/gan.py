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
