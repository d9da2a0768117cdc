"""Optimising a learned reward, measured against the true one: reward over-optimisation.

A reward model is a proxy fitted on texts of the pretrained model. Tuning the policy
against it (:func:`tune_against_learned_reward`, which calls
:func:`aigc_lessons.rewards.tuning.tune_with_reward`) moves the policy's texts away from
those the proxy was fitted on; Gao, Schulman & Hilton (2023) measured that the true
("gold") reward first rises with the KL from the reference and then falls while the proxy
keeps rising. Here the true reward is the hidden rule of
:mod:`aigc_lessons.rewards.preferences`, computed on the very texts the policy wrote at
each step, so both curves come from one run at no extra sampling cost.
:func:`evaluate_policy` measures any policy (the RL one, the DPO one) the same way:
fresh samples, the true and the learned reward, the KL per character.

Example:
    >>> history = tune_against_learned_reward(policy, reference, vocab,  # doctest: +SKIP
    ...                                       reward_model, RewardTuningConfig(kl_weight=0.0))
    >>> history.series("true_reward")[:3]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .preferences import true_reward
from .reward_model import learned_reward
from .tuning import RewardTuningConfig, RewardTuningHistory, kl_per_character, sample_tokens
from .tuning import tune_with_reward

__all__ = ["evaluate_policy", "tune_against_learned_reward", "true_reward_at_kl"]


def tune_against_learned_reward(policy: nn.Module, reference: nn.Module, vocab,
                                reward_model: nn.Module, config: RewardTuningConfig,
                                repetition_weight: float = 2.0, progress: bool = True
                                ) -> RewardTuningHistory:
    """:func:`tune_with_reward` toward ``reward_model``; each row also gets the texts' ``true_reward``.

    The row's ``reward`` is the learned reward (what the policy is trained on) and
    ``true_reward`` the hidden rule on the same texts (what it should have been trained on).
    """
    proxy = learned_reward(reward_model)
    truth: list[float] = []

    def reward_fn(texts: list[str]) -> torch.Tensor:
        truth.append(float(true_reward(texts, repetition_weight).mean()))
        return proxy(texts)

    history = tune_with_reward(policy, reference, vocab, reward_fn, config, progress=progress)
    if len(truth) != len(history.rows):
        raise RuntimeError(f"tune_with_reward called the reward {len(truth)} times in "
                           f"{len(history.rows)} steps; expected once per step")
    for row, value in zip(history.rows, truth):
        row["true_reward"] = value
    return history


@torch.no_grad()
def evaluate_policy(policy: nn.Module, reference: nn.Module, vocab,
                    rewards: dict[str, Callable[[list[str]], torch.Tensor]], count: int = 256,
                    new_characters: int = 64, prompt: str = "\n", seed: int = 1,
                    batch_size: int = 128) -> dict:
    """Sample ``count`` fresh texts from ``policy``; the mean of each reward and the KL per character.

    ``kl_per_character`` is the exact KL at the visited positions (the one the tuning
    history calls ``kl_exact_per_character``), ``kl_sampled_per_character`` its
    one-sample estimate; both from :func:`aigc_lessons.rewards.tuning.kl_per_character`.

    Example:
        >>> evaluate_policy(policy, reference, vocab, {"true": true_reward})  # doctest: +SKIP
        {'true': 0.41, 'kl_per_character': 0.12, 'kl_sampled_per_character': 0.12, ...}
    """
    generator = torch.Generator().manual_seed(seed)
    texts, exact, sampled = [], [], []
    for start in range(0, count, batch_size):
        tokens = sample_tokens(policy, vocab, min(batch_size, count - start), new_characters,
                               prompt, generator)
        prompt_length = tokens.shape[1] - new_characters
        texts += [vocab.decode(row[prompt_length:].tolist()) for row in tokens.cpu()]
        exact.append(kl_per_character(policy, reference, tokens, prompt_length, exact=True))
        sampled.append(kl_per_character(policy, reference, tokens, prompt_length))
    result = {name: round(float(fn(texts).mean()), 4) for name, fn in rewards.items()}
    result |= {"kl_per_character": round(float(torch.cat(exact).mean()), 4),
               "kl_sampled_per_character": round(float(torch.cat(sampled).mean()), 4),
               "count": count, "new_characters": new_characters, "seed": seed,
               "samples": texts[:4]}
    return result


def true_reward_at_kl(kls: list[float], true_rewards: list[float], kl: float,
                      window: int = 5) -> float | None:
    """The true reward of an RL run where its KL first reaches ``kl`` (a mean over ``window`` steps).

    ``None`` when the run never gets that far from the reference.

    Example:
        >>> true_reward_at_kl([0.0, 0.1, 0.2, 0.3], [0.0, 1.0, 2.0, 3.0], 0.15, window=1)
        2.0
    """
    for step, value in enumerate(kls):
        if value >= kl:
            low = max(0, step - window // 2)
            piece = true_rewards[low:low + window]
            return float(sum(piece) / len(piece))
    return None
