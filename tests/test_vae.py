"""Tests of the VAE losses, model, trainer and recipes (known answers and properties)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aigc_lessons.losses import importance_weighted_log_likelihood, kl_normal_standard, negative_elbo
from aigc_lessons.losses.vae import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    log_normal_diag,
)
from aigc_lessons.models import VAE, ConditionalVAE
from aigc_lessons.train import VaeConfig, binarize, evaluate_vae, train_vae


def test_kl_zero_at_standard_normal():
    kl = kl_normal_standard(torch.zeros(4, 7), torch.zeros(4, 7))
    assert kl.shape == (4,)
    assert torch.all(kl == 0), f"KL(N(0, I) || N(0, I)) must be 0, got {kl.tolist()}"


def test_kl_hand_computed_value():
    # one dimension: mu = 1, sigma^2 = e  ->  0.5 * (1 + e - 1 - 1) = 0.5 * (e - 1)
    kl = kl_normal_standard(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    assert float(kl) == pytest.approx(0.5 * (math.e - 1), rel=1e-6), "closed form 0.5*sum(mu^2+s^2-log s^2-1)"


def test_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.3, -0.7, 0.1])
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 3)
    monte_carlo = (log_normal_diag(z, mu, logvar) - log_normal_diag(z, torch.zeros(3), torch.zeros(3))).mean()
    closed = kl_normal_standard(mu, logvar)
    assert float(closed) == pytest.approx(float(monte_carlo), abs=0.02), (
        f"closed-form KL {float(closed):.4f} differs from the Monte Carlo estimate {float(monte_carlo):.4f}"
    )


def test_kl_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="same shape"):
        kl_normal_standard(torch.zeros(2, 3), torch.zeros(2, 4))


def test_likelihoods_known_values():
    assert float(bernoulli_log_likelihood(torch.zeros(1, 10), torch.ones(1, 10))) == pytest.approx(10 * math.log(0.5))
    # N(0; 0, 1) in 2 dimensions: -log(2 pi)
    assert float(gaussian_log_likelihood(torch.zeros(1, 2), torch.zeros(1, 2))) == pytest.approx(-math.log(2 * math.pi))
    # extreme logits stay finite
    assert torch.isfinite(bernoulli_log_likelihood(torch.tensor([[100.0, -100.0]]), torch.tensor([[0.0, 1.0]]))).all()


def test_negative_elbo_is_reconstruction_plus_kl():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden=(16,))
    x = torch.rand(5, 1, 28, 28)
    decoded, mu, logvar = model(x)
    loss, rec, kl = negative_elbo(decoded, x, mu, logvar)
    expected_rec = nn.functional.binary_cross_entropy_with_logits(decoded, x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(rec, expected_rec, atol=1e-4)
    assert torch.allclose(kl, kl_normal_standard(mu, logvar))
    assert torch.allclose(loss, rec + kl)
    loss_beta, _, _ = negative_elbo(decoded, x, mu, logvar, beta=4.0)
    assert torch.allclose(loss_beta, rec + 4 * kl)


class LinearGaussian(nn.Module):
    """p(z) = N(0, 1), p(x | z) = N(w z, s^2): log p(x) = log N(x; 0, w^2 + s^2) is known exactly."""

    likelihood, variance = "gaussian", 0.5

    def __init__(self, w: float = 2.0, q_mu_scale: float = 0.5, q_logvar: float = -1.0):
        super().__init__()
        self.w, self.q_mu_scale, self.q_logvar = w, q_mu_scale, q_logvar

    def encode(self, x):  # a deliberately imperfect q(z | x)
        mu = self.q_mu_scale * x
        return mu, torch.full_like(mu, self.q_logvar)

    def decode(self, z):
        return self.w * z

    def log_likelihood(self, decoded, x):
        return gaussian_log_likelihood(decoded, x, self.variance)

    def exact_log_px(self, x):
        return log_normal_diag(x, torch.zeros_like(x), torch.full_like(x, math.log(self.w**2 + self.variance)))


def test_elbo_below_log_likelihood_and_tight_at_true_posterior():
    torch.manual_seed(0)
    model = LinearGaussian()
    x = torch.tensor([[1.5], [-0.3], [3.0]])
    exact = model.exact_log_px(x)
    elbo = importance_weighted_log_likelihood(model, x, k=1, chunk=1)  # k = 1: one-sample ELBO
    elbos = torch.stack([importance_weighted_log_likelihood(model, x, k=1) for _ in range(2000)]).mean(0)
    assert torch.all(elbos < exact), f"ELBO {elbos.tolist()} must lie below log p(x) {exact.tolist()}"
    assert elbo.shape == (3,)
    # With q equal to the true posterior N(w x / (w^2 + s^2), s^2 / (w^2 + s^2)) every weight equals p(x).
    s2, w = model.variance, model.w
    model.q_mu_scale, model.q_logvar = w / (w**2 + s2), math.log(s2 / (w**2 + s2))
    assert torch.allclose(importance_weighted_log_likelihood(model, x, k=3), exact, atol=1e-4)


def test_iwae_bound_increases_with_k():
    torch.manual_seed(0)
    model = LinearGaussian()
    x = torch.tensor([[2.0], [-1.0]])
    means = [torch.stack([importance_weighted_log_likelihood(model, x, k=k) for _ in range(300)]).mean().item()
             for k in (1, 5, 50)]
    exact = model.exact_log_px(x).mean().item()
    assert means[0] < means[1] < means[2] <= exact + 0.01, f"IWAE bounds for k=1,5,50: {means}, log p(x) = {exact}"


def test_model_shapes_and_sampling():
    model = VAE(latent_dim=2, hidden=(32, 16))
    decoded, mu, logvar = model(torch.rand(4, 1, 28, 28))
    assert decoded.shape == (4, 1, 28, 28) and mu.shape == (4, 2) and logvar.shape == (4, 2)
    samples = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    gaussian = VAE(latent_dim=2, hidden=(8,), likelihood="gaussian", variance=0.1)
    means = gaussian.decode(torch.zeros(3, 2))
    assert means.min() >= 0 and means.max() <= 1, "the Gaussian decoder's means are sigmoid outputs in [0, 1]"


def test_model_input_errors_are_clear():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        VAE().encode(torch.rand(4, 784))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        VAE(latent_dim=2).decode(torch.rand(4, 3))


def test_conditional_vae_labels():
    model = ConditionalVAE(latent_dim=3, hidden=(16,))
    labels = torch.tensor([0, 3, 9])
    decoded, mu, _ = model(torch.rand(3, 1, 28, 28), labels)
    assert decoded.shape == (3, 1, 28, 28) and mu.shape == (3, 3)
    assert model.sample(labels).shape == (3, 1, 28, 28)
    for bad in (torch.tensor([0, 10, 1]), torch.tensor([-1, 0, 1])):
        with pytest.raises(ValueError, match=r"\[0, 9\]"):
            model.sample(bad)
    with pytest.raises(ValueError, match="integer"):
        model.sample(torch.tensor([0.0, 1.0, 2.0]))


def test_binarize_is_seeded_and_binary():
    x = torch.rand(3, 1, 28, 28)
    a, b = binarize(x, seed=1), binarize(x, seed=1)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    images = (torch.rand(256, 1, 28, 28) < 0.2).float()
    model = VAE(latent_dim=4, hidden=(64,))
    before = evaluate_vae(model, images)["negative_elbo"]
    history = train_vae(model, images, VaeConfig(epochs=3, batch_size=64, log_every=4), device="cpu", progress=False)
    after = evaluate_vae(model, images)["negative_elbo"]
    assert after < before - 50, f"negative ELBO went from {before:.1f} to {after:.1f} nats: training does not learn"
    assert len(history.series("kl")) == 3


def test_train_vae_rejects_wrong_range_and_missing_labels():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_vae(VAE(latent_dim=2, hidden=(8,)), torch.rand(8, 1, 28, 28) * 2 - 1, VaeConfig(epochs=1),
                  device="cpu", progress=False)
    with pytest.raises(ValueError, match="labels"):
        train_vae(ConditionalVAE(latent_dim=2, hidden=(8,)), torch.rand(8, 1, 28, 28), VaeConfig(epochs=1),
                  device="cpu", progress=False)


def test_train_vae_resumes_with_start_epoch():
    from aigc_lessons.train import History

    images = torch.rand(64, 1, 28, 28)
    model = VAE(latent_dim=2, hidden=(8,))
    history = History()
    train_vae(model, images, VaeConfig(epochs=1, batch_size=32, log_every=1), device="cpu", progress=False,
              history=history)
    train_vae(model, images, VaeConfig(epochs=2, batch_size=32, log_every=1), device="cpu", progress=False,
              history=history, start_epoch=1)
    assert [row["epoch"] for row in history.rows] == [1, 1, 2, 2]


def test_vae_check_accepts_reference_and_rejects_wrong_kl():
    from aigc_lessons.checks.vae import check_kl, check_reparameterize

    assert check_kl(kl_normal_standard).passed
    wrong = check_kl(lambda mu, logvar: 0.5 * (logvar.exp() - logvar - 1).sum(-1))  # the mean term missing
    assert not wrong.passed and any("mu" in m for m in wrong.messages)
    assert not check_kl(lambda mu, logvar: None).passed
    assert check_reparameterize(lambda mu, logvar: mu + (0.5 * logvar).exp() * torch.randn_like(mu)).passed
    assert not check_reparameterize(lambda mu, logvar: mu + logvar.exp() * torch.randn_like(mu)).passed


@pytest.mark.slow
def test_vae_recipes_run_in_fast_mode(mnist_available):
    from aigc_lessons.recipes import RECIPES
    from aigc_lessons.core import Budget

    result = RECIPES["vae2d_mnist"](Budget(fast=True), torch.device("cpu"), progress=False)
    metrics = result.card["metrics"]
    assert isinstance(result.model, VAE) and result.model.latent_dim == 2
    assert metrics["iwae_nll_first1000"] <= metrics["negative_elbo_first1000"] + 0.5, (
        "the importance-weighted estimate of -log p(x) must not lie above the negative ELBO")


def test_shipped_vae_cards_state_their_scores():
    from aigc_lessons import pretrained

    for name in ("vae_mnist", "vae2d_mnist"):
        if not pretrained.exists(name):
            continue
        metrics = pretrained.card(name)["card"]["metrics"]
        assert metrics["iwae_k"] >= 1 and metrics["negative_elbo"] > 0
        assert metrics["iwae_nll_first1000"] < metrics["negative_elbo_first1000"], f"{name}: IWAE must tighten the bound"
