"""The VAE family: the VAE chapter's and the conditional chapter's pretrained VAEs.

* ``vae_mnist``: VAE 784-512-512-20 (Bernoulli decoder) on dynamically binarized MNIST;
  the PyTorch example VAE (784-400-20) is trained side by side on the same data
  for the same number of epochs, and both are scored on the same binarized test set.
* ``vae2d_mnist``: VAE 784-256-256-2, a 2-D latent space that can be drawn.
* ``cvae_mnist``: conditional VAE, label concatenated to encoder and decoder inputs.

Each recipe's full setting is the dict named like it (``VAE_MNIST``, ...); the
command line's ``vae`` trainer (the PyTorch example's network, the baseline of
``vae_mnist``) takes its epochs, batch size and learning rate from ``VAE_MNIST``.
The class accuracy of conditional samples (``score_class_accuracy``) is here too:
the cards of ``cvae_mnist`` and the conditional GANs name this module.
"""

from __future__ import annotations

import time

import torch

from .. import pretrained
from ..core import Budget, get_device
from ..data import load_mnist
from ..family import CommandLineTrainer, Family, Option, Recipe, RecipeResult, TrainingSetup
from ..models.vae import VAE, ConditionalVAE
from ..train.conditional import conditional_class_accuracy
from ..train.gan import sample_images
from ..train.vae import VaeConfig, binarize, evaluate_vae, train_vae, vae_training

# The full settings of the shipped weights (what they were trained with) and what fast mode changes.
VAE_MNIST = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "subset": None, "latent_dim": 20, "hidden": [512, 512],
             "seed": 0}
VAE2D_MNIST = {**VAE_MNIST, "latent_dim": 2, "hidden": [256, 256]}
CVAE_MNIST = {**VAE_MNIST, "latent_dim": 16, "hidden": [256, 256]}
FAST = {"epochs": 1, "subset": 2048}

IWAE_K = 500
IWAE_IMAGES = 1000  # the IWAE estimate uses the first 1000 test images (k decoder passes each)


def _setting(budget: Budget, full: dict) -> dict:
    return {**full, **FAST} if budget.fast else dict(full)


def _mnist01(budget: Budget, device: torch.device, setting: dict):
    train = load_mnist("train", device=device, subset=setting["subset"])
    test = load_mnist("test", device=device, subset=budget.pick(full=None, fast=500))
    return train, test


def _test_metrics(model, test_binary, labels=None, iwae_k: int = IWAE_K) -> dict:
    scores = evaluate_vae(model, test_binary, labels, seed=0)
    n = IWAE_IMAGES
    subset = evaluate_vae(model, test_binary[:n], None if labels is None else labels[:n], iwae_k=iwae_k, seed=0)
    scores.update({"negative_elbo_first1000": subset["negative_elbo"], "iwae_nll_first1000": subset["iwae_nll"]})
    return {key: round(value, 2) for key, value in scores.items()}


def _train_scored_vae(model, train, test, setting: dict, progress: bool, device, conditional: bool = False,
                      iwae_k: int = IWAE_K):
    config = VaeConfig(epochs=setting["epochs"], batch_size=setting["batch_size"], lr=setting["lr"], binarize=True,
                       seed=setting["seed"])
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
    """VAE 784-512-512-20 vs the PyTorch example VAE 784-400-20, ``VAE_MNIST["epochs"]`` each, same data."""
    setting = _setting(budget, VAE_MNIST)
    train, test = _mnist01(budget, device, setting)
    torch.manual_seed(setting["seed"])
    baseline = VAE(latent_dim=setting["latent_dim"], hidden=(400,))
    _, _, baseline_seconds, baseline_metrics = _train_scored_vae(baseline, train, test, setting, progress, device)
    kwargs = {"latent_dim": setting["latent_dim"], "hidden": setting["hidden"], "likelihood": "bernoulli"}
    torch.manual_seed(setting["seed"])
    model = VAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, setting, progress, device)
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
    setting = _setting(budget, VAE2D_MNIST)
    train, test = _mnist01(budget, device, setting)
    kwargs = {"latent_dim": setting["latent_dim"], "hidden": setting["hidden"], "likelihood": "bernoulli"}
    torch.manual_seed(setting["seed"])
    model = VAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, setting, progress, device)
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
    setting = _setting(budget, CVAE_MNIST)
    train, test = _mnist01(budget, device, setting)
    kwargs = {"latent_dim": setting["latent_dim"], "hidden": setting["hidden"], "likelihood": "bernoulli",
              "num_classes": 10}
    torch.manual_seed(setting["seed"])
    model = ConditionalVAE(**kwargs)
    config, history, seconds, metrics = _train_scored_vae(model, train, test, setting, progress, device,
                                                          conditional=True)
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


# --------------------------------------------------------------------------- the command line's trainer


def _build_vae(config, device) -> TrainingSetup:
    """The PyTorch example's VAE (784-400-latent), dynamically binarized, as ``train_vae`` trains it."""
    latent_dim = config.options["latent_dim"]
    model = VAE(latent_dim=latent_dim).to(device).train()
    vae_config = VaeConfig(lr=config.lr, beta=config.options["beta"], precision=config.options["precision"])
    optimizer, step = vae_training(model, vae_config)

    @torch.no_grad()
    def sample(noise_generator, count):
        was_training = model.training
        model.eval()
        z = torch.randn(count, latent_dim, generator=noise_generator).to(device)
        images = model.mean_image(model.decode(z)).cpu()
        model.train(was_training)
        return images

    return TrainingSetup({"vae": model}, {"vae": optimizer}, step, sample, value_range=(0.0, 1.0))


FAMILIES = (
    Family("vae", "variational autoencoder, Bernoulli decoder (VAE chapter)",
           classes=(VAE, ConditionalVAE),
           recipes={"vae_mnist": Recipe(vae_mnist, VAE_MNIST, FAST), "vae2d_mnist": Recipe(vae2d_mnist, VAE2D_MNIST, FAST),
                    "cvae_mnist": Recipe(cvae_mnist, CVAE_MNIST, FAST)},
           trainer=CommandLineTrainer(_build_vae, VAE_MNIST,
                                      {"latent_dim": Option(VAE_MNIST["latent_dim"], minimum=1),
                                       "beta": Option(1.0, minimum=0.0),
                                       "precision": Option("fp32", choices=("fp32", "bf16"))})),
)
