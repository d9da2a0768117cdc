"""The two basic mechanisms of differential privacy, their guarantee measured, and composition.

A randomised algorithm ``M`` is *ε-differentially private* (Dwork, McSherry, Nissim
and Smith, 2006; Dwork and Roth, 2014) when for every pair of neighbouring data
sets ``D, D'`` (one person added or removed) and every set of outputs ``S``::

    P[M(D) in S] <= exp(ε) P[M(D') in S]

so the *privacy loss* ``log p_D(o) / p_D'(o)`` of any output ``o`` is at most ``ε``.

* :func:`laplace_mechanism`: a numeric query ``f`` with sensitivity
  ``Δ = max |f(D) - f(D')|`` released as ``f(D) + Laplace(Δ / ε)``.
* :func:`exponential_mechanism`: a choice among candidates with utility ``u(D, r)``
  of sensitivity ``Δ``, drawn with probability proportional to ``exp(ε u / (2 Δ))``.
* :func:`gaussian_mechanism`: a vector query with L2 sensitivity ``Δ`` released with
  Gaussian noise ``N(0, σ² I)``, ``σ`` from :func:`gaussian_noise_scale`: the smallest
  that is ``(ε, δ)``-DP (Balle and Wang's analytic calibration), the mechanism
  inside DP-SGD and the one-shot release of :mod:`.mean_embedding`.
* :func:`empirical_privacy_loss`: the loss measured from samples on two
  neighbouring data sets (what the chapter plots against ``ε``).
* :func:`sequential_composition` and :func:`advanced_composition`: what ``k``
  releases cost together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class PrivacyError(ValueError):
    """A privacy parameter (ε, δ, sensitivity) outside its valid range."""


def check_epsilon(epsilon: float, name: str = "epsilon") -> float:
    """``epsilon`` as a float, or a :class:`PrivacyError` unless it is a finite number > 0.

    Example:
        >>> check_epsilon(1)
        1.0
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)):
        raise PrivacyError(f"{name} must be a number > 0, got {epsilon!r}")
    if not math.isfinite(float(epsilon)) or float(epsilon) <= 0:
        raise PrivacyError(f"{name} must be a finite number > 0 (ε = 0 would mean no information at all "
                           f"may leak, which no useful mechanism achieves), got {epsilon}")
    return float(epsilon)


def check_delta(delta: float, name: str = "delta") -> float:
    """``delta`` as a float, or a :class:`PrivacyError` unless ``0 < delta < 1``.

    Example:
        >>> check_delta(1e-5)
        1e-05
    """
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)):
        raise PrivacyError(f"{name} must be a number in (0, 1), got {delta!r}")
    if not 0 < float(delta) < 1:
        raise PrivacyError(f"{name} must lie strictly between 0 and 1 (usually well below 1 / number of "
                           f"people, e.g. 1e-5 for MNIST's 60 000), got {delta}")
    return float(delta)


def check_sensitivity(sensitivity: float) -> float:
    """``sensitivity`` as a float, or a :class:`PrivacyError` unless it is a finite number > 0."""
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(sensitivity)) or float(sensitivity) <= 0:
        raise PrivacyError(f"sensitivity must be a finite number > 0 (the most one person can change the "
                           f"query), got {sensitivity!r}")
    return float(sensitivity)


# --------------------------------------------------------------------------- Laplace

def laplace_mechanism(value: float | np.ndarray, sensitivity: float, epsilon: float,
                      rng: np.random.Generator | int | None = None, size: int | None = None) -> np.ndarray:
    """``value + Laplace(0, sensitivity / epsilon)`` noise: ε-DP for a query of that sensitivity.

    ``size`` draws that many independent releases of a scalar ``value`` (for measuring);
    ``rng`` is a numpy generator or a seed.

    Example:
        >>> out = laplace_mechanism(10.0, sensitivity=1.0, epsilon=0.5, rng=0, size=100_000)
        >>> round(float(out.mean()), 1), round(float(out.std() ** 2 / 2), 1)  # mean 10, scale^2 = 4
        (10.0, 4.0)
    """
    scale = check_sensitivity(sensitivity) / check_epsilon(epsilon)
    rng = np.random.default_rng(rng)
    value = np.asarray(value, dtype=np.float64)
    shape = value.shape if size is None else (size, *value.shape)
    return value + rng.laplace(0.0, scale, size=shape)


def laplace_log_density(outputs: np.ndarray, value: float, sensitivity: float, epsilon: float) -> np.ndarray:
    """log density of the Laplace mechanism's output ``outputs`` when the true answer is ``value``."""
    scale = check_sensitivity(sensitivity) / check_epsilon(epsilon)
    return -np.abs(np.asarray(outputs, dtype=np.float64) - value) / scale - math.log(2 * scale)


