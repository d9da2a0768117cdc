"""The first GAN chapter's plain training step is the package's ``gan_step`` with its defaults.

The chapter teaches the step written out (``plain_gan_step``, the notebook cell tagged
``plain-gan-step``); the rest of the book trains with ``aigc_lessons.train.gan_step``,
which adds options that are off by default. This test runs the notebook's cell on its
own and checks that both steps, from the same weights and the same random numbers,
give the same losses and leave the same weights after a few steps.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc_lessons.models import DiscriminatorMLP, GeneratorMLP
from aigc_lessons.models.dcgan import DiscriminatorDCGAN, GeneratorDCGAN
from aigc_lessons.train import gan_step

NOTEBOOK = Path(__file__).resolve().parents[1] / "book" / "gan" / "first_gan.ipynb"
TAG = "plain-gan-step"
TOLERANCE = 1e-6


def plain_step_from_notebook():
    """Execute the notebook's tagged cell alone and return its ``plain_gan_step``."""
    cells = [
        cell for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "code" and TAG in cell.get("metadata", {}).get("tags", [])
    ]
    assert len(cells) == 1, f"{NOTEBOOK.name} must have exactly one code cell tagged {TAG!r}, found {len(cells)}"
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(compile("".join(cells[0]["source"]), f"{NOTEBOOK.name}:{TAG}", "exec"), namespace)
    assert callable(namespace.get("plain_gan_step")), f"the cell tagged {TAG!r} must define plain_gan_step"
    return namespace["plain_gan_step"]


def pair(kind: str):
    torch.manual_seed(0)
    if kind == "mlp":
        # No dropout: gan_step scores real and fake images in one pass through a
        # discriminator without batch norm, which draws dropout masks in another order.
        return GeneratorMLP(latent_dim=100), DiscriminatorMLP(dropout=0.0)
    return GeneratorDCGAN(latent_dim=100, channels=8), DiscriminatorDCGAN(channels=8)


def adam(module: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_plain_step_matches_gan_step(kind):
    plain_gan_step = plain_step_from_notebook()
    generator, discriminator = pair(kind)
    copies = copy.deepcopy(generator), copy.deepcopy(discriminator)
    optimizers = adam(generator), adam(discriminator)
    optimizers_copy = adam(copies[0]), adam(copies[1])
    batches = torch.rand(3, 16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1

    for step, real in enumerate(batches):
        torch.manual_seed(100 + step)  # the same noise z for both steps
        ours = plain_gan_step(generator, discriminator, *optimizers, real, 100)
        torch.manual_seed(100 + step)
        package = gan_step(*copies, *optimizers_copy, real, 100)
        for name in ("loss_d", "loss_g"):
            a, b = float(ours[name]), float(package[name])
            assert abs(a - b) <= TOLERANCE * max(1.0, abs(b)), (
                f"{kind}, step {step}: {name} is {a:.8f} in the notebook's plain step and {b:.8f} in gan_step"
            )

    for label, module, twin in (("generator", generator, copies[0]), ("discriminator", discriminator, copies[1])):
        for (name, mine), (_, theirs) in zip(module.state_dict().items(), twin.state_dict().items()):
            if mine.is_floating_point():
                gap = (mine - theirs).abs().max().item()
                assert gap <= TOLERANCE, f"{kind}: {label} {name} differs by {gap:.2e} after 3 steps"
            else:
                assert torch.equal(mine, theirs), f"{kind}: {label} {name} differs after 3 steps"


def test_the_steps_really_train():
    """The comparison is not vacuous: the weights move, and by more than the tolerance."""
    plain_gan_step = plain_step_from_notebook()
    generator, discriminator = pair("mlp")
    before = copy.deepcopy(generator.state_dict())
    real = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    plain_gan_step(generator, discriminator, adam(generator), adam(discriminator), real, 100)
    moved = max((generator.state_dict()[k] - v).abs().max().item() for k, v in before.items())
    assert moved > 100 * TOLERANCE, f"one step moved the generator's weights by only {moved:.2e}"
