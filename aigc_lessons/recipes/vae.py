"""Recipes for the VAE and conditional-generation chapters' pretrained weights.

* ``vae_mnist``: VAE 784-512-512-20 (Bernoulli decoder) on dynamically binarized MNIST;
  the PyTorch example VAE (784-400-20) is trained side by side on the same data
  for the same number of epochs, and both are scored on the same binarized test set.
* ``vae2d_mnist``: VAE 784-256-256-2, a 2-D latent space that can be drawn.
* ``cvae_mnist``: conditional VAE, label concatenated to encoder and decoder inputs.
* ``cgan_mnist``: conditional GAN with a projection discriminator.
"""

from __future__ import annotations

import time

import torch

from ..core import Budget
from ..data import load_mnist

IWAE_K = 500
IWAE_IMAGES = 1000  # the IWAE estimate uses the first 1000 test images (k decoder passes each)


def _mnist01(budget: Budget, device: torch.device):
    train = load_mnist("train", device=device, subset=budget.pick(full=None, fast=2048))
    test = load_mnist("test", device=device, subset=budget.pick(full=None, fast=500))
    return train, test


def _test_metrics(model, test_binary, labels=None, iwae_k: int = IWAE_K) -> dict:
    from ..train import evaluate_vae

    scores = evaluate_vae(model, test_binary, labels, seed=0)
    n = IWAE_IMAGES
    subset = evaluate_vae(model, test_binary[:n], None if labels is None else labels[:n], iwae_k=iwae_k, seed=0)
    scores.update({"negative_elbo_first1000": subset["negative_elbo"], "iwae_nll_first1000": subset["iwae_nll"]})
    return {key: round(value, 2) for key, value in scores.items()}


def _train_scored_vae(model, train, test, epochs: int, progress: bool, device, conditional: bool = False,
                      iwae_k: int = IWAE_K):
    from ..train import VaeConfig, binarize, train_vae

    config = VaeConfig(epochs=epochs, batch_size=128, lr=1e-3, binarize=True, seed=0)
    started = time.perf_counter()
    history = train_vae(model, train.images, config, labels=train.labels if conditional else None,
                        device=device, progress=progress)
    seconds = time.perf_counter() - started
    test_binary = binarize(test.images, seed=0)
    metrics = _test_metrics(model, test_binary, test.labels if conditional else None, iwae_k)
    return config, history, round(seconds, 1), metrics


def _data_line(train, test) -> str:
    return (f"MNIST, {len(train)} training images dynamically binarized (each pixel ~ Bernoulli(intensity) "
            f"afresh every batch); scored on {len(test)} test images binarized once with seed 0")


# The judge of conditional samples: the book's reference classifier (evaluation chapter).
JUDGE = "classifier_mnist"


def _class_accuracy(sample_fn, device) -> dict:
    """Class accuracy of 10 000 conditional samples (1000 per digit) in [0, 1], judged by ``classifier_mnist``."""
    from .. import pretrained
    from ..train import conditional_class_accuracy

    if not pretrained.exists(JUDGE):
        return {"class_accuracy": f"not measured: the reference classifier {JUDGE} was not available"}
    judge = pretrained.load(JUDGE, device=device)
    accuracy, per_class = conditional_class_accuracy(judge, sample_fn, per_class=1000, device=device)
    judge_accuracy = pretrained.card(JUDGE)["card"]["metrics"]["test_accuracy"]
    return {"class_accuracy": round(accuracy, 4), "class_accuracy_per_digit": [round(float(a), 3) for a in per_class],
            "class_accuracy_samples": 10000, "judge": JUDGE, "judge_test_accuracy": judge_accuracy}


def score_class_accuracy(name: str, device: str = "auto") -> dict:
    """Measure the class accuracy of the pretrained conditional model ``name`` and store it in its card.

    Used when the judge became available after the model was trained (the
    weights are not touched, so their SHA-256 stays valid).
    """
    import json

    from .. import pretrained
    from ..core import get_device
    from ..train import sample_images

    device = get_device(device)
    model = pretrained.load(name, device=device)
    noise_generator = torch.Generator().manual_seed(1)
    if getattr(model, "mean_image", None) is not None:  # a conditional VAE: images in [0, 1] already
        def sample_fn(labels):
            return model.sample(labels, generator=noise_generator)
    else:  # a conditional GAN generator: tanh output in [-1, 1]
        def sample_fn(labels):
            z = torch.randn(len(labels), model.latent_dim, generator=noise_generator).to(device)
            return (sample_images(model, z, labels).to(device) + 1) / 2
    metrics = _class_accuracy(sample_fn, device)
    path = pretrained.WEIGHTS_DIR / f"{name}.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["card"].setdefault("metrics", {}).update(metrics)
    record["card"]["metrics_command"] = (f"python -c \"from aigc_lessons.recipes.vae import score_class_accuracy; "
                                         f"score_class_accuracy('{name}')\"")
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return metrics


def vae_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """VAE 784-512-512-20 vs the PyTorch example VAE 784-400-20, 10 epochs each, same data."""
    from ..models import VAE
    from . import RecipeResult

    train, test = _mnist01(budget, device)
    epochs = budget.pick(full=10, fast=1)
    torch.manual_seed(0)
    baseline = VAE(latent_dim=20, hidden=(400,))
    _, _, baseline_seconds, baseline_metrics = _train_scored_vae(baseline, train, test, epochs, progress, device)
    kwargs = {"latent_dim": 20, "hidden": [512, 512], "likelihood": "bernoulli"}
    torch.manual_seed(0)
    model = VAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, epochs, progress, device)
    card = {
        "description": "VAE with MLP encoder 784-512-512-(2x20) and decoder 20-512-512-784 (Bernoulli logits).",
        "data": _data_line(train, test),
        "training": config.to_dict(),
        "training_seconds": seconds,
        "metrics": {**metrics, "iwae_k": IWAE_K, "units": "nats per test image; *_first1000 on the first 1000 test images"},
        "baseline": {
            "description": "the PyTorch example VAE (784-400-20, Bernoulli decoder, Adam 1e-3, batch 128), "
                           "trained in the same run on the same data for the same number of epochs",
            "training_seconds": baseline_seconds,
            "metrics": {**baseline_metrics, "iwae_k": IWAE_K},
        },
        "final_losses": {k: round(v, 3) for k, v in history.rows[-1].items() if k not in ("epoch", "step")},
    }
    return RecipeResult(model, kwargs, card)


