"""The learning-from-rewards chapter's exercise checks: right answers pass, wrong ones get a hint."""

from __future__ import annotations

import torch

from aigc_lessons.checks.rewards import (
    check_categorical_gradient,
    check_kl_shaped_reward,
    check_reinforce_with_baseline,
)


def _messages(result) -> str:
    return " ".join(result.messages)


def test_categorical_gradient_check():
    def right(logits, rewards):
        pi = logits.softmax(0)
        return pi * (rewards - (pi * rewards).sum())

    assert check_categorical_gradient(right).passed
    no_j = check_categorical_gradient(lambda logits, rewards: logits.softmax(0) * rewards)
    assert not no_j.passed and "subtract J" in _messages(no_j)
    no_pi = check_categorical_gradient(
        lambda logits, rewards: rewards - (logits.softmax(0) * rewards).sum())
    assert not no_pi.passed and "without the factor pi_j" in _messages(no_pi)
    assert check_categorical_gradient(lambda logits, rewards: None).status == "not attempted"


def test_reinforce_with_baseline_check():
    def right(score, rewards):
        baseline = (rewards.sum() - rewards) / (len(rewards) - 1)
        return ((rewards - baseline)[:, None] * score).mean(0)

    assert check_reinforce_with_baseline(right).passed
    plain = check_reinforce_with_baseline(lambda s, r: (r[:, None] * s).mean(0))
    assert not plain.passed and "no baseline" in _messages(plain)
    own = check_reinforce_with_baseline(lambda s, r: ((r - r.mean())[:, None] * s).mean(0))
    assert not own.passed and "own reward" in _messages(own)
    summed = check_reinforce_with_baseline(lambda s, r: right(s, r) * len(r))
    assert not summed.passed and "take the mean" in _messages(summed)

    def crashes(score, rewards):
        raise RuntimeError("boom")

    crashed = check_reinforce_with_baseline(crashes)
    assert not crashed.passed and "boom" in _messages(crashed)


def test_kl_shaped_reward_check():
    def right(reward, policy, reference, beta):
        return reward - beta * (policy - reference).mean(-1)

    assert check_kl_shaped_reward(right).passed
    summed = check_kl_shaped_reward(lambda r, p, q, b: r - b * (p - q).sum(-1))
    assert not summed.passed and "KL per character" in _messages(summed)
    added = check_kl_shaped_reward(lambda r, p, q, b: r + b * (p - q).mean(-1))
    assert not added.passed and "penalty was added" in _messages(added)
    wrong_shape = check_kl_shaped_reward(lambda r, p, q, b: (r[:, None] - b * (p - q)))
    assert not wrong_shape.passed and "shape" in _messages(wrong_shape)
    assert check_kl_shaped_reward(lambda *args: torch.zeros(3)).score < 1
