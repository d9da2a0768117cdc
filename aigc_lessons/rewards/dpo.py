"""Direct preference optimisation (Rafailov et al. 2023): the reward model and RL in one loss.

The KL-regularised objective ``max_pi E_{y~pi}[r(y)] - beta KL(pi || pi_ref)`` (over whole
completions ``y``) has a closed-form optimum,

    pi*(y) = pi_ref(y) exp(r(y) / beta) / Z,     so     r(y) = beta log(pi*(y) / pi_ref(y)) + beta log Z.

Put that ``r`` into the Bradley-Terry likelihood of a comparison ``y_w > y_l``: ``log Z``
is the same for both completions of one prompt and cancels, leaving a loss on the policy
alone (:func:`dpo_loss`),

    L(pi) = - mean log sigmoid( beta [ log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l) ] ).

No reward model is trained and no text is sampled during training: each step needs the
sequence log-probabilities (:func:`completion_log_prob`) of the chosen and the rejected
completions under the policy (with gradient) and under the frozen reference (computed
once, :func:`reference_log_probs`). ``beta log pi(y)/pi_ref(y)`` is the *implicit
reward* (:func:`implicit_reward`); at ``pi = pi_ref`` it is 0 and the loss is ``log 2``.

The book's KL weight in :mod:`aigc_lessons.rewards.tuning` is per character; ``beta`` here
is per completion, so a per-character weight ``beta_char`` on completions of ``T``
characters is ``beta = beta_char / T``.

Example:
    >>> zero = torch.zeros(3)
    >>> round(float(dpo_loss(zero, zero, zero, zero, beta=0.1)), 4)  # log 2
    0.6931
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..family import Option, check_settings
from .preferences import PreferencePairs
from .tuning import sequence_log_probs

__all__ = ["DPO_RULES", "DpoConfig", "DpoHistory", "completion_log_prob", "dpo_loss",
           "implicit_reward", "reference_log_probs", "train_dpo"]


def completion_log_prob(model: nn.Module, tokens: torch.Tensor, prompt_length: int
                        ) -> torch.Tensor:
    """``log pi(y | prompt)``: the sum of the log-probabilities of the completion's characters, ``(B,)``.

    Gradients flow when the caller has them enabled.
    """
    return sequence_log_probs(model, tokens, prompt_length).sum(-1)


def implicit_reward(policy_log_prob: torch.Tensor, reference_log_prob: torch.Tensor,
                    beta: float) -> torch.Tensor:
    """DPO's implicit reward ``beta * (log pi(y) - log pi_ref(y))``.

    Example:
        >>> implicit_reward(torch.tensor([-10.0]), torch.tensor([-12.0]), 0.5).tolist()
        [1.0]
    """
    return beta * (policy_log_prob - reference_log_prob)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             reference_chosen: torch.Tensor, reference_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:
    """``mean(-log sigmoid(beta [(log pi_w - log ref_w) - (log pi_l - log ref_l)]))`` over the pairs.

    Every argument is a ``(B,)`` tensor of completion log-probabilities.

    Example:
        >>> chosen_up = dpo_loss(torch.tensor([-9.0]), torch.tensor([-10.0]),
        ...                      torch.tensor([-10.0]), torch.tensor([-10.0]), beta=1.0)
        >>> round(float(chosen_up), 4)  # softplus(-1)
        0.3133
    """
    if not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, reference_chosen,
                                       reference_rejected)}
    if len(shapes) != 1 or policy_chosen.dim() != 1:
        raise ValueError(f"the four log-probabilities must be 1-D tensors of one shape, got "
                         f"{sorted(shapes)}")
    margin = implicit_reward(policy_chosen, reference_chosen, beta) \
        - implicit_reward(policy_rejected, reference_rejected, beta)
    return F.softplus(-margin).mean()  # = -log sigmoid(margin), without overflow


@torch.no_grad()
def reference_log_probs(reference: nn.Module, pairs: PreferencePairs, batch_size: int = 128
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``log pi_ref`` of every chosen and every rejected completion, each text scored once.

    Texts appear in several pairs (a text is compared with several others), so the distinct
    sequences are scored once and the results spread back to the pairs.
    """
    reference.eval()
    both = torch.cat([pairs.chosen_tokens, pairs.rejected_tokens])
    distinct, where = torch.unique(both, dim=0, return_inverse=True)
    scores = torch.cat([completion_log_prob(reference, distinct[start:start + batch_size],
                                            pairs.prompt_length)
                        for start in range(0, len(distinct), batch_size)])
    return scores[where[:len(pairs)]], scores[where[len(pairs):]]


