"""The score-function (REINFORCE) gradient on a problem small enough to solve exactly.

A *categorical policy* chooses one of ``K`` actions with probabilities
``pi = softmax(theta)``; action ``a`` earns the reward ``r_a``. The expected reward and
its exact gradient are

    J(theta) = sum_a pi_a r_a,        dJ/dtheta_j = pi_j (r_j - J)

(from ``d pi_a / d theta_j = pi_a ([a = j] - pi_j)``). REINFORCE (Williams 1992) estimates
the gradient from sampled actions only, through ``grad pi_a = pi_a grad log pi_a``:

    grad J = E_{a ~ pi} [ r_a grad log pi_a ],   grad_theta log pi_a = e_a - pi

(``e_a`` is the one-hot vector of ``a``). Subtracting a baseline ``b`` that does not depend
on the sampled action keeps it unbiased, since ``E[grad log pi_a] = grad sum_a pi_a = 0``,
and can lower its variance a lot. :func:`reinforce_samples` draws one-sample estimates
with the baselines ``"none"``, ``"constant"`` (a fixed number, for example ``J`` itself),
``"mean"`` and ``"leave_one_out"`` (batch baselines); :func:`estimator_statistics`
measures their bias and variance against :func:`exact_gradient`, and
:func:`exact_variance` gives the variance of the constant-baseline estimator in closed form.

Example:
    >>> policy = CategoricalPolicy(torch.tensor([0.0, 1.0, 2.0]))
    >>> rewards = torch.tensor([1.0, 0.0, 3.0])
    >>> [round(g, 4) for g in exact_gradient(policy, rewards).tolist()]
    [-0.0978, -0.5104, 0.6082]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PG_BASELINES", "CategoricalPolicy", "estimator_statistics", "exact_gradient",
           "exact_variance", "reinforce_gradient", "reinforce_samples"]

PG_BASELINES = ("none", "constant", "mean", "leave_one_out")


@dataclass
class CategoricalPolicy:
    """``pi = softmax(logits)`` over ``K`` actions; ``logits`` is a 1-D tensor.

    Example:
        >>> CategoricalPolicy(torch.zeros(4)).probabilities.tolist()
        [0.25, 0.25, 0.25, 0.25]
    """

    logits: torch.Tensor

    def __post_init__(self) -> None:
        self.logits = torch.as_tensor(self.logits, dtype=torch.float64)
        if self.logits.dim() != 1 or self.logits.numel() < 2:
            raise ValueError(f"logits must be 1-D with at least 2 actions, got shape "
                             f"{tuple(self.logits.shape)}")
        if not torch.isfinite(self.logits).all():
            raise ValueError("logits must be finite")

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(0)

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` actions drawn from ``pi`` (a 1-D tensor of indices)."""
        return torch.multinomial(self.probabilities, count, replacement=True,
                                 generator=generator)

    def score(self, actions: torch.Tensor) -> torch.Tensor:
        """``grad_theta log pi_a = e_a - pi`` for each action: ``(len(actions), K)``."""
        one_hot = torch.nn.functional.one_hot(actions, self.logits.numel()).double()
        return one_hot - self.probabilities


def _check_rewards(policy: CategoricalPolicy, rewards: torch.Tensor) -> torch.Tensor:
    rewards = torch.as_tensor(rewards, dtype=torch.float64)
    if rewards.shape != policy.logits.shape:
        raise ValueError(f"rewards must have one value per action, shape "
                         f"{tuple(policy.logits.shape)}, got {tuple(rewards.shape)}")
    return rewards


def exact_gradient(policy: CategoricalPolicy, rewards: torch.Tensor) -> torch.Tensor:
    """``dJ/dtheta = pi * (r - J)``, the closed form (checked against autograd in the tests)."""
    rewards = _check_rewards(policy, rewards)
    pi = policy.probabilities
    return pi * (rewards - (pi * rewards).sum())


