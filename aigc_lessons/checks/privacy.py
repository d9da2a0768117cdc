"""Checks for the privacy chapter's coding exercises (``book/responsible/privacy.ipynb``)."""

from __future__ import annotations

import math

import numpy as np

from . import CheckResult, call_learner, describe_mismatch, report


def check_exponential_probabilities(learner_fn, exercise: str = "privacy-ex-2") -> CheckResult:
    """Check ``learner_fn(utilities, sensitivity, epsilon)`` returns ``exp(ε u / 2Δ)`` normalised.

    Catches the missing factor 2 (``exp(ε u / Δ)``, which is only 2ε-DP), a result that
    does not sum to 1, and overflow on large utilities.
    """
    from ..privacy.mechanisms import exponential_mechanism_probabilities

    cases = (([0.0, 1.0, 2.0], 1.0, 1.0), ([3.0, -1.0, 0.5, 0.5], 2.0, 0.3), ([5.0, 4.0], 0.5, 4.0),
             ([1000.0, 999.0, 990.0], 1.0, 2.0))
    problems: list[str] = []
    passed = 0
    for utilities, sensitivity, epsilon in cases:
        label = f"utilities {utilities}, Δ = {sensitivity}, ε = {epsilon}"
        value, problem = call_learner(learner_fn, label, list(utilities), sensitivity, epsilon,
                                      returns="an array of probabilities")
        if problem:
            problems.append(problem)
            continue
        try:
            got = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            problems.append(f"{label}: expected an array of numbers, got {type(value).__name__}")
            continue
        expected = exponential_mechanism_probabilities(utilities, sensitivity, epsilon)
        if got.shape != expected.shape:
            problems.append(f"{label}: expected {len(expected)} probabilities, got shape {got.shape}")
            continue
        if not np.isfinite(got).all():
            problems.append(f"{label}: got NaN or infinite values (exp overflowed: subtract the largest "
                            f"utility before exp, the probabilities do not change)")
            continue
        if not math.isclose(float(got.sum()), 1.0, abs_tol=1e-6):
            problems.append(f"{label}: the probabilities sum to {got.sum():.4g}, not 1 (normalise)")
            continue
        if not np.allclose(got, expected, atol=1e-6):
            doubled = exponential_mechanism_probabilities(utilities, sensitivity, 2 * epsilon)
            hint = (" (this is exp(ε u / Δ): the 2 in exp(ε u / 2Δ) is missing, and without it the "
                    "mechanism is only 2ε-DP)") if np.allclose(got, doubled, atol=1e-6) else ""
            problems.append(f"{label}: got {np.round(got, 4).tolist()}, expected "
                            f"{np.round(expected, 4).tolist()}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_smallest_group(learner_fn, exercise: str = "privacy-ex-3") -> CheckResult:
    """Check ``learner_fn(table, quasi_identifiers)`` returns the table's k (its smallest group's size)."""
    from ..privacy.anonymity import generalise_table, k_anonymity, toy_tables

    release, _, _ = toy_tables(seed=3)
    cases = [(release, ("zip", "birth_date", "sex")),
             (generalise_table(release, {"zip": 2, "birth_date": 2}), ("zip", "birth_date", "sex")),
             (generalise_table(release, {"zip": 3, "birth_date": 3}), ("zip", "birth_date")),
             ([{"zip": "1", "sex": "F"}, {"zip": "1", "sex": "F"}, {"zip": "1", "sex": "M"}], ("zip",))]
    problems: list[str] = []
    passed = 0
    for index, (table, quasi) in enumerate(cases, start=1):
        label = f"table {index} ({len(table)} rows, quasi-identifiers {list(quasi)})"
        value, problem = call_learner(learner_fn, label, [dict(row) for row in table], tuple(quasi),
                                      returns="an integer", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        expected = k_anonymity(table, quasi)
        if value != expected:
            hint = " (that is the number of groups, not the size of the smallest)" \
                if value == len({tuple(row[key] for key in quasi) for row in table}) else ""
            problems.append(f"{label}: got {value:g}, expected {expected}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_membership_auc(learner_fn, exercise: str = "privacy-ex-4") -> CheckResult:
    """Check ``learner_fn(member_losses, non_member_losses)`` returns the loss-threshold attack's AUC.

    The AUC is the probability that a random member has a *lower* loss than a random
    non-member, ties counting one half. A flipped sign gives ``1 - AUC``.
    """
    from ..metrics.images import roc_auc

    rng = np.random.default_rng(0)
    cases = [(np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5, 0.6])),
             (np.array([0.5, 0.1]), np.array([0.5, 0.2, 0.05])),
             (rng.exponential(0.2, 50), rng.exponential(0.5, 70))]
    problems: list[str] = []
    passed = 0
    for index, (members, non_members) in enumerate(cases, start=1):
        label = f"case {index} ({len(members)} members, {len(non_members)} non-members)"
        value, problem = call_learner(learner_fn, label, members.copy(), non_members.copy(),
                                      returns="a number in [0, 1]", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        scores = -np.concatenate([members, non_members])
        expected = roc_auc(scores, np.r_[np.ones(len(members)), np.zeros(len(non_members))])[0]
        mismatch = describe_mismatch(f"{label}: AUC", value, expected, rel_tol=1e-6)
        if mismatch:
            if math.isclose(value, 1 - expected, abs_tol=1e-6):
                mismatch += " (that is 1 - AUC: a member is the one with the *lower* loss)"
            problems.append(mismatch)
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))


def check_gaussian_noise_scale(learner_fn, exercise: str = "privacy-ex-7") -> CheckResult:
    """Check ``learner_fn(sensitivity, epsilon, delta)`` returns the smallest σ with ``gaussian_delta(σ) <= δ``.

    A σ whose δ is too large breaks the guarantee; one more than 1% above the smallest
    wastes accuracy. The textbook rule ``Δ sqrt(2 ln(1.25 / δ)) / ε`` is named when it is
    what came back.
    """
    from ..privacy.mechanisms import gaussian_delta, gaussian_noise_scale

    cases = ((1.0, 1.0, 1e-5), (1.0, 10.0, 1e-5), (2.0, 0.5, 1e-6), (0.1, 3.0, 1e-3))
    problems: list[str] = []
    passed = 0
    for sensitivity, epsilon, delta in cases:
        label = f"Δ = {sensitivity}, ε = {epsilon}, δ = {delta:g}"
        value, problem = call_learner(learner_fn, label, sensitivity, epsilon, delta,
                                      returns="a noise scale σ > 0", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        if not math.isfinite(value) or value <= 0:
            problems.append(f"{label}: σ must be a finite number > 0, got {value!r}")
            continue
        smallest = gaussian_noise_scale(sensitivity, epsilon, delta)
        reached = gaussian_delta(value, sensitivity, epsilon)
        if reached > delta * (1 + 1e-6):
            problems.append(f"{label}: σ = {value:.4g} gives δ = {reached:.3g} > {delta:g}, so the release "
                            f"is not (ε, δ)-DP; σ must grow until gaussian_delta falls to δ")
            continue
        if value > smallest * 1.01:
            textbook = sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
            hint = (" (that is the textbook rule Δ sqrt(2 ln(1.25/δ)) / ε: safe for ε < 1 but not the "
                    "smallest; search σ with gaussian_delta instead)") if math.isclose(value, textbook,
                                                                                      rel_tol=1e-3) else ""
            problems.append(f"{label}: σ = {value:.4g} is private but not the smallest, {smallest:.4g}{hint}")
            continue
        passed += 1
    return report(exercise, problems, partial=passed / len(cases))
