"""Learning from rewards: the toy REINFORCE estimator, the text reward, KL-regularised tuning."""

from __future__ import annotations

import copy

import pytest
import torch

from aigc_lessons.models import GPT
from aigc_lessons.rewards import (
    CategoricalPolicy,
    RewardTuningConfig,
    WordFrequencyReward,
    advantages,
    estimator_statistics,
    exact_gradient,
    exact_variance,
    kl_per_character,
    love_reward,
    reinforce_samples,
    sample_texts,
    sample_tokens,
    sequence_log_probs,
    shaped_reward,
    tune_with_reward,
    words_of,
)
from aigc_lessons.text import CharVocab

POLICY = CategoricalPolicy(torch.tensor([0.5, -1.0, 0.0, 1.5, 0.2]))
REWARDS = torch.tensor([1.0, 4.0, 0.0, 2.0, 3.0]) + 5.0  # all large: a baseline matters


# --- the toy problem: exact gradient, REINFORCE, baselines ---

def test_exact_gradient_matches_autograd():
    logits = POLICY.logits.clone().requires_grad_(True)
    expected = torch.autograd.grad((logits.softmax(0) * REWARDS.double()).sum(), logits)[0]
    assert torch.allclose(exact_gradient(POLICY, REWARDS), expected, atol=1e-12)


@pytest.mark.parametrize("baseline", ["none", "constant", "leave_one_out"])
def test_reinforce_is_unbiased(baseline):
    constant = float((POLICY.probabilities * REWARDS.double()).sum())
    stats = estimator_statistics(POLICY, REWARDS, repeats=20_000, batch_size=4, baseline=baseline,
                                 constant=constant, generator=torch.Generator().manual_seed(0))
    # the error of a mean of 20 000 estimates: about standard_error; 5 of them is a sure failure
    assert stats["bias"] < 5 * stats["standard_error"], stats


def test_mean_baseline_shrinks_the_gradient_by_b_minus_1_over_b():
    # E[(r_i - mean) s_i] = (B - 1) / B * grad J: the sample's own reward is in its baseline
    batch = 2
    estimates = reinforce_samples(POLICY, REWARDS, repeats=40_000, batch_size=batch,
                                  baseline="mean", generator=torch.Generator().manual_seed(1))
    expected = exact_gradient(POLICY, REWARDS) * (batch - 1) / batch
    error = (estimates.mean(0) - expected).norm()
    standard_error = (estimates.var(0).sum() / len(estimates)).sqrt()
    assert error < 5 * standard_error


def test_baseline_lowers_the_variance_and_matches_the_closed_form():
    generator = torch.Generator().manual_seed(2)
    expected_reward = float((POLICY.probabilities * REWARDS.double()).sum())
    none = estimator_statistics(POLICY, REWARDS, 20_000, generator=generator)
    with_baseline = estimator_statistics(POLICY, REWARDS, 20_000, baseline="constant",
                                         constant=expected_reward, generator=generator)
    assert with_baseline["variance"] < 0.2 * none["variance"], (none, with_baseline)
    for stats, constant in ((none, 0.0), (with_baseline, expected_reward)):
        exact = exact_variance(POLICY, REWARDS, constant)
        assert stats["variance"] == pytest.approx(exact, rel=0.05)
    loo = estimator_statistics(POLICY, REWARDS, 5000, batch_size=8, baseline="leave_one_out",
                               generator=generator)
    plain = estimator_statistics(POLICY, REWARDS, 5000, batch_size=8, generator=generator)
    assert loo["variance"] < 0.3 * plain["variance"]


def test_exact_variance_is_lowest_at_the_optimal_baseline():
    pi = POLICY.probabilities
    weight = ((torch.eye(len(pi), dtype=pi.dtype) - pi) ** 2).sum(1)
    best = float((pi * REWARDS.double() * weight).sum() / (pi * weight).sum())
    at_best = exact_variance(POLICY, REWARDS, best)
    assert at_best < exact_variance(POLICY, REWARDS, best + 0.1)
    assert at_best < exact_variance(POLICY, REWARDS, best - 0.1)


def test_policy_and_estimator_errors():
    with pytest.raises(ValueError, match="at least 2 actions"):
        CategoricalPolicy(torch.zeros(1))
    with pytest.raises(ValueError, match="one value per action"):
        exact_gradient(POLICY, torch.zeros(3))
    with pytest.raises(ValueError, match="baseline must be one of"):
        estimator_statistics(POLICY, REWARDS, 10, baseline="average")