def reinforce_gradient(score: torch.Tensor, rewards: torch.Tensor, baseline: str = "none",
                       constant: float = 0.0) -> torch.Tensor:
    """The batch REINFORCE estimate ``(1/B) sum_i (r_i - b_i) score_i`` from ``B`` samples.

    ``score`` is ``(B, K)`` (the ``grad log pi`` of each sample), ``rewards`` ``(B,)``.
    ``baseline``: ``"none"`` (``b = 0``), ``"constant"`` (``b = constant``), ``"mean"``
    (the batch mean, biased by the factor ``(B - 1) / B``), ``"leave_one_out"`` (the mean
    of the other ``B - 1`` rewards: unbiased).

    Example:
        >>> score = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
        >>> reinforce_gradient(score, torch.tensor([1.0, 0.0])).tolist()
        [0.25, -0.25]
    """
    if baseline not in PG_BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(PG_BASELINES)}, got {baseline!r}")
    if score.dim() != 2 or rewards.shape != score.shape[:1]:
        raise ValueError(f"score must be (B, K) and rewards (B,), got {tuple(score.shape)} and "
                         f"{tuple(rewards.shape)}")
    count = rewards.numel()
    if baseline == "none":
        b = torch.zeros_like(rewards)
    elif baseline == "constant":
        b = torch.full_like(rewards, constant)
    elif baseline == "mean":
        b = rewards.mean().expand_as(rewards)
    else:
        if count < 2:
            raise ValueError("the leave-one-out baseline needs a batch of at least 2 samples")
        b = (rewards.sum() - rewards) / (count - 1)
    return ((rewards - b)[:, None] * score).mean(0)


def reinforce_samples(policy: CategoricalPolicy, rewards: torch.Tensor, repeats: int,
                      batch_size: int = 1, baseline: str = "none", constant: float = 0.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """``repeats`` independent batch estimates of the gradient: ``(repeats, K)``.

    Example:
        >>> policy = CategoricalPolicy(torch.zeros(3))
        >>> reinforce_samples(policy, torch.tensor([1.0, 0.0, 0.0]), repeats=5,
        ...                   generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 3])
    """
    rewards = _check_rewards(policy, rewards)
    if repeats < 1 or batch_size < 1:
        raise ValueError(f"repeats and batch_size must be >= 1, got {repeats} and {batch_size}")
    actions = policy.sample(repeats * batch_size, generator).view(repeats, batch_size)
    score = policy.score(actions.flatten()).view(repeats, batch_size, -1)
    sampled = rewards[actions]
    return torch.stack([reinforce_gradient(score[i], sampled[i], baseline, constant)
                        for i in range(repeats)])


def exact_variance(policy: CategoricalPolicy, rewards: torch.Tensor,
                   constant: float = 0.0) -> float:
    """Total variance (trace of the covariance) of the one-sample estimate with baseline ``b``.

    ``E[(r_a - b)^2 ||e_a - pi||^2] - ||grad J||^2``, summed over the ``K`` actions; a
    batch of ``B`` samples divides it by ``B``. As a function of ``b`` it is a parabola,
    lowest at ``b* = E[r_a w_a] / E[w_a]`` with ``w_a = ||e_a - pi||^2`` (the
    variance-optimal constant baseline, near ``J`` but not equal to it).

    Example:
        >>> policy = CategoricalPolicy(torch.zeros(2))
        >>> exact_variance(policy, torch.tensor([1.0, 1.0]), constant=1.0)
        0.0
    """
    rewards = _check_rewards(policy, rewards)
    pi = policy.probabilities
    squared_score = ((torch.eye(len(pi), dtype=pi.dtype) - pi) ** 2).sum(1)  # ||e_a - pi||^2
    second_moment = (pi * (rewards - constant) ** 2 * squared_score).sum()
    return float(second_moment - exact_gradient(policy, rewards).pow(2).sum())


def estimator_statistics(policy: CategoricalPolicy, rewards: torch.Tensor, repeats: int,
                         batch_size: int = 1, baseline: str = "none", constant: float = 0.0,
                         generator: torch.Generator | None = None) -> dict[str, float]:
    """Bias and variance of the REINFORCE estimator, measured over ``repeats`` batches.

    Returns ``{"bias": ||mean - exact||, "standard_error": the Monte Carlo error of that mean
    (its expected size when the estimator is unbiased), "variance": total variance of one
    batch estimate}``.

    Example:
        >>> policy = CategoricalPolicy(torch.tensor([0.0, 1.0, 2.0]))
        >>> stats = estimator_statistics(policy, torch.tensor([1.0, 0.0, 3.0]), 20000,
        ...                              generator=torch.Generator().manual_seed(0))
        >>> stats["bias"] < 4 * stats["standard_error"]
        True
    """
    estimates = reinforce_samples(policy, rewards, repeats, batch_size, baseline, constant,
                                  generator)
    exact = exact_gradient(policy, rewards)
    variance = float(estimates.var(0).sum())
    return {"bias": float((estimates.mean(0) - exact).norm()),
            "standard_error": (variance / repeats) ** 0.5, "variance": variance}
