"""Off-policy estimates of a target policy's value from logged bandit feedback: IPS, SNIPS and DR.

Arrays run over logged decisions i = 1..n:

- r_i  ``reward`` observed for the logged action (e.g. 1 if clicked),
- p_i  ``logged_propensity``, the logging policy's probability of the logged action, 0 < p_i ≤ 1,
- π_i  ``target_probability``, the target policy's probability of that same action, 0 ≤ π_i ≤ 1
  (for a deterministic policy: 1 if it would have chosen the logged action, else 0),
- w_i = π_i / p_i, the importance weight, optionally clipped at ``max_weight`` (see ``clip_weights``).

Each estimate is a ratio of sums V = Σ a_i / Σ b_i of per-decision terms, so one bootstrap serves all
three: decisions are resampled with replacement and the percentile interval of V over the replicates is
the confidence interval. Two policies valued on the same logged decisions are compared the same way,
paired: :func:`paired_bootstrap` resamples the decisions once per replicate for both, so the interval of
their difference leaves out the noise the two values share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Estimate:
    """A policy value with its percentile bootstrap interval over ``n`` logged decisions."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def clip_weights(w: np.ndarray, max_weight: float) -> np.ndarray:
    """min(w, max_weight).

    A few decisions whose logged action was unlikely (small p) carry huge weights and dominate the
    variance. Clipping bounds them at the cost of bias: the clipped estimator no longer averages to the
    true value (for non-negative rewards it underestimates a target policy that favours rarely logged
    actions). Lower ``max_weight`` = less variance, more bias; in DR the bias is only through the
    correction term, so it shrinks as the reward model improves.
    """
    if not max_weight > 0:
        raise ValueError(f"max_weight = {max_weight}: expected a positive number")
    return np.minimum(w, max_weight)


def _first_bad(name: str, values: np.ndarray, ok: np.ndarray, expected: str) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {float(values[bad[0]])}: expected {expected}")


def _checked(reward: ArrayLike, **arrays: ArrayLike) -> dict[str, np.ndarray]:
    """Float arrays of equal length, each value in range, or ValueError naming the argument and index."""
    checked = {"reward": np.asarray(reward, dtype=float)} | {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    n = checked["reward"].size
    for name, values in checked.items():
        if values.ndim != 1:
            raise ValueError(f"{name} has shape {values.shape}: expected one value per logged decision")
        if values.size != n:
            raise ValueError(f"{name} has {values.size} values but reward has {n}: expected one per logged decision")
    if n == 0:
        raise ValueError("reward is empty: expected at least one logged decision")
    for name, values in checked.items():
        if name == "logged_propensity":
            _first_bad(name, values, (values > 0) & (values <= 1), "0 < p <= 1")
        elif name == "target_probability":
            _first_bad(name, values, (values >= 0) & (values <= 1), "0 <= p <= 1")
        else:
            _first_bad(name, values, np.isfinite(values), "a finite number")
    return checked


def _weights(logged_propensity: np.ndarray, target_probability: np.ndarray, max_weight: float | None) -> np.ndarray:
    w = target_probability / logged_propensity
    return w if max_weight is None else clip_weights(w, max_weight)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator != 0 else float("nan")


@dataclass(frozen=True, eq=False)
class RatioTerms:
    """The per-decision terms of an estimate V = Σ numerator / Σ denominator (what the bootstrap resamples)."""

    numerator: np.ndarray
    denominator: np.ndarray

    @property
    def value(self) -> float:
        return _ratio(self.numerator.sum(), self.denominator.sum())


@dataclass(frozen=True)
class PairedEstimate:
    """A candidate and another policy valued on the same decisions, and candidate − other, each with the
    percentile interval over the same resamples."""

    candidate: Estimate
    other: Estimate
    difference: Estimate


def _check_bootstrap(n_bootstrap: int, alpha: float) -> None:
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap = {n_bootstrap}: expected a positive integer")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha}: expected 0 < alpha < 1")


def _interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """The percentile interval of the finite replicates (a replicate whose denominator sums to 0, possible
    for SNIPS, is left out)."""
    finite = replicates[np.isfinite(replicates)]
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if finite.size else (np.nan, np.nan)
    return float(low), float(high)


def _bootstrap(terms: RatioTerms, n_bootstrap: int, alpha: float, seed: int) -> Estimate:
    """Σ numerator / Σ denominator with a percentile interval over ``n_bootstrap`` resamples of decisions."""
    _check_bootstrap(n_bootstrap, alpha)
    n = terms.numerator.size
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        rows = rng.integers(0, n, size=n)
        replicates[b] = _ratio(terms.numerator[rows].sum(), terms.denominator[rows].sum())
    return Estimate(terms.value, *_interval(replicates, alpha), n)


def estimate(terms: RatioTerms, *, n_bootstrap: int = 200, alpha: float = 0.05, seed: int) -> Estimate:
    """The value of ``terms`` with its percentile bootstrap interval (as :func:`ips` and the others give it)."""
    return _bootstrap(terms, n_bootstrap, alpha, seed)