def laplace_privacy_loss(outputs: np.ndarray, value: float, neighbour_value: float, sensitivity: float,
                         epsilon: float) -> np.ndarray:
    """Exact privacy loss ``log p_D(o) - log p_D'(o)`` of outputs ``o`` for answers ``f(D)``, ``f(D')``.

    By the triangle inequality it is at most ``ε |f(D) - f(D')| / Δ <= ε``.

    Example:
        >>> float(laplace_privacy_loss(np.array([-5.0]), 0.0, 1.0, 1.0, 2.0)[0])
        2.0
    """
    return (laplace_log_density(outputs, value, sensitivity, epsilon)
            - laplace_log_density(outputs, neighbour_value, sensitivity, epsilon))


# --------------------------------------------------------------------------- Gaussian

def _standard_normal_cdf(value: float) -> float:
    return 0.5 * math.erfc(-value / math.sqrt(2))


def gaussian_delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    """The exact ``δ`` at which Gaussian noise of scale ``sigma`` is ``(ε, δ)``-DP.

    Balle and Wang ("Improving the Gaussian mechanism for differential privacy",
    ICML 2018, Theorem 8): with ``a = Δ / (2σ)`` and ``b = ε σ / Δ``,
    ``δ = Φ(a - b) - exp(ε) Φ(-a - b)``. It is the mass by which the output's density
    on ``D`` exceeds ``exp(ε)`` times its density on a neighbour ``Δ`` away, and it
    falls as ``sigma`` grows.

    Example:
        >>> round(gaussian_delta(1.0, 1.0, 1.0), 4)
        0.1269
    """
    sigma = check_sensitivity(sigma)  # the same rule: a finite number > 0
    sensitivity, epsilon = check_sensitivity(sensitivity), check_epsilon(epsilon)
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    tail = _standard_normal_cdf(-a - b)
    if tail == 0.0:  # exp(ε) times a tail below float precision: for very large ε
        return _standard_normal_cdf(a - b)
    return max(_standard_normal_cdf(a - b) - math.exp(epsilon + math.log(tail)), 0.0)


def gaussian_noise_scale(sensitivity: float, epsilon: float, delta: float) -> float:
    """The smallest ``σ`` with :func:`gaussian_delta` ``<= delta``, found by bisection.

    The textbook rule ``σ = Δ sqrt(2 ln(1.25 / δ)) / ε`` (Dwork and Roth, Theorem A.1)
    holds only for ``ε < 1`` and is loose; this calibration is exact for every ``ε``.

    Example:
        >>> round(gaussian_noise_scale(1.0, 1.0, 1e-5), 3)  # the textbook rule gives 4.845
        3.731
    """
    sensitivity, epsilon, delta = check_sensitivity(sensitivity), check_epsilon(epsilon), check_delta(delta)
    low, high = 1e-6 * sensitivity, sensitivity
    while gaussian_delta(high, sensitivity, epsilon) > delta:
        high *= 2
    for _ in range(100):  # the interval halves each time: far below float precision after 100
        middle = (low + high) / 2
        low, high = (middle, high) if gaussian_delta(middle, sensitivity, epsilon) > delta else (low, middle)
    return high


