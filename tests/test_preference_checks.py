"""The preferences chapter's exercise checks: right answers pass, typical wrong ones get a hint."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from aigc_lessons.checks.preferences import check_bradley_terry_loss, check_dpo_loss
from aigc_lessons.rewards.dpo import dpo_loss
from aigc_lessons.rewards.reward_model import bradley_terry_loss


def _messages(result) -> str:
    return " ".join(result.messages)


def test_bradley_terry_check():
    assert check_bradley_terry_loss(bradley_terry_loss).passed
    assert check_bradley_terry_loss(lambda w, l: -F.logsigmoid(w - l).mean()).passed
    swapped = check_bradley_terry_loss(lambda w, l: F.softplus(w - l).mean())
    assert not swapped.passed and "swapped" in _messages(swapped)
    summed = check_bradley_terry_loss(lambda w, l: F.softplus(l - w).sum())
    assert not summed.passed and "mean" in _messages(summed)
    naive = check_bradley_terry_loss(lambda w, l: -torch.log(torch.sigmoid(w - l)).mean())
    assert not naive.passed and "overflow" in _messages(naive)
    assert 0 < naive.score < naive.max_score  # the small cases pass: partial credit
    assert check_bradley_terry_loss(lambda w, l: None).status == "not attempted"
    crashing = check_bradley_terry_loss(lambda w, l: 1 / 0)
    assert not crashing.passed and "ZeroDivisionError" in _messages(crashing)


def test_dpo_check():
    assert check_dpo_loss(dpo_loss).passed
    swapped = check_dpo_loss(lambda pw, pl, rw, rl, b: dpo_loss(pl, pw, rl, rw, b))
    assert not swapped.passed and "swapped" in _messages(swapped)
    no_beta = check_dpo_loss(lambda pw, pl, rw, rl, b: dpo_loss(pw, pl, rw, rl, 1.0))
    assert not no_beta.passed and "beta left out" in _messages(no_beta)
    no_reference = check_dpo_loss(lambda pw, pl, rw, rl, b: F.softplus(-b * (pw - pl)).mean())
    assert not no_reference.passed and "reference" in _messages(no_reference)
    summed = check_dpo_loss(
        lambda pw, pl, rw, rl, b: F.softplus(-b * ((pw - rw) - (pl - rl))).sum())
    assert not summed.passed and "summed" in _messages(summed)
    naive = check_dpo_loss(
        lambda pw, pl, rw, rl, b: -torch.log(torch.sigmoid(b * ((pw - rw) - (pl - rl)))).mean())
    assert not naive.passed and "overflow" in _messages(naive)
    assert check_dpo_loss(lambda *args: None).status == "not attempted"
