"""Hidden cases of the math-foundations chapter (book/foundations/math_foundations.ipynb).

Grader-only: ``aigc-lessons grade`` runs them after the notebook, in a process
of their own, on the learner's functions taken from the submitted notebook.
They test the same functions as the self-checks on inputs the students have
not seen: longer distributions, a batch of random ones, float64, and more Adam
steps with other settings. See the teacher's guide, "Hidden cases".
"""

from __future__ import annotations

import math

import torch

from aigc_lessons.checks import call_learner, describe_mismatch, report
from aigc_lessons.classroom.hidden import hidden_case


def _kl(p, q):
    return float((torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum())


def _js(p, q):
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def _random_pairs(count: int, size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(count):
        p = torch.rand(size, generator=generator, dtype=torch.float64)
        q = torch.rand(size, generator=generator, dtype=torch.float64)
        p[torch.rand(size, generator=generator) < 0.2] = 0.0  # some outcomes with no mass in p
        pairs.append((p / p.sum(), q / q.sum()))
    return pairs


def _divergence_problems(learner, reference, extra=()) -> tuple[list[str], int, int]:
    """Problems, cases passed, cases in all: random distributions (zeros in p), float64, one outcome, ``extra``."""
    cases = [(f"random distributions #{k + 1} ({len(p)} outcomes, float64)", p, q)
             for k, (p, q) in enumerate(_random_pairs(4, 7, seed=26) + _random_pairs(2, 50, seed=27))]
    cases.append(("a single outcome", torch.tensor([1.0]), torch.tensor([1.0])))
    cases += list(extra)
    problems, passed = [], 0
    for label, p, q in cases:
        value, problem = call_learner(learner, label, p.clone(), q.clone(), expect_number=True)
        if problem is None:
            problem = describe_mismatch(label, value, reference(p, q), rel_tol=1e-5, abs_tol=1e-8)
        if problem:
            problems.append(problem)
        else:
            passed += 1
    return problems, passed, len(cases)


@hidden_case("math-ex-2", uses="my_kl")
def kl_on_unseen_distributions(my_kl):
    """KL(p || q) on random distributions (with zeros in p), in float64, and on one outcome."""
    problems, passed, total = _divergence_problems(my_kl, _kl)
    return report("math-ex-2", problems, partial=passed / total)


@hidden_case("math-ex-3", uses="my_js")
def js_on_unseen_distributions(my_js):
    """JS(p || q) on the same unseen cases, and on disjoint supports (where JS = log 2, its largest value)."""
    disjoint = ("disjoint supports", torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.5, 0.0]))
    problems, passed, total = _divergence_problems(my_js, _js, extra=[disjoint])
    return report("math-ex-3", problems, partial=passed / total)


@hidden_case("math-ex-4", uses="my_adam_step")
def adam_with_other_settings(my_adam_step):
    """Ten Adam steps with another learning rate and betas, on a 2-D parameter, in float64.

    The reference is Adam's update written out (Kingma & Ba's algorithm with
    PyTorch's placement of eps), the same as ``torch.optim.Adam``.
    """
    lr, beta1, beta2, eps = 0.01, 0.8, 0.99, 1e-6
    generator = torch.Generator().manual_seed(4)
    start = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    gradients = [torch.randn(2, 3, generator=generator, dtype=torch.float64) for _ in range(10)]
    expected, m_ref, v_ref = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    param, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    for step, gradient in enumerate(gradients, start=1):
        m_ref = beta1 * m_ref + (1 - beta1) * gradient
        v_ref = beta2 * v_ref + (1 - beta2) * gradient**2
        expected = expected - lr * (m_ref / (1 - beta1**step)) / ((v_ref / (1 - beta2**step)).sqrt() + eps)
        result, problem = call_learner(my_adam_step, f"step {step}", param.clone(), gradient.clone(), m.clone(),
                                       v.clone(), step, lr, beta1, beta2, eps, returns="(param, m, v)")
        if problem:
            return report("math-ex-4", [problem], partial=(step - 1) / len(gradients))
        try:
            param, m, v = (torch.as_tensor(x, dtype=torch.float64) for x in result)
        except (TypeError, ValueError):
            return report("math-ex-4", [f"step {step}: expected (param, m, v), got {type(result).__name__}"])
        gap = float((param - expected).abs().max()) if param.shape == expected.shape else math.inf
        if gap > 1e-6:
            return report("math-ex-4", [f"step {step} (lr={lr}, beta1={beta1}, beta2={beta2}, eps={eps}): "
                                        f"param differs from Adam's update by up to {gap:.3g}"],
                          partial=(step - 1) / len(gradients))
    return report("math-ex-4", [])
