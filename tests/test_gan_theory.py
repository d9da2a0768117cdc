"""GAN theory: the optimal discriminator, the JS identity, the Wasserstein losses and the gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons.losses import (
    critic_loss_wasserstein,
    generator_loss_wasserstein,
    gradient_penalty,
)


def _linear_critic(weight: list[float]) -> torch.nn.Linear:
    critic = torch.nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
        critic.bias.fill_(0.3)
    return critic


@pytest.mark.parametrize("weight", [[2.0, 0.0], [0.6, 0.8], [0.3, -0.4], [0.0, 0.0]])
def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared(weight):
    # A linear critic f(x) = w.x + b has gradient w everywhere, so the penalty is (||w|| - 1)^2
    # whatever the real and fake points are.
    torch.manual_seed(0)
    penalty = gradient_penalty(_linear_critic(weight), torch.randn(16, 2), torch.randn(16, 2))
    expected = (math.hypot(*weight) - 1.0) ** 2
    assert penalty.item() == pytest.approx(expected, abs=1e-6), f"for w = {weight}, expected (||w|| - 1)^2 = {expected}"


def test_gradient_penalty_matches_a_direct_autograd_computation_on_images():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 1))
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))

    eps = torch.rand((5, 1, 1, 1), generator=torch.Generator().manual_seed(3))
    expected = 0.0
    for i in range(5):  # one example at a time, no batching tricks
        point = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point).sum(), point)
        expected += (grad.norm() - 1.0) ** 2 / 5
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_trains_the_critic_through_the_gradient_norm():
    critic = _linear_critic([2.0, 0.0])
    penalty = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = (2, 0) at w = (2, 0)
    assert torch.allclose(critic.weight.grad, torch.tensor([[2.0, 0.0]]), atol=1e-5), critic.weight.grad
    assert critic.bias.grad is None or critic.bias.grad.abs().item() < 1e-8


def test_gradient_penalty_does_not_reach_the_generator():
    fake = torch.randn(4, 2, requires_grad=True)
    gradient_penalty(_linear_critic([1.0, 1.0]), torch.randn(4, 2), fake).backward()
    assert fake.grad is None, "the penalty is a term of the critic's loss only; fake must be detached"


def test_gradient_penalty_rejects_mismatched_shapes_and_many_scores():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(_linear_critic([1.0, 0.0]), torch.randn(4, 2), torch.randn(3, 2))
    with pytest.raises(ValueError, match="one score per example"):
        gradient_penalty(torch.nn.Identity(), torch.randn(4, 2), torch.randn(4, 2))


def test_wasserstein_losses_have_hand_computed_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_loss_wasserstein(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert generator_loss_wasserstein(fake).item() == pytest.approx(0.5)


def test_saturating_and_nonsaturating_gradients_per_logit_are_minus_d_and_minus_one_minus_d():
    from aigc_lessons.losses import generator_loss_nonsaturating, generator_loss_saturating

    logits = torch.tensor([-8.0, -2.0, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    d = torch.sigmoid(logits.detach())
    (grad_sat,) = torch.autograd.grad(generator_loss_saturating(logits) * 4, logits)
    (grad_ns,) = torch.autograd.grad(generator_loss_nonsaturating(logits) * 4, logits)
    assert torch.allclose(grad_sat, -d), "d/dl log(1 - sigmoid(l)) = -sigmoid(l)"
    assert torch.allclose(grad_ns, -(1 - d)), "d/dl -log sigmoid(l) = -(1 - sigmoid(l))"


def test_optimal_discriminator_value_is_minus_log_4_plus_twice_js_by_quadrature():
    x = torch.linspace(-15, 15, 60_001, dtype=torch.float64)

    def normal(mean, std):
        return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))

    p_data, p_g = normal(0.0, 1.0), normal(2.0, 1.5)
    d_star = p_data / (p_data + p_g)
    value = torch.trapezoid(p_data * torch.log(d_star) + p_g * torch.log1p(-d_star), x).item()
    m = 0.5 * (p_data + p_g)
    js = 0.5 * torch.trapezoid(p_data * torch.log(p_data / m), x) + 0.5 * torch.trapezoid(p_g * torch.log(p_g / m), x)
    assert value == pytest.approx(-math.log(4) + 2 * js.item(), abs=1e-9)
    assert 0 < js.item() < math.log(2)


def test_check_js_divergence_accepts_the_reference_and_explains_mistakes():
    from aigc_lessons.checks.gan import check_js_divergence

    def reference(p, q, x):
        m = 0.5 * (p + q)

        def kl(r):
            return torch.trapezoid(torch.where(r > 0, r * torch.log(r / m), torch.zeros_like(r)), x)

        return 0.5 * kl(p) + 0.5 * kl(q)

    assert check_js_divergence(reference).passed
    naive = check_js_divergence(lambda p, q, x: 0.5 * torch.trapezoid(p * torch.log(2 * p / (p + q)), x)
                                + 0.5 * torch.trapezoid(q * torch.log(2 * q / (p + q)), x))
    assert not naive.passed and any("0 * log(0 / m)" in message for message in naive.messages)
    doubled = check_js_divergence(lambda p, q, x: 2 * reference(p, q, x))
    assert any("averages the two KL terms" in message for message in doubled.messages)
    assert check_js_divergence(lambda p, q, x: None).status == "not attempted"