def gaussian_mechanism(value: np.ndarray, sensitivity: float, epsilon: float, delta: float,
                       rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``value + N(0, σ² I)`` with ``σ = gaussian_noise_scale(Δ, ε, δ)``: ``(ε, δ)``-DP.

    ``sensitivity`` is the L2 sensitivity: the most one person can move the vector
    ``value`` in Euclidean norm.

    Example:
        >>> out = gaussian_mechanism(np.zeros(100_000), 1.0, 1.0, 1e-5, rng=0)
        >>> round(float(out.std()), 2)
        3.73
    """
    sigma = gaussian_noise_scale(sensitivity, epsilon, delta)
    value = np.asarray(value, dtype=np.float64)
    return value + np.random.default_rng(rng).normal(0.0, sigma, size=value.shape)


# --------------------------------------------------------------------------- measured loss

def empirical_privacy_loss(samples: np.ndarray, neighbour_samples: np.ndarray, bins: int | np.ndarray = 40,
                           min_count: int = 200) -> float:
    """Largest ``|log P[o in bin | D] / P[o in bin | D']|`` over histogram bins, from samples.

    Only bins holding at least ``min_count`` samples of each data set count: in
    emptier bins the ratio of two small counts is mostly sampling noise. For an
    ε-DP mechanism the value is at most ``ε`` up to that noise.

    Example:
        >>> a = laplace_mechanism(0.0, 1.0, 1.0, rng=0, size=200_000)
        >>> b = laplace_mechanism(1.0, 1.0, 1.0, rng=1, size=200_000)
        >>> empirical_privacy_loss(a, b) < 1.1
        True
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    neighbour_samples = np.asarray(neighbour_samples, dtype=np.float64).ravel()
    if len(samples) < min_count or len(neighbour_samples) < min_count:
        raise PrivacyError(f"need at least min_count = {min_count} samples of each data set, got "
                           f"{len(samples)} and {len(neighbour_samples)}")
    if isinstance(bins, int):
        low = np.quantile(np.concatenate([samples, neighbour_samples]), 0.005)
        high = np.quantile(np.concatenate([samples, neighbour_samples]), 0.995)
        bins = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(samples, bins=bins)
    neighbour_counts, _ = np.histogram(neighbour_samples, bins=bins)
    usable = (counts >= min_count) & (neighbour_counts >= min_count)
    if not usable.any():
        raise PrivacyError("no histogram bin holds min_count samples of both data sets: draw more samples")
    ratio = (counts[usable] / len(samples)) / (neighbour_counts[usable] / len(neighbour_samples))
    return float(np.abs(np.log(ratio)).max())


# --------------------------------------------------------------------------- exponential

def exponential_mechanism_probabilities(utilities: Sequence[float], sensitivity: float,
                                        epsilon: float) -> np.ndarray:
    """``P[r] = exp(ε u_r / (2 Δ)) / Σ_s exp(ε u_s / (2 Δ))``: the exponential mechanism's choice.

    Computed as a softmax after subtracting the largest utility (the ratio is unchanged
    and ``exp`` cannot overflow).

    Example:
        >>> exponential_mechanism_probabilities([0.0, 1.0], sensitivity=1.0, epsilon=2 * np.log(3)).round(3)
        array([0.25, 0.75])
    """
    utilities = np.asarray(utilities, dtype=np.float64)
    if utilities.ndim != 1 or len(utilities) < 1 or not np.isfinite(utilities).all():
        raise PrivacyError(f"utilities must be a non-empty 1-D list of finite numbers, got shape "
                           f"{utilities.shape}")
    logits = check_epsilon(epsilon) * utilities / (2 * check_sensitivity(sensitivity))
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def exponential_mechanism(utilities: Sequence[float], sensitivity: float, epsilon: float,
                          rng: np.random.Generator | int | None = None, size: int | None = None):
    """Index (or ``size`` indices) drawn by the exponential mechanism: ε-DP selection.

    Example:
        >>> int(exponential_mechanism([0.0, 100.0], 1.0, 1.0, rng=0))
        1
    """
    probabilities = exponential_mechanism_probabilities(utilities, sensitivity, epsilon)
    return np.random.default_rng(rng).choice(len(probabilities), size=size, p=probabilities)


# --------------------------------------------------------------------------- composition

def sequential_composition(epsilons: Sequence[float], deltas: Sequence[float] | None = None
                           ) -> tuple[float, float]:
    """Basic composition: releases with ``(ε_i, δ_i)`` cost ``(Σ ε_i, Σ δ_i)`` together.

    Example:
        >>> sequential_composition([0.5, 0.25, 0.25])
        (1.0, 0.0)
    """
    epsilons = [check_epsilon(value) for value in epsilons]
    if not epsilons:
        raise PrivacyError("need at least one release to compose")
    deltas = [0.0] * len(epsilons) if deltas is None else [float(value) for value in deltas]
    if len(deltas) != len(epsilons) or any(not 0 <= value < 1 for value in deltas):
        raise PrivacyError("need one delta in [0, 1) per epsilon")
    return float(sum(epsilons)), float(sum(deltas))


def advanced_composition(epsilon: float, releases: int, delta_slack: float) -> float:
    """ε of ``releases`` ε-DP mechanisms together, with failure probability ``delta_slack`` added.

    The advanced composition theorem (Dwork, Rothblum and Vadhan, 2010; Dwork and Roth,
    Theorem 3.20): ``ε' = sqrt(2 k ln(1/δ')) ε + k ε (exp(ε) - 1)``. It grows like
    ``sqrt(k)`` instead of ``k``, and beats the sum when ``ε`` is small and ``k`` large.

    Example:
        >>> round(advanced_composition(0.01, 10_000, 1e-5), 2)  # the sum would be 100
        5.8
    """
    epsilon, delta_slack = check_epsilon(epsilon), check_delta(delta_slack, "delta_slack")
    if isinstance(releases, bool) or not isinstance(releases, (int, np.integer)) or releases < 1:
        raise PrivacyError(f"releases must be a positive integer, got {releases!r}")
    return (math.sqrt(2 * releases * math.log(1 / delta_slack)) * epsilon
            + releases * epsilon * math.expm1(epsilon))
