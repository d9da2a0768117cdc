"""Privacy (Responsible AIGC): mechanisms against their guarantee, k-anonymity, DP-SGD, membership inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from aigc_lessons.privacy import (CARE_HOME_NAME, DPConfig, DPGeneratorConfig, PrivacyError,
                                  advanced_composition, check_unit_images, empirical_privacy_loss,
                                  exponential_mechanism, exponential_mechanism_probabilities, homogeneous_groups,
                                  k_anonymity, laplace_mechanism, laplace_privacy_loss, linkage_attack,
                                  make_k_anonymous, make_private, membership_attack, reidentified,
                                  sequential_composition, toy_tables, train_dp_classifier)

EPSILONS = (0.1, 0.5, 1.0, 2.0, 4.0)


# --------------------------------------------------------------------------- Laplace

@pytest.mark.parametrize("epsilon", EPSILONS)
def test_laplace_exact_privacy_loss_is_at_most_epsilon_and_reaches_it(epsilon):
    outputs = np.linspace(-20, 30, 5001)
    loss = laplace_privacy_loss(outputs, 10.0, 11.0, sensitivity=1.0, epsilon=epsilon)
    assert np.abs(loss).max() <= epsilon + 1e-9
    assert loss[outputs <= 10].min() == pytest.approx(epsilon)  # left of both answers: the bound is tight


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_laplace_empirical_privacy_loss_is_epsilon_on_neighbouring_counts(epsilon):
    """A counting query (sensitivity 1) on D and on D' with one more person: loss measured from samples."""
    on_d = laplace_mechanism(100.0, 1.0, epsilon, rng=0, size=2_000_000)
    on_neighbour = laplace_mechanism(101.0, 1.0, epsilon, rng=1, size=2_000_000)
    scale = 1.0 / epsilon
    bins = np.arange(100 - 3 * scale, 101 + 3 * scale, scale / 4)  # a quarter of the noise scale wide
    measured = empirical_privacy_loss(on_d, on_neighbour, bins=bins, min_count=5000)
    # counts of >= 5000 per bin: the log-ratio of two counts is off by about sqrt(2 / 5000) = 0.02
    assert measured <= epsilon + 0.06, f"ε = {epsilon}: measured privacy loss {measured:.3f} exceeds ε"
    assert measured >= epsilon - 0.06 - 0.1 * epsilon, f"ε = {epsilon}: measured {measured:.3f}, below ε"


def test_noise_too_small_for_the_sensitivity_breaks_the_guarantee():
    """Using sensitivity 1 for a query that can move by 3 gives privacy loss 3 ε, and the measurement sees it."""
    on_d = laplace_mechanism(0.0, 1.0, 0.5, rng=0, size=400_000)
    on_neighbour = laplace_mechanism(3.0, 1.0, 0.5, rng=1, size=400_000)
    assert empirical_privacy_loss(on_d, on_neighbour, bins=30, min_count=2000) > 1.2


def test_laplace_scale_is_sensitivity_over_epsilon():
    draws = laplace_mechanism(0.0, sensitivity=2.0, epsilon=0.5, rng=0, size=200_000)
    assert np.mean(np.abs(draws)) == pytest.approx(4.0, rel=0.02)  # E|Laplace(b)| = b = Δ / ε


# --------------------------------------------------------------------------- exponential

@pytest.mark.parametrize("epsilon", EPSILONS)
def test_exponential_mechanism_probabilities_are_the_normalised_exponentials(epsilon):
    utilities = np.array([3.0, 1.0, 0.0, 2.5])
    sensitivity = 1.5
    weights = np.exp(epsilon * utilities / (2 * sensitivity))
    assert np.allclose(exponential_mechanism_probabilities(utilities, sensitivity, epsilon),
                       weights / weights.sum())


def test_exponential_mechanism_ratio_on_neighbours_is_within_e_to_epsilon():
    rng = np.random.default_rng(0)
    for _ in range(200):
        epsilon = float(rng.uniform(0.1, 3))
        utilities = rng.uniform(0, 10, size=6)
        neighbour = utilities + rng.uniform(-1, 1, size=6)  # each utility moves by at most Δ = 1
        ratio = exponential_mechanism_probabilities(utilities, 1.0, epsilon) / \
            exponential_mechanism_probabilities(neighbour, 1.0, epsilon)
        assert np.all(np.abs(np.log(ratio)) <= epsilon + 1e-9)