def vae2d_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """VAE 784-256-256-2: a 2-D latent space that can be drawn."""
    from ..models import VAE
    from . import RecipeResult

    train, test = _mnist01(budget, device)
    kwargs = {"latent_dim": 2, "hidden": [256, 256], "likelihood": "bernoulli"}
    torch.manual_seed(0)
    model = VAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, budget.pick(full=10, fast=1),
                                                          progress, device)
    card = {
        "description": "VAE with a 2-D latent space, MLP 784-256-256-(2x2) / 2-256-256-784, Bernoulli decoder.",
        "data": _data_line(train, test),
        "training": config.to_dict(),
        "training_seconds": seconds,
        "metrics": {**metrics, "iwae_k": IWAE_K, "units": "nats per test image; *_first1000 on the first 1000 test images"},
    }
    return RecipeResult(model, kwargs, card)


def cvae_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Conditional VAE 784+10-256-256-16, Bernoulli decoder."""
    from ..models import ConditionalVAE
    from . import RecipeResult

    train, test = _mnist01(budget, device)
    kwargs = {"latent_dim": 16, "hidden": [256, 256], "likelihood": "bernoulli", "num_classes": 10}
    torch.manual_seed(0)
    model = ConditionalVAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, budget.pick(full=10, fast=1),
                                                          progress, device, conditional=True)
    model.eval()
    generator = torch.Generator().manual_seed(1)
    accuracy = _class_accuracy(lambda y: model.sample(y, generator=generator), device)
    card = {
        "description": "Conditional VAE: one-hot label concatenated to the encoder input and to the latent code.",
        "data": _data_line(train, test),
        "training": config.to_dict(),
        "training_seconds": seconds,
        "metrics": {**metrics, "iwae_k": IWAE_K, "units": "nats per test image (-log p(x | y)); *_first1000 on the first 1000 test images", **accuracy},
    }
    return RecipeResult(model, kwargs, card)


def cgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Conditional GAN: embedding+concatenation generator, projection discriminator, 20 epochs."""
    from ..models import ConditionalDiscriminator, ConditionalGenerator

    kwargs = {"latent_dim": 64, "num_classes": 10, "embed_dim": 16, "hidden": [256, 512]}
    torch.manual_seed(0)
    return _conditional_gan(
        ConditionalGenerator(**kwargs), ConditionalDiscriminator(mode="projection", hidden=(256, 128)), kwargs,
        epochs=budget.pick(full=20, fast=1), check_every=5, budget=budget, device=device, progress=progress,
        description="Conditional GAN generator (z 64 + label embedding 16 -> 256 -> 512 -> 784, tanh); "
                    "trained against a projection discriminator 784-256-128 (Miyato & Koyama 2018).",
        discriminator_note="projection, hidden (256, 128), dropout 0.3")


def cgan_dcgan_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Convolutional conditional GAN: the DCGAN networks with a label embedding and a projection discriminator."""
    from ..models import ConditionalDiscriminatorDCGAN, ConditionalGeneratorDCGAN

    kwargs = {"latent_dim": 64, "num_classes": 10, "embed_dim": 16, "channels": 32}
    torch.manual_seed(0)
    return _conditional_gan(
        ConditionalGeneratorDCGAN(**kwargs), ConditionalDiscriminatorDCGAN(channels=32), kwargs,
        epochs=budget.pick(full=6, fast=1), check_every=1, budget=budget, device=device, progress=progress,
        description="Convolutional conditional GAN generator (z 64 + label embedding 16, projected to 64x7x7, "
                    "transposed convolutions 7 -> 14 -> 28, tanh); trained against a projection "
                    "discriminator on the DCGAN discriminator's convolutional features.",
        discriminator_note="projection on DCGAN features (channels 32, batch norm)")


def _conditional_gan(generator, discriminator, kwargs: dict, *, epochs: int, check_every: int, budget: Budget,
                     device: torch.device, progress: bool, description: str, discriminator_note: str):
    """Train a conditional GAN recipe; the card records class accuracy during and after training."""
    from .. import pretrained
    from ..train import CganConfig, conditional_class_accuracy, sample_images, train_cgan
    from . import RecipeResult

    train = load_mnist("train", value_range=(-1, 1), device=device, subset=budget.pick(full=None, fast=2048))
    config = CganConfig(epochs=epochs, seed=0)
    latent_dim = kwargs["latent_dim"]

    def sample_fn(labels, seed_generator):  # the judge reads images in [0, 1]; G writes [-1, 1]
        z = torch.randn(len(labels), latent_dim, generator=seed_generator).to(device)
        return (sample_images(generator, z, labels).to(device) + 1) / 2

    # Class accuracy during training (200 samples per digit every check_every epochs), when a judge is there.
    judge_model = pretrained.load(JUDGE, device=device) if pretrained.exists(JUDGE) else None
    during_training: dict[int, float] = {}

    def on_epoch_end(epoch: int) -> None:
        if judge_model is not None and (epoch % check_every == 0 or epoch == config.epochs):
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