DPO_RULES = {
    "beta": Option(0.1, above=0.0),
    "steps": Option(150, minimum=1),
    "batch_size": Option(32, minimum=1),
    "learning_rate": Option(1e-4, above=0.0),
    "grad_clip": Option(1.0, above=0.0),
    "log_every": Option(10, minimum=1),
    "seed": Option(0, minimum=0),
}


@dataclass
class DpoConfig:
    """DPO's settings (ranges in :data:`DPO_RULES`): ``beta`` per completion, Adam, clipped gradients."""

    beta: float = 0.1
    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-4
    grad_clip: float = 1.0
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(asdict(self), DPO_RULES)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DpoHistory:
    """Every ``log_every`` steps: the loss, the implicit-reward margin and accuracy, the log-ratios."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def train_dpo(policy: nn.Module, reference: nn.Module, pairs: PreferencePairs,
              config: DpoConfig | None = None, progress: bool = True) -> DpoHistory:
    """Train ``policy`` in place on ``pairs`` with :func:`dpo_loss`; ``reference`` stays frozen.

    Each step draws ``batch_size`` pairs (a generator seeded with ``config.seed``), scores
    the chosen and the rejected completions under the policy in one batch, and steps. The
    history's rows average the steps since the last row: loss, mean implicit-reward margin,
    the share of pairs whose margin is positive, and the chosen and rejected log-ratios.

    Example:
        >>> policy = copy.deepcopy(reference)  # doctest: +SKIP
        >>> history = train_dpo(policy, reference, data.train, DpoConfig(steps=20))  # doctest: +SKIP
    """
    config = config or DpoConfig()
    if policy is reference:
        raise ValueError("policy and reference are the same module; pass a frozen copy as the "
                         "reference: copy.deepcopy(policy)")
    if len(pairs) == 0:
        raise ValueError("pairs is empty")
    if not any(parameter.requires_grad for parameter in policy.parameters()):
        raise ValueError("no parameter of the policy requires a gradient: was it copied from a "
                         "frozen reference? call policy.requires_grad_(True) first")
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    reference_chosen, reference_rejected = reference_log_probs(reference, pairs)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    history, window = DpoHistory(), []
    from tqdm.auto import tqdm

    started = time.perf_counter()
    policy.train()
    for step in tqdm(range(1, config.steps + 1), desc="DPO", disable=not progress):
        index = torch.randint(0, len(pairs), (config.batch_size,), generator=generator)
        tokens = torch.cat([pairs.chosen_tokens[index], pairs.rejected_tokens[index]])
        log_probs = completion_log_prob(policy, tokens, pairs.prompt_length)
        chosen, rejected = log_probs[:len(index)], log_probs[len(index):]
        loss = dpo_loss(chosen, rejected, reference_chosen[index], reference_rejected[index],
                        config.beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
        optimizer.step()
        with torch.no_grad():
            chosen_ratio = (chosen - reference_chosen[index]).mean()
            rejected_ratio = (rejected - reference_rejected[index]).mean()
            margin = config.beta * ((chosen - reference_chosen[index])
                                    - (rejected - reference_rejected[index]))
        window.append((float(loss.detach()), float(margin.mean()), float((margin > 0).float().mean()),
                       float(chosen_ratio), float(rejected_ratio)))
        if step % config.log_every == 0 or step == config.steps:
            means = torch.tensor(window).mean(0).tolist()
            history.rows.append({"step": step, "loss": round(means[0], 4),
                                 "margin": round(means[1], 4), "accuracy": round(means[2], 4),
                                 "chosen_log_ratio": round(means[3], 3),
                                 "rejected_log_ratio": round(means[4], 3),
                                 "seconds": round(time.perf_counter() - started, 1)})
            window = []
    history.seconds = round(time.perf_counter() - started, 1)
    policy.eval()
    return history
