"""Learning from rewards: policy gradients, KL-regularised fine-tuning of the character GPT.

* :mod:`~aigc_lessons.rewards.policy_gradient`: the score-function (REINFORCE) estimator on
  a toy categorical policy, checked against the exact gradient; baselines and variance;
* :mod:`~aigc_lessons.rewards.text_rewards`: a programmatic reward (the fraction of words
  of love), made to be hackable;
* :mod:`~aigc_lessons.rewards.tuning`: :func:`tune_with_reward`, REINFORCE with a
  leave-one-out baseline on the KL-shaped reward ``r - beta * KL per character``;
* :mod:`~aigc_lessons.rewards.sweep`: the reward-KL curve over ``beta``
  (``python -m aigc_lessons.rewards.sweep``).
"""

from .policy_gradient import (PG_BASELINES, CategoricalPolicy, estimator_statistics,
                              exact_gradient, exact_variance, reinforce_gradient,
                              reinforce_samples)
from .text_rewards import LOVE_WORDS, WordFrequencyReward, love_reward, words_of
from .tuning import (BASELINES, RewardTuningConfig, RewardTuningHistory, advantages,
                     kl_per_character, sample_texts, sample_tokens, sequence_log_probs,
                     shaped_reward, tune_with_reward)

__all__ = ["BASELINES", "LOVE_WORDS", "PG_BASELINES", "CategoricalPolicy", "RewardTuningConfig",
           "RewardTuningHistory", "WordFrequencyReward", "advantages", "estimator_statistics",
           "exact_gradient", "exact_variance", "kl_per_character", "love_reward",
           "reinforce_gradient", "reinforce_samples", "sample_texts", "sample_tokens",
           "sequence_log_probs", "shaped_reward", "tune_with_reward", "words_of"]