def test_advantages_known_answers():
    rewards = torch.tensor([1.0, 2.0, 6.0])
    assert advantages(rewards, "none").tolist() == [1.0, 2.0, 6.0]
    assert advantages(rewards, "mean").tolist() == [-2.0, -1.0, 3.0]
    assert advantages(rewards, "leave_one_out").tolist() == [-3.0, -1.5, 4.5]
    assert float(advantages(rewards).sum()) == pytest.approx(0.0)  # = B/(B-1) sum(r - mean)
    with pytest.raises(ValueError, match="at least 2"):
        advantages(torch.tensor([1.0]))


def test_shaped_reward():
    assert shaped_reward(torch.tensor([1.0]), torch.tensor([0.5]), 0.0).tolist() == [1.0]
    assert shaped_reward(torch.tensor([1.0]), torch.tensor([0.5]), 2.0).tolist() == [0.0]


# --- the text reward ---

def test_love_reward_known_answers():
    texts = ["O sweet love, my heart", "To be, or not to be", "", "LOVE love Love's", ";;; !"]
    assert love_reward(texts).tolist() == pytest.approx([0.6, 0.0, 0.0, 1.0, 0.0])
    assert words_of("'Tis the king's") == ["tis", "the", "king's"]
    assert WordFrequencyReward({"king"})(["king and KING, no kings"]).tolist() == pytest.approx([0.4])


def test_love_reward_errors():
    with pytest.raises(TypeError, match="list of texts"):
        love_reward("love")
    with pytest.raises(ValueError, match="lower case"):
        WordFrequencyReward({"Love"})
    with pytest.raises(ValueError, match="non-empty"):
        WordFrequencyReward(set())


# --- the language model: sampling, KL, tuning ---

VOCAB = CharVocab("\nab ")


def _tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(len(VOCAB), context_length=16, embed_dim=16, heads=2, layers=1)


def test_kl_is_zero_for_identical_models_and_positive_otherwise():
    policy = _tiny_gpt()
    tokens = sample_tokens(policy, VOCAB, 8, 10, generator=torch.Generator().manual_seed(0))
    same = copy.deepcopy(policy)
    for exact in (False, True):
        assert torch.allclose(kl_per_character(policy, same, tokens, exact=exact),
                              torch.zeros(8), atol=1e-6)
    other = _tiny_gpt(seed=1)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.mul_(20)  # far from the policy
    assert (kl_per_character(policy, other, tokens, exact=True) > 0).all()


def test_sampled_kl_estimates_the_exact_kl():
    policy, reference = _tiny_gpt(0), _tiny_gpt(1)
    with torch.no_grad():
        policy.head.weight.mul_(30)  # a policy clearly different from the reference
    tokens = sample_tokens(policy, VOCAB, 4000, 6, generator=torch.Generator().manual_seed(0))
    sampled = kl_per_character(policy, reference, tokens)
    exact = kl_per_character(policy, reference, tokens, exact=True)
    # both estimate KL(pi || ref) per character; the sampled one is noisier
    error = (sampled.mean() - exact.mean()).abs()
    assert error < 4 * sampled.std() / len(sampled) ** 0.5 + 1e-3


def test_sequence_log_probs_match_a_step_by_step_computation():
    model = _tiny_gpt()
    tokens = sample_tokens(model, VOCAB, 3, 5, prompt="a\n",
                           generator=torch.Generator().manual_seed(0))
    log_probs = sequence_log_probs(model, tokens, prompt_length=2)
    assert log_probs.shape == (3, 5)
    with torch.no_grad():
        for t in range(5):
            logits = model(tokens[:, : 2 + t])[:, -1]
            expected = logits.log_softmax(-1).gather(-1, tokens[:, 2 + t, None]).squeeze(-1)
            assert torch.allclose(log_probs[:, t], expected, atol=1e-5)


def test_sample_texts_lengths_and_errors():
    model = _tiny_gpt()
    texts = sample_texts(model, VOCAB, 3, 7, generator=torch.Generator().manual_seed(0))
    assert [len(text) for text in texts] == [7, 7, 7]
    with pytest.raises(ValueError, match="fit the model's context"):
        sample_texts(model, VOCAB, 1, 16)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sample_texts(model, VOCAB, 1, 4, prompt="z")


