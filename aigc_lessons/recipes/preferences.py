"""The preferences family: a reward model fitted to comparisons, and the GPT tuned by DPO.

Both recipes start from the same preference data (:data:`PREFERENCE_DATA`): completions of
the shipped ``gpt_shakespeare`` labelled by the hidden rule of
:mod:`aigc_lessons.rewards.preferences` with Bradley-Terry noise, regenerated from its seed
(the same pairs every time).

* ``reward_words_shakespeare``: a :class:`~aigc_lessons.models.reward.WordRewardModel`
  fitted with the Bradley-Terry loss; the card records its held-out accuracy next to the
  labels' noise ceiling, the words it weighs most, and the time;
* ``gpt_shakespeare_dpo``: ``gpt_shakespeare`` tuned by DPO on the same training pairs;
  the card records its true reward, its learned reward (under the shipped reward model)
  and its KL per character from ``gpt_shakespeare``, beside those of ``gpt_shakespeare``.

The over-optimisation study (RL against the shipped reward model, measured with the true
rule) writes a JSON record instead of weights::

    python -m aigc_lessons.recipes.preferences --out book/text/preferences_full.json

Retrain with ``python -m aigc_lessons.recipes reward_words_shakespeare`` (then
``gpt_shakespeare_dpo``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import zlib
from pathlib import Path

import torch

from .. import pretrained
from ..core import Budget
from ..family import Family, Recipe, RecipeResult
from ..models.reward import WordRewardModel
from ..rewards.dpo import DpoConfig, train_dpo
from ..rewards.overoptimisation import evaluate_policy, tune_against_learned_reward
from ..rewards.preferences import (NEGATIVE_WORDS, POSITIVE_WORDS, PreferenceConfig,
                                   make_preference_pairs, true_reward)
from ..rewards.reward_model import (RewardModelConfig, learned_reward, preference_accuracy,
                                    train_reward_model)
from ..rewards.tuning import RewardTuningConfig
from .gpt import load_char_gpt

# The preference data both recipes are trained on, and what fast mode changes.
PREFERENCE_DATA = {"texts": 2000, "comparisons_per_text": 8, "heldout_fraction": 0.2,
                   "new_characters": 64, "prompt": "\n", "temperature": 0.5,
                   "sampling_temperature": 1.0, "repetition_weight": 2.0, "batch_size": 250,
                   "seed": 0}
FAST_DATA = {"texts": 64, "comparisons_per_text": 2, "new_characters": 16, "batch_size": 64}

REWARD_WORDS_SHAKESPEARE = {**PREFERENCE_DATA, "buckets": 4096, "epochs": 6, "rm_batch_size": 256,
                            "learning_rate": 0.02, "weight_decay": 0.0, "rm_seed": 0}
FAST_REWARD = {**FAST_DATA, "epochs": 1}

GPT_SHAKESPEARE_DPO = {**PREFERENCE_DATA, "beta": 0.1, "steps": 150, "dpo_batch_size": 32,
                       "learning_rate": 1e-4, "grad_clip": 1.0, "log_every": 10, "dpo_seed": 0,
                       "eval_count": 512, "eval_seed": 1}
FAST_DPO = {**FAST_DATA, "steps": 2, "dpo_batch_size": 4, "log_every": 1, "eval_count": 8}

# The RL runs of the over-optimisation study (not shipped weights: a JSON record).
OVEROPTIMISATION = {"kl_weights": [0.0, 1.0], "steps": 150, "batch_size": 32,
                    "new_characters": 64, "prompt": "\n", "learning_rate": 3e-4,
                    "temperature": 1.0, "seed": 0, "sample_every": 25,
                    "repetition_weight": 2.0, "eval_count": 512, "eval_seed": 1}


def _load_average() -> str | None:
    try:  # the machine's load while the run was timed (Linux only)
        return Path("/proc/loadavg").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _preference_config(setting: dict) -> PreferenceConfig:
    return PreferenceConfig(**{key: setting[key] for key in PREFERENCE_DATA})


def reward_words_shakespeare(budget: Budget, device: torch.device, progress: bool = True
                             ) -> RecipeResult:
    """The bag-of-words reward model, fitted to 8 comparisons per training text."""
    setting = {**REWARD_WORDS_SHAKESPEARE, **FAST_REWARD} if budget.fast \
        else dict(REWARD_WORDS_SHAKESPEARE)
    gpt, vocab = load_char_gpt()
    started = time.perf_counter()
    data = make_preference_pairs(gpt, vocab, _preference_config(setting))
    data_seconds = round(time.perf_counter() - started, 1)
    torch.manual_seed(setting["rm_seed"])
    model = WordRewardModel(buckets=setting["buckets"])
    config = RewardModelConfig(epochs=setting["epochs"], batch_size=setting["rm_batch_size"],
                               learning_rate=setting["learning_rate"],
                               weight_decay=setting["weight_decay"], seed=setting["rm_seed"])
    history = train_reward_model(model, data.train, config, data.heldout, progress=progress)
    weights = model.weights.weight.detach().squeeze(-1)
    lexicon = sorted(POSITIVE_WORDS | NEGATIVE_WORDS)
    word_weights = {word: round(float(weights[zlib.crc32(word.encode()) % model.buckets]), 3)
                    for word in lexicon}
    card = {
        "description": (f"Bag-of-words reward model: one weight per word hashed (CRC-32) into "
                        f"{setting['buckets']} buckets, summed over the text's words, plus a bias"),
        "data": (f"{setting['texts']} completions of {setting['new_characters']} characters "
                 f"sampled from gpt_shakespeare after {setting['prompt']!r}; "
                 f"{len(data.train)} training and {len(data.heldout)} held-out comparisons "
                 f"labelled by the hidden rule (aigc_lessons.rewards.preferences.true_reward, "
                 f"repetition weight {setting['repetition_weight']}) with Bradley-Terry noise "
                 f"at temperature {setting['temperature']}"),
        "preference_data": _preference_config(setting).to_dict(),
        "training": {**config.to_dict(), "optimizer": "AdamW", "loss": "Bradley-Terry"},
        "data_seconds": data_seconds,
        "training_seconds": history.seconds,
        "history": history.rows,
        "metrics": {
            "heldout_accuracy": round(preference_accuracy(model, data.heldout), 4),
            "train_accuracy": round(preference_accuracy(model, data.train), 4),
            **{key: value for key, value in data.summary().items()},
        },
        "lexicon_word_weights": word_weights,
    }
    return RecipeResult(model, {"buckets": setting["buckets"]}, card)


def gpt_shakespeare_dpo(budget: Budget, device: torch.device, progress: bool = True
                        ) -> RecipeResult:
    """``gpt_shakespeare`` tuned by DPO on the training comparisons of :data:`PREFERENCE_DATA`."""
    setting = {**GPT_SHAKESPEARE_DPO, **FAST_DPO} if budget.fast else dict(GPT_SHAKESPEARE_DPO)
    reference, vocab = load_char_gpt()
    started = time.perf_counter()
    data = make_preference_pairs(reference, vocab, _preference_config(setting))
    data_seconds = round(time.perf_counter() - started, 1)
    policy = copy.deepcopy(reference)
    config = DpoConfig(beta=setting["beta"], steps=setting["steps"],
                       batch_size=setting["dpo_batch_size"],
                       learning_rate=setting["learning_rate"], grad_clip=setting["grad_clip"],
                       log_every=setting["log_every"], seed=setting["dpo_seed"])
    history = train_dpo(policy, reference, data.train, config, progress=progress)
    rewards = {"true_reward": lambda texts: true_reward(texts, setting["repetition_weight"])}
    if pretrained.exists("reward_words_shakespeare"):
        rewards["learned_reward"] = learned_reward(pretrained.load("reward_words_shakespeare"))
    evaluation = dict(count=setting["eval_count"], new_characters=setting["new_characters"],
                      prompt=setting["prompt"], seed=setting["eval_seed"])
    started = time.perf_counter()
    tuned = evaluate_policy(policy, reference, vocab, rewards, **evaluation)
    base = evaluate_policy(reference, reference, vocab, rewards, **evaluation)
    evaluation_seconds = round(time.perf_counter() - started, 1)
    kwargs = pretrained.card("gpt_shakespeare")["model"]["kwargs"]
    card = {
        "description": "gpt_shakespeare fine-tuned by direct preference optimisation (DPO)",
        "data": (f"the {len(data.train)} training comparisons of reward_words_shakespeare "
                 f"(the same seed, the same pairs)"),
        "preference_data": _preference_config(setting).to_dict(),
        "training": {**config.to_dict(), "optimizer": "Adam, gradient norm clipped",
                     "reference": "gpt_shakespeare",
                     "beta_per_character": round(setting["beta"] * setting["new_characters"], 4)},
        "data_seconds": data_seconds,
        "training_seconds": history.seconds,
        "history": history.rows,
        "evaluation_seconds": evaluation_seconds,
        "metrics": {"dpo": {k: v for k, v in tuned.items() if k != "samples"},
                    "reference": {k: v for k, v in base.items() if k != "samples"}},
        "samples": tuned["samples"],
    }
    return RecipeResult(policy, kwargs, card)


def overoptimisation_study(out: Path, kl_weights: list[float] | None = None, fast: bool = False,
                           progress: bool = True) -> dict:
    """RL toward the shipped reward model at each KL weight; true and learned reward per step.

    ``kl_weights`` defaults to those of :data:`OVEROPTIMISATION` (one run each, so that a
    sweep can be split into separate commands). The record in ``out`` (JSON) keeps the runs
    of other KL weights already there and replaces those of the same weight; it is
    written after every run and returned.
    """
    setting = dict(OVEROPTIMISATION)
    if fast:
        setting |= {"kl_weights": [0.0], "steps": 2, "batch_size": 4, "eval_count": 8,
                    "new_characters": 16}
    kl_weights = setting["kl_weights"] if kl_weights is None else kl_weights
    out = Path(out)
    reference, vocab = load_char_gpt()
    reward_model = pretrained.load("reward_words_shakespeare")
    rewards = {"true_reward": lambda texts: true_reward(texts, setting["repetition_weight"]),
               "learned_reward": learned_reward(reward_model)}
    record = {"setting": setting, "runs": []}
    if out.exists():
        record["runs"] = [run for run in json.loads(out.read_text(encoding="utf-8"))["runs"]
                          if run["kl_weight"] not in kl_weights]
    for kl_weight in kl_weights:
        policy = copy.deepcopy(reference)
        config = RewardTuningConfig(
            kl_weight=kl_weight, steps=setting["steps"], batch_size=setting["batch_size"],
            new_characters=setting["new_characters"], prompt=setting["prompt"],
            learning_rate=setting["learning_rate"], temperature=setting["temperature"],
            seed=setting["seed"], sample_every=setting["sample_every"])
        history = tune_against_learned_reward(policy, reference, vocab, reward_model, config,
                                              setting["repetition_weight"], progress=progress)
        final = evaluate_policy(policy, reference, vocab, rewards,
                                count=setting["eval_count"],
                                new_characters=setting["new_characters"],
                                prompt=setting["prompt"], seed=setting["eval_seed"])
        record["runs"].append({
            "kl_weight": kl_weight, "seconds": history.seconds,
            "hardware": pretrained.describe_hardware(), "load_average": _load_average(),
            "rows": [{key: round(value, 4) if isinstance(value, float) else value
                      for key, value in row.items()} for row in history.rows],
            "samples": {str(step): texts[:3] for step, texts in history.samples.items()},
            "final": final})
        record["runs"].sort(key=lambda run: run["kl_weight"])
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


FAMILIES = (
    Family("preferences", "reward model from preferences and DPO (Learning from preferences)",
           classes=(WordRewardModel,),
           recipes={"reward_words_shakespeare": Recipe(reward_words_shakespeare,
                                                       REWARD_WORDS_SHAKESPEARE, FAST_REWARD),
                    "gpt_shakespeare_dpo": Recipe(gpt_shakespeare_dpo, GPT_SHAKESPEARE_DPO,
                                                  FAST_DPO)}),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=overoptimisation_study.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the JSON record to write")
    parser.add_argument("--kl-weight", type=float, action="append", dest="kl_weights",
                        help="one run at this KL weight (repeatable; default: those of "
                             "OVEROPTIMISATION)")
    parser.add_argument("--fast", action="store_true", help="a few steps, to test the command")
    arguments = parser.parse_args(argv)
    overoptimisation_study(arguments.out, arguments.kl_weights, fast=arguments.fast)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
