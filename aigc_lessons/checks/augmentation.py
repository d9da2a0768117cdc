"""Checks for the data-augmentation chapter's coding exercise."""

from __future__ import annotations

import torch

from . import CheckResult, call_learner, describe_mismatch, report


def check_balanced_accuracy(learner_fn, exercise: str = "augmentation-ex-3") -> CheckResult:
    """Check ``learner_fn(predicted, labels, num_classes)`` = the mean per-class recall (classes present only).

    Example:
        >>> from aigc_lessons.augmentation import balanced_accuracy
        >>> check_balanced_accuracy(balanced_accuracy).passed
        True
    """
    from ..augmentation import balanced_accuracy

    majority = torch.tensor([0] * 8 + [1, 2])  # 8 zeros, one 1, one 2
    cases = {
        "perfect predictions": (torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 2]), 3),
        "always predicting the majority class": (torch.zeros(10, dtype=torch.long), majority, 3),
        "a general case": (torch.tensor([0, 1, 1, 2, 0, 2, 1, 0]), torch.tensor([0, 1, 2, 2, 0, 1, 1, 1]), 3),
        "a class absent from the labels (num_classes=4, no 3 among the labels)":
            (torch.tensor([0, 3, 1, 2, 2]), torch.tensor([0, 0, 1, 2, 2]), 4),
    }
    problems: list[str] = []
    passed = 0
    for label, (predicted, labels, num_classes) in cases.items():
        value, problem = call_learner(learner_fn, label, predicted.clone(), labels.clone(), num_classes,
                                      returns="a number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = balanced_accuracy(predicted, labels, num_classes)
        mismatch = describe_mismatch(label, value, expected, rel_tol=1e-5)
        if mismatch:
            accuracy = float((predicted == labels).float().mean())
            if abs(value - accuracy) < 1e-6 and abs(accuracy - expected) > 1e-6:
                mismatch += (" (that is the plain accuracy: compute the recall of each class, correct / total "
                             "within the class, then average the recalls)")
            elif "absent" in label:
                mismatch += (" (a class with no example among the labels has no recall: leave it out of the mean "
                             "instead of counting it as 0)")
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
