"""Checks for the DCGAN and stabilisation chapters' coding exercises."""

from __future__ import annotations

import torch
from torch import nn

from . import CheckResult, call_learner, describe_mismatch, describe_shape, report, run_learner_code


def check_generator_block(learner_fn, exercise: str = "dcgan-ex-2") -> CheckResult:
    """Check ``generator_block(in_channels, out_channels)``: a DCGAN upsampling block.

    Expected: a module that maps ``(B, in, H, W)`` to ``(B, out, 2H, 2W)`` with a
    strided transposed convolution (no bias, since batch normalisation follows),
    batch normalisation and ReLU, following the DCGAN rules.
    """
    problems: list[str] = []
    passed, total = 0, 4
    block, error = run_learner_code(learner_fn, 8, 4)
    if error:
        return report(exercise, [f"generator_block(8, 4): {error}"])
    if block is None:
        return report(exercise, ["generator_block returned None; write its body (it should return an nn.Module)"])
    if not isinstance(block, nn.Module):
        return report(exercise, [f"expected an nn.Module (for example nn.Sequential), got {type(block).__name__}"])

    output, error = run_learner_code(block, torch.randn(2, 8, 7, 7))
    if error:
        problems.append(f"running the block on a (2, 8, 7, 7) input: {error}")
    else:
        shape_problem = describe_shape("output of generator_block(8, 4) on (2, 8, 7, 7)", output.shape, (2, 4, 14, 14))
        if shape_problem:
            problems.append(shape_problem + ": kernel_size=4, stride=2, padding=1 doubles the resolution")
        else:
            passed += 1
    layers = list(block.modules())
    transposed = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
    if not transposed:
        problems.append("no nn.ConvTranspose2d: DCGAN upsamples with strided transposed convolutions, not pooling")
    elif any(m.bias is not None for m in transposed):
        problems.append("the transposed convolution has a bias; batch norm subtracts the mean right after, "
                        "so the bias does nothing: use bias=False")
    else:
        passed += 1
    if not any(isinstance(m, nn.BatchNorm2d) for m in layers):
        problems.append("no nn.BatchNorm2d: DCGAN normalises every generator layer except the output")
    else:
        passed += 1
    if not any(isinstance(m, nn.ReLU) for m in layers):
        problems.append("no nn.ReLU: the DCGAN generator uses ReLU in its hidden layers (LeakyReLU is for D)")
    else:
        passed += 1
    return report(exercise, problems, partial=passed / total)


def check_gradient_penalty(learner_fn, exercise: str = "stabilising-ex-2") -> CheckResult:
    """Check ``my_gradient_penalty(critic, real, fake)`` on critics whose gradients are known.

    For a linear critic ``f(x) = w . x + b`` the gradient is ``w`` everywhere, so the
    penalty is ``(||w|| - 1)^2`` whatever the interpolation, and its gradient with
    respect to ``w`` is ``2 (||w|| - 1) w / ||w||``: the check also tests that the
    penalty can be back-propagated into the critic (``create_graph=True``).
    """
    problems: list[str] = []
    passed = 0
    torch.manual_seed(0)
    cases = {
        "linear critic on points (B, 3), ||w|| = 2": (torch.tensor([[2.0, 0.0, 0.0]]), (5, 3)),
        "linear critic on points (B, 3), ||w|| = 1 (penalty 0)": (torch.tensor([[0.6, 0.8, 0.0]]), (4, 3)),
        "linear critic on images (B, 1, 28, 28)": (torch.full((1, 784), 0.1), (3, 1, 28, 28)),
    }
    for label, (weight, shape) in cases.items():
        linear = nn.Linear(weight.shape[1], 1)
        with torch.no_grad():
            linear.weight.copy_(weight)
        critic = nn.Sequential(nn.Flatten(), linear) if len(shape) > 2 else linear
        real, fake = torch.randn(shape), torch.randn(shape)
        value, problem = call_learner(learner_fn, label, critic, real, fake)
        if problem:
            problems.append(problem)
            continue
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{label}: expected a 0-d tensor (the mean over the batch), got {got}")
            continue
        norm = weight.norm().item()
        mismatch = describe_mismatch(label, float(value.detach()), (norm - 1.0) ** 2)
        if mismatch:
            problems.append(mismatch + " (the gradient of a linear critic is w: penalty (||w|| - 1)^2)")
            continue
        if norm != 1.0:
            linear.zero_grad()
            try:
                value.backward()
            except RuntimeError as error:
                problems.append(f"{label}: backward() through your penalty failed ({error}); compute the input "
                                "gradient with torch.autograd.grad(..., create_graph=True) so the critic can be trained")
                continue
            expected = 2 * (norm - 1.0) * weight / norm
            if linear.weight.grad is None or not torch.allclose(linear.weight.grad, expected, atol=1e-4):
                problems.append(f"{label}: the penalty's gradient with respect to the critic's weights is wrong or "
                                "missing; use create_graph=True so the penalty trains the critic")
                continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_spectral_norm_estimate(learner_fn, exercise: str = "stabilising-ex-3") -> CheckResult:
    """Check ``largest_singular_value(weight, steps)`` (power iteration) against ``torch.linalg.matrix_norm``."""
    problems: list[str] = []
    passed = 0
    generator = torch.Generator().manual_seed(0)
    diagonal = torch.diag(torch.tensor([3.0, 1.0, 0.5]))
    cases = {
        "diag(3, 1, 0.5)": diagonal,
        "random 20 x 50 matrix": torch.randn(20, 50, generator=generator),
        "a conv weight (8, 4, 3, 3), reshaped to (8, 36)": torch.randn(8, 4, 3, 3, generator=generator),
    }
    for label, weight in cases.items():
        value, problem = call_learner(learner_fn, label, weight.clone(), 100, returns="a number")
        if problem:
            problems.append(problem)
            continue
        expected = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2).item()
        mismatch = describe_mismatch(label, float(value), expected, rel_tol=1e-3)
        if mismatch:
            frobenius = weight.norm().item()
            if abs(float(value) - frobenius) < 1e-3 * frobenius:
                mismatch += " (that is the Frobenius norm ||W||_F, not the largest singular value)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