def test_exponential_mechanism_draws_follow_its_probabilities():
    utilities = [0.0, 1.0, 2.0]
    draws = exponential_mechanism(utilities, 1.0, 2.0, rng=0, size=100_000)
    frequencies = np.bincount(draws, minlength=3) / len(draws)
    assert np.allclose(frequencies, exponential_mechanism_probabilities(utilities, 1.0, 2.0), atol=0.01)


def test_exponential_mechanism_does_not_overflow_on_large_utilities():
    probabilities = exponential_mechanism_probabilities([1e6, 1e6 - 1], 1.0, 2.0)
    assert np.isfinite(probabilities).all() and probabilities[0] == pytest.approx(math.e / (1 + math.e))


# --------------------------------------------------------------------------- composition

def test_sequential_composition_adds_and_two_laplace_releases_lose_the_sum():
    assert sequential_composition([0.3, 0.7], [1e-6, 1e-6]) == pytest.approx((1.0, 2e-6))
    outputs = np.random.default_rng(0).laplace(0, 1 / 0.4, size=(1000, 2))
    joint_loss = (laplace_privacy_loss(outputs[:, 0], 0.0, 1.0, 1.0, 0.4)
                  + laplace_privacy_loss(outputs[:, 1], 0.0, 1.0, 1.0, 0.4))  # independent: log-densities add
    assert np.abs(joint_loss).max() <= 0.8 + 1e-9 and np.abs(joint_loss).max() > 0.79


def test_advanced_composition_beats_the_sum_for_many_small_releases():
    k, epsilon = 10_000, 0.01
    assert advanced_composition(epsilon, k, 1e-5) < sequential_composition([epsilon] * k)[0] / 10
    assert advanced_composition(1.0, 2, 1e-5) > 2.0  # for few large releases the sum is better


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("epsilon", [0, -1.0, float("nan"), float("inf"), "1", None, True])
def test_bad_epsilon_is_a_clear_error(epsilon):
    with pytest.raises(PrivacyError, match="epsilon must be"):
        laplace_mechanism(0.0, 1.0, epsilon)
    with pytest.raises(PrivacyError, match="epsilon must be"):
        exponential_mechanism_probabilities([0.0, 1.0], 1.0, epsilon)


@pytest.mark.parametrize("delta", [0, 1, 1.5, -1e-5, float("nan")])
def test_delta_outside_zero_one_is_a_clear_error(delta):
    with pytest.raises(PrivacyError, match="delta must lie strictly between 0 and 1"):
        DPConfig(delta=delta)
    with pytest.raises(PrivacyError, match="delta"):
        advanced_composition(0.1, 10, delta)


@pytest.mark.parametrize("settings, message", [
    ({"target_epsilon": 0}, "target_epsilon must be a finite number > 0"),
    ({"target_epsilon": -3.0}, "target_epsilon must be a finite number > 0"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"max_grad_norm": -1.0}, "max_grad_norm must be a finite number > 0"),
    ({"accountant": "gdp"}, "accountant must be one of"),
    ({"momentum": 1.0}, "momentum must be in"),
    ({"subset": 10}, "subset must be None or an integer >= batch_size"),
])
def test_dp_config_refuses_out_of_range_settings(settings, message):
    with pytest.raises(PrivacyError, match=message):
        DPConfig(**settings)


def test_sensitivity_must_be_positive():
    with pytest.raises(PrivacyError, match="sensitivity must be a finite number > 0"):
        laplace_mechanism(0.0, 0.0, 1.0)


@pytest.mark.parametrize("images, message", [
    (torch.full((2, 1, 28, 28), 1.5), r"must lie in \[0, 1\]"),
    (torch.full((2, 1, 28, 28), -1.0), r"must lie in \[0, 1\]"),
    (torch.zeros(2, 28, 28), r"must have shape \(N, 1, 28, 28\)"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.int64), "must be a float tensor"),
])
def test_images_outside_their_range_are_a_clear_error(images, message):
    with pytest.raises(PrivacyError, match=message):
        check_unit_images(images)
    with pytest.raises(PrivacyError, match=message):
        train_dp_classifier(DPConfig(epochs=1, batch_size=2), train=(images, torch.zeros(2, dtype=torch.long)),
                            test=(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)))


