"""Which models ``aigc-lessons train MODEL`` can train: one small explicit table.

Each entry of :data:`TRAINERS` names a model family, says in one line what it is,
gives its default settings (full and fast mode), the extra options it accepts
(``--set key=value``), and the function that builds everything one training run
needs (:class:`TrainingSetup`): the modules, their optimizers, the step that the
chapter teaches, and a sampler. :mod:`aigc_lessons.runs` does the rest (run
folder, checkpoints, resuming) the same way for every entry.

This module imports no torch at the top, so the command-line tool can list the
models and print ``--help`` quickly; each builder imports what it needs.

Adding a model: write ``_build_<name>(config, device)`` returning a
:class:`TrainingSetup` and add one line to :data:`TRAINERS`.

Example:
    >>> sorted(TRAINERS)[:1]
    ['cgan']
    >>> TRAINERS["gan_mlp"].defaults(fast=True)["epochs"]
    1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class TrainingSetup:
    """Everything a run needs from a model family.

    Attributes:
        modules: the networks, by name (``"generator"``, ``"discriminator"``, ...);
            checkpoints store each under its name.
        optimizers: their optimizers, by name; checkpoints store their state.
        step: ``step(batch) -> {"loss_name": 0-d tensor}``, one optimisation step.
        sample: ``sample(noise_generator, count) -> images`` on the CPU, in
            ``value_range``; draws its noise from ``noise_generator`` only (a
            ``torch.Generator``), never from the global random state, so that
            sampling during training does not change the training run.
        value_range: the pixel range the model is trained on.
        with_labels: whether batches carry the class labels (conditional models).
        generator_name: the module that ``sample``/``eval`` need.
    """

    modules: dict[str, Any]
    optimizers: dict[str, Any]
    step: Callable[[tuple], dict]
    sample: Callable[[Any, int], Any]
    value_range: tuple[float, float] = (-1.0, 1.0)
    with_labels: bool = False
    generator_name: str = "generator"


@dataclass(frozen=True)
class TrainerSpec:
    """One row of the trainer table."""

    description: str
    build: Callable[..., TrainingSetup]
    full: dict
    fast: dict
    options: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # package files that must exist (models written by other chapters)

    def defaults(self, fast: bool) -> dict:
        """The default ``epochs``, ``batch_size``, ``lr``, ``subset`` for the budget."""
        return dict(self.fast if fast else self.full)

    def available(self) -> bool:
        """True when the model's code is present in this installation (checked without importing it)."""
        package = Path(__file__).parent
        return all((package / name).is_file() for name in self.requires)


def _adam(module, lr: float, betas=(0.5, 0.999)):
    import torch

    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, fused=True)  # one kernel for all tensors


def _precision(config) -> str:
    """The ``precision`` option, checked before any training starts."""
    from .core import PRECISIONS

    precision = config.options.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"option precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def _noise(noise_generator, count: int, latent_dim: int, device):
    import torch

    return torch.randn(count, latent_dim, generator=noise_generator).to(device)


def _gan_setup(generator, discriminator, config, device) -> TrainingSetup:
    """A GAN pair trained with the book's ``gan_step`` (D update, then G update)."""
    from .train.gan import gan_step, sample_images

    generator.to(device).train()
    discriminator.to(device).train()
    latent_dim = generator.latent_dim
    opt_g, opt_d = _adam(generator, config.lr), _adam(discriminator, config.lr)

    precision = _precision(config)

    def step(batch):
        return gan_step(generator, discriminator, opt_g, opt_d, batch[0], latent_dim, precision=precision)

    def sample(noise_generator, count):
        return sample_images(generator, _noise(noise_generator, count, latent_dim, device))

    return TrainingSetup({"generator": generator, "discriminator": discriminator},
                         {"generator": opt_g, "discriminator": opt_d}, step, sample)


def _build_gan_mlp(config, device) -> TrainingSetup:
    from .models import DiscriminatorMLP, GeneratorMLP

    latent_dim = int(config.options.get("latent_dim", 100))
    return _gan_setup(GeneratorMLP(latent_dim=latent_dim), DiscriminatorMLP(), config, device)


def _build_dcgan(config, device) -> TrainingSetup:
    from .models import dcgan

    latent_dim = int(config.options.get("latent_dim", 100))
    channels = int(config.options.get("channels", 32))
    return _gan_setup(dcgan.GeneratorDCGAN(latent_dim=latent_dim, channels=channels),
                      dcgan.DiscriminatorDCGAN(channels=channels), config, device)


