"""Membership inference: was this example in the training set? Measured by ROC AUC.

A model that memorises its training examples gives them lower loss than examples
it never saw. The simplest attack (Yeom et al., 2018; the loss version of Shokri
et al., 2017's shadow-model attack) thresholds that loss: "member" when
``loss(x, y) < τ``. Sweeping ``τ`` traces a ROC curve; its area (AUC) is the
probability that a random member scores as more likely a member than a random
non-member: 0.5 means the model's losses tell nothing, 1 means they tell all.

Differential privacy bounds every such attack: an ``(ε, δ)``-DP training run has
true-positive rate at most ``exp(ε) FPR + δ`` at every false-positive rate, and
what the attack gains in practice is usually far less.

* :func:`per_example_loss`, :func:`membership_attack` (AUC, ROC, advantage).
* :func:`train_overfit_classifier`: the augmentation chapter's small classifier
  trained long on ``size`` images only (the memorising model).
* :func:`member_split`: members and non-members drawn the same way for each model.

The same attack against a *generator* (Hayes et al., 2019; Hilprecht et al., 2019):
a VAE's negative ELBO is an upper bound on ``-log p(x)``, the model's own density
of the image, pixel by pixel, so a VAE that memorised its training images gives
them a much lower negative ELBO than unseen images.

* :func:`per_example_negative_elbo`, :func:`generator_membership_attack`: the
  ELBO-threshold attack (a fixed, seeded number of ELBO samples per image).
* :func:`train_overfit_vae`: the VAE chapter's ``VAE`` trained many epochs on
  ``size`` images (the memorising generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .dp_training import check_unit_images
from .mechanisms import PrivacyError


@torch.no_grad()
def per_example_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     batch_size: int = 1000) -> torch.Tensor:
    """Cross-entropy of each example under ``model`` (images in [0, 1]); shape ``(N,)``.

    Example:
        >>> from aigc_lessons.models import MnistClassifier
        >>> per_example_loss(MnistClassifier(), torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2])).shape
        torch.Size([3])
    """
    check_unit_images(images)
    if labels.shape != (len(images),):
        raise PrivacyError(f"need one label per image: {len(images)} images, labels of shape {tuple(labels.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses = [F.cross_entropy(model(images[start:start + batch_size].to(device)),
                              labels[start:start + batch_size].to(device), reduction="none").cpu()
              for start in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(losses)


@dataclass
class AttackResult:
    """A loss-threshold attack's scores: AUC, ROC curve, best advantage ``max(TPR - FPR)``."""

    auc: float
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    advantage: float
    member_loss: float       # median loss of the members
    non_member_loss: float   # median loss of the non-members

    def tpr_at(self, fpr: float) -> float:
        """True-positive rate of the attack at false-positive rate ``fpr`` (a point of the ROC curve)."""
        return float(np.interp(fpr, self.false_positive_rate, self.true_positive_rate))


def attack_from_losses(member_losses: torch.Tensor, non_member_losses: torch.Tensor) -> AttackResult:
    """The threshold attack on given per-example losses: score ``-loss`` (higher = more likely a member).

    Example:
        >>> attack_from_losses(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])).auc
        1.0
    """
    from ..metrics.images import roc_auc

    member_losses, non_member_losses = torch.as_tensor(member_losses), torch.as_tensor(non_member_losses)
    if member_losses.dim() != 1 or non_member_losses.dim() != 1 or not len(member_losses) \
            or not len(non_member_losses):
        raise PrivacyError(f"need two non-empty 1-D tensors of losses, got shapes {tuple(member_losses.shape)} "
                           f"and {tuple(non_member_losses.shape)}")
    if not (torch.isfinite(member_losses).all() and torch.isfinite(non_member_losses).all()):
        raise PrivacyError("the losses must be finite; a NaN or infinite loss means a diverged model")
    scores = -torch.cat([member_losses, non_member_losses])
    is_member = torch.cat([torch.ones(len(member_losses)), torch.zeros(len(non_member_losses))])
    auc, fpr, tpr = roc_auc(scores, is_member)
    return AttackResult(auc, fpr, tpr, float((tpr - fpr).max()), float(member_losses.median()),
                        float(non_member_losses.median()))


