"""The 2-D GAN lab: ring data, the mode-coverage measure, the toy models and the trainer."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_lessons.checks.gan import check_modes_covered
from aigc_lessons.models import DiscriminatorToy, GeneratorToy
from aigc_lessons.toy2d import (
    Toy2dConfig,
    compare_on_seeds,
    mode_coverage,
    ring_centers,
    ring_mixture,
    train_toy_gan,
)

STD = 0.05


def test_ring_centers_lie_on_the_circle_and_are_evenly_spaced():
    centers = ring_centers(8, radius=2.0)
    assert centers.shape == (8, 2)
    assert torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    neighbours = (centers - centers.roll(1, dims=0)).norm(dim=1)
    assert torch.allclose(neighbours, torch.full((8,), 2 * 2.0 * math.sin(math.pi / 8)), atol=1e-5)


def test_ring_mixture_is_seeded_and_uses_every_mode():
    a = ring_mixture(4000, generator=torch.Generator().manual_seed(0))
    b = ring_mixture(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b), "the same generator seed must give the same points"
    nearest = torch.cdist(a, ring_centers()).argmin(dim=1)
    shares = torch.bincount(nearest, minlength=8).float() / len(a)
    assert torch.all((shares - 0.125).abs() < 0.025), shares


def test_ring_mixture_rejects_a_non_positive_std():
    with pytest.raises(ValueError, match="std must be positive"):
        ring_mixture(10, std=0.0)


def test_mode_coverage_of_data_from_all_modes():
    points = ring_mixture(8000, std=STD, generator=torch.Generator().manual_seed(1))
    coverage = mode_coverage(points, ring_centers(), STD)
    assert coverage.modes_covered == 8
    # distance / std of 2-D Gaussian data is Rayleigh: P(r <= 3) = 1 - exp(-9/2)
    assert coverage.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert sum(coverage.counts) == round(coverage.high_quality * coverage.num_samples)


def test_mode_coverage_of_a_collapsed_generator():
    centers = ring_centers()
    points = centers[5] + STD * torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))
    coverage = mode_coverage(points, centers, STD)
    assert coverage.modes_covered == 1
    assert coverage.counts[5] == max(coverage.counts)
    assert str(coverage).startswith("1/8 modes covered")


def test_mode_coverage_ignores_low_quality_points_and_small_modes():
    centers = ring_centers()
    far = torch.zeros(500, 2)  # the origin is 2 away from every centre: never high quality
    assert mode_coverage(far, centers, STD).modes_covered == 0
    assert mode_coverage(far, centers, STD).high_quality == 0.0
    # 19 of 1000 samples (1.9%) on mode 0 are not enough; 20 (2%) are.
    for on_mode, expected in [(19, 0), (20, 1)]:
        points = torch.cat([centers[0].repeat(on_mode, 1), torch.zeros(1000 - on_mode, 2)])
        assert mode_coverage(points, centers, STD).modes_covered == expected, on_mode


def test_mode_coverage_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        mode_coverage(torch.zeros(10, 3), ring_centers(), STD)
    with pytest.raises(ValueError, match="at least one sample"):
        mode_coverage(torch.zeros(0, 2), ring_centers(), STD)


def test_toy_models_have_the_documented_shapes():
    generator, discriminator = GeneratorToy(), DiscriminatorToy()
    points = generator(torch.randn(7, 2))
    assert points.shape == (7, 2)
    assert discriminator(points).shape == (7,)
    assert DiscriminatorToy(minibatch_std=True)(points).shape == (7,)
    with pytest.raises(ValueError, match="noise of shape"):
        generator(torch.randn(7, 3))
    with pytest.raises(ValueError, match="points of shape"):
        discriminator(torch.randn(7))


def test_minibatch_std_makes_a_score_depend_on_the_batch():
    torch.manual_seed(0)
    plain, spread_aware = DiscriminatorToy(), DiscriminatorToy(minibatch_std=True)
    point = torch.tensor([[2.0, 0.0]])
    tight = torch.cat([point, point + 0.01 * torch.randn(15, 2)])
    wide = torch.cat([point, ring_mixture(15, generator=torch.Generator().manual_seed(0))])
    assert plain(tight)[0].item() == pytest.approx(plain(wide)[0].item(), abs=1e-6)
    assert abs(spread_aware(tight)[0].item() - spread_aware(wide)[0].item()) > 1e-4, \
        "with minibatch_std the same point must score differently in a tight and in a wide batch"
    with pytest.raises(ValueError, match="at least 2"):
        spread_aware(point)


def test_config_checks_its_settings():
    with pytest.raises(ValueError, match="loss must be one of"):
        Toy2dConfig(loss="hinge")
    with pytest.raises(ValueError, match="multiple of snapshot_every"):
        Toy2dConfig(steps=100, snapshot_every=30)
    assert Toy2dConfig.wgan_gp().critic_steps == 5


def test_train_toy_gan_is_reproducible_and_records_snapshots():
    def run():
        torch.manual_seed(0)
        generator, discriminator = GeneratorToy(hidden=16), DiscriminatorToy(hidden=16)
        config = Toy2dConfig(steps=20, snapshot_every=10, batch_size=32, log_every=10)
        return train_toy_gan(generator, discriminator, config, device="cpu", progress=False)

    first, second = run(), run()
    assert [step for step, _ in first.snapshots] == [0, 10, 20]
    assert torch.equal(first.snapshots[-1][1], second.snapshots[-1][1])
    assert {"loss_d", "loss_g"} <= set(first.rows[-1])


def test_train_toy_gan_with_the_gradient_penalty_logs_it():
    config = Toy2dConfig.wgan_gp(steps=4, snapshot_every=2, batch_size=16, log_every=1)
    history = train_toy_gan(GeneratorToy(hidden=8), DiscriminatorToy(hidden=8), config, device="cpu", progress=False)
    assert {"wasserstein_estimate", "penalty"} <= set(history.rows[-1])
    assert all(math.isfinite(row["penalty"]) for row in history.rows)


def test_compare_on_seeds_starts_every_variant_from_the_same_generator():
    runs = compare_on_seeds([3], ("standard", "minibatch-std"), steps=4, snapshot_every=4, batch_size=16,
                            device="cpu", progress=False)
    # Snapshot 0 is the untrained generator: identical for both variants of one seed.
    assert torch.equal(runs[("standard", 3)].snapshots[0][1], runs[("minibatch-std", 3)].snapshots[0][1])
    with pytest.raises(ValueError, match="unknown variants"):
        compare_on_seeds([0], ("standard", "unrolled"), steps=4, snapshot_every=4)


def test_check_modes_covered_accepts_the_reference_and_explains_a_wrong_answer():
    def reference(samples, centers, std):
        return mode_coverage(samples, centers, std).modes_covered

    def every_nearest_mode(samples, centers, std):  # forgets the quality and share conditions
        return len(set(torch.cdist(samples, centers).argmin(dim=1).tolist()))

    assert check_modes_covered(reference).passed
    result = check_modes_covered(every_nearest_mode)
    assert not result.passed and any("too many" in message for message in result.messages)
    assert check_modes_covered(lambda *args: None).status == "not attempted"
