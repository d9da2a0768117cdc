"""Checks for the attention chapter's coding exercises (``book/text/attention.ipynb``).

* :func:`check_causal_attention`: one head of masked scaled dot-product attention,
  compared with PyTorch's ``scaled_dot_product_attention(..., is_causal=True)`` (what the
  package's ``CausalSelfAttention(fused=True)`` calls), and tested for leaks: changing
  the keys and values after position ``t`` must not change the output at ``t``;
* :func:`check_heads`: splitting channels into heads and merging them back, in the layout
  of :class:`~aigc_lessons.models.gpt.CausalSelfAttention`;
* :func:`check_score_scale`: the factor that gives the attention scores unit variance.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def _attention(q, k, v, scale: float | None = None, diagonal: int | None = 0,
               dim: int = -1) -> torch.Tensor:
    """Reference and typical mistakes: ``diagonal=None`` no mask, 1 sees t+1, -1 hides t itself."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if diagonal is not None:
        time = q.shape[-2]
        allowed = torch.tril(torch.ones(time, time, dtype=torch.bool), diagonal=diagonal)
        scores = scores.masked_fill(~allowed, -1e9)  # -1e9, not -inf: a hidden row stays finite
    return torch.softmax(scores, dim=dim) @ v


def _close(value: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    return value.shape == expected.shape and bool(
        torch.isfinite(value).all() and torch.allclose(value.double(), expected.double(),
                                                       atol=atol))


def _attention_hint(value: torch.Tensor, q, k, v) -> str:
    d = q.shape[-1]
    mistakes = [
        (_attention(q, k, v, diagonal=1), "position t also sees t + 1: the mask is "
         "tril(..., diagonal=1); keep s <= t, torch.tril(ones(T, T)) with diagonal=0"),
        (_attention(q, k, v, diagonal=-1), "position t does not see itself: the mask is "
         "tril(..., diagonal=-1); the diagonal (s = t) must be allowed"),
        (_attention(q, k, v, diagonal=None), "no mask: every position sees the future; fill "
         "the scores above the diagonal with -inf before the softmax"),
        (_attention(q, k, v, scale=1.0), "the scores are not scaled: divide q k^T by sqrt(d)"),
        (_attention(q, k, v, scale=1 / d), "the scores are divided by d; divide by sqrt(d)"),
        (_attention(q, k, v, dim=-2), "the softmax runs over the queries (dim=-2); the weights "
         "of one query over the keys must sum to 1: softmax(..., dim=-1)"),
    ]
    for expected, hint in mistakes:
        if _close(value, expected, atol=1e-4):
            return f" ({hint})"
    if not torch.isfinite(value).all():
        return (" (the output has NaN or inf: a row whose every score is -inf has no softmax; "
                "is the diagonal masked?)")
    return ""


def check_causal_attention(learner_fn, exercise: str = "attention-ex-1") -> CheckResult:
    """Check ``learner_fn(q, k, v)`` = causal scaled dot-product attention of one head.

    ``q``, ``k``, ``v`` are ``(B, T, d)``; the result is ``(B, T, d)``, row ``t`` the
    average of ``v[:, s]`` for ``s <= t`` weighted by ``softmax_s(q_t . k_s / sqrt(d))``.
    """
    generator = torch.Generator().manual_seed(0)
    problems: list[str] = []
    cases = {"batch 2, 5 positions, d = 4": (2, 5, 4), "batch 1, 7 positions, d = 16": (1, 7, 16)}
    passed, total = 0, len(cases) + 1
    for label, (batch, time, d) in cases.items():
        q, k, v = (torch.randn(batch, time, d, generator=generator) for _ in range(3))
        value, problem = call_learner(learner_fn, label, q.clone(), k.clone(), v.clone(),
                                      expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (the output has one row of d numbers per query)")
            continue
        if not _close(value, expected):
            error = float((value.double() - expected.double()).abs().nan_to_num(math.inf).max())
            problems.append(f"{label}: differs from scaled_dot_product_attention(q, k, v, "
                            f"is_causal=True) by up to {error:.3g}"
                            f"{_attention_hint(value, q, k, v)}")
            continue
        passed += 1

    # The leak test: the future's keys and values must not change any earlier output.
    time, d = 6, 8
    q, k, v = (torch.randn(1, time, d, generator=generator) for _ in range(3))
    base, problem = call_learner(learner_fn, "leak test", q.clone(), k.clone(), v.clone(),
                                 expect_tensor=True)
    if problem is None and base.shape == q.shape:
        leaks = []
        for t in range(time - 1):
            later_k, later_v = k.clone(), v.clone()
            later_k[:, t + 1:] = torch.randn(1, time - t - 1, d, generator=generator)
            later_v[:, t + 1:] = torch.randn(1, time - t - 1, d, generator=generator)
            changed, problem = call_learner(learner_fn, "leak test", q.clone(), later_k, later_v,
                                            expect_tensor=True)
            if problem:
                break
            if not torch.allclose(changed[:, : t + 1], base[:, : t + 1], atol=1e-6):
                leaks.append(t)
        if problem:
            problems.append(problem)
        elif leaks:
            problems.append(f"leak test: the output at position {leaks[0]} changes when only the "
                            f"keys and values after it change: position t must not see s > t")
        else:
            passed += 1
    elif problem:
        problems.append(problem)
    return report(exercise, problems, partial=passed / total)


def check_heads(split_fn, merge_fn, exercise: str = "attention-ex-2") -> CheckResult:
    """Check ``split_fn(x, heads)`` (``(B, T, C)`` -> ``(B, heads, T, d)``) and ``merge_fn``.

    Head ``h`` takes the contiguous channels ``h * d .. (h + 1) * d - 1`` of every position
    (the layout of ``CausalSelfAttention``: ``view(B, T, heads, d).transpose(1, 2)``);
    ``merge_fn(y)`` undoes it, ``(B, heads, T, d)`` -> ``(B, T, heads * d)``.
    """
    batch, time, channels, heads = 2, 5, 12, 3
    d = channels // heads
    x = torch.arange(batch * time * channels, dtype=torch.float32).view(batch, time, channels)
    expected = x.view(batch, time, heads, d).transpose(1, 2)
    problems: list[str] = []
    passed = 0
    value, problem = call_learner(split_fn, "split", x.clone(), heads, expect_tensor=True)
    if problem:
        problems.append(problem)
    else:
        shape_problem = describe_shape("split: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (batch, heads, time, channels per head)")
        elif not torch.equal(value, expected):
            hint = ""
            if torch.equal(value, x.reshape(batch, heads, time, d)):
                hint = (" (a view straight to (B, heads, T, d) mixes positions into heads: view as "
                        "(B, T, heads, d) first, then swap time and heads with transpose(1, 2))")
            elif torch.equal(value, x.view(batch, time, d, heads).permute(0, 3, 1, 2)):
                hint = (" (head h got every heads-th channel; the package gives head h the "
                        "contiguous slice of channels h*d to (h+1)*d - 1)")
            problems.append("split: head 0 of position 0 should hold channels 0 .. "
                            f"{d - 1} of position 0, got {value[0, 0, 0].tolist()} instead of "
                            f"{expected[0, 0, 0].tolist()}{hint}")
        else:
            passed += 1
    merged, problem = call_learner(merge_fn, "merge", expected.clone(), expect_tensor=True)
    if problem:
        problems.append(problem)
    else:
        shape_problem = describe_shape("merge: result", merged.shape, x.shape)
        if shape_problem:
            problems.append(shape_problem + " (batch, time, heads * channels per head)")
        elif not torch.equal(merged, x):
            hint = ""
            if torch.equal(merged, expected.reshape(batch, time, channels)):
                hint = (" (a reshape of (B, heads, T, d) straight to (B, T, C) mixes heads and "
                        "positions: transpose(1, 2) back first, then reshape)")
            problems.append(f"merge: merge(split(x)) is not x{hint}")
        else:
            passed += 1
    return report(exercise, problems, partial=passed / 2)


def check_score_scale(learner_fn, exercise: str = "attention-ex-3") -> CheckResult:
    """Check ``learner_fn(d, query_std, key_std)``: the factor giving ``scale * q . k`` variance 1.

    ``q`` and ``k`` have ``d`` independent entries of mean 0 and standard deviations
    ``query_std`` and ``key_std``: ``Var(q . k) = d query_std^2 key_std^2``, so the scale is
    ``1 / (sqrt(d) query_std key_std)``.
    """
    cases = [(64, 1.0, 1.0), (16, 2.0, 1.0), (256, 0.5, 3.0)]
    problems: list[str] = []
    passed = 0
    for d, query_std, key_std in cases:
        label = f"d = {d}, query std {query_std:g}, key std {key_std:g}"
        value, problem = call_learner(learner_fn, label, d, query_std, key_std,
                                      returns="one number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = 1 / (math.sqrt(d) * query_std * key_std)
        mismatch = describe_mismatch(label, value, expected)
        if mismatch:
            if math.isclose(value, 1 / math.sqrt(d), rel_tol=1e-6) and expected != value:
                mismatch += (" (that is 1 / sqrt(d): the entries' standard deviations also "
                             "scale q . k)")
            elif math.isclose(value, 1 / (d * query_std * key_std), rel_tol=1e-6):
                mismatch += " (the variance is d ..., the standard deviation its square root)"
            elif math.isclose(value, 1 / (math.sqrt(d) * query_std**2 * key_std**2), rel_tol=1e-6):
                mismatch += " (divide by the standard deviations, not by the variances)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
