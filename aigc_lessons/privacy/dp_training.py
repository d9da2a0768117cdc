"""DP-SGD with Opacus: a private MNIST classifier and a private conditional generator.

DP-SGD (Abadi et al., 2016) changes two lines of SGD: each example's gradient is
clipped to norm at most ``C`` (``max_grad_norm``), and Gaussian noise of standard
deviation ``σ C`` (``σ`` the *noise multiplier*) is added to their sum before the
step. Batches are drawn by Poisson sampling (each example joins with probability
``q = batch_size / N``), and an *accountant* adds up the privacy loss of all
steps: the Rényi DP accountant (Mironov, 2017) by default, or the PRV accountant.
Opacus (Yousefpour et al., 2021) does all of it: ``PrivacyEngine`` turns a model,
optimizer and data loader into their private versions and, given a target
``(ε, δ)`` and a number of epochs, picks ``σ``.

* :class:`DPConfig` and :func:`train_dp_classifier`: :class:`PrivateMnistCNN`
  trained with DP-SGD (``target_epsilon=None`` trains the same network without
  privacy, the baseline). Returns a :class:`DPRun` with accuracy and the
  accountant's ε after every epoch.
* :func:`train_dp_cvae`: the book's :class:`~aigc_lessons.models.ConditionalVAE`
  trained with DP-SGD; :func:`synthetic_training_accuracy` trains a classifier on
  the samples of a conditional generator only (``aigc_lessons.augmentation.train_classifier``)
  and scores it on the real test digits. :mod:`.mean_embedding` makes a private
  generator without DP-SGD.

Everything released from the private model (its weights, its samples) is as
private as the model: post-processing cannot lose privacy.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..models.private_classifier import PrivateMnistCNN
from .mechanisms import PrivacyError, check_delta, check_epsilon

DELTA = 1e-5  # below 1 / 60 000, the number of people (training digits) in MNIST
ACCOUNTANTS = ("rdp", "prv")


def check_unit_images(images: torch.Tensor, name: str = "images") -> None:
    """A :class:`PrivacyError` unless ``images`` is a float tensor ``(N, 1, 28, 28)`` in ``[0, 1]``."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise PrivacyError(f"{name} must be a float tensor, got {type(images).__name__}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise PrivacyError(f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if len(images) and (float(images.min()) < 0 or float(images.max()) > 1 or not torch.isfinite(images).all()):
        raise PrivacyError(f"{name} must lie in [0, 1] (as load_mnist returns them), got values in "
                           f"[{float(images.min()):.3g}, {float(images.max()):.3g}]; "
                           f"map [-1, 1] images with (x + 1) / 2")


@dataclass
class DPSGDSettings:
    """What every DP-SGD run here needs: the budget, the steps, the clipping and the accountant."""

    target_epsilon: float | None = 3.0
    delta: float = DELTA
    epochs: int = 6
    batch_size: int = 512
    lr: float = 2.0
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    seed: int = 0
    subset: int | None = None  # train on the first `subset` digits (tests, fast mode)

    def __post_init__(self) -> None:
        if self.target_epsilon is not None:
            self.target_epsilon = check_epsilon(self.target_epsilon, "target_epsilon")
        self.delta = check_delta(self.delta)
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise PrivacyError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} "
                                   f"integer, got {value!r}")
        for name in ("lr", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise PrivacyError(f"{name} must be a finite number > 0, got {value!r}")
        if self.accountant not in ACCOUNTANTS:
            raise PrivacyError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")
        if self.subset is not None and (not isinstance(self.subset, int) or self.subset < self.batch_size):
            raise PrivacyError(f"subset must be None or an integer >= batch_size ({self.batch_size}), "
                               f"got {self.subset!r}")

    @property
    def noise_free(self) -> bool:
        """True when ``target_epsilon`` is None: the same run without clipping or noise (the baseline)."""
        return self.target_epsilon is None


@dataclass
class DPConfig(DPSGDSettings):
    """DP-SGD for :class:`PrivateMnistCNN` (plain SGD, large steps: the noisy mean gradient is small).

    ``target_epsilon=None`` means no privacy (plain SGD with the same settings, the baseline).

    Example:
        >>> DPConfig(target_epsilon=3.0).noise_free
        False
        >>> DPConfig(target_epsilon=0)
        Traceback (most recent call last):
        ...
        aigc_lessons.privacy.mechanisms.PrivacyError: target_epsilon must be a finite number > 0 (...
    """

    momentum: float = 0.0
    channels: tuple[int, int] = (16, 32)
    hidden: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.momentum < 1:
            raise PrivacyError(f"momentum must be in [0, 1), got {self.momentum}")


@dataclass
class DPRun:
    """What a DP-SGD run returns: the trained model (unwrapped) and its record."""

    model: nn.Module
    accuracy: float
    epsilon: float | None          # the accountant's ε after the last step (None: no privacy)
    noise_multiplier: float
    seconds: float
    steps: int
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, epsilon, accuracy, loss
    cpu_seconds: float = math.nan  # CPU time of this process (all threads): less load-dependent than wall time

    def record(self) -> dict:
        """Everything but the model, rounded, for JSON and model cards."""
        return {"accuracy": round(self.accuracy, 4),
                "epsilon": None if self.epsilon is None else round(self.epsilon, 3),
                "noise_multiplier": round(self.noise_multiplier, 4), "seconds": round(self.seconds, 1),
                "cpu_seconds": round(self.cpu_seconds, 1), "steps": self.steps, "history": self.history}


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, loader: torch.utils.data.DataLoader,
                 config: DPConfig):
    """Opacus's private model, optimizer, Poisson-sampled loader and engine for ``config``.

    The noise multiplier is chosen by Opacus so that ``config.epochs`` epochs spend
    exactly ``config.target_epsilon`` at ``config.delta``. Refuses a model Opacus
    cannot train privately (batch norm, for example), naming the layers.
    """
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        raise PrivacyError(f"this model cannot be trained with DP-SGD: {problems}; replace batch norm with "
                           f"group norm (opacus.validators.ModuleValidator.fix does it)")
    with warnings.catch_warnings():  # Opacus warns about secure RNG: this is a lesson, not a deployment
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant=config.accountant)
        model, optimizer, loader = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader, target_epsilon=config.target_epsilon,
            target_delta=config.delta, epochs=config.epochs, max_grad_norm=config.max_grad_norm)
    return model, optimizer, loader, engine