# --------------------------------------------------------------------------- k-anonymity

def test_raw_release_lets_the_roll_reidentify_the_planted_person():
    release, roll, name = toy_tables(seed=0)
    matches = linkage_attack(release, roll)
    assert len(matches[name]) == 1 and matches[name][0]["diagnosis"] == "hypertension"
    assert len(reidentified(matches)) > 0.9 * len(roll)  # ZIP + birth date + sex single out almost everyone


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_make_k_anonymous_gives_every_group_at_least_k_rows_and_linkage_at_least_k_candidates(k):
    release, roll, name = toy_tables(seed=1)
    anonymous, levels = make_k_anonymous(release, k)
    assert k_anonymity(anonymous) >= k
    assert sorted(row["diagnosis"] for row in anonymous) == sorted(row["diagnosis"] for row in release)
    matches = linkage_attack(anonymous, roll, levels)
    assert all(len(rows) >= k for rows in matches.values())
    assert reidentified(matches) == [] or k == 1


def test_make_k_anonymous_is_minimal_in_total_generalisation():
    release, _, _ = toy_tables(seed=0)
    _, levels = make_k_anonymous(release, 5)
    from aigc_lessons.privacy.anonymity import MAX_LEVEL, generalise_table
    import itertools
    for node in itertools.product(*(range(MAX_LEVEL[key] + 1) for key in levels)):
        if sum(node) < sum(levels.values()):
            assert k_anonymity(generalise_table(release, dict(zip(levels, node)))) < 5, node


def test_k_anonymity_still_reveals_a_homogeneous_group():
    release, roll, _ = toy_tables(seed=0)
    anonymous, levels = make_k_anonymous(release, 5)
    rows = linkage_attack(anonymous, roll, levels)[CARE_HOME_NAME]
    assert len(rows) >= 5 and {row["diagnosis"] for row in rows} == {"dementia"}
    assert homogeneous_groups(anonymous)


def test_bad_k_is_a_clear_error():
    release, _, _ = toy_tables(seed=0)
    with pytest.raises(PrivacyError, match="k must be an integer"):
        make_k_anonymous(release, 0)


# --------------------------------------------------------------------------- DP-SGD

def test_dp_sgd_runs_and_the_accountant_epsilon_grows_with_steps():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(256, 1, 28, 28, generator=generator)
    labels = torch.randint(10, (256,), generator=generator)
    config = DPConfig(target_epsilon=2.0, epochs=3, batch_size=64, subset=256)
    run = train_dp_classifier(config, train=(images, labels), test=(images[:64], labels[:64]))
    epsilons = [row["epsilon"] for row in run.history]
    assert epsilons == sorted(epsilons) and epsilons[0] < epsilons[-1], epsilons
    assert run.epsilon == pytest.approx(2.0, abs=0.05), "Opacus picks σ so that the last epoch spends ε"
    assert run.noise_multiplier > 0 and run.steps > 0
    assert not hasattr(run.model, "_module"), "the returned model is the plain network, not Opacus's wrapper"


def test_no_privacy_baseline_has_no_noise_and_no_epsilon():
    images, labels = torch.rand(256, 1, 28, 28), torch.randint(10, (256,))
    run = train_dp_classifier(DPConfig(target_epsilon=None, epochs=1, batch_size=128),
                              train=(images, labels), test=(images[:32], labels[:32]))
    assert run.epsilon is None and run.noise_multiplier == 0.0


def test_make_private_refuses_batch_norm_and_names_the_fix():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(8, 1, 28, 28),
                                                                        torch.zeros(8, dtype=torch.long)))
    with pytest.raises(PrivacyError, match="group norm"):
        make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, DPConfig(epochs=1))


def test_generator_config_defaults_to_epsilon_ten():
    assert DPGeneratorConfig().target_epsilon == 10.0 and DPGeneratorConfig().delta == 1e-5


# --------------------------------------------------------------------------- membership inference