def membership_attack(model: nn.Module, members: tuple[torch.Tensor, torch.Tensor],
                      non_members: tuple[torch.Tensor, torch.Tensor]) -> AttackResult:
    """Run the loss-threshold attack: score ``-loss`` (higher = more likely a member).

    Example:
        >>> result = membership_attack(model, (train_x, train_y), (test_x, test_y))  # doctest: +SKIP
        >>> result.auc  # doctest: +SKIP
        0.93
    """
    return attack_from_losses(per_example_loss(model, *members), per_example_loss(model, *non_members))


ELBO_SAMPLES = 8  # latent draws per image for the attack's negative ELBO (the same seeded draws for every set)


@torch.no_grad()
def per_example_negative_elbo(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                              samples: int = ELBO_SAMPLES, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Negative ELBO (nats) of each image under a VAE, averaged over ``samples`` seeded latent draws.

    ``labels`` are used only by a conditional VAE (which then needs them). The
    latent noise comes from a generator seeded with ``seed``, drawn in the order of
    the images, so two sets of the same size see exactly the same noise: members and
    non-members are scored alike. Shape ``(N,)``; the model is left as it was.

    Example:
        >>> from aigc_lessons.models import VAE
        >>> per_example_negative_elbo(VAE(latent_dim=2), torch.rand(3, 1, 28, 28)).shape
        torch.Size([3])
        >>> per_example_negative_elbo(VAE(latent_dim=2), torch.rand(3, 1, 28, 28), torch.zeros(2))
        Traceback (most recent call last):
        ...
        aigc_lessons.privacy.mechanisms.PrivacyError: need one label per image: 3 images, labels of shape (2,)
    """
    from ..losses.vae import negative_elbo

    check_unit_images(images)
    if labels is not None and tuple(labels.shape) != (len(images),):
        raise PrivacyError(f"need one label per image: {len(images)} images, labels of shape {tuple(labels.shape)}")
    conditional = getattr(model, "num_classes", 0) > 0
    if conditional and labels is None:
        raise PrivacyError(f"{type(model).__name__} is conditional: pass the labels of the images")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise PrivacyError(f"samples must be a positive integer, got {samples!r}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        extra = (labels[start:start + batch_size].to(device),) if conditional else ()
        mu, logvar = model.encode(x, *extra)
        total = torch.zeros(len(x), device=device)
        for _ in range(samples):
            z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator).to(device)
            total += negative_elbo(model.decode(z, *extra), x, mu, logvar, model.likelihood, 1.0,
                                   model.variance)[0]
        losses.append((total / samples).cpu())
    model.train(was_training)
    return torch.cat(losses)


def generator_membership_attack(model: nn.Module, members: tuple[torch.Tensor, torch.Tensor],
                                non_members: tuple[torch.Tensor, torch.Tensor], samples: int = ELBO_SAMPLES,
                                seed: int = 0) -> AttackResult:
    """The ELBO-threshold attack on a VAE: "member" when the image's negative ELBO is below ``τ``.

    ``members`` and ``non_members`` are ``(images, labels)`` pairs as :func:`member_split`
    returns them; the labels are used by a conditional VAE only. Its ``member_loss`` and
    ``non_member_loss`` are the median negative ELBOs (nats per image).

    Example:
        >>> result = generator_membership_attack(vae, members, non_members)  # doctest: +SKIP
        >>> result.auc  # doctest: +SKIP
        0.9
    """
    return attack_from_losses(per_example_negative_elbo(model, *members, samples=samples, seed=seed),
                              per_example_negative_elbo(model, *non_members, samples=samples, seed=seed))


@dataclass
class OverfitVaeSetting:
    """The memorising VAE: the VAE chapter's 784-400-20 network, Adam, no binarization, many epochs.

    ``binarize=False``: the decoder sees the same grey values of the same images at
    every epoch (dynamic binarization would add noise, a regulariser).
    """

    epochs: int = 360  # 3 600 steps on 500 images: as many as 3 epochs of the 60 000
    batch_size: int = 50
    lr: float = 1e-3
    latent_dim: int = 20
    hidden: tuple[int, ...] = (400,)


def train_overfit_vae(images: torch.Tensor, setting: OverfitVaeSetting | None = None, seed: int = 0,
                      steps: int | None = None) -> nn.Module:
    """A :class:`~aigc_lessons.models.VAE` trained by ``train_vae`` on ``images`` (in [0, 1]) for long.

    With ``steps`` given, it trains that many Adam steps instead of ``setting.epochs``
    epochs (rounded up to whole epochs): the full-data model of the study takes as
    many steps on 60 000 images as the memorising one takes on 500.

    Example:
        >>> vae = train_overfit_vae(torch.rand(20, 1, 28, 28), OverfitVaeSetting(epochs=2, batch_size=10))
        >>> vae.training, vae.latent_dim
        (False, 20)
    """
    from ..models import VAE
    from ..train.vae import VaeConfig, train_vae

    setting = setting or OverfitVaeSetting()
    check_unit_images(images)
    epochs = setting.epochs
    if steps is not None:
        epochs = max(1, -(-steps // -(-len(images) // setting.batch_size)))
    torch.manual_seed(seed)
    model = VAE(latent_dim=setting.latent_dim, hidden=tuple(setting.hidden))
    config = VaeConfig(epochs=epochs, batch_size=setting.batch_size, lr=setting.lr, binarize=False, seed=seed,
                       log_every=10**9)
    train_vae(model, images, config, device="cpu", progress=False)
    return model.eval()


def member_split(train, test, count: int, seed: int = 0):
    """``count`` random members from ``train`` and ``count`` non-members from ``test`` (each ``(x, y)``)."""
    if not isinstance(count, int) or not 1 <= count <= min(len(train[0]), len(test[0])):
        raise PrivacyError(f"count must be an integer in [1, {min(len(train[0]), len(test[0]))}], got {count!r}")
    generator = torch.Generator().manual_seed(seed)
    member_index = torch.randperm(len(train[0]), generator=generator)[:count]
    non_member_index = torch.randperm(len(test[0]), generator=generator)[:count]
    return ((train[0][member_index], train[1][member_index]),
            (test[0][non_member_index], test[1][non_member_index]))


def train_overfit_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 2000,
                             seed: int = 0) -> nn.Module:
    """The augmentation chapter's small ``MnistClassifier`` trained ``steps`` Adam steps on few images.

    On 500 images, 2000 steps of batch 64 are 256 epochs: the training loss goes to
    almost zero, the test loss does not, and the attack can tell the two apart.
    """
    from ..augmentation import ClassifierConfig, train_classifier

    check_unit_images(images)
    return train_classifier(images, labels, ClassifierConfig(steps=steps, batch_size=64), seed=seed)


def copy_check(count: int = 100, names: list[str] | None = None, seed: int = 0,
               skip: tuple[str, ...] = ()) -> list[dict]:
    """Nearest-training-image distances of ``count`` samples of every shipped generator.

    Reuses :func:`aigc_lessons.metrics.nearest_neighbour_distances` (pixel distance in
    [0, 1] units to the nearest of the 60 000 training digits). The first row is the
    reference: ``count`` real *test* digits, which the generators were not trained on.
    ``closer_than_any_test_digit`` is the fraction of a generator's samples that lie
    nearer to a training image than the nearest of those test digits: a copying
    generator has many, a generalising one few.

    Example:
        >>> rows = copy_check(count=20, names=["vae_mnist"])  # doctest: +SKIP
        >>> rows[0]["model"], rows[1]["model"]  # doctest: +SKIP
        ('real MNIST test digits', 'vae_mnist')
    """
    from .. import pretrained
    from ..metrics import nearest_neighbour_distances, reference_images

    if not isinstance(count, int) or count < 1:
        raise PrivacyError(f"count must be a positive integer, got {count!r}")
    train, _ = reference_images("train")
    test, _ = reference_images("test", count, seed=seed)
    reference = nearest_neighbour_distances(test, train, value_range=(0, 1), device="cpu")
    rows = [{"model": "real MNIST test digits", "min": float(reference.min()),
             "median": float(reference.median()), "closer_than_any_test_digit": 0.0}]
    for name in names if names is not None else pretrained.available():
        if name in skip:
            continue
        model = pretrained.load(name)
        if not hasattr(model, "sample_for_evaluation"):  # classifiers, text and music models
            continue
        images, _ = model.sample_for_evaluation(count, torch.Generator().manual_seed(seed))
        distances = nearest_neighbour_distances(images, train, value_range=(0, 1), device="cpu")
        rows.append({"model": name, "min": float(distances.min()), "median": float(distances.median()),
                     "closer_than_any_test_digit": float((distances < reference.min()).float().mean())})
    return rows