def _loader(tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int) -> torch.utils.data.DataLoader:
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _epsilon(engine, delta: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(engine.get_epsilon(delta))


@torch.no_grad()
def accuracy_on(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` (in [0, 1]) that ``model`` labels correctly (the model is left in eval mode)."""
    from ..augmentation import evaluate_classifier

    return evaluate_classifier(model, images, labels, batch_size)["accuracy"]


def train_dp_classifier(config: DPConfig | None = None, train=None, test=None, progress: bool = False,
                        device: str | torch.device = "cpu") -> DPRun:
    """Train :class:`PrivateMnistCNN` with DP-SGD (or without privacy); score it on the test digits.

    ``train`` and ``test`` are ``(images, labels)`` pairs with images in ``[0, 1]``;
    by default the MNIST splits (``config.subset`` of the training digits).

    Example:
        >>> run = train_dp_classifier(DPConfig(target_epsilon=3.0, epochs=1, subset=1024))  # doctest: +SKIP
        >>> run.epsilon <= 3.0 + 1e-2  # doctest: +SKIP
        True
    """
    from ..data import load_mnist

    config = config or DPConfig()
    if train is None:
        data = load_mnist("train", subset=config.subset)
        train = (data.images, data.labels)
    if test is None:
        data = load_mnist("test")
        test = (data.images, data.labels)
    check_unit_images(train[0], "training images")
    check_unit_images(test[0], "test images")
    torch.manual_seed(config.seed)
    model = PrivateMnistCNN(channels=tuple(config.channels), hidden=config.hidden).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    test_images, test_labels = test[0].to(device), test[1].to(device)

    def cross_entropy(network, images, labels):
        return F.cross_entropy(network(images), labels)

    def scores(network, mean_loss):
        return {"accuracy": round(accuracy_on(network, test_images, test_labels), 4), "loss": round(mean_loss, 4)}

    return _train_private(model, optimizer, train, config, cross_entropy, scores, desc="DP-SGD",
                          progress=progress, device=device)


def _train_private(model: nn.Module, optimizer: torch.optim.Optimizer, train: tuple[torch.Tensor, torch.Tensor],
                   config: DPSGDSettings, loss_of_batch, scores_of_epoch, *, desc: str, progress: bool,
                   device: str | torch.device) -> DPRun:
    """The DP-SGD loop of every model here: Opacus's private versions, an epoch at a time, ε after each.

    ``loss_of_batch(model, images, labels)`` is the batch's mean loss (Opacus clips
    each example's gradient of it); ``scores_of_epoch(model, mean_loss)`` returns the
    numbers that the epoch's history row records. With ``config.noise_free`` the same
    loop runs without clipping or noise.
    """
    from tqdm.auto import tqdm

    loader = _loader(train, config.batch_size, config.seed)
    engine, sigma, epsilon = None, 0.0, None
    if not config.noise_free:
        model, optimizer, loader, engine = make_private(model, optimizer, loader, config)
        sigma = float(optimizer.noise_multiplier)
    history, steps = [], 0
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # Opacus's hooks on the first layer warn that the images need no gradient: they need none
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for epoch in range(1, config.epochs + 1):
            model.train()
            total, count = 0.0, 0
            for images, labels in tqdm(loader, desc=f"{desc} epoch {epoch}", disable=not progress, leave=False):
                if len(images) == 0:  # Poisson sampling can draw an empty batch; Opacus still steps (noise only)
                    continue
                images, labels = images.to(device), labels.to(device)
                loss = loss_of_batch(model, images, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count, steps = total + float(loss.detach()) * len(labels), count + len(labels), steps + 1
            epsilon = None if engine is None else _epsilon(engine, config.delta)
            history.append({"epoch": epoch, "epsilon": None if epsilon is None else round(epsilon, 3),
                            **scores_of_epoch(model, total / max(count, 1)),
                            "seconds": round(time.perf_counter() - started, 1)})
    seconds = time.perf_counter() - started
    plain = model._module if hasattr(model, "_module") else model  # unwrap Opacus's GradSampleModule
    return DPRun(plain.cpu().eval(), history[-1].get("accuracy", math.nan), epsilon, sigma, seconds, steps,
                 history, time.process_time() - cpu_started)


# --------------------------------------------------------------------------- a private generator

@dataclass
class DPGeneratorConfig(DPSGDSettings):
    """DP-SGD for the conditional VAE: ε = 10 by default, Adam, a small MLP.

    Example:
        >>> DPGeneratorConfig().target_epsilon
        10.0
    """

    target_epsilon: float | None = 10.0
    epochs: int = 4
    batch_size: int = 512
    lr: float = 3e-3
    latent_dim: int = 8
    hidden_units: tuple[int, ...] = (64,)


def train_dp_cvae(config: DPGeneratorConfig | None = None, train=None, progress: bool = False,
                  device: str | torch.device = "cpu") -> DPRun:
    """Train a :class:`~aigc_lessons.models.ConditionalVAE` (Bernoulli decoder) with DP-SGD.

    The loss of each example is its negative ELBO (``aigc_lessons.losses.negative_elbo``);
    Opacus clips each example's gradient of it. The returned run's ``accuracy`` is
    ``nan``: score the generator with :func:`synthetic_training_accuracy`.

    Example:
        >>> run = train_dp_cvae(DPGeneratorConfig(epochs=1, subset=512))  # doctest: +SKIP
    """
    from ..data import load_mnist
    from ..losses.vae import negative_elbo
    from ..models import ConditionalVAE

    config = config or DPGeneratorConfig()
    if train is None:
        data = load_mnist("train", subset=config.subset)
        train = (data.images, data.labels)
    check_unit_images(train[0], "training images")
    torch.manual_seed(config.seed)
    model = ConditionalVAE(latent_dim=config.latent_dim, hidden=tuple(config.hidden_units)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def elbo_loss(network, images, labels):
        decoded, mu, logvar = network(images, labels)
        return negative_elbo(decoded, images, mu, logvar, "bernoulli")[0].mean()

    return _train_private(model, optimizer, train, config, elbo_loss,
                          lambda network, mean_loss: {"negative_elbo": round(mean_loss, 2)},
                          desc="DP-CVAE", progress=progress, device=device)


def synthetic_training_accuracy(model: nn.Module, per_class: int = 1000, steps: int = 1500, seed: int = 0,
                                test=None) -> dict:
    """Train the augmentation chapter's small classifier on the generator's samples only; score on real test.

    The usual test of a private generator ("train on synthetic, test on real"):
    the classifier never sees a real digit, so its accuracy measures how much of
    what tells digits apart the private generator kept. ``model`` is any conditional
    generator of the book: its ``sample_for_evaluation`` gives ``per_class`` images of
    each digit (labels ``i % 10``), drawn from ``seed``.

    Example:
        >>> synthetic_training_accuracy(model, per_class=10, steps=5)["accuracy"]  # doctest: +SKIP
    """
    from ..augmentation import ClassifierConfig, evaluate_classifier, train_classifier
    from ..data import load_mnist

    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise PrivacyError(f"per_class must be a positive integer, got {per_class!r}")
    images, labels = model.sample_for_evaluation(10 * per_class, torch.Generator().manual_seed(seed))
    if labels is None:
        raise PrivacyError(f"{type(model).__name__} is unconditional: a classifier needs labelled samples")
    classifier = train_classifier(images, labels, ClassifierConfig(steps=steps, batch_size=128), seed=seed)
    if test is None:
        data = load_mnist("test")
        test = (data.images, data.labels)
    check_unit_images(test[0], "test images")
    scores = evaluate_classifier(classifier, test[0], test[1])
    return {"accuracy": round(scores["accuracy"], 4), "samples": len(labels), "steps": steps}


def config_dict(config: DPSGDSettings) -> dict:
    """The config as a plain dict (tuples as lists), for cards and JSON."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}