def test_attack_on_identical_sets_is_chance_and_on_memorised_noise_is_near_perfect():
    torch.manual_seed(0)
    members = (torch.rand(32, 1, 28, 28), torch.randint(10, (32,)))
    non_members = (torch.rand(32, 1, 28, 28), torch.randint(10, (32,)))
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    assert membership_attack(model, members, members).auc == pytest.approx(0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):  # random labels on noise: only memorising fits them
        loss = nn.functional.cross_entropy(model(members[0]), members[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = membership_attack(model, members, non_members)
    assert result.auc > 0.95 and result.advantage > 0.8
    assert result.member_loss < result.non_member_loss
    assert 0 <= result.tpr_at(0.01) <= 1


def _digit_like_images(count: int, seed: int) -> torch.Tensor:
    """Blurred random strokes in [0, 1]: structured like digits, so a small VAE can fit and memorise them."""
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(count, 1, 7, 7, generator=generator) > 0.6).float()
    return nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


def test_generator_attack_finds_the_members_of_an_overfitted_vae():
    from aigc_lessons.privacy import OverfitVaeSetting, generator_membership_attack, train_overfit_vae

    members = (_digit_like_images(32, seed=0), torch.zeros(32, dtype=torch.long))
    non_members = (_digit_like_images(32, seed=1), torch.zeros(32, dtype=torch.long))
    vae = train_overfit_vae(members[0], OverfitVaeSetting(epochs=150, batch_size=16, hidden=(128,),
                                                          latent_dim=4), seed=0)
    result = generator_membership_attack(vae, members, non_members)
    assert result.auc > 0.75, f"a VAE trained 150 epochs on 32 images should be caught, AUC {result.auc:.3f}"
    assert result.member_loss < result.non_member_loss, "members should have the lower negative ELBO"
    again = generator_membership_attack(vae, members, non_members)
    assert again.auc == result.auc, "the ELBO samples are seeded: the same attack gives the same AUC"
    assert generator_membership_attack(vae, members, members).auc == pytest.approx(0.5)


def test_generator_attack_refuses_bad_input():
    from aigc_lessons.models import VAE, ConditionalVAE
    from aigc_lessons.privacy import generator_membership_attack, per_example_negative_elbo

    images, labels = torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long)
    with pytest.raises(PrivacyError, match="one label per image"):
        generator_membership_attack(VAE(latent_dim=2), (images, labels[:5]), (images, labels))
    with pytest.raises(PrivacyError, match=r"\[0, 1\]"):
        generator_membership_attack(VAE(latent_dim=2), (images * 255, labels), (images, labels))
    with pytest.raises(PrivacyError, match="conditional"):
        per_example_negative_elbo(ConditionalVAE(latent_dim=2, hidden=(8,)), images)
    with pytest.raises(PrivacyError, match="samples"):
        per_example_negative_elbo(VAE(latent_dim=2), images, samples=0)


# --------------------------------------------------------------------------- Gaussian mechanism and DP-MERF

@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")  # Opacus's RDP grid, not ours
@pytest.mark.parametrize("epsilon", (0.5, 1.0, 3.0, 10.0))
def test_gaussian_noise_scale_meets_delta_exactly_and_beats_the_accountants(epsilon):
    from opacus.accountants.utils import get_noise_multiplier

    from aigc_lessons.privacy import gaussian_delta, gaussian_noise_scale

    sigma = gaussian_noise_scale(1.0, epsilon, 1e-5)
    assert gaussian_delta(sigma, 1.0, epsilon) <= 1e-5 < gaussian_delta(sigma * 0.999, 1.0, epsilon)
    assert gaussian_noise_scale(2.0, epsilon, 1e-5) == pytest.approx(2 * sigma, rel=1e-9)  # σ scales with Δ
    # One release is one step at sampling rate 1: Rényi DP is looser; PRV is numerically near exact
    rdp = get_noise_multiplier(target_epsilon=epsilon, target_delta=1e-5, sample_rate=1.0, steps=1,
                               accountant="rdp", epsilon_tolerance=0.001)
    assert sigma <= rdp
    if epsilon < 1:  # the textbook rule, valid only there, is looser still
        assert sigma < math.sqrt(2 * math.log(1.25 / 1e-5)) / epsilon


