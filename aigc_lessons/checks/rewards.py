"""Checks for the learning-from-rewards chapter's coding exercises (``book/text/rewards.ipynb``)."""

from __future__ import annotations

from . import CheckResult, call_learner, describe_shape, report


def _close(actual, expected, tolerance: float = 1e-5) -> bool:
    import torch

    return bool(torch.allclose(actual.double(), expected.double(), rtol=tolerance,
                               atol=tolerance))


def _as_tensor(value, label: str):
    import torch

    if not isinstance(value, torch.Tensor):
        return None, f"{label}: expected a torch.Tensor, got {type(value).__name__}"
    return value.detach(), None


def check_categorical_gradient(learner_fn, exercise: str = "rewards-ex-2") -> CheckResult:
    """Check ``learner_fn(logits, rewards)`` returns the exact ``dJ/dlogits`` of ``J = pi . r``.

    ``pi = softmax(logits)``; the answer is ``pi * (r - J)`` (shape ``(K,)``).
    """
    import torch

    from ..rewards.policy_gradient import CategoricalPolicy, exact_gradient

    generator = torch.Generator().manual_seed(0)
    cases = {
        "three actions": (torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 0.0, 3.0])),
        "uniform policy over four": (torch.zeros(4), torch.tensor([0.0, 0.0, 1.0, 0.0])),
        "ten random actions": (torch.randn(10, generator=generator),
                               torch.rand(10, generator=generator)),
    }
    problems: list[str] = []
    passed = 0
    for label, (logits, rewards) in cases.items():
        value, problem = call_learner(learner_fn, label, logits.clone(), rewards.clone(),
                                      expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        value = value.detach()
        shape_problem = describe_shape(label, value.shape, logits.shape)
        if shape_problem:
            problems.append(shape_problem + " (one partial derivative per logit)")
            continue
        expected = exact_gradient(CategoricalPolicy(logits), rewards)
        pi = logits.double().softmax(0)
        if _close(value, expected):
            passed += 1
            continue
        hint = ""
        if _close(value, pi * rewards):
            hint = " (pi * r: the derivative of pi_j also lowers every other pi_a; subtract J)"
        elif _close(value, rewards - (pi * rewards).sum()):
            hint = " (r - J without the factor pi_j)"
        elif _close(value, -expected):
            hint = " (the sign is flipped)"
        problems.append(f"{label}: got {value.tolist()}, expected {expected.tolist()}{hint}")
    return report(exercise, problems, partial=passed / len(cases))


def check_reinforce_with_baseline(learner_fn, exercise: str = "rewards-ex-3") -> CheckResult:
    """Check ``learner_fn(score, rewards)``: the REINFORCE estimate with a leave-one-out baseline.

    ``score`` is ``(B, K)`` (``grad log pi`` of each sampled action), ``rewards`` ``(B,)``;
    the answer is ``(1/B) sum_i (r_i - b_i) score_i`` with ``b_i`` the mean of the other
    ``B - 1`` rewards.
    """
    import torch

    from ..rewards.policy_gradient import reinforce_gradient

    generator = torch.Generator().manual_seed(0)
    cases = {
        "a batch of 2": (torch.tensor([[0.5, -0.5], [-0.5, 0.5]]), torch.tensor([1.0, 0.0])),
        "a batch of 8, 3 actions": (torch.randn(8, 3, generator=generator),
                                    torch.rand(8, generator=generator)),
        "a batch of 32, 5 actions": (torch.randn(32, 5, generator=generator),
                                     torch.rand(32, generator=generator) + 2.0),
    }
    problems: list[str] = []
    passed = 0
    for label, (score, rewards) in cases.items():
        value, problem = call_learner(learner_fn, label, score.clone(), rewards.clone(),
                                      expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        value = value.detach()
        shape_problem = describe_shape(label, value.shape, score.shape[1:])
        if shape_problem:
            problems.append(shape_problem + " (average over the batch, dimension 0)")
            continue
        expected = reinforce_gradient(score, rewards, "leave_one_out")
        if _close(value, expected):
            passed += 1
            continue
        hint = ""
        if _close(value, reinforce_gradient(score, rewards, "none")):
            hint = " (no baseline was subtracted)"
        elif _close(value, reinforce_gradient(score, rewards, "mean")):
            hint = (" (the batch mean includes the sample's own reward: leave it out, "
                    "b_i = (sum of rewards - r_i) / (B - 1))")
        elif _close(value, expected * len(rewards)):
            hint = " (summed over the batch: take the mean)"
        elif _close(value, -expected):
            hint = " (the sign is flipped)"
        problems.append(f"{label}: got {[round(v, 5) for v in value.tolist()]}, expected "
                        f"{[round(v, 5) for v in expected.tolist()]}{hint}")
    return report(exercise, problems, partial=passed / len(cases))


def check_kl_shaped_reward(learner_fn, exercise: str = "rewards-ex-4") -> CheckResult:
    """Check ``learner_fn(reward, policy_log_probs, reference_log_probs, beta)``.

    ``reward`` ``(B,)``, the log-probabilities ``(B, T)`` of the sampled characters under the
    policy and the reference; the answer is ``reward - beta * mean_t (log pi - log pi_ref)``
    (the KL estimate per character), shape ``(B,)``.
    """
    import torch

    generator = torch.Generator().manual_seed(1)
    policy = -torch.rand(4, 6, generator=generator) * 3
    reference = -torch.rand(4, 6, generator=generator) * 3
    reward = torch.rand(4, generator=generator)
    cases = {"beta = 0.5": 0.5, "beta = 0 (no penalty)": 0.0, "beta = 2": 2.0}
    problems: list[str] = []
    passed = 0
    for label, beta in cases.items():
        value, problem = call_learner(learner_fn, label, reward.clone(), policy.clone(),
                                      reference.clone(), beta, expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        value = value.detach()
        shape_problem = describe_shape(label, value.shape, reward.shape)
        if shape_problem:
            problems.append(shape_problem + " (one shaped reward per text)")
            continue
        kl = (policy - reference).mean(-1)
        expected = reward - beta * kl
        if _close(value, expected):
            passed += 1
            continue
        hint = ""
        if _close(value, reward - beta * (policy - reference).sum(-1)):
            hint = " (the KL was summed over characters: take the mean, the KL per character)"
        elif _close(value, reward + beta * kl):
            hint = " (the penalty was added: subtract beta * KL, or the KL is log pi_ref - log pi)"
        elif _close(value, reward - kl):
            hint = " (beta is missing)"
        problems.append(f"{label}: got {[round(v, 5) for v in value.tolist()]}, expected "
                        f"{[round(v, 5) for v in expected.tolist()]}{hint}")
    return report(exercise, problems, partial=passed / len(cases))