@pytest.fixture
def one_thread():
    """Tiny matrices: one thread is faster, and fair to a shared machine; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fraction_of_a(texts: list[str]) -> torch.Tensor:
    return torch.tensor([text.count("a") / len(text) for text in texts])


def test_tune_with_reward_raises_the_reward_of_a_tiny_model(one_thread):
    policy = _tiny_gpt()
    reference = copy.deepcopy(policy)
    before = [p.clone() for p in reference.parameters()]
    config = RewardTuningConfig(kl_weight=0.0, steps=40, batch_size=16, new_characters=8,
                                learning_rate=1e-2)
    history = tune_with_reward(policy, reference, VOCAB, _fraction_of_a, config, progress=False)
    first, last = history.series("reward")[0], history.final("reward", last=5)
    assert last > first + 0.3, (first, last)
    assert history.final("kl_exact_per_character", last=5) > 0.05  # it moved away
    assert all(torch.equal(a, b) for a, b in zip(before, reference.parameters())), \
        "the reference must stay frozen"
    assert 1 in history.samples and config.steps in history.samples


def test_a_kl_penalty_keeps_the_policy_closer(one_thread):
    results = {}
    for beta in (0.0, 2.0):
        policy = _tiny_gpt()
        config = RewardTuningConfig(kl_weight=beta, steps=30, batch_size=16, new_characters=8,
                                    learning_rate=1e-2)
        history = tune_with_reward(policy, copy.deepcopy(policy), VOCAB, _fraction_of_a, config,
                                   progress=False)
        results[beta] = history.final("kl_exact_per_character", last=5)
    assert results[2.0] < results[0.0], results


def test_the_kl_controller_raises_beta_while_the_kl_is_above_target(one_thread):
    policy = _tiny_gpt()
    config = RewardTuningConfig(kl_weight=0.1, steps=15, batch_size=16, new_characters=8,
                                learning_rate=1e-2, kl_target=1e-4)
    history = tune_with_reward(policy, copy.deepcopy(policy), VOCAB, _fraction_of_a, config,
                               progress=False)
    weights = history.series("kl_weight")
    assert weights[0] == 0.1 and weights[-1] > weights[0]  # KL far above the tiny target


@pytest.mark.parametrize("settings, message", [
    ({"kl_weight": -1.0}, "kl_weight must be a number >= 0"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"new_characters": 0}, "new_characters must be a positive integer"),
    ({"learning_rate": 0.0}, "learning_rate must be a number > 0"),
    ({"temperature": 0.0}, "temperature must be a number > 0"),
    ({"baseline": "average"}, "baseline must be one of none, mean, leave_one_out"),
    ({"prompt": ""}, "prompt must be a non-empty string"),
    ({"batch_size": 1}, "leave-one-out baseline needs batch_size >= 2"),
    ({"steps": 2.5}, "steps must be a positive integer"),
    ({"kl_target": 0.0}, "kl_target must be a number > 0 or None"),
    ({"kl_target": 0.1, "kl_weight": 0.0}, "start it above 0"),
    ({"kl_adapt_rate": 2.0}, "kl_adapt_rate must be a number > 0 and <= 1"),
])
def test_config_ranges(settings, message):
    with pytest.raises(ValueError, match=message):
        RewardTuningConfig(**settings)


def test_a_batch_of_one_without_baseline_runs(one_thread):
    policy = _tiny_gpt()
    config = RewardTuningConfig(steps=2, batch_size=1, new_characters=4, baseline="none")
    history = tune_with_reward(policy, copy.deepcopy(policy), VOCAB, _fraction_of_a, config,
                               progress=False)
    assert len(history.rows) == 2 and history.rows[0]["advantage_std"] == 0.0


def test_tune_with_reward_refuses_bad_inputs():
    policy = _tiny_gpt()
    config = RewardTuningConfig(steps=1, batch_size=2, new_characters=4)
    with pytest.raises(ValueError, match="same module"):
        tune_with_reward(policy, policy, VOCAB, _fraction_of_a, config, progress=False)
    with pytest.raises(ValueError, match="one number per text"):
        tune_with_reward(policy, copy.deepcopy(policy), VOCAB, lambda texts: torch.zeros(3),
                         config, progress=False)
    long = RewardTuningConfig(steps=1, batch_size=2, new_characters=16)
    with pytest.raises(ValueError, match="fit the model's context"):
        tune_with_reward(policy, copy.deepcopy(policy), VOCAB, _fraction_of_a, long,
                         progress=False)
    with pytest.raises(TypeError, match="RewardTuningConfig"):
        tune_with_reward(policy, copy.deepcopy(policy), VOCAB, _fraction_of_a, {"steps": 1},
                         progress=False)