def test_gaussian_mechanism_privacy_loss_tail_is_delta():
    """Measured: the mass of outputs whose privacy loss exceeds ε, minus e^ε times the neighbour's, is δ."""
    from aigc_lessons.privacy import gaussian_delta, gaussian_mechanism

    epsilon, sigma = 1.0, 1.0
    delta = gaussian_delta(sigma, 1.0, epsilon)
    rng = np.random.default_rng(0)
    outputs = rng.normal(0.0, sigma, 2_000_000)  # f(D) = 0, f(D') = 1
    loss = (outputs ** 2 - (outputs - 1) ** 2) / (-2 * sigma ** 2)  # log p_D(o) - log p_D'(o)
    neighbour = rng.normal(1.0, sigma, 2_000_000)
    neighbour_loss = (neighbour ** 2 - (neighbour - 1) ** 2) / (-2 * sigma ** 2)
    # δ = P_D[loss > ε] - e^ε P_D'[loss > ε], both probabilities counted on draws
    measured = np.mean(loss > epsilon) - math.exp(epsilon) * np.mean(neighbour_loss > epsilon)
    assert measured == pytest.approx(delta, abs=2e-3)
    assert gaussian_mechanism(np.zeros(3), 1.0, 1.0, 1e-5, rng=0).shape == (3,)


@pytest.mark.parametrize("bad, message", [
    (dict(epsilon=0.0), "epsilon"), (dict(delta=1.0), "delta"), (dict(sensitivity=-1.0), "sensitivity"),
])
def test_gaussian_mechanism_refuses_bad_parameters(bad, message):
    from aigc_lessons.privacy import gaussian_noise_scale

    arguments = {"sensitivity": 1.0, "epsilon": 1.0, "delta": 1e-5, **bad}
    with pytest.raises(PrivacyError, match=message):
        gaussian_noise_scale(**arguments)


def test_random_fourier_features_have_unit_norm_and_approximate_the_gaussian_kernel():
    from aigc_lessons.privacy import RandomFourierFeatures

    torch.manual_seed(0)
    x = torch.rand(6, 1, 28, 28) * 0.3
    features = RandomFourierFeatures(784, 20_000, length_scale=5.0, seed=0)(x)
    assert torch.allclose(features.norm(dim=1), torch.ones(6), atol=1e-5)
    exact = torch.exp(-torch.cdist(x.flatten(1), x.flatten(1)) ** 2 / (2 * 5.0 ** 2))
    assert (features @ features.T - exact).abs().max() < 0.03  # Monte Carlo error ~ 1 / sqrt(D)


def test_private_release_is_the_noisy_class_mean_and_proportions():
    from aigc_lessons.privacy import RandomFourierFeatures, private_class_embeddings

    features = RandomFourierFeatures(784, 200, length_scale=10.0, seed=0)
    images, labels = torch.rand(400, 1, 28, 28), torch.arange(4).repeat_interleave(100)
    release = private_class_embeddings(images, labels, features, epsilon=1e6, delta=0.5, num_classes=4)
    assert release.sigma < 1e-3  # an enormous budget: little noise, so the exact means come back
    exact = torch.stack([features(images[labels == c]).mean(0) for c in range(4)])
    assert torch.allclose(release.class_means, exact, atol=1e-4)
    assert torch.allclose(release.proportions, torch.full((4,), 0.25), atol=1e-5)
    noisy = private_class_embeddings(images, labels, features, epsilon=1.0, delta=1e-5, num_classes=4)
    assert noisy.sigma == pytest.approx(3.7306, abs=1e-3)
    with pytest.raises(PrivacyError, match="labels"):
        private_class_embeddings(images, labels + 4, features, 1.0, 1e-5, num_classes=4)
    with pytest.raises(PrivacyError, match=r"\[0, 1\]"):
        private_class_embeddings(images * 2, labels, features, 1.0, 1e-5, num_classes=4)


def test_release_noise_is_unpredictable_unless_a_seed_is_given():
    from aigc_lessons.privacy import RandomFourierFeatures, private_class_embeddings

    features = RandomFourierFeatures(784, 20, length_scale=10.0, seed=0)
    images, labels = torch.rand(20, 1, 28, 28), torch.arange(10).repeat(2)
    releases = [private_class_embeddings(images, labels, features, 1.0, 1e-5, seed=seed).class_means
                for seed in (None, None, 3, 3)]
    assert not torch.equal(releases[0], releases[1])  # fresh secret seeds: nobody can subtract the noise
    assert torch.equal(releases[2], releases[3])  # a known seed: reproducible, and for teaching only


