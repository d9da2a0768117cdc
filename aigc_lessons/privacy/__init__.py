"""Privacy for generative models: mechanisms, anonymisation, DP-SGD and membership inference.

The Responsible AIGC part's privacy and memorisation chapters call these:

* :mod:`.mechanisms`: the Laplace, Gaussian and exponential mechanisms, the privacy loss
  measured on neighbouring data sets, sequential and advanced composition.
* :mod:`.anonymity`: an invented table, k-anonymity by generalisation, the
  linkage and homogeneity attacks.
* :mod:`.dp_training`: DP-SGD with Opacus on an MNIST classifier and on a
  conditional VAE whose samples train a classifier.
* :mod:`.mean_embedding`: DP-MERF, a private generator trained against one noisy
  release of the data's random-feature means (the Gaussian mechanism).
* :mod:`.membership`: the loss-threshold membership-inference attack and its ROC AUC,
  against classifiers (cross-entropy) and VAEs (negative ELBO).

Example:
    >>> from aigc_lessons.privacy import exponential_mechanism_probabilities
    >>> exponential_mechanism_probabilities([0, 0], sensitivity=1, epsilon=1).tolist()
    [0.5, 0.5]
"""

from .anonymity import (CARE_HOME_NAME, PLANTED_NAME, QUASI_IDENTIFIERS, generalise_table, generalise_value,
                        homogeneous_groups, k_anonymity, linkage_attack, make_k_anonymous, reidentified,
                        toy_tables)
from .dp_training import (DELTA, DPConfig, DPGeneratorConfig, DPRun, accuracy_on, check_unit_images,
                          config_dict, make_private, synthetic_training_accuracy,
                          train_dp_classifier, train_dp_cvae)
from .mechanisms import (PrivacyError, advanced_composition, check_delta, check_epsilon, check_sensitivity,
                         empirical_privacy_loss, exponential_mechanism, exponential_mechanism_probabilities,
                         gaussian_delta, gaussian_mechanism, gaussian_noise_scale, laplace_log_density,
                         laplace_mechanism, laplace_privacy_loss, sequential_composition)
from .mean_embedding import (MerfConfig, PrivateEmbedding, RandomFourierFeatures, embedding_distance,
                             private_class_embeddings, train_dp_merf)
from .membership import (ELBO_SAMPLES, AttackResult, OverfitVaeSetting, attack_from_losses, copy_check,
                         generator_membership_attack, member_split, membership_attack, per_example_loss,
                         per_example_negative_elbo, train_overfit_classifier, train_overfit_vae)

__all__ = [
    "CARE_HOME_NAME", "PLANTED_NAME", "QUASI_IDENTIFIERS", "generalise_table", "generalise_value",
    "homogeneous_groups", "k_anonymity", "linkage_attack", "make_k_anonymous", "reidentified", "toy_tables",
    "DELTA", "DPConfig", "DPGeneratorConfig", "DPRun", "accuracy_on", "check_unit_images", "config_dict",
    "make_private", "synthetic_training_accuracy", "train_dp_classifier", "train_dp_cvae",
    "PrivacyError", "advanced_composition", "check_delta", "check_epsilon", "check_sensitivity",
    "empirical_privacy_loss", "exponential_mechanism", "exponential_mechanism_probabilities",
    "gaussian_delta", "gaussian_mechanism", "gaussian_noise_scale",
    "MerfConfig", "PrivateEmbedding", "RandomFourierFeatures", "embedding_distance", "private_class_embeddings",
    "train_dp_merf",
    "laplace_log_density", "laplace_mechanism", "laplace_privacy_loss", "sequential_composition",
    "AttackResult", "copy_check", "member_split", "membership_attack", "per_example_loss", "train_overfit_classifier",
    "ELBO_SAMPLES", "OverfitVaeSetting", "attack_from_losses", "generator_membership_attack",
    "per_example_negative_elbo", "train_overfit_vae",
]
