"""Adversarial robustness of the book's classifiers (Part VI, Responsible AIGC).

* :mod:`.attacks`: FGSM and PGD (L-infinity, random start, restarts), input checks,
  accuracy under attack and against epsilon.
* :mod:`.gradient_masking`: the sanity checks that tell a robust model from one
  that only hides its gradients (Athalye, Carlini and Wagner, 2018).
* :mod:`.adversarial_training`: FGSM with a random start (Wong, Rice and Kolter,
  2020) with early stopping on PGD against catastrophic overfitting.
* :mod:`.inversion`: class images recovered from a classifier, in pixel space and
  in a generator's latent space.

Example:
    >>> from aigc_lessons.robustness import fgsm, pgd, accuracy_under_attack
"""

from .adversarial_training import (AdversarialTrainingConfig, AdversarialTrainingResult, fgsm_training_examples,
                                   train_adversarial)
from .attacks import (AttackError, accuracy_under_attack, accuracy_vs_epsilon, check_attack_inputs, fgsm, pgd,
                      predict)

__all__ = ["AdversarialTrainingConfig", "AdversarialTrainingResult", "AttackError", "accuracy_under_attack",
           "accuracy_vs_epsilon", "check_attack_inputs", "fgsm", "fgsm_training_examples", "pgd", "predict",
           "train_adversarial"]