def test_dp_merf_training_lowers_the_embedding_distance_and_returns_a_conditional_generator():
    from aigc_lessons.privacy import MerfConfig, train_dp_merf

    images, labels = torch.rand(200, 1, 28, 28) ** 4, torch.arange(10).repeat(20)
    run = train_dp_merf(MerfConfig(features=100, steps=40, per_class=4, lr=3e-3), train=(images, labels))
    distances = [row["embedding_distance"] for row in run.history[1:]]
    assert distances[-1] < distances[0]
    assert run.epsilon == 10.0 and run.steps == 40 and run.history[0]["step"] == 0
    samples, sample_labels = run.model.sample_for_evaluation(20, torch.Generator().manual_seed(0))
    assert samples.shape == (20, 1, 28, 28) and sample_labels.tolist() == [i % 10 for i in range(20)]


@pytest.mark.parametrize("settings, message", [
    (dict(target_epsilon=-1.0), "target_epsilon"), (dict(features=0), "features"),
    (dict(length_scale=0.0), "length_scale"), (dict(steps=True), "steps"), (dict(delta=2.0), "delta"),
])
def test_merf_config_refuses_out_of_range_settings(settings, message):
    from aigc_lessons.privacy import MerfConfig

    with pytest.raises(PrivacyError, match=message):
        MerfConfig(**settings)


# --------------------------------------------------------------------------- the shipped weights

def test_shipped_dp_cards_record_their_privacy_and_agree_with_the_recipes():
    from aigc_lessons import pretrained
    from aigc_lessons.recipes import full_setting

    for name in ("dp_classifier_mnist", "dp_cvae_mnist", "dp_merf_mnist"):
        card = pretrained.card(name)["card"]
        setting = full_setting(name)
        assert card["training"] == setting, f"{name}: retrain it, its card disagrees with the recipe"
        assert card["privacy"]["delta"] == 1e-5
        assert card["privacy"]["epsilon"] <= setting["target_epsilon"] + 0.01, name


def test_shipped_private_generator_meets_the_chapter_target():
    """A classifier trained on the samples of a generator private at ε <= 10 scores at least 80% on real digits."""
    from aigc_lessons import pretrained

    card = pretrained.card("dp_merf_mnist")["card"]
    assert card["privacy"]["epsilon"] <= 10.0 and card["privacy"]["releases"] == 1
    assert card["metrics"]["synthetic_trained_test_accuracy"] >= 0.80, card["metrics"]


def test_shipped_dp_classifier_meets_the_chapter_target():
    """At least 95% test accuracy at ε <= 3, δ = 1e-5 (the Opacus example reaches 96.8% at ε = 3.0)."""
    from aigc_lessons import pretrained

    card = pretrained.card("dp_classifier_mnist")["card"]
    assert card["privacy"]["epsilon"] <= 3.0 + 1e-3
    assert card["metrics"]["test_accuracy"] >= 0.95, card["metrics"]


def test_shipped_dp_classifier_loads_and_scores_like_its_card():
    from aigc_lessons import pretrained
    from aigc_lessons.data import load_mnist
    from aigc_lessons.privacy import accuracy_on

    test = load_mnist("test")
    model = pretrained.load("dp_classifier_mnist")
    accuracy = accuracy_on(model, test.images, test.labels)
    recorded = pretrained.card("dp_classifier_mnist")["card"]["metrics"]["test_accuracy"]
    assert abs(accuracy - recorded) < 0.003, (accuracy, recorded)  # float16 weights: tiny differences


def test_copy_check_puts_the_real_reference_first_and_measures_a_generator():
    from aigc_lessons.privacy import copy_check

    rows = copy_check(count=10, names=["vae_mnist", "classifier_mnist"])
    assert [row["model"] for row in rows] == ["real MNIST test digits", "vae_mnist"]  # classifiers skipped
    assert all(0 < row["min"] <= row["median"] for row in rows)
    assert 0 <= rows[1]["closer_than_any_test_digit"] <= 1


@pytest.mark.parametrize("name", ["dp_cvae_mnist", "dp_merf_mnist"])
def test_private_generator_recipes_run_in_fast_mode(name):
    from aigc_lessons.core import Budget
    from aigc_lessons.recipes import RECIPES

    result = RECIPES[name](Budget(fast=True), torch.device("cpu"), progress=False)
    assert result.card["training"] == RECIPES[name].setting(fast=True)
    assert 0 <= result.card["metrics"]["synthetic_trained_test_accuracy"] <= 1
    assert result.card["privacy"]["epsilon"] <= 10.0 + 0.01
