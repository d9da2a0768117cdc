"""Fast adversarial training: FGSM with a random start, and the early stop that catches catastrophic overfitting.

Adversarial training (Madry et al., 2018) minimises the *robust* loss

    min_theta  E_(x, y) [ max_{|delta|_inf <= epsilon} CE(f_theta(x + delta), y) ],

approximating the inner maximum by an attack on each batch. With PGD-k the step
costs k + 1 forward/backward passes. Wong, Rice and Kolter (2020) showed that a
single FGSM step is enough *if* it starts from a uniform random point of the
ball and has a step ``alpha = 1.25 epsilon``; that costs 2 passes per batch.

Its failure is *catastrophic overfitting*: within a few hundred steps the network
learns a loss surface on which the single FGSM step stops being a good attack
(the gradient at the random start no longer points to the worst case), so FGSM
accuracy on training batches shoots up while PGD accuracy collapses to near 0.
It happens with a step that is too large or without the random start. The cure
used here is theirs: after each epoch, attack a held-out batch with PGD, keep the
weights that were most robust, and stop when PGD accuracy falls by more than
``overfit_drop`` below its best.

Example:
    >>> import torch
    >>> from aigc_lessons.models.robust_classifier import RobustMnistCNN
    >>> images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    >>> config = AdversarialTrainingConfig(epochs=1, batch_size=32, check_steps=2)
    >>> result = train_adversarial(RobustMnistCNN(), images, labels, images[:16], labels[:16], config,
    ...                            progress=False)
    >>> len(result.epochs)
    1
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..data import TensorBatches
from ..train.loop import History, fit
from .attacks import AttackError, _input_gradient, _project, _random_start, accuracy_under_attack, check_attack_inputs

__all__ = ["AdversarialTrainingConfig", "AdversarialTrainingResult", "fgsm_training_examples", "train_adversarial"]


@dataclass
class AdversarialTrainingConfig:
    """Settings of :func:`train_adversarial`; every value is range-checked on creation.

    ``step_ratio`` is alpha / epsilon (1.25 in Wong et al.); ``random_start=False``
    with ``step_ratio=1`` is plain FGSM training (Goodfellow et al. 2015). The
    learning rate rises linearly from 0 to ``lr_max`` over the first half of
    training and falls back to 0 (the one-cycle schedule of Wong et al.).
    ``epsilon_warmup_epochs`` ramps the training epsilon up from 0 (a common
    stabiliser on MNIST). Each epoch ends with PGD-``check_steps`` on the held-out batch.

    Example:
        >>> AdversarialTrainingConfig(epsilon=0.3).step_size
        0.375
    """

    epsilon: float = 0.3
    step_ratio: float = 1.25
    random_start: bool = True
    epochs: int = 10
    batch_size: int = 100
    lr_max: float = 5e-3
    epsilon_warmup_epochs: int = 0
    check_steps: int = 20
    overfit_drop: float = 0.2
    early_stopping: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epsilon", "step_ratio", "lr_max", "overfit_drop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise AttackError(f"option {name} must be a number > 0, got {value!r}")
        if self.epsilon > 1:
            raise AttackError(f"option epsilon must be in (0, 1] for pixels in [0, 1], got {self.epsilon}")
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("check_steps", 1), ("epsilon_warmup_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise AttackError(f"option {name} must be an integer >= {minimum}, got {value!r}")

    @property
    def step_size(self) -> float:
        """alpha, the FGSM step used in training."""
        return self.step_ratio * self.epsilon


def fgsm_training_examples(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
                           step_size: float, random_start: bool = True,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """The training batch of FGSM adversarial training: ``Proj(x + delta0 + alpha sign(grad))``.

    Unlike :func:`~aigc_lessons.robustness.attacks.fgsm` it does not check its
    inputs (it runs on every step, inside the training loop) and leaves the model's
    mode alone.

    Example:
        >>> from aigc_lessons.models.robust_classifier import RobustMnistCNN
        >>> x = torch.rand(2, 1, 28, 28)
        >>> out = fgsm_training_examples(RobustMnistCNN(), x, torch.tensor([1, 2]), 0.3, 0.375)
        >>> bool((out - x).abs().max() <= 0.3 + 1e-6)
        True
    """
    start = _random_start(images, epsilon, generator) if random_start else images
    gradient, _ = _input_gradient(model, start, labels)
    return _project(start + step_size * gradient.sign(), images, epsilon).detach()


@dataclass
class AdversarialTrainingResult:
    """What :func:`train_adversarial` returns: the model (the most robust weights seen) and its record."""

    model: nn.Module
    config: AdversarialTrainingConfig
    epochs: list[dict] = field(default_factory=list)   # per epoch: loss, train accuracy, check accuracies
    history: History = field(default_factory=History)
    best_epoch: int = 0
    stopped_early: bool = False
    catastrophic_overfitting: bool = False
    seconds: float = 0.0
    images_per_second: float = 0.0

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "epochs": self.epochs, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early, "catastrophic_overfitting": self.catastrophic_overfitting,
                "seconds": round(self.seconds, 1), "images_per_second": round(self.images_per_second, 1)}


def train_adversarial(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, check_images: torch.Tensor,
                      check_labels: torch.Tensor, config: AdversarialTrainingConfig | None = None,
                      progress: bool = True) -> AdversarialTrainingResult:
    """FGSM adversarial training with a random start (Wong et al. 2020) and early stopping on PGD.

    ``images`` in ``[0, 1]`` with integer ``labels`` train the model;
    ``check_images``/``check_labels`` (held out, a few hundred) are attacked with
    PGD after every epoch. The returned model carries the weights of the epoch with
    the best PGD accuracy on the check batch, in eval mode.
    """
    config = config or AdversarialTrainingConfig()
    model.eval()
    check_attack_inputs(model, images[:2], labels[:2], config.epsilon)
    check_attack_inputs(model, check_images[:2], check_labels[:2], config.epsilon)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=images.device).manual_seed(config.seed)
    batches = TensorBatches(images, labels, batch_size=config.batch_size, seed=config.seed)
    total_steps = config.epochs * len(batches)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr_max)
    # one cycle: 0 -> lr_max at the middle of training -> 0
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1 - abs(2 * (step + 1) / total_steps - 1))
    result = AdversarialTrainingResult(model=model, config=config)
    steps_done = 0

    def training_epsilon() -> float:
        if config.epsilon_warmup_epochs == 0:
            return config.epsilon
        return config.epsilon * min(1.0, (steps_done + 1) / (config.epsilon_warmup_epochs * len(batches)))

    def step(batch):
        nonlocal steps_done
        batch_images, batch_labels = batch
        epsilon = training_epsilon()
        adversarial = fgsm_training_examples(model, batch_images, batch_labels, epsilon,
                                             config.step_ratio * epsilon, config.random_start, generator)
        logits = model(adversarial)
        loss = F.cross_entropy(logits, batch_labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        steps_done += 1
        return {"loss": loss.detach(), "fgsm_accuracy": (logits.argmax(1) == batch_labels).float().mean()}

    best_accuracy, best_state = -1.0, copy.deepcopy(model.state_dict())
    training_seconds = 0.0
    started = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        epoch_started = time.perf_counter()
        fit(step, batches, epoch + 1, start_epoch=epoch, history=result.history, progress=progress,
            desc=f"adversarial training {epoch + 1}/{config.epochs}")
        training_seconds += time.perf_counter() - epoch_started
        model.eval()
        rows = [row for row in result.history.rows if row["epoch"] == epoch + 1]
        pgd_accuracy = accuracy_under_attack(model, check_images, check_labels, config.epsilon, "pgd",
                                             steps=config.check_steps, seed=config.seed)
        fgsm_accuracy = accuracy_under_attack(model, check_images, check_labels, config.epsilon, "fgsm")
        with torch.no_grad():
            clean = float((model(check_images).argmax(1) == check_labels).float().mean())
        result.epochs.append({
            "epoch": epoch + 1, "epsilon": round(training_epsilon(), 4),
            "loss": round(sum(r["loss"] for r in rows) / len(rows), 4),
            "train_fgsm_accuracy": round(sum(r["fgsm_accuracy"] for r in rows) / len(rows), 4),
            "check_clean_accuracy": round(clean, 4), "check_fgsm_accuracy": round(fgsm_accuracy, 4),
            "check_pgd_accuracy": round(pgd_accuracy, 4), "seconds": round(time.perf_counter() - started, 1),
        })
        if pgd_accuracy > best_accuracy:
            best_accuracy, best_state, result.best_epoch = pgd_accuracy, copy.deepcopy(model.state_dict()), epoch + 1
        elif best_accuracy - pgd_accuracy > config.overfit_drop:
            result.catastrophic_overfitting = True
            if config.early_stopping:
                result.stopped_early = True
                break
    if config.early_stopping:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    result.images_per_second = steps_done * config.batch_size / max(training_seconds, 1e-9)
    return result
