"""Recipe for the reference MNIST classifier used by :mod:`aigc_lessons.metrics`.

``classifier_mnist``: :class:`~aigc_lessons.models.classifier.MnistClassifier`
trained with cross-entropy and Adam for 4 epochs on the 60 000 training digits
(pixels in [0, 1]), learning rate decayed with a cosine schedule, batch 128;
scored on the 10 000 test digits. Retrain with::

    python -m aigc_lessons.recipes classifier_mnist
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from ..core import Budget
from ..data import TensorBatches, load_mnist
from ..family import Family, Recipe, RecipeResult
from ..models.classifier import MnistClassifier
from ..train.loop import fit

# The full setting of the shipped weights (what they were trained with) and what fast mode changes.
CLASSIFIER_MNIST = {"epochs": 4, "batch_size": 128, "lr": 1e-3, "seed": 0, "subset": None}
FAST = {"epochs": 1, "subset": 2048}


@torch.no_grad()
def classifier_accuracy(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` (in [0, 1]) that ``model`` labels correctly."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(dim=1) == labels[start:start + batch_size]).sum())
    model.train(was_training)
    return correct / len(images)


def classifier_mnist(budget: Budget, device: torch.device, progress: bool = True):
    """Small CNN, 4 epochs of Adam with cosine decay; returns the model and a card with its test accuracy."""
    setting = {**CLASSIFIER_MNIST, **FAST} if budget.fast else dict(CLASSIFIER_MNIST)
    train = load_mnist("train", device=device, subset=setting["subset"])
    test = load_mnist("test", device=device, subset=budget.pick(full=None, fast=1000))
    epochs, batch_size, lr, seed = setting["epochs"], setting["batch_size"], setting["lr"], setting["seed"]
    kwargs = {"channels": [32, 64], "feature_dim": 128, "num_classes": 10, "dropout": 0.25}
    torch.manual_seed(seed)
    model = MnistClassifier(**kwargs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = TensorBatches(train.images, train.labels, batch_size=batch_size, seed=seed)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(batches))

    def step(batch):
        images, labels = batch
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        return {"loss": loss.detach()}

    model.train()
    started = time.perf_counter()
    history = fit(step, batches, epochs, progress=progress, desc="classifier")
    seconds = time.perf_counter() - started
    accuracy = classifier_accuracy(model, test.images, test.labels)
    card = {
        "description": "Reference MNIST classifier: conv3x3(32)-pool-conv3x3(64)-pool-fc128-fc10, ReLU, dropout 0.25; "
                       "inputs in [0, 1], standardised inside the model. features(x) returns the 128 penultimate "
                       "activations used by aigc_lessons.metrics.",
        "data": f"MNIST, {len(train)} training images in [0, 1], no augmentation; scored on {len(test)} test images",
        "training": {"epochs": epochs, "batch_size": batch_size, "optimizer": "Adam", "lr": lr,
                     "schedule": "cosine to 0 over all steps", "seed": seed},
        "training_seconds": round(seconds, 1),
        "final_loss": round(history.rows[-1]["loss"], 4),
        "metrics": {"test_accuracy": round(accuracy, 4), "test_errors": round((1 - accuracy) * len(test)),
                    "test_images": len(test)},
    }
    return RecipeResult(model.cpu().eval(), kwargs, card)


FAMILIES = (
    Family("classifier", "the reference MNIST classifier that the metrics look through (evaluation chapter)",
           classes=(MnistClassifier,),
           recipes={"classifier_mnist": Recipe(classifier_mnist, CLASSIFIER_MNIST, FAST)}),
)
