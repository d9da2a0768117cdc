"""Fine-tuning a language model toward a reward, with a KL penalty to the pretrained model.

The policy ``pi`` (the model being tuned) writes ``new_characters`` characters after a
prompt; a programmatic ``reward_fn`` scores each text with one number ``r(x)``; the
reference ``pi_ref`` (a frozen copy of the pretrained model) anchors the policy. The
objective of Ziegler et al. (2019) and InstructGPT (Ouyang et al. 2022), written per
character so that ``beta`` does not depend on the length of a text::

    J(pi) = E_{x ~ pi} [ r(x) - beta * k(x) ],   k(x) = (1/T) sum_t [log pi(x_t | x_<t)
                                                                 - log pi_ref(x_t | x_<t)]

``E_{x ~ pi}[k(x)]`` is the KL divergence ``KL(pi || pi_ref)`` per character, and ``k(x)`` is
its one-sample estimate on the policy's own text. The *KL-shaped reward*
``R(x) = r(x) - beta * k(x)`` is treated as a reward that happens to depend on the policy:
the score-function (REINFORCE, Williams 1992) gradient of ``J`` is

    grad J = E_x [ (R(x) - b) * grad log pi(x) ]

(the term ``-beta E[grad k(x)]`` from differentiating ``log pi`` inside ``k`` is
``-(beta/T) E[grad log pi(x)] = 0``: the expected score is zero). ``b`` is a baseline that
does not depend on ``x``'s own sample: ``"leave_one_out"`` (the default: the mean shaped
reward of the *other* texts of the batch, Kool, van Hoof & Welling 2019), ``"mean"`` (the
batch mean, including the text itself: slightly biased, by a factor ``(B - 1) / B``) or
``"none"``. :mod:`aigc_lessons.rewards.policy_gradient` shows on a toy problem that the
estimator is unbiased and what the baseline does to its variance.

One step of :func:`tune_with_reward`: sample ``batch_size`` texts from the policy (no
gradient, with the key-value cache), score them, compute ``log pi`` of the sampled
characters with gradient and ``log pi_ref`` without, form ``R`` and the advantages
``A = R - b``, and step on the loss ``-mean_i A_i * (1/T) sum_t log pi(x_t^i)``. PPO
(Schulman et al. 2017) reuses each batch for several steps with a clipped ratio; it is the
named extension, not written here.

Example:
    >>> from aigc_lessons.models import GPT
    >>> from aigc_lessons.text import CharVocab
    >>> vocab = CharVocab("\\nab")
    >>> policy = GPT(len(vocab), context_length=16, embed_dim=16, heads=2, layers=1)
    >>> reference = copy.deepcopy(policy)
    >>> count_a = lambda texts: torch.tensor([t.count("a") / len(t) for t in texts])
    >>> config = RewardTuningConfig(steps=2, batch_size=4, new_characters=8)
    >>> history = tune_with_reward(policy, reference, vocab, count_a, config, progress=False)
    >>> len(history.rows), sorted(history.rows[0])[:3]
    (2, ['advantage_std', 'kl_exact_per_character', 'kl_per_character'])
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from ..family import Option, check_settings
from ..text.decoding import check_sampling
from ..text.tokens import CharVocab

__all__ = ["BASELINES", "RewardTuningConfig", "RewardTuningHistory", "TUNING_RULES",
           "advantages", "kl_per_character", "sample_texts", "sample_tokens", "sequence_log_probs",
           "shaped_reward", "tune_with_reward"]

BASELINES = ("none", "mean", "leave_one_out")


@dataclass
class RewardTuningConfig:
    """Settings of :func:`tune_with_reward`; every range is checked (:data:`TUNING_RULES`).

    ``kl_weight`` is ``beta`` (reward units per nat per character; 0 switches the penalty
    off); each step samples ``batch_size`` texts of ``new_characters`` characters after
    ``prompt`` at ``temperature`` (the policy and the reference are both read at that
    temperature); ``baseline`` is one of :data:`BASELINES`; Adam with ``learning_rate``,
    the gradient norm clipped at ``grad_clip``. ``sample_every``: keep the texts of every
    that many steps (and of the last) in the history. ``kl_target`` (nats per character,
    ``None``: a fixed ``beta``) switches on the adaptive controller of Ziegler et al.
    (2019): after each step ``beta *= 1 + kl_adapt_rate * clip(KL / kl_target - 1, -0.2,
    0.2)``, with the exact KL per character of the batch, so ``beta`` rises while the
    policy is farther than the target and falls while it is closer.

    Example:
        >>> RewardTuningConfig(kl_weight=-1.0)
        Traceback (most recent call last):
        ValueError: kl_weight must be a number >= 0, got -1.0
    """

    kl_weight: float = 0.1
    steps: int = 100
    batch_size: int = 32
    new_characters: int = 64
    prompt: str = "\n"
    learning_rate: float = 1e-4
    temperature: float = 1.0
    seed: int = 0
    baseline: str = "leave_one_out"
    grad_clip: float = 1.0
    sample_every: int = 10
    kl_target: float | None = None
    kl_adapt_rate: float = 0.1

    def __post_init__(self) -> None:
        check_settings(asdict(self), TUNING_RULES)
        check_sampling(self.temperature)
        if not isinstance(self.prompt, str) or not self.prompt:
            raise ValueError(f"prompt must be a non-empty string, got {self.prompt!r}")
        if self.kl_target is not None and self.kl_weight == 0:
            raise ValueError("kl_target adapts kl_weight multiplicatively: start it above 0")
        if self.baseline == "leave_one_out" and self.batch_size < 2:
            raise ValueError("the leave-one-out baseline needs batch_size >= 2 (the other texts "
                             f"of the batch), got {self.batch_size}; use baseline='none'")

    def to_dict(self) -> dict:
        return asdict(self)


TUNING_RULES = {"kl_weight": Option(0.0, minimum=0), "steps": Option(1, minimum=1),
                "batch_size": Option(1, minimum=1), "new_characters": Option(1, minimum=1),
                "learning_rate": Option(1.0, above=0), "temperature": Option(1.0, above=0),
                "seed": Option(0, minimum=0), "baseline": Option("none", choices=BASELINES),
                "grad_clip": Option(1.0, above=0), "sample_every": Option(1, minimum=1),
                "kl_target": Option(None, above=0, none_ok=True, kind=float),
                "kl_adapt_rate": Option(0.1, above=0, maximum=1)}


@dataclass
class RewardTuningHistory:
    """One row per step (``step``, ``reward``, ``kl_per_character``, ``kl_exact_per_character``,
    ``shaped_reward``, ``advantage_std``, ``seconds``) and the sampled texts of some steps."""

    rows: list[dict] = field(default_factory=list)
    samples: dict[int, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def series(self, key: str) -> list[float]:
        """All values of one column, in step order."""
        return [row[key] for row in self.rows]

    def final(self, key: str, last: int = 10) -> float:
        """The mean of ``key`` over the last ``last`` steps (one step is a noisy estimate)."""
        values = self.series(key)[-last:]
        return sum(values) / len(values)

    def to_dict(self) -> dict:
        return {"rows": [dict(row) for row in self.rows], "seconds": self.seconds,
                "samples": {str(step): texts for step, texts in self.samples.items()}}


def _prompt_ids(vocab: CharVocab, prompt: str) -> list[int]:
    unknown = sorted(set(prompt) - set(vocab.characters))
    if unknown:
        raise ValueError(f"the prompt has characters outside the vocabulary: {unknown!r}")
    return vocab.encode(prompt)


def _check_length(model: nn.Module, prompt_length: int, new_characters: int) -> None:
    if prompt_length + new_characters > model.context_length:
        raise ValueError(f"prompt ({prompt_length}) + new_characters ({new_characters}) must fit "
                         f"the model's context of {model.context_length} characters")


@torch.no_grad()
def sample_tokens(model: nn.Module, vocab: CharVocab, count: int, new_characters: int,
                  prompt: str = "\n", generator: torch.Generator | None = None,
                  temperature: float = 1.0) -> torch.Tensor:
    """``count`` sequences ``(count, len(prompt) + new_characters)``: the prompt, then samples.

    All ``count`` texts are drawn side by side (one batch, the key-value cache).
    """
    ids = _prompt_ids(vocab, prompt)
    _check_length(model, len(ids), new_characters)
    device = next(model.parameters()).device
    prompts = torch.tensor(ids, device=device).repeat(count, 1)
    return model.generate(prompts, new_characters, temperature=temperature, generator=generator)


def sample_texts(model: nn.Module, vocab: CharVocab, count: int, new_characters: int,
                 prompt: str = "\n", generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> list[str]:
    """``count`` texts of ``new_characters`` characters each, sampled after ``prompt``.

    The prompt is not part of the texts (a reward scores what the model wrote).

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(3, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> texts = sample_texts(model, CharVocab("\\nab"), 2, 5,
        ...                      generator=torch.Generator().manual_seed(0))
        >>> [len(text) for text in texts]
        [5, 5]
    """
    tokens = sample_tokens(model, vocab, count, new_characters, prompt, generator, temperature)
    start = tokens.shape[1] - new_characters
    return [vocab.decode(row.tolist()) for row in tokens[:, start:].cpu()]


def sequence_log_probs(model: nn.Module, tokens: torch.Tensor, prompt_length: int,
                       temperature: float = 1.0, full: bool = False):
    """``log p(x_t | x_<t)`` of every generated token ``t >= prompt_length``: ``(B, T_new)``.

    With ``full=True`` also the whole log-distributions ``(B, T_new, vocab)`` at those
    positions (for the exact KL). Gradients flow when the caller has them enabled.
    """
    if tokens.dim() != 2 or not 1 <= prompt_length < tokens.shape[1]:
        raise ValueError(f"tokens must be (batch, time) with 1 <= prompt_length < time, got "
                         f"shape {tuple(tokens.shape)} and prompt_length {prompt_length}")
    logits = model(tokens[:, :-1])[:, prompt_length - 1:]  # logits[:, t] scores token t + 1
    log_probs = (logits.float() / temperature).log_softmax(dim=-1)
    chosen = log_probs.gather(-1, tokens[:, prompt_length:, None]).squeeze(-1)
    return (chosen, log_probs) if full else chosen


def kl_per_character(policy: nn.Module, reference: nn.Module, tokens: torch.Tensor,
                     prompt_length: int = 1, temperature: float = 1.0,
                     exact: bool = False) -> torch.Tensor:
    """The KL estimate per character of each sequence, ``(B,)``, without gradient.

    ``exact=False``: ``(1/T) sum_t [log pi(x_t) - log pi_ref(x_t)]`` on the sampled tokens
    (unbiased for ``KL(pi || pi_ref)`` per character when ``tokens`` come from ``pi``; a
    single text can give a negative value). ``exact=True``: ``(1/T) sum_t
    KL(pi(. | x_<t) || pi_ref(. | x_<t))``, the whole next-character distributions at the
    visited positions: never negative, and lower variance.

    Example:
        >>> from aigc_lessons.models import GPT
        >>> model = GPT(3, context_length=8, embed_dim=8, heads=2, layers=1)
        >>> tokens = torch.randint(0, 3, (2, 6), generator=torch.Generator().manual_seed(0))
        >>> kl_per_character(model, model, tokens).tolist()
        [0.0, 0.0]
    """
    with torch.no_grad():
        policy_chosen, policy_all = sequence_log_probs(policy, tokens, prompt_length,
                                                       temperature, full=True)
        reference_chosen, reference_all = sequence_log_probs(reference, tokens, prompt_length,
                                                             temperature, full=True)
    if exact:
        return (policy_all.exp() * (policy_all - reference_all)).sum(-1).mean(-1)
    return (policy_chosen - reference_chosen).mean(-1)


def shaped_reward(reward: torch.Tensor, kl: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """The KL-shaped reward ``r - beta * k`` of each text.

    Example:
        >>> shaped_reward(torch.tensor([1.0, 0.5]), torch.tensor([0.2, 0.0]), 2.0).tolist()
        [0.6000000238418579, 0.5]
    """
    return reward - kl_weight * kl


def advantages(rewards: torch.Tensor, baseline: str = "leave_one_out") -> torch.Tensor:
    """``R_i - b_i`` for a batch of rewards ``(B,)``, with one of :data:`BASELINES`.

    ``leave_one_out``: ``b_i`` is the mean of the other ``B - 1`` rewards, so it does not
    depend on text ``i`` and the estimator stays unbiased.

    Example:
        >>> advantages(torch.tensor([1.0, 2.0, 3.0])).tolist()
        [-1.5, 0.0, 1.5]
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (one per text), got shape {tuple(rewards.shape)}")
    if baseline == "none":
        return rewards
    if baseline == "mean":
        return rewards - rewards.mean()
    count = rewards.numel()
    if count < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 rewards")
    others = (rewards.sum() - rewards) / (count - 1)
    return rewards - others


def _check_reward(reward, count: int) -> torch.Tensor:
    reward = torch.as_tensor(reward, dtype=torch.float32)
    if reward.shape != (count,):
        raise ValueError(f"reward_fn must return one number per text, shape ({count},), got "
                         f"{tuple(reward.shape)}")
    if not torch.isfinite(reward).all():
        raise ValueError("reward_fn returned a NaN or infinite reward")
    return reward.detach()


def tune_with_reward(policy: nn.Module, reference: nn.Module, vocab: CharVocab,
                     reward_fn: Callable[[list[str]], torch.Tensor],
                     config: RewardTuningConfig, progress: bool = True) -> RewardTuningHistory:
    """Train ``policy`` in place toward ``reward_fn`` with a KL penalty to ``reference``.

    ``reward_fn(texts) -> (len(texts),)`` tensor scores the generated characters (the prompt
    is not included), without gradient. ``reference`` is frozen (its parameters are not
    changed; pass a copy of the pretrained model: ``copy.deepcopy(policy)`` before tuning).
    Each step is the REINFORCE step in this module's docstring; the history has, per step,
    the mean reward, the sampled KL per character (the one in the shaped reward), the exact
    KL per character at the visited positions, the mean shaped reward, and texts.
    """
    if not isinstance(config, RewardTuningConfig):
        raise TypeError(f"config must be a RewardTuningConfig, got {type(config).__name__}")
    if policy is reference:
        raise ValueError("policy and reference are the same module; pass a frozen copy as the "
                         "reference: copy.deepcopy(policy)")
    prompt_length = len(_prompt_ids(vocab, config.prompt))
    _check_length(policy, prompt_length, config.new_characters)
    device = next(policy.parameters()).device
    reference.eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(config.seed)  # sampling noise only
    optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad],
                                 lr=config.learning_rate)
    history = RewardTuningHistory()
    kl_weight = config.kl_weight  # changes only with a kl_target
    from tqdm.auto import tqdm

    bar = tqdm(range(1, config.steps + 1), desc="reward tuning", disable=not progress)
    started = time.perf_counter()
    for step in bar:
        tokens = sample_tokens(policy, vocab, config.batch_size, config.new_characters,
                               config.prompt, generator, config.temperature)
        texts = [vocab.decode(row.tolist()) for row in tokens[:, prompt_length:].cpu()]
        reward = _check_reward(reward_fn(texts), len(texts)).to(device)

        policy.train()
        chosen, policy_all = sequence_log_probs(policy, tokens, prompt_length,
                                                config.temperature, full=True)
        with torch.no_grad():
            reference_chosen, reference_all = sequence_log_probs(
                reference, tokens, prompt_length, config.temperature, full=True)
            kl = (chosen - reference_chosen).mean(-1)  # k(x): sampled, per character
            kl_exact = (policy_all.exp() * (policy_all - reference_all)).sum(-1).mean(-1)
            shaped = shaped_reward(reward, kl, kl_weight)
            advantage = advantages(shaped, config.baseline)
        # the score-function surrogate: its gradient is -mean_i A_i grad (1/T) log pi(x^i)
        loss = -(advantage * chosen.mean(-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
        optimizer.step()

        row = {"step": step, "reward": float(reward.mean()), "kl_per_character": float(kl.mean()),
               "kl_exact_per_character": float(kl_exact.mean()),
               "shaped_reward": float(shaped.mean()), "advantage_std": float(advantage.std()) if len(advantage) > 1 else 0.0,
               "kl_weight": kl_weight, "seconds": round(time.perf_counter() - started, 2)}
        if not all(math.isfinite(value) for value in row.values()):
            raise FloatingPointError(f"a non-finite value at step {step}: {row}; lower the "
                                     "learning rate")
        history.rows.append(row)
        if config.kl_target is not None:  # Ziegler et al.'s proportional controller
            error = min(0.2, max(-0.2, row["kl_exact_per_character"] / config.kl_target - 1))
            kl_weight *= 1 + config.kl_adapt_rate * error
        if step % config.sample_every == 0 or step == config.steps or step == 1:
            history.samples[step] = texts
        bar.set_postfix(reward=f"{row['reward']:.4f}", kl=f"{row['kl_exact_per_character']:.3f}")
    history.seconds = round(time.perf_counter() - started, 1)
    policy.eval()
    return history