def paired_bootstrap(candidate: RatioTerms, others: Mapping[str, RatioTerms], *, n_bootstrap: int = 200,
                     alpha: float = 0.05, seed: int) -> dict[str, PairedEstimate]:
    """The candidate against each other policy on the same logged decisions: every replicate resamples the
    decisions once (one generator seeded by ``seed``, drawing as :func:`ips` and the others do, so the
    candidate's own interval is theirs) and values every policy and each difference on that resample."""
    _check_bootstrap(n_bootstrap, alpha)
    n = candidate.numerator.size
    for name, terms in others.items():
        if terms.numerator.size != n:
            raise ValueError(f"{name} has {terms.numerator.size} decisions but the candidate has {n}: expected the same decisions")
    names = list(others)
    # Row 0 the candidate, then the others: a replicate is each row's ratio of its resampled sums.
    numerators = np.stack([candidate.numerator, *(others[k].numerator for k in names)])
    denominators = np.stack([candidate.denominator, *(others[k].denominator for k in names)])
    rng = np.random.default_rng(seed)
    replicates = np.empty((n_bootstrap, len(names) + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(n_bootstrap):
            counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
            replicates[b] = (numerators @ counts) / (denominators @ counts)
    replicates[~np.isfinite(replicates)] = np.nan
    own = Estimate(candidate.value, *_interval(replicates[:, 0], alpha), n)
    out = {}
    for i, name in enumerate(names, start=1):
        other = others[name]
        out[name] = PairedEstimate(own, Estimate(other.value, *_interval(replicates[:, i], alpha), n),
                                   Estimate(candidate.value - other.value, *_interval(replicates[:, 0] - replicates[:, i], alpha), n))
    return out


def ips_terms(reward: ArrayLike, logged_propensity: ArrayLike, target_probability: ArrayLike, *,
              max_weight: float | None = None) -> RatioTerms:
    """:func:`ips`'s terms: w_i r_i over 1."""
    a = _checked(reward, logged_propensity=logged_propensity, target_probability=target_probability)
    w = _weights(a["logged_propensity"], a["target_probability"], max_weight)
    return RatioTerms(w * a["reward"], np.ones_like(w))


def snips_terms(reward: ArrayLike, logged_propensity: ArrayLike, target_probability: ArrayLike, *,
                max_weight: float | None = None) -> RatioTerms:
    """:func:`snips`'s terms: w_i r_i over w_i."""
    a = _checked(reward, logged_propensity=logged_propensity, target_probability=target_probability)
    w = _weights(a["logged_propensity"], a["target_probability"], max_weight)
    return RatioTerms(w * a["reward"], w)


def doubly_robust_terms(reward: ArrayLike, logged_propensity: ArrayLike, target_probability: ArrayLike,
                        predicted_reward_logged: ArrayLike, predicted_value_target: ArrayLike, *,
                        max_weight: float | None = None) -> RatioTerms:
    """:func:`doubly_robust`'s terms: v̂(x_i) + w_i (r_i − q̂(x_i, a_i)) over 1."""
    a = _checked(
        reward,
        logged_propensity=logged_propensity,
        target_probability=target_probability,
        predicted_reward_logged=predicted_reward_logged,
        predicted_value_target=predicted_value_target,
    )
    w = _weights(a["logged_propensity"], a["target_probability"], max_weight)
    return RatioTerms(a["predicted_value_target"] + w * (a["reward"] - a["predicted_reward_logged"]), np.ones_like(w))


def ips(
    reward: ArrayLike,
    logged_propensity: ArrayLike,
    target_probability: ArrayLike,
    *,
    max_weight: float | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int,
) -> Estimate:
    """Inverse propensity scoring: V = (1/n) Σ w_i r_i.

    Unbiased when every action the target policy may take had p > 0 under logging (and no clipping).
    """
    terms = ips_terms(reward, logged_propensity, target_probability, max_weight=max_weight)
    return _bootstrap(terms, n_bootstrap, alpha, seed)


def snips(
    reward: ArrayLike,
    logged_propensity: ArrayLike,
    target_probability: ArrayLike,
    *,
    max_weight: float | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int,
) -> Estimate:
    """Self-normalised IPS: V = Σ w_i r_i / Σ w_i.

    Slightly biased but consistent, and far less variable than IPS when weights are large; it equals the
    mean reward exactly when the target is the logging policy (all w = 1). The value is NaN when Σ w = 0,
    i.e. the target policy never takes any of the logged actions: the log says nothing about it.
    """
    terms = snips_terms(reward, logged_propensity, target_probability, max_weight=max_weight)
    return _bootstrap(terms, n_bootstrap, alpha, seed)


def doubly_robust(
    reward: ArrayLike,
    logged_propensity: ArrayLike,
    target_probability: ArrayLike,
    predicted_reward_logged: ArrayLike,
    predicted_value_target: ArrayLike,
    *,
    max_weight: float | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int,
) -> Estimate:
    """Doubly robust: V = (1/n) Σ [v̂(x_i) + w_i (r_i − q̂(x_i, a_i))].

    ``predicted_reward_logged`` is q̂(x_i, a_i), a reward model's prediction for the logged action, and
    ``predicted_value_target`` is v̂(x_i) = Σ_a π(a|x_i) q̂(x_i, a). Unbiased if either the propensities or
    the reward model are right; the better q̂, the smaller the weighted residuals and the variance.
    """
    terms = doubly_robust_terms(reward, logged_propensity, target_probability, predicted_reward_logged,
                                predicted_value_target, max_weight=max_weight)
    return _bootstrap(terms, n_bootstrap, alpha, seed)
