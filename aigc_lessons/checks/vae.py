"""Checks for the VAE chapter's coding exercises."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report, run_learner_code


def check_kl(learner_fn, exercise: str = "vae-ex-2") -> CheckResult:
    """Check ``learner_fn(mu, logvar)`` = per-example ``KL(N(mu, diag(exp(logvar))) || N(0, I))``.

    The expected value is ``0.5 * sum(mu^2 + exp(logvar) - logvar - 1)`` over the last dimension.
    """
    from ..losses.vae import kl_normal_standard

    cases = {
        "mu = 0, logvar = 0 (q equals the prior)": (torch.zeros(2, 3), torch.zeros(2, 3)),
        "mu != 0, logvar = 0 (tests the mean term)": (torch.tensor([[1.0, -2.0]]), torch.zeros(1, 2)),
        "mu = 0, logvar != 0 (tests the variance terms)": (torch.zeros(1, 2), torch.tensor([[1.0, -1.5]])),
        "general batch": (torch.tensor([[0.3, -0.4, 1.2], [2.0, 0.0, -1.0]]), torch.tensor([[0.5, -0.2, 0.0], [-1.0, 1.0, 0.3]])),
    }
    problems: list[str] = []
    passed = 0
    for label, (mu, logvar) in cases.items():
        value, problem = call_learner(learner_fn, label, mu.clone(), logvar.clone(), expect_tensor=True)
        if problem:
            problems.append(problem)
            continue
        expected = kl_normal_standard(mu, logvar)
        shape_problem = describe_shape(f"{label}: result", value.shape, expected.shape)
        if shape_problem:
            problems.append(shape_problem + " (one KL per example: sum over the latent dimension only)")
            continue
        mismatches = [describe_mismatch(f"{label}, example {i}", float(v), float(e)) for i, (v, e) in enumerate(zip(value, expected))]
        mismatches = [m for m in mismatches if m]
        if mismatches:
            hint = ""
            if "mean term" in label:
                hint = " (is the mu^2 term there, with a plus sign?)"
            problems.append(mismatches[0] + hint)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_reparameterize(learner_fn, exercise: str = "vae-ex-3") -> CheckResult:
    """Check ``learner_fn(mu, logvar)`` returns ``z = mu + exp(logvar / 2) * eps`` that gradients flow through."""
    problems: list[str] = []
    mu = torch.tensor([1.0, -2.0, 0.0], requires_grad=True)
    logvar = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    batch_mu, batch_logvar = mu.expand(20000, 3), logvar.expand(20000, 3)
    torch.manual_seed(0)
    z, error = run_learner_code(learner_fn, batch_mu, batch_logvar)
    if error:
        return report(exercise, [error])
    if z is None:
        return report(exercise, ["the function returned None; write its body (it should return a tensor z)"])
    if not isinstance(z, torch.Tensor):
        return report(exercise, [f"expected a torch.Tensor, got {type(z).__name__}"])
    shape_problem = describe_shape("z", z.shape, (20000, 3))
    if shape_problem:
        return report(exercise, [shape_problem + " (one sample per row of mu)"])
    score = 0
    mean_problem = [describe_mismatch(f"mean of z[:, {i}]", float(m), float(e), rel_tol=0, abs_tol=0.05)
                    for i, (m, e) in enumerate(zip(z.detach().mean(0), mu.detach()))]
    mean_problem = [p for p in mean_problem if p]
    if mean_problem:
        problems.append(mean_problem[0] + " (the samples should be centred on mu)")
    else:
        score += 1
    expected_std = (0.5 * logvar.detach()).exp()
    std_problem = [describe_mismatch(f"std of z[:, {i}]", float(s), float(e), rel_tol=0.05)
                   for i, (s, e) in enumerate(zip(z.detach().std(0), expected_std))]
    std_problem = [p for p in std_problem if p]
    if std_problem:
        problems.append(std_problem[0] + " (sigma = exp(logvar / 2), not exp(logvar): logvar is log sigma^2)")
    else:
        score += 1
    if not z.requires_grad:
        problems.append("z does not depend differentiably on mu and logvar: compute it as mu + sigma * eps "
                        "with eps = torch.randn_like(mu), without sampling through torch.normal or detach")
    else:
        z.sum().backward()
        if mu.grad is None or logvar.grad is None:
            problems.append("gradients do not reach both mu and logvar")
        else:
            score += 1
    return report(exercise, problems, partial=score / 3)
