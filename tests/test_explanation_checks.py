"""The explanation chapter's exercise checks: the reference passes, the usual mistakes are named."""

from __future__ import annotations

import copy

import torch

from aigc_lessons.checks.explanation import (check_integrated_gradients, check_randomise_top_layer,
                                             check_rank_correlation)


def _integrated_gradients(model, images, targets, steps, times_input=True, divide=True, offset=0):
    total = torch.zeros_like(images)
    for k in range(steps):
        point = ((k + 0.5) / steps * images).requires_grad_(True)
        score = model(point).gather(1, ((targets + offset) % 3).view(-1, 1)).sum()
        total += torch.autograd.grad(score, point)[0]
    total = total / steps if divide else total
    return images * total if times_input else total


def _spearman(first, second, use_ranks=True):
    if use_ranks:
        first, second = first.argsort().argsort().double(), second.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([first.double(), second.double()]))[0, 1])


def _randomise_top(model, in_place=False, everything=False):
    copied = model if in_place else copy.deepcopy(model)
    layers = [copied.conv[0], copied.conv[3], copied.embed[2], copied.head[1]] if everything else [copied.head[1]]
    for layer in layers:
        layer.reset_parameters()
    return copied.eval()


def test_the_reference_solutions_pass():
    assert check_integrated_gradients(_integrated_gradients).passed
    assert check_rank_correlation(_spearman).passed
    assert check_randomise_top_layer(_randomise_top).passed


def test_the_usual_integrated_gradients_mistakes_are_named():
    no_input = check_integrated_gradients(lambda m, x, y, s: _integrated_gradients(m, x, y, s, times_input=False))
    assert not no_input.passed and "multiply it by (images - baseline)" in str(no_input)
    no_mean = check_integrated_gradients(lambda m, x, y, s: _integrated_gradients(m, x, y, s, divide=False))
    assert not no_mean.passed and "divide the sum" in str(no_mean)
    wrong_class = check_integrated_gradients(lambda m, x, y, s: _integrated_gradients(m, x, y, s, offset=1))
    assert not wrong_class.passed and "wrong class" in str(wrong_class)
    placeholder = check_integrated_gradients(lambda m, x, y, s: None)
    assert placeholder.status == "not attempted"


def test_the_usual_rank_correlation_mistakes_are_named():
    pearson = check_rank_correlation(lambda a, b: _spearman(a, b, use_ranks=False))
    assert not pearson.passed and "Pearson" in str(pearson) and pearson.score > 0  # the reversed pair passes
    absolute = check_rank_correlation(lambda a, b: abs(_spearman(a, b)))
    assert not absolute.passed and "absolute" in str(absolute)
    crashing = check_rank_correlation(lambda a, b: 1 / 0)
    assert not crashing.passed and "ZeroDivisionError" in str(crashing)


def test_the_usual_randomisation_mistakes_are_named():
    in_place = check_randomise_top_layer(lambda m: _randomise_top(m, in_place=True))
    assert not in_place.passed and "copy" in str(in_place)
    everything = check_randomise_top_layer(lambda m: _randomise_top(m, everything=True))
    assert not everything.passed and "below the top" in str(everything)
    nothing = check_randomise_top_layer(lambda m: copy.deepcopy(m))
    assert not nothing.passed and "reset_parameters" in str(nothing)
