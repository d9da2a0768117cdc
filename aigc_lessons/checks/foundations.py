"""Checks for the math-foundations chapter's coding exercises.

Each check calls the learner's function on small cases with known answers and
says what is wrong: the value and by how much, the shape, or the edge case
(zero probabilities, the first Adam step) that broke it.
"""

from __future__ import annotations

import math

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report, run_learner_code


def _kl_reference(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``sum_i p_i log(p_i / q_i)`` in nats with ``0 log 0 = 0`` (``inf`` where q_i = 0 < p_i)."""
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def _js_reference(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    middle = 0.5 * (p + q)
    return 0.5 * _kl_reference(p, middle) + 0.5 * _kl_reference(q, middle)


_DISCRETE_CASES = {
    "p equals q": (torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.2, 0.3, 0.5])),
    "two coins": (torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])),
    "a zero in p (0 log 0 counts as 0)": (torch.tensor([0.0, 0.25, 0.75]), torch.tensor([0.1, 0.3, 0.6])),
    "four outcomes": (torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([0.4, 0.3, 0.2, 0.1])),
}


def _check_divergence(learner_fn, reference, exercise: str, name: str, extra_cases: dict) -> CheckResult:
    cases = {**_DISCRETE_CASES, **extra_cases}
    problems: list[str] = []
    passed = 0
    for label, (p, q) in cases.items():
        value, problem = call_learner(learner_fn, label, p.clone(), q.clone())
        if problem:
            problems.append(problem)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value))  # a plain number (for example from .item()) is fine too
        if not isinstance(value, torch.Tensor):
            problems.append(f"{label}: expected a torch.Tensor (or a number), got {type(value).__name__}")
            continue
        shape_problem = describe_shape(f"{label}: result", value.shape, ())
        if shape_problem:
            problems.append(shape_problem + f" ({name} of two distributions is a single number: sum over outcomes)")
            continue
        expected = float(reference(p, q))
        actual = float(value)
        if math.isinf(expected):
            if not math.isinf(actual) or actual < 0:
                problems.append(f"{label}: got {actual:.6g}, expected inf (p puts mass where q has none)")
                continue
            passed += 1
            continue
        if math.isnan(actual):
            problems.append(f"{label}: got nan; a term 0 * log 0 must count as 0 (use torch.special.xlogy, "
                            "or keep only the outcomes with p > 0)")
            continue
        mismatch = describe_mismatch(label, actual, expected, rel_tol=1e-4, abs_tol=1e-6)
        if mismatch:
            reversed_value = float(reference(q, p))
            if name == "KL" and math.isclose(actual, reversed_value, rel_tol=1e-4, abs_tol=1e-6):
                mismatch += " (that is KL(q || p): the arguments are swapped)"
            elif math.isclose(actual, expected / math.log(2), rel_tol=1e-4):
                mismatch += " (that is in bits: use the natural log)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_kl_discrete(learner_fn, exercise: str = "math-ex-2") -> CheckResult:
    """Check ``learner_fn(p, q)`` = ``KL(p || q) = sum_i p_i log(p_i / q_i)`` in nats for 1-D tensors.

    Example:
        >>> def kl(p, q):
        ...     return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum()
        >>> check_kl_discrete(kl).passed
        True
    """
    extra = {"q has a zero where p does not (KL is infinite)": (torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))}
    return _check_divergence(learner_fn, _kl_reference, exercise, "KL", extra)


def check_js_divergence(learner_fn, exercise: str = "math-ex-3") -> CheckResult:
    """Check ``learner_fn(p, q)`` = Jensen-Shannon divergence in nats for 1-D tensors.

    Example:
        >>> def js(p, q):
        ...     m = 0.5 * (p + q)
        ...     kl = lambda a, b: (torch.special.xlogy(a, a) - torch.special.xlogy(a, b)).sum()
        ...     return 0.5 * kl(p, m) + 0.5 * kl(q, m)
        >>> check_js_divergence(js).passed
        True
    """
    extra = {"disjoint supports (JS = log 2)": (torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.5, 0.5]))}
    return _check_divergence(learner_fn, _js_reference, exercise, "JS", extra)


def check_adam_step(learner_fn, exercise: str = "math-ex-4") -> CheckResult:
    """Check ``learner_fn(param, grad, m, v, step, lr, beta1, beta2, eps)`` returns ``(param, m, v)`` after one Adam step.

    The reference is ``torch.optim.Adam`` (Kingma & Ba, 2015), run for three steps
    from the same start; ``step`` counts from 1.

    Example:
        >>> def adam(param, grad, m, v, step, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8):
        ...     m = beta1 * m + (1 - beta1) * grad
        ...     v = beta2 * v + (1 - beta2) * grad ** 2
        ...     m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
        ...     return param - lr * m_hat / (v_hat.sqrt() + eps), m, v
        >>> check_adam_step(adam).passed
        True
    """
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-8
    start = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
    gradients = [torch.tensor(g, dtype=torch.float64) for g in ([0.3, -1.0, 2.0], [0.1, 0.5, -4.0], [-0.2, 0.0, 1.0])]

    reference = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([reference], lr=lr, betas=(beta1, beta2), eps=eps)
    expected = []
    for gradient in gradients:
        optimizer.zero_grad()
        reference.grad = gradient.clone()
        optimizer.step()
        expected.append(reference.detach().clone())

    param, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    problems: list[str] = []
    passed = 0
    for step, (gradient, target) in enumerate(zip(gradients, expected), start=1):
        result, error = run_learner_code(learner_fn, param.clone(), gradient.clone(), m.clone(), v.clone(), step,
                                         lr, beta1, beta2, eps)
        if error:
            problems.append(f"step {step}: {error}")
            break
        if result is None:
            problems.append(f"step {step}: the function returned None; write its body (return param, m, v)")
            break
        if not (isinstance(result, tuple) and len(result) == 3):
            problems.append(f"step {step}: expected a tuple (param, m, v), got {type(result).__name__}")
            break
        param, m, v = (torch.as_tensor(x, dtype=torch.float64) for x in result)
        shape_problem = describe_shape(f"step {step}: param", param.shape, target.shape)
        if shape_problem:
            problems.append(shape_problem)
            break
        error_size = float((param - target).abs().max())
        if error_size > 1e-6:
            hint = ""
            no_correction = lr * (1 - beta1) / math.sqrt(1 - beta2)
            if step == 1 and math.isclose(float((start - param).abs().max()), no_correction, rel_tol=0.05):
                hint = (f" (every coordinate moved by {no_correction:.3g} instead of lr = {lr}: "
                        "divide m by 1 - beta1**step and v by 1 - beta2**step)")
            problems.append(f"step {step}: param = {param.tolist()}, torch.optim.Adam gives {target.tolist()} "
                            f"(largest difference {error_size:.3g}){hint}")
            break
        passed += 1
    return report(exercise, problems, partial=passed / len(gradients))
