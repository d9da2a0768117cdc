"""The reward-KL curve over the penalty weight ``beta``: one tuning run per point, a JSON record.

Each point tunes a fresh copy of the shipped ``gpt_shakespeare`` toward
:data:`~aigc_lessons.rewards.text_rewards.love_reward` with :func:`tune_with_reward` at one
``beta`` and measures the tuned policy on fresh samples (a seed the training never used):
mean reward and KL per character to the pretrained model. The pretrained model is measured
the same way once (``--pretrained``). Points are separate commands, so a long sweep never
holds the machine for long; each merges its result into the JSON file::

    python -m aigc_lessons.rewards.sweep --pretrained
    python -m aigc_lessons.rewards.sweep --beta 1
    python -m aigc_lessons.rewards.sweep --beta 0     # no penalty: reward hacking

The chapter (``book/text/rewards.ipynb``) reads ``book/text/rewards_sweep.json``.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ..text.tokens import CharVocab
from .text_rewards import love_reward
from .tuning import (RewardTuningConfig, kl_per_character, sample_tokens, tune_with_reward)

__all__ = ["DEFAULT_OUT", "SWEEP", "evaluate_policy", "main", "sweep_point"]

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "book" / "text" / "rewards_sweep.json"

# The setting of every sweep point (fewer steps than the shipped model's recipe).
SWEEP = {"steps": 40, "batch_size": 32, "new_characters": 64, "learning_rate": 1e-4,
         "seed": 0, "evaluation_count": 256, "evaluation_seed": 12345, "sample_count": 6}


@torch.no_grad()
def evaluate_policy(policy: nn.Module, reference: nn.Module, vocab: CharVocab, reward_fn,
                    count: int, new_characters: int, prompt: str = "\n", seed: int = 12345,
                    batch_size: int = 128) -> dict:
    """Mean reward and KL per character (exact and sampled) of ``policy`` on ``count`` texts.

    The texts are drawn from ``policy`` with their own seed; the KL is to ``reference`` at
    the positions the policy visits. Returns also ``reward_standard_error`` and the texts.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> vocab = CharVocab("\\nab")
        >>> model = GPT(3, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> scores = evaluate_policy(model, model, vocab, lambda t: torch.zeros(len(t)), 4, 5)
        >>> scores["kl_exact_per_character"], scores["mean_reward"]
        (0.0, 0.0)
    """
    generator = torch.Generator().manual_seed(seed)
    prompt_length = len(vocab.encode(prompt))
    rewards, kl_exact, kl_sampled, texts = [], [], [], []
    for start in range(0, count, batch_size):
        tokens = sample_tokens(policy, vocab, min(batch_size, count - start), new_characters,
                               prompt, generator)
        batch_texts = [vocab.decode(row.tolist()) for row in tokens[:, prompt_length:].cpu()]
        rewards.append(torch.as_tensor(reward_fn(batch_texts), dtype=torch.float32))
        kl_exact.append(kl_per_character(policy, reference, tokens, prompt_length, exact=True))
        kl_sampled.append(kl_per_character(policy, reference, tokens, prompt_length))
        texts += batch_texts
    reward = torch.cat(rewards)
    return {"mean_reward": float(reward.mean()),
            "reward_standard_error": float(reward.std() / len(reward) ** 0.5) if count > 1 else 0.0,
            "fraction_with_a_hit": float((reward > 0).float().mean()),
            "kl_exact_per_character": float(torch.cat(kl_exact).mean()),
            "kl_sampled_per_character": float(torch.cat(kl_sampled).mean()),
            "count": count, "texts": texts}


def hardware() -> str:
    """The CPU and the number of threads torch uses (for the record)."""
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, " \
           f"{os.cpu_count()} CPUs visible"


def sweep_point(beta: float | None, setting: dict | None = None, progress: bool = True) -> dict:
    """Tune a fresh copy of ``gpt_shakespeare`` at ``beta`` and measure it; ``None``: pretrained."""
    from ..recipes.gpt import load_char_gpt

    setting = {**SWEEP, **(setting or {})}
    reference, vocab = load_char_gpt()
    policy = copy.deepcopy(reference)
    started = time.perf_counter()
    record: dict = {"beta": beta, "name": "pretrained" if beta is None else f"beta={beta:g}",
                    "setting": setting, "hardware": hardware(),
                    "load_average_before": os.getloadavg()[0]}
    if beta is not None:
        config = RewardTuningConfig(kl_weight=beta, steps=setting["steps"],
                                    batch_size=setting["batch_size"],
                                    new_characters=setting["new_characters"],
                                    learning_rate=setting["learning_rate"], seed=setting["seed"],
                                    sample_every=max(1, setting["steps"] // 6))
        history = tune_with_reward(policy, reference, vocab, love_reward, config,
                                   progress=progress)
        record["training_seconds"] = history.seconds
        record["curve"] = [{key: round(row[key], 5) for key in
                            ("reward", "kl_exact_per_character", "shaped_reward")}
                           | {"step": row["step"]} for row in history.rows]
    scores = evaluate_policy(policy, reference, vocab, love_reward, setting["evaluation_count"],
                             setting["new_characters"], seed=setting["evaluation_seed"])
    texts = scores.pop("texts")
    record |= {key: round(value, 5) if isinstance(value, float) else value
               for key, value in scores.items()}
    record["samples"] = texts[:setting["sample_count"]]
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["load_average_after"] = os.getloadavg()[0]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--beta", type=float, help="the KL weight of this point (>= 0)")
    which.add_argument("--pretrained", action="store_true", help="measure the pretrained model")
    parser.add_argument("--steps", type=int, default=SWEEP["steps"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.beta is not None and not args.beta >= 0:
        parser.error(f"--beta must be a number >= 0, got {args.beta}")
    record = sweep_point(None if args.pretrained else args.beta, {"steps": args.steps},
                         progress=not args.no_progress)
    # points may finish side by side: one writer at a time (the lock file lives outside the book)
    with open(Path(tempfile.gettempdir()) / "aigc_rewards_sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(args.out.read_text()) if args.out.exists() else {"points": []}
        if args.pretrained:
            data["pretrained"] = record
        else:
            data["points"] = [p for p in data["points"] if p["beta"] != args.beta] + [record]
            data["points"].sort(key=lambda point: point["beta"])
        data["command"] = "python -m aigc_lessons.rewards.sweep --pretrained | --beta BETA"
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({key: value for key, value in record.items()
                      if key not in ("curve", "setting")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