def _build_vae(config, device) -> TrainingSetup:
    import torch

    from .models.vae import VAE
    from .train.vae import vae_step

    latent_dim = int(config.options.get("latent_dim", 20))
    beta = float(config.options.get("beta", 1.0))
    model = VAE(latent_dim=latent_dim).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    precision = _precision(config)

    def step(batch):
        x = torch.bernoulli(batch[0])  # dynamic binarization, as in the VAE chapter
        return vae_step(model, optimizer, x, None, beta, precision=precision)

    @torch.no_grad()
    def sample(noise_generator, count):
        was_training = model.training
        model.eval()
        images = model.mean_image(model.decode(_noise(noise_generator, count, latent_dim, device))).cpu()
        model.train(was_training)
        return images

    return TrainingSetup({"vae": model}, {"vae": optimizer}, step, sample, value_range=(0.0, 1.0),
                         generator_name="vae")


def _build_cgan(config, device) -> TrainingSetup:
    import torch

    from .models.conditional import ConditionalDiscriminator, ConditionalGenerator
    from .train.conditional import cgan_step
    from .train.gan import sample_images

    latent_dim = int(config.options.get("latent_dim", 64))
    generator = ConditionalGenerator(latent_dim=latent_dim).to(device).train()
    discriminator = ConditionalDiscriminator().to(device).train()
    opt_g, opt_d = _adam(generator, config.lr), _adam(discriminator, config.lr)

    precision = _precision(config)

    def step(batch):
        images, labels = batch
        return cgan_step(generator, discriminator, opt_g, opt_d, images, labels, precision)

    def sample(noise_generator, count):
        labels = (torch.arange(count) % 10).to(device)  # in a grid 10 wide, each column is one class
        return sample_images(generator, _noise(noise_generator, count, latent_dim, device), labels)

    return TrainingSetup({"generator": generator, "discriminator": discriminator},
                         {"generator": opt_g, "discriminator": opt_d}, step, sample, with_labels=True)


_GAN_FULL = {"epochs": 30, "batch_size": 128, "lr": 2e-4, "subset": None}
_GAN_FAST = {"epochs": 1, "batch_size": 128, "lr": 2e-4, "subset": 2048}

# name -> what it is, how to build it, default settings (full / fast), extra options.
TRAINERS: dict[str, TrainerSpec] = {
    "gan_mlp": TrainerSpec("fully connected GAN (first GAN chapter and the project)", _build_gan_mlp,
                           _GAN_FULL, _GAN_FAST, {"latent_dim": 100, "precision": "fp32"}),
    "dcgan": TrainerSpec("deep convolutional GAN (DCGAN chapter)", _build_dcgan,
                         {**_GAN_FULL, "epochs": 6}, _GAN_FAST,
                         {"latent_dim": 100, "channels": 32, "precision": "fp32"}, requires=("models/dcgan.py",)),
    "vae": TrainerSpec("variational autoencoder, Bernoulli decoder (VAE chapter)", _build_vae,
                       {"epochs": 20, "batch_size": 128, "lr": 1e-3, "subset": None},
                       {"epochs": 1, "batch_size": 128, "lr": 1e-3, "subset": 2048},
                       {"latent_dim": 20, "beta": 1.0, "precision": "fp32"},
                       requires=("models/vae.py", "train/vae.py")),
    "cgan": TrainerSpec("conditional GAN, class-controlled digits (conditional chapter)", _build_cgan,
                        {**_GAN_FULL, "epochs": 20}, _GAN_FAST, {"latent_dim": 64, "precision": "fp32"},
                        requires=("models/conditional.py", "train/conditional.py")),
}


class UnknownModelError(KeyError):
    """The model name is not in :data:`TRAINERS` (or its code is not installed)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def get_trainer(name: str) -> TrainerSpec:
    """The table entry for ``name``, with a clear error for unknown or unavailable models.

    Example:
        >>> get_trainer("gan_mlp").options
        {'latent_dim': 100, 'precision': 'fp32'}
    """
    if name not in TRAINERS:
        import difflib

        close = difflib.get_close_matches(name, TRAINERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Models the tool can train: {', '.join(sorted(TRAINERS))} "
            "(see 'aigc-lessons list')."
        )
    spec = TRAINERS[name]
    if not spec.available():
        raise UnknownModelError(
            f"model {name!r} needs the module {spec.requires}, which is not in this installation; "
            "update the aigc_lessons package."
        )
    return spec
