"""Checks for the DeepDream and feature-visualization chapter's coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report


def check_gram_matrix(learner_fn, exercise: str = "deepdream-ex-2") -> CheckResult:
    """Check ``learner_fn(features)`` returns Gram matrices ``(B, C, C)``, ``G = F F^T / (H W)``.

    Four cases: a hand-computed one, a random batch, the symmetry of the result, and
    invariance to a shuffle of the spatial positions (the property that makes the Gram
    matrix a description of texture, not of layout).
    """
    from ..feature_vis import gram_matrix

    generator = torch.Generator().manual_seed(0)
    hand = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]]])  # (1, 2, 2, 2)
    random_batch = torch.rand(3, 4, 5, 6, generator=generator)
    permutation = torch.randperm(30, generator=generator)
    shuffled = random_batch.flatten(2)[:, :, permutation].reshape(3, 4, 5, 6)
    cases = {
        "hand case (1, 2, 2, 2): G = [[1.5, 0.5], [0.5, 2.5]]": hand,
        "random batch (3, 4, 5, 6)": random_batch,
    }
    problems: list[str] = []
    passed = 0
    results: dict[str, torch.Tensor] = {}
    for label, features in cases.items():
        value, problem = call_learner(learner_fn, label, features.clone(), returns="a (B, C, C) tensor", expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = gram_matrix(features)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            hint = ""
            if value.dim() == 3 and value.shape[-1] == features.shape[-1] * features.shape[-2]:
                hint = " (you correlated positions, not channels: flatten to (B, C, H*W) and compute F @ F^T)"
            problems.append(shape_problem + hint)
            continue
        results[label] = value.detach()
        difference = (value.detach().double() - expected.double()).abs().max().item()
        if difference > 1e-4:
            worst = (value.detach() - expected).abs().flatten().argmax()
            mismatch = describe_mismatch(f"{label}: an entry", float(value.flatten()[worst]),
                                         float(expected.flatten()[worst]))
            hint = ""
            height, width = features.shape[-2:]
            if torch.allclose(value.detach(), expected * height * width, rtol=1e-4, atol=1e-5):
                hint = " (H*W times too large: divide by the number of positions H*W)"
            elif torch.allclose(value.detach(), expected * height * width / features.shape[1], rtol=1e-4, atol=1e-5):
                hint = " (divide by the number of positions H*W, not by the number of channels)"
            problems.append((mismatch or f"{label}: largest difference {difference:.3g}") + hint)
            continue
        passed += 1
    random_result = results.get("random batch (3, 4, 5, 6)")
    if random_result is not None:
        if torch.allclose(random_result, random_result.transpose(1, 2), atol=1e-5):
            passed += 1
        else:
            problems.append("the result is not symmetric: G[b, i, j] must equal G[b, j, i]")
        value, problem = call_learner(learner_fn, "shuffled positions", shuffled.clone(), returns="a (B, C, C) tensor")
        if problem:
            problems.append(problem)
        elif isinstance(value, torch.Tensor) and value.shape == random_result.shape and torch.allclose(
                value.detach(), random_result, atol=1e-5):
            passed += 1
        else:
            problems.append("shuffling the spatial positions (the same shuffle for every channel) changed the "
                            "result; a Gram matrix sums over positions, so their order must not matter")
    return report(exercise, problems, partial=passed / 4)
