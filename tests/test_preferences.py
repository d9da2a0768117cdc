"""Learning from preferences: the hidden rule, the Bradley-Terry reward model, DPO."""

from __future__ import annotations

import copy
import math
import zlib

import pytest
import torch

from aigc_lessons.models.gpt import GPT
from aigc_lessons.models.reward import WordRewardModel
from aigc_lessons.rewards.dpo import (DpoConfig, completion_log_prob, dpo_loss, implicit_reward,
                                      reference_log_probs, train_dpo)
from aigc_lessons.rewards.overoptimisation import (evaluate_policy, tune_against_learned_reward,
                                                   true_reward_at_kl)
from aigc_lessons.rewards.preferences import (PreferenceConfig, PreferencePairs, label_pairs,
                                              make_preference_pairs, noise_ceiling,
                                              preference_probability, true_reward)
from aigc_lessons.rewards.reward_model import (RewardModelConfig, bradley_terry_loss,
                                               learned_reward, preference_accuracy,
                                               train_reward_model)
from aigc_lessons.rewards.tuning import RewardTuningConfig
from aigc_lessons.text import CharVocab

VOCAB = CharVocab("\n abdegilnostv")


def _tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(len(VOCAB), context_length=24, embed_dim=16, heads=2, layers=1)


# --- the hidden rule -------------------------------------------------------------------------

def test_true_reward_known_answers():
    scores = true_reward(["O sweet love, good night!", "Death, death and blood.",
                          "love love love love", "", "nothing here at all"]).tolist()
    # 3 distinct cheerful words; 2 gloomy ones and 1 of 4 words repeated (2 * 0.25);
    # one cheerful word, 3 of 4 repeat (2 * 0.75); no words; no lexicon word, no repeat
    assert scores == pytest.approx([3.0, -2.5, -0.5, 0.0, 0.0])
    assert true_reward(["love love"], repetition_weight=0.0).tolist() == [1.0]
    with pytest.raises(TypeError, match="list of strings"):
        true_reward("love")


def test_bradley_terry_probability_and_noise_ceiling():
    assert float(preference_probability(torch.tensor(1.0), torch.tensor(0.0), 1.0)) \
        == pytest.approx(1 / (1 + math.exp(-1)))
    # a lower temperature makes the same gap more decisive
    assert float(preference_probability(torch.tensor(1.0), torch.tensor(0.0), 0.1)) > 0.9999
    assert noise_ceiling(torch.tensor([0.5, 0.9, 0.2])) == pytest.approx((0.5 + 0.9 + 0.8) / 3)
    with pytest.raises(ValueError, match="temperature"):
        preference_probability(torch.tensor(1.0), torch.tensor(0.0), 0.0)


def test_label_pairs_follows_a_large_gap_and_flips_coins_on_ties():
    tokens = torch.arange(4)[:, None].repeat(1, 3)
    rewards = torch.tensor([10.0, 0.0, 0.0, 0.0])
    first = torch.tensor([0] * 50 + [1] * 2000)
    second = torch.tensor([1] * 50 + [2] * 2000)
    pairs = label_pairs(tokens, ["a", "b", "c", "d"], rewards, first, second, 0.5,
                        torch.Generator().manual_seed(0), 1)
    assert pairs.chosen[:50] == ["a"] * 50, "a gap of 10 at temperature 0.5 is never labelled wrong"
    share_b = sum(text == "b" for text in pairs.chosen[50:]) / 2000
    assert 0.45 < share_b < 0.55, f"a tie should be a coin flip, b chosen {share_b:.3f} of the time"
    assert torch.equal(pairs.chosen_tokens[0], tokens[0])
    assert pairs.probability[:50].min() > 0.999 and torch.allclose(pairs.probability[50:],
                                                                   torch.tensor(0.5))


def test_make_preference_pairs_is_seeded_and_keeps_heldout_texts_apart():
    config = PreferenceConfig(texts=20, comparisons_per_text=3, new_characters=6, batch_size=7)
    first = make_preference_pairs(_tiny_gpt(), VOCAB, config)
    second = make_preference_pairs(_tiny_gpt(), VOCAB, config)
    assert torch.equal(first.train.chosen_tokens, second.train.chosen_tokens)
    assert len(first.train) == 16 * 3 and len(first.heldout) == 4 * 2
    assert first.train.chosen_tokens.shape == (48, 1 + 6)  # the prompt "\n", then 6 characters
    train_rows = {tuple(row.tolist()) for row in torch.cat([first.train.chosen_tokens,
                                                            first.train.rejected_tokens])}
    heldout_rows = {tuple(row.tolist()) for row in torch.cat([first.heldout.chosen_tokens,
                                                              first.heldout.rejected_tokens])}
    assert not train_rows & heldout_rows, "a held-out text also appears in a training pair"
    assert true_reward(first.train.chosen).tolist() == first.train.true_chosen.tolist()
    summary = first.summary()
    assert 0.5 <= summary["heldout_noise_ceiling"] <= 1


