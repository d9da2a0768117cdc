"""Checks for the provenance chapter's coding exercises (``book/responsible/provenance.ipynb``)."""

from __future__ import annotations

from . import CheckResult, call_learner, describe_mismatch, report


def _unmarked_scores():
    import numpy as np

    rng = np.random.default_rng(0)
    return {"1000 Gaussian scores": rng.normal(0, 0.036, 1000),
            "200 scores with ties": np.round(rng.normal(0, 1, 200), 1),
            "50 uniform scores": rng.uniform(-1, 1, 50)}


def check_threshold(learner_fn, exercise: str = "provenance-ex-2") -> CheckResult:
    """Check ``learner_fn(unmarked_scores, false_positive_rate)`` returns the calibrated threshold.

    Accepted: any threshold at which at most the target fraction of unmarked scores lies
    strictly above it, and no smaller threshold would do (so that the detector keeps as
    much power as the target allows).
    """
    import numpy as np

    from ..provenance.watermark import calibrate_threshold

    problems: list[str] = []
    passed = total = 0
    for label, scores in _unmarked_scores().items():
        for rate in (0.01, 0.1) if len(scores) >= 100 else (0.1,):
            total += 1
            case = f"{label}, target rate {rate}"
            value, problem = call_learner(learner_fn, case, scores.copy(), rate,
                                          returns="the threshold, a number", expect_number=True)
            if problem:
                problems.append(problem)
                continue
            reached = float((scores > value).mean())
            expected = calibrate_threshold(scores, rate)
            next_above = scores[scores > expected].min() if (scores > expected).any() else np.inf
            if reached <= rate + 1e-12 and value < next_above:
                passed += 1
            elif reached > 0.5 > rate:
                problems.append(f"{case}: {reached:.0%} of the unmarked scores lie above your threshold "
                                f"{value:.4g}: take the (1 - rate) quantile, not the rate quantile")
            elif reached > rate:
                problems.append(f"{case}: {reached:.2%} of the unmarked scores lie above your threshold "
                                f"{value:.4g}, more than the target {rate:.0%}; the expected threshold is "
                                f"{expected:.4g} (an interpolated quantile can fall just below it)")
            else:
                problems.append(f"{case}: your threshold {value:.4g} is valid but larger than needed; the "
                                f"smallest one with at most {rate:.0%} above is {expected:.4g}")
    return report(exercise, problems, partial=passed / total)


def check_normalised_correlation(learner_fn, exercise: str = "provenance-ex-3") -> CheckResult:
    """Check ``learner_fn(values, pattern)`` is rho of each row of ``values`` ``(N, n)`` with ``pattern``."""
    import numpy as np

    from ..provenance.watermark import normalised_correlation

    rng = np.random.default_rng(1)
    pattern = rng.integers(0, 2, 64) * 2.0 - 1.0
    cases = {"unit-variance rows": rng.normal(0, 1, (5, 64)),
             "rows with an offset and a scale (like images in [0, 1])": 0.5 + 0.2 * rng.normal(0, 1, (5, 64)),
             "marked rows": rng.uniform(0, 1, (4, 64)) + 0.3 * pattern}
    problems: list[str] = []
    passed = 0
    for label, values in cases.items():
        value, problem = call_learner(learner_fn, label, values.copy(), pattern.copy(),
                                      returns="one correlation per row")
        if problem:
            problems.append(problem)
            continue
        value = np.asarray(value, dtype=float).ravel()
        expected = normalised_correlation(values, pattern)
        if value.shape != expected.shape:
            problems.append(f"{label}: got {value.size} values, expected one per row ({expected.size})")
        elif np.allclose(value, expected, atol=1e-6):
            passed += 1
        elif np.allclose(value, values @ pattern, atol=1e-6):
            problems.append(f"{label}: you returned the plain dot product; divide by the norms "
                            "of the centred row and the centred pattern")
        elif np.allclose(value, values @ pattern / (np.linalg.norm(values, axis=1) * np.linalg.norm(pattern)),
                         atol=1e-6):
            problems.append(f"{label}: the cosine of the raw rows differs from rho: subtract each row's "
                            "mean (and the pattern's) before the dot product")
        elif np.abs(value).max() > 1 + 1e-9:
            problems.append(f"{label}: values up to {np.abs(value).max():.3g} in magnitude; a normalised "
                            "correlation lies in [-1, 1]")
        else:
            worst = int(np.argmax(np.abs(value - expected)))
            problems.append(describe_mismatch(f"{label}, row {worst}", float(value[worst]),
                                              float(expected[worst]), rel_tol=1e-5))
    return report(exercise, problems, partial=passed / len(cases))


def check_auc_by_pairs(learner_fn, exercise: str = "provenance-ex-4") -> CheckResult:
    """Check ``learner_fn(real_scores, generated_scores)`` is the ROC AUC: the share of pairs ranked right."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    cases = {"separated scores": (rng.normal(0, 1, 40), rng.normal(2, 1, 30)),
             "scores with ties": (np.round(rng.normal(0, 1, 50)), np.round(rng.normal(0.5, 1, 60))),
             "a detector that is wrong way round": (rng.normal(1, 1, 20), rng.normal(0, 1, 25))}
    problems: list[str] = []
    passed = 0
    for label, (real, generated) in cases.items():
        value, problem = call_learner(learner_fn, label, real.copy(), generated.copy(),
                                      returns="the AUC, one number", expect_number=True)
        if problem:
            problems.append(problem)
            continue
        truth = np.r_[np.zeros(len(real)), np.ones(len(generated))]
        expected = float(roc_auc_score(truth, np.r_[real, generated]))
        strict = float((generated[:, None] > real[None, :]).mean())
        if abs(value - expected) < 1e-9:
            passed += 1
        elif abs(value - (1 - expected)) < 1e-9:
            problems.append(f"{label}: got {value:.4f} = 1 - AUC: count the pairs in which the *generated* "
                            "digit scores higher")
        elif abs(value - strict) < 1e-9 or abs(value - float((generated[:, None] >= real[None, :]).mean())) < 1e-9:
            problems.append(f"{label}: got {value:.4f}, expected {expected:.4f}: a tied pair counts one half")
        else:
            problems.append(describe_mismatch(label, value, expected, rel_tol=1e-6))
    return report(exercise, problems, partial=passed / len(cases))
