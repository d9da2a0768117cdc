"""The DDPM chapter's 2-D lab: the mixture's exact score, its noised form, the metrics, the 2-D model."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons import toy2d
from aigc_lessons.checks.ddpm import check_add_noise, check_noise_to_score, check_posterior
from aigc_lessons.models import MODEL_CLASSES
from aigc_lessons.models.diffusion import NoiseSchedule, PointNoisePredictor, sample_ddpm


def test_mixture_score_equals_finite_differences_of_its_log_density():
    mixture = toy2d.lab_mixture().noised(0.05)  # little noise: sharp components, a hard case
    points = mixture.sample(50, torch.Generator().manual_seed(0)).double()
    h = 1e-6
    numeric = torch.stack([(mixture.log_density(points + h * e) - mixture.log_density(points - h * e)) / (2 * h)
                           for e in torch.eye(2, dtype=torch.float64)], dim=1)
    assert torch.allclose(numeric, mixture.score(points), rtol=1e-5, atol=1e-5), (
        "GaussianMixture.score disagrees with the gradient of log_density")


def test_mixture_log_density_integrates_to_one_on_a_grid():
    mixture = toy2d.lab_mixture()
    grid = torch.linspace(-6, 6, 601, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    density = mixture.log_density(torch.stack([gx.flatten(), gy.flatten()], 1)).exp()
    mass = float(density.sum() * (grid[1] - grid[0]) ** 2)
    assert math.isclose(mass, 1.0, abs_tol=1e-3), f"the mixture's density integrates to {mass}, not 1"


def test_noised_mixture_matches_data_noised_in_closed_form():
    """Mean and covariance of sqrt(abar) x0 + sqrt(1 - abar) eps against those of mixture.noised(abar)."""
    mixture, abar = toy2d.lab_mixture(), 0.4
    generator = torch.Generator().manual_seed(1)
    x0 = mixture.sample(200_000, generator).double()
    noisy = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    noised = mixture.noised(abar)
    weights = noised.weights[:, None]
    mean = (weights * noised.means).sum(0)
    second = (noised.weights[:, None, None] * (noised.covariances + noised.means[:, :, None] * noised.means[:, None, :])).sum(0)
    covariance = second - mean[:, None] * mean[None, :]
    assert torch.allclose(noisy.mean(0), mean, atol=0.01), (noisy.mean(0), mean)
    assert torch.allclose(torch.cov(noisy.T), covariance, atol=0.02), (torch.cov(noisy.T), covariance)


def test_noised_score_at_each_points_own_step_equals_the_noised_mixture_score():
    mixture = toy2d.lab_mixture()
    points = torch.randn(3, 2, generator=torch.Generator().manual_seed(2))
    alpha_bars = torch.tensor([0.9, 0.3, 1e-3])
    rows = mixture.noised_score(points, alpha_bars)
    for i in range(3):
        assert torch.allclose(rows[i], mixture.noised(float(alpha_bars[i])).score(points[i:i + 1])[0])


def test_exact_noise_of_a_single_gaussian_is_the_closed_form():
    """Data N(m, s^2 I): E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) m) / (abar s^2 + 1 - abar)."""
    m, s2 = torch.tensor([[1.0, -0.5]], dtype=torch.float64), 0.25
    mixture = toy2d.GaussianMixture(m, s2 * torch.eye(2, dtype=torch.float64)[None], torch.ones(1, dtype=torch.float64))
    schedule = NoiseSchedule.linear(100)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(3))
    steps = torch.tensor([0, 10, 50, 99])
    abar = schedule.alpha_bars[steps][:, None]
    expected = (1 - abar).sqrt() * (x.double() - abar.sqrt() * m) / (abar * s2 + 1 - abar)
    assert torch.allclose(toy2d.exact_noise(mixture, x, steps, schedule).double(), expected, atol=1e-5)


def test_ancestral_sampler_with_the_exact_score_reproduces_the_mixture():
    mixture, schedule = toy2d.lab_mixture(), NoiseSchedule.linear(200)
    samples = sample_ddpm(toy2d.ExactMixtureNoise(mixture, schedule), schedule, 3000, shape=(2,), clip=None,
                          generator=torch.Generator().manual_seed(4))
    reference = mixture.sample(3000, torch.Generator().manual_seed(5))
    assert toy2d.histogram_distance(samples, mixture) < toy2d.histogram_distance(reference, mixture) + 0.05
    assert toy2d.near_mode_share(samples, mixture) > 0.97


def test_histogram_distance_and_near_mode_share_know_their_extremes():
    mixture = toy2d.lab_mixture()
    far_away = torch.full((100, 2), 10.0)
    assert toy2d.histogram_distance(far_away, mixture) == pytest.approx(1.0)
    assert toy2d.near_mode_share(far_away, mixture) == 0.0
    with pytest.raises(ValueError, match="2-D points"):
        toy2d.histogram_distance(torch.zeros(5, 3), mixture)


def test_mixture_rejects_inconsistent_shapes_and_weights():
    with pytest.raises(ValueError, match="covariances"):
        toy2d.GaussianMixture(torch.zeros(2, 2), torch.eye(2)[None], torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        toy2d.GaussianMixture(torch.zeros(1, 2), torch.eye(2)[None], torch.tensor([0.5]))


def test_point_noise_predictor_is_a_model_class_and_checks_its_inputs():
    assert MODEL_CLASSES["PointNoisePredictor"] is PointNoisePredictor
    net = PointNoisePredictor(hidden=16, layers=2)
    assert net(torch.zeros(4, 2), torch.tensor([0, 1, 2, 999])).shape == (4, 2)
    with pytest.raises(ValueError, match="points of shape"):
        net(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer steps"):
        net(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="embed_dim"):
        PointNoisePredictor(embed_dim=3)


def test_training_brings_the_noise_prediction_closer_to_the_exact_one():
    mixture, schedule = toy2d.lab_mixture(), NoiseSchedule.linear(1000)
    points = mixture.sample(4096, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = PointNoisePredictor(hidden=64)
    steps = [50, 300, 700]
    before = sum(row["error"] for row in toy2d.score_error_by_step(net, mixture, schedule, steps, count=500))
    history = toy2d.train_point_diffusion(net, points, schedule, steps=300, progress=False)
    after = sum(row["error"] for row in toy2d.score_error_by_step(net, mixture, schedule, steps, count=500))
    assert len(history.series("loss")) > 0
    assert after < 0.5 * before, f"the score error went from {before:.3f} to only {after:.3f} after training"


def test_train_point_diffusion_rejects_bad_settings():
    points = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="at least batch_size"):
        toy2d.train_point_diffusion(PointNoisePredictor(hidden=8, layers=1), points, NoiseSchedule.linear(10),
                                    steps=1, batch_size=64, progress=False)
    with pytest.raises(ValueError, match="steps and batch_size"):
        toy2d.train_point_diffusion(PointNoisePredictor(hidden=8, layers=1), points, NoiseSchedule.linear(10),
                                    steps=0, progress=False)


# --------------------------------------------------------------------------- the chapter's self-checks

def _posterior(x0, x_t, t, betas):
    alpha_bars = torch.cumprod(1 - betas, dim=0)
    abar_t, abar_prev, beta_t = alpha_bars[t], alpha_bars[t - 1], betas[t]
    mean = (abar_prev.sqrt() * beta_t * x0 + (1 - beta_t).sqrt() * (1 - abar_prev) * x_t) / (1 - abar_t)
    return mean, (1 - abar_prev) / (1 - abar_t) * beta_t


def test_checks_pass_the_reference_answers():
    def add(x0, t, noise, alpha_bars):
        abar = alpha_bars[t][:, None]
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    assert check_add_noise(add).passed
    assert check_posterior(_posterior).passed
    assert check_noise_to_score(lambda eps, abar: -eps / (1 - abar).sqrt()[:, None]).passed


def test_checks_explain_the_usual_mistakes():
    off_by_one = check_add_noise(lambda x0, t, n, ab: ab[t - 1].sqrt()[:, None] * x0 + (1 - ab[t - 1]).sqrt()[:, None] * n)
    assert not off_by_one.passed and any("0 .. T-1" in m for m in off_by_one.messages)
    wrong_variance = check_posterior(lambda x0, x_t, t, betas: (_posterior(x0, x_t, t, betas)[0], betas[t]))
    assert any("that is beta_t" in m for m in wrong_variance.messages)
    wrong_scale = check_noise_to_score(lambda eps, abar: -eps / (1 - abar)[:, None])
    assert any("standard deviation" in m for m in wrong_scale.messages)
    for check in (check_add_noise, check_posterior, check_noise_to_score):
        assert check(lambda *args: None).status == "not attempted"