@pytest.mark.parametrize("settings, message", [
    ({"texts": 3}, "texts must be"),
    ({"texts": 10, "heldout_fraction": 0.05}, "fewer than 2"),
    ({"heldout_fraction": 1.0}, "heldout_fraction must be"),
    ({"temperature": 0.0}, "temperature must be"),
    ({"comparisons_per_text": 0}, "comparisons_per_text must be"),
    ({"repetition_weight": -1.0}, "repetition_weight must be"),
    ({"prompt": ""}, "prompt must be"),
])
def test_preference_config_ranges(settings, message):
    with pytest.raises(ValueError, match=message):
        PreferenceConfig(**settings)


# --- the reward model -------------------------------------------------------------------------

def test_bradley_terry_loss_hand_computed():
    chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    by_hand = [math.log(1 + math.exp(-2)), math.log(2), math.log(1 + math.exp(2))]
    assert float(bradley_terry_loss(chosen, rejected)) == pytest.approx(sum(by_hand) / 3)
    # only differences count: adding a constant to every reward changes nothing
    assert float(bradley_terry_loss(chosen + 7, rejected + 7)) == pytest.approx(sum(by_hand) / 3)
    # the gradient wrt the chosen reward is -sigmoid(r_l - r_w) / B
    chosen.requires_grad_(True)
    bradley_terry_loss(chosen, rejected).backward()
    expected = -torch.sigmoid(rejected - chosen.detach()) / 3
    assert torch.allclose(chosen.grad, expected)
    # no overflow for huge gaps
    assert float(bradley_terry_loss(torch.tensor([-1000.0]), torch.tensor([1000.0]))) == 2000.0
    with pytest.raises(ValueError, match="same shape"):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))


def _separable_pairs(count: int = 64) -> PreferencePairs:
    good = [f"a good day {i}" for i in range(count)]
    bad = [f"a bad day {i}" for i in range(count)]
    dummy = torch.zeros(count, 2, dtype=torch.long)
    return PreferencePairs(dummy, dummy, good, bad, torch.ones(count), torch.zeros(count),
                           torch.ones(count), 1)


def test_reward_model_learns_a_separable_rule_in_a_few_steps():
    pairs = _separable_pairs()
    model = WordRewardModel(buckets=256)
    assert preference_accuracy(model, pairs) == 0.5  # all weights 0: every pair a tie
    history = train_reward_model(model, pairs, RewardModelConfig(epochs=3, batch_size=16,
                                                                 learning_rate=0.1),
                                 heldout=pairs, progress=False)
    assert history.rows[-1]["heldout_accuracy"] == 1.0
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"] < math.log(2)
    reward = learned_reward(model)(["good", "bad"])
    assert reward[0] > reward[1]


def test_word_reward_model_is_a_sum_of_word_weights():
    model = WordRewardModel(buckets=64)
    with torch.no_grad():
        model.weights.weight[zlib.crc32(b"love") % 64] = 1.5
        model.bias.fill_(0.25)
    # the blind spot: every repetition adds the weight again; case and punctuation do not matter
    assert model(["love", "LOVE, love!", "", "hate"]).tolist() == pytest.approx(
        [1.75, 3.25, 0.25, 0.25])
    with pytest.raises(TypeError, match="list of strings"):
        model("love")
    with pytest.raises(ValueError, match="buckets"):
        WordRewardModel(buckets=0)


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 0}, "epochs must be"),
    ({"learning_rate": 0.0}, "learning_rate must be"),
    ({"weight_decay": -0.1}, "weight_decay must be"),
    ({"batch_size": 0}, "batch_size must be"),
])
def test_reward_model_config_ranges(settings, message):
    with pytest.raises(ValueError, match=message):
        RewardModelConfig(**settings)


# --- DPO --------------------------------------------------------------------------------------

def _token_pairs(count: int = 6, length: int = 9) -> PreferencePairs:
    generator = torch.Generator().manual_seed(1)
    chosen = torch.randint(0, len(VOCAB), (count, length), generator=generator)
    rejected = torch.randint(0, len(VOCAB), (count, length), generator=generator)
    texts = [VOCAB.decode(row[1:].tolist()) for row in chosen]
    return PreferencePairs(chosen, rejected, texts, texts, torch.ones(count), torch.zeros(count),
                           torch.ones(count), 1)


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference():
    pairs = _token_pairs()
    policy, reference = _tiny_gpt(), _tiny_gpt()
    chosen = completion_log_prob(policy, pairs.chosen_tokens, 1)
    rejected = completion_log_prob(policy, pairs.rejected_tokens, 1)
    reference_chosen, reference_rejected = reference_log_probs(reference, pairs)
    loss = dpo_loss(chosen, rejected, reference_chosen, reference_rejected, beta=0.1)
    assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-6)


