"""The reward-tuned character GPT of "Learning from rewards".

``gpt_shakespeare_love``: the shipped ``gpt_shakespeare`` (:mod:`aigc_lessons.recipes.gpt`)
fine-tuned with :func:`aigc_lessons.rewards.tune_with_reward` toward
:data:`aigc_lessons.rewards.love_reward` (the fraction of words that are words of love),
with a KL penalty ``beta`` per character to the pretrained model: REINFORCE with a
leave-one-out baseline on the KL-shaped reward, ``beta`` adapted toward a target KL per
character by the controller of Ziegler et al. (2019). Same architecture and vocabulary as the
pretrained model, so :func:`aigc_lessons.recipes.gpt.load_char_gpt` loads it by name.

The card records the mean reward of the pretrained and of the tuned model and the tuned
model's KL per character to the pretrained one, all measured on fresh samples (a seed the
training never used) with the weights rounded to float16 as they are shipped; the training
curve; samples; time and hardware.

Retrain with ``python -m aigc_lessons.recipes gpt_shakespeare_love``.
"""

from __future__ import annotations

import copy
import os

import torch

from .. import pretrained
from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.gpt import GPT
from ..rewards.sweep import evaluate_policy
from ..rewards.text_rewards import LOVE_WORDS, love_reward
from ..rewards.tuning import RewardTuningConfig, tune_with_reward
from .gpt import load_char_gpt

# The full setting of the shipped weights and what fast mode changes.
GPT_SHAKESPEARE_LOVE = {"base": "gpt_shakespeare", "kl_weight": 1.0, "kl_target": 0.05,
                        "kl_adapt_rate": 0.1, "steps": 120, "batch_size": 32,
                        "new_characters": 64, "prompt": "\n", "learning_rate": 1e-4,
                        "temperature": 1.0, "seed": 0, "baseline": "leave_one_out",
                        "grad_clip": 1.0,
                        "evaluation_count": 512, "evaluation_seed": 12345, "sample_count": 8}
FAST = {"steps": 3, "batch_size": 8, "new_characters": 32, "evaluation_count": 16,
        "sample_count": 2}

CONFIG_KEYS = ("kl_weight", "kl_target", "kl_adapt_rate", "steps", "batch_size",
               "new_characters", "prompt", "learning_rate", "temperature", "seed", "baseline",
               "grad_clip")


def _round_to_float16(model: torch.nn.Module) -> None:
    """Round the weights as :func:`aigc_lessons.pretrained.save` stores them, so the card
    measures the shipped model, not the float32 one that existed only during training."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())


def gpt_shakespeare_love(budget: Budget, device: torch.device, progress: bool = True
                         ) -> RecipeResult:
    """``gpt_shakespeare`` tuned toward words of love with a KL penalty (the full setting above)."""
    setting = {**GPT_SHAKESPEARE_LOVE, **FAST} if budget.fast else dict(GPT_SHAKESPEARE_LOVE)
    reference, vocab = load_char_gpt(setting["base"], device=device)
    policy = copy.deepcopy(reference)
    config = RewardTuningConfig(**{key: setting[key] for key in CONFIG_KEYS},
                                sample_every=max(1, setting["steps"] // 10))
    measure = {"count": setting["evaluation_count"],
               "new_characters": setting["new_characters"], "prompt": setting["prompt"],
               "seed": setting["evaluation_seed"]}
    before = evaluate_policy(reference, reference, vocab, love_reward, **measure)
    load_before = os.getloadavg()[0]
    history = tune_with_reward(policy, reference, vocab, love_reward, config, progress=progress)
    _round_to_float16(policy)
    after = evaluate_policy(policy, reference, vocab, love_reward, **measure)
    base_card = pretrained.card(setting["base"])
    kwargs = dict(base_card["model"]["kwargs"])

    def scores(measured: dict) -> dict:
        return {"mean_reward": round(measured["mean_reward"], 5),
                "reward_standard_error": round(measured["reward_standard_error"], 5),
                "fraction_with_a_hit": round(measured["fraction_with_a_hit"], 4)}

    card = {
        "description": (f"{setting['base']} fine-tuned toward the love reward (fraction of words "
                        f"in a set of {len(LOVE_WORDS)} words of love) with REINFORCE, a "
                        "leave-one-out baseline and a KL penalty per character to the "
                        "pretrained model"),
        "data": (f"no text data: {config.steps} steps of {config.batch_size} texts of "
                 f"{config.new_characters} characters sampled from the policy after the prompt "
                 f"{config.prompt!r}, scored by aigc_lessons.rewards.love_reward"),
        "vocabulary": vocab.characters,
        "base_model": setting["base"],
        "reward_words": sorted(LOVE_WORDS),
        "training": {**config.to_dict(), "optimizer": "Adam, constant learning rate, gradient "
                     "norm clipped", "estimator": "REINFORCE on r - beta * KL per character, "
                     "leave-one-out baseline"},
        "final_kl_weight": round(history.rows[-1]["kl_weight"], 5),
        "training_seconds": history.seconds,
        "seconds_per_step": round(history.seconds / config.steps, 2),
        "torch_threads": torch.get_num_threads(),
        "load_average_before_training": round(load_before, 2),
        "load_average_after_training": round(os.getloadavg()[0], 2),
        "training_curve": [{"step": row["step"], "reward": round(row["reward"], 5),
                            "kl_exact_per_character": round(row["kl_exact_per_character"], 5),
                            "kl_weight": round(row["kl_weight"], 5)}
                           for row in history.rows],
        "metrics": {
            "measured_on": (f"{measure['count']} fresh texts of {measure['new_characters']} "
                            f"characters per model, sampling seed {measure['seed']}, "
                            "temperature 1, float16-rounded weights"),
            "pretrained": scores(before),
            "tuned": scores(after),
            "reward_ratio": round(after["mean_reward"] / max(before["mean_reward"], 1e-12), 3),
            "kl_exact_per_character": round(after["kl_exact_per_character"], 5),
            "kl_sampled_per_character": round(after["kl_sampled_per_character"], 5),
        },
        "samples": {"pretrained": before["texts"][:setting["sample_count"]],
                    "tuned": after["texts"][:setting["sample_count"]]},
    }
    return RecipeResult(policy, kwargs, card)


FAMILIES = (
    Family("gpt_rewards", "the character GPT tuned toward a reward (Learning from rewards)",
           classes=(GPT,),
           recipes={"gpt_shakespeare_love": Recipe(gpt_shakespeare_love, GPT_SHAKESPEARE_LOVE,
                                                   FAST)}),
)
