"""Fitting a reward model to preferences with the Bradley-Terry loss.

A labeller who prefers ``y_w`` (the *chosen* text) to ``y_l`` (the *rejected* one) with
probability ``sigmoid(r(y_w) - r(y_l))`` (Bradley & Terry 1952) makes the log-likelihood
of one comparison ``log sigmoid(r(y_w) - r(y_l))``. The reward model ``r_phi`` maximises it
over the labelled pairs, i.e. minimises

    L(phi) = - mean log sigmoid(r_phi(y_w) - r_phi(y_l))

(:func:`bradley_terry_loss`, written with ``softplus(-d) = -log sigmoid(d)``, which does
not overflow). Only differences of rewards enter, so ``r_phi`` is defined up to a constant;
its scale is set by the labels' noise. The loss is the one of Christiano et al. (2017),
Ziegler et al. (2019) and InstructGPT (Ouyang et al. 2022). :func:`preference_accuracy` is
the share of held-out pairs ranked the way they were labelled, to be read against the
labels' noise ceiling (:func:`aigc_lessons.rewards.preferences.noise_ceiling`).

Example:
    >>> round(float(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0]))), 4)  # log 2
    0.6931
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..family import Option, check_settings
from .preferences import PreferencePairs

__all__ = ["REWARD_MODEL_RULES", "RewardModelConfig", "RewardModelHistory", "bradley_terry_loss",
           "learned_reward", "preference_accuracy", "score_texts", "train_reward_model"]


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor
                       ) -> torch.Tensor:
    """``mean(-log sigmoid(r_w - r_l))`` over the pairs, computed as ``softplus(r_l - r_w)``.

    Example:
        >>> round(float(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]))), 4)
        0.1269
    """
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.dim() != 1:
        raise ValueError(f"chosen and rejected rewards must be 1-D and of the same shape, got "
                         f"{tuple(chosen_rewards.shape)} and {tuple(rejected_rewards.shape)}")
    return F.softplus(rejected_rewards - chosen_rewards).mean()


REWARD_MODEL_RULES = {
    "epochs": Option(30, minimum=1),
    "batch_size": Option(64, minimum=1),
    "learning_rate": Option(3e-3, above=0.0),
    "weight_decay": Option(0.01, minimum=0.0),
    "seed": Option(0, minimum=0),
}


@dataclass
class RewardModelConfig:
    """How the reward model is trained (ranges in :data:`REWARD_MODEL_RULES`): AdamW, epochs of pairs."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(asdict(self), REWARD_MODEL_RULES)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RewardModelHistory:
    """Per epoch: training loss and accuracy, held-out loss and accuracy; the seconds taken."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def score_texts(model: nn.Module, texts: list[str], batch_size: int = 1024) -> torch.Tensor:
    """The reward model's score of each text, ``(len(texts),)``, without gradient."""
    with torch.no_grad():
        return torch.cat([model(texts[start:start + batch_size])
                          for start in range(0, len(texts), batch_size)])


def preference_accuracy(model: nn.Module, pairs: PreferencePairs) -> float:
    """The share of ``pairs`` whose chosen completion the model scores higher (ties count 1/2).

    Example:
        >>> preference_accuracy(reward_model, data.heldout)  # doctest: +SKIP
    """
    was_training = model.training
    model.eval()
    difference = score_texts(model, pairs.chosen) - score_texts(model, pairs.rejected)
    model.train(was_training)
    return float(((difference > 0).float() + 0.5 * (difference == 0).float()).mean())


def _pair_loss(model: nn.Module, pairs: PreferencePairs) -> float:
    with torch.no_grad():
        return float(bradley_terry_loss(score_texts(model, pairs.chosen),
                                        score_texts(model, pairs.rejected)))


def train_reward_model(model: nn.Module, train: PreferencePairs,
                       config: RewardModelConfig | None = None,
                       heldout: PreferencePairs | None = None,
                       progress: bool = True) -> RewardModelHistory:
    """Fit ``model`` (texts -> rewards ``(B,)``) to ``train`` with the Bradley-Terry loss.

    Each step scores a batch of chosen and of rejected completions and steps on
    :func:`bradley_terry_loss`; after every epoch the history records the loss and the
    accuracy on ``train`` and, when given, on ``heldout``. The pairs are shuffled with a
    generator seeded by ``config.seed``.

    Example:
        >>> history = train_reward_model(WordRewardModel(), data.train,  # doctest: +SKIP
        ...                              heldout=data.heldout)
    """
    config = config or RewardModelConfig()
    if len(train) == 0:
        raise ValueError("train has no pairs")
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    history = RewardModelHistory()
    from tqdm.auto import tqdm

    started = time.perf_counter()
    for epoch in tqdm(range(1, config.epochs + 1), desc="reward model", disable=not progress):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for first in range(0, len(train), config.batch_size):
            index = order[first:first + config.batch_size].tolist()
            loss = bradley_terry_loss(model([train.chosen[i] for i in index]),
                                      model([train.rejected[i] for i in index]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        row = {"epoch": epoch, "train_loss": round(_pair_loss(model, train), 4),
               "train_accuracy": round(preference_accuracy(model, train), 4)}
        if heldout is not None:
            row |= {"heldout_loss": round(_pair_loss(model, heldout), 4),
                    "heldout_accuracy": round(preference_accuracy(model, heldout), 4)}
        row["seconds"] = round(time.perf_counter() - started, 2)
        history.rows.append(row)
    history.seconds = round(time.perf_counter() - started, 1)
    return history


def learned_reward(model: nn.Module) -> Callable[[list[str]], torch.Tensor]:
    """``reward_fn(texts) -> (len(texts),)``: the reward model as a reward for ``tune_with_reward``.

    Example:
        >>> from aigc_lessons.models.reward import WordRewardModel
        >>> learned_reward(WordRewardModel(buckets=8))(["O sweet love", "Death"]).tolist()
        [0.0, 0.0]
    """
    model.eval()

    def reward_fn(texts: list[str]) -> torch.Tensor:
        return score_texts(model, texts)

    return reward_fn