def test_dpo_loss_is_bradley_terry_on_the_implicit_rewards():
    generator = torch.Generator().manual_seed(0)
    values = [torch.randn(5, generator=generator) * 10 for _ in range(4)]
    beta = 0.3
    expected = bradley_terry_loss(implicit_reward(values[0], values[2], beta),
                                  implicit_reward(values[1], values[3], beta))
    assert float(dpo_loss(*values, beta=beta)) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="beta must be"):
        dpo_loss(*values, beta=0.0)
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(values[0], values[1][:3], values[2], values[3], beta=beta)


def test_a_dpo_step_raises_the_chosen_log_ratio_over_the_rejected():
    pairs = _token_pairs()
    reference = _tiny_gpt()
    policy = copy.deepcopy(reference)

    def margin() -> float:
        with torch.no_grad():
            reference_chosen, reference_rejected = reference_log_probs(reference, pairs)
            return float(((completion_log_prob(policy, pairs.chosen_tokens, 1) - reference_chosen)
                          - (completion_log_prob(policy, pairs.rejected_tokens, 1)
                             - reference_rejected)).mean())

    assert margin() == pytest.approx(0.0, abs=1e-5)
    history = train_dpo(policy, reference, pairs, DpoConfig(steps=5, batch_size=6,
                                                            learning_rate=1e-2, log_every=1),
                        progress=False)
    assert margin() > 0.1, "DPO should make the chosen completions likelier relative to the rejected"
    assert history.rows[-1]["loss"] < math.log(2)
    assert all(not p.requires_grad for p in reference.parameters())
    with pytest.raises(ValueError, match="same module"):
        train_dpo(policy, policy, pairs, DpoConfig(steps=1), progress=False)
    frozen_copy = copy.deepcopy(reference)  # the reference is frozen now, and so is its copy
    with pytest.raises(ValueError, match="requires_grad_"):
        train_dpo(frozen_copy, reference, pairs, DpoConfig(steps=1), progress=False)


def test_reference_log_probs_scores_each_distinct_text_once_and_agrees():
    pairs = _token_pairs()
    doubled = PreferencePairs(torch.cat([pairs.chosen_tokens] * 2),
                              torch.cat([pairs.rejected_tokens] * 2), pairs.chosen * 2,
                              pairs.rejected * 2, torch.ones(12), torch.zeros(12),
                              torch.ones(12), 1)
    reference = _tiny_gpt()
    chosen, rejected = reference_log_probs(reference, doubled, batch_size=4)
    with torch.no_grad():
        direct = completion_log_prob(reference, doubled.chosen_tokens, 1)
    assert torch.allclose(chosen, direct, atol=1e-5)
    assert rejected.shape == (12,)


@pytest.mark.parametrize("settings, message", [
    ({"beta": 0.0}, "beta must be"),
    ({"steps": 0}, "steps must be"),
    ({"learning_rate": -1.0}, "learning_rate must be"),
    ({"batch_size": 0}, "batch_size must be"),
])
def test_dpo_config_ranges(settings, message):
    with pytest.raises(ValueError, match=message):
        DpoConfig(**settings)


# --- over-optimisation ------------------------------------------------------------------------

def test_tuning_against_the_learned_reward_records_the_true_reward_of_the_same_texts():
    policy, reference = _tiny_gpt(), _tiny_gpt()
    config = RewardTuningConfig(kl_weight=0.0, steps=2, batch_size=4, new_characters=8)
    history = tune_against_learned_reward(policy, reference, VOCAB, WordRewardModel(16), config,
                                          progress=False)
    assert [sorted(row)[-2:] for row in history.rows] == [["step", "true_reward"]] * 2
    for step, texts in history.samples.items():
        assert history.rows[step - 1]["true_reward"] == pytest.approx(
            float(true_reward(texts).mean()))
    result = evaluate_policy(reference, reference, VOCAB, {"true": true_reward}, count=6,
                             new_characters=5, batch_size=4)
    assert result["kl_per_character"] == 0.0 and result["count"] == 6


def test_true_reward_at_kl_reads_the_first_crossing():
    kls, rewards = [0.0, 0.1, 0.2, 0.3], [0.0, 1.0, 2.0, 3.0]
    assert true_reward_at_kl(kls, rewards, 0.15, window=1) == 2.0
    assert true_reward_at_kl(kls, rewards, 0.15, window=3) == 2.0  # mean of steps 1, 2, 3
    assert true_reward_at_kl(kls, rewards, 0.5) is None
