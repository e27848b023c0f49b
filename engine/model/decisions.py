"""Logged decisions to replay, and the off-policy value of what a policy chose on them.

From the test window we sample logged decisions (customer, channel, time, the logged message, its
propensity and reward). What a policy would have served at each is the decision engine's answer
(:mod:`engine.policy.replay`); off-policy estimators and, on simulated data, the ground truth value it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.model.ope import (Estimate, PairedEstimate, RatioTerms, doubly_robust_terms, estimate, ips_terms, paired_bootstrap,
                              snips_terms)

ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True, eq=False)
class DecisionReplay:
    decisions: pd.DataFrame  # customer_id, channel, as_of, message_id (logged), propensity, reward

    @classmethod
    def sample(cls, examples: pd.DataFrame, *, n: int, seed: int, relevant_from: int) -> DecisionReplay:
        """Up to ``n`` logged impressions with a propensity, sampled uniformly with ``seed``; when none has
        one, up to ``n`` of all impressions (:attr:`has_propensities` is then False: the ground truth can
        value their choices, off-policy estimators cannot)."""
        logged = examples.loc[examples["propensity"].notna()]
        if logged.empty:
            logged = examples
        if len(logged) > n:
            logged = logged.iloc[np.sort(np.random.default_rng(seed).choice(len(logged), size=n, replace=False))]
        decisions = pd.DataFrame({
            "customer_id": logged["customer_id"].to_numpy(),
            "channel": logged["channel"].to_numpy(),
            "as_of": logged["ts"].to_numpy(),
            "message_id": logged["message_id"].to_numpy(),
            "propensity": logged["propensity"].to_numpy(dtype=np.float64),
            "reward": (logged["grade"].to_numpy() >= relevant_from).astype(np.float64),
        })
        return cls(decisions)

    @property
    def has_propensities(self) -> bool:
        """Every replayed decision has its logged propensity (and there is at least one)."""
        return len(self.decisions) > 0 and bool(self.decisions["propensity"].notna().all())


@dataclass(frozen=True, eq=False)
class CandidateScores:
    """Every candidate's score at each replayed decision, as a policy's decisions listed them: with a
    model's probabilities, the reward model of the doubly robust estimate."""

    decision: np.ndarray  # int: the replayed decision (row of DecisionReplay.decisions)
    message_id: np.ndarray  # object: text
    score: np.ndarray  # float64

    def at(self, message_ids: np.ndarray) -> np.ndarray:
        """The score of ``message_ids[i]`` at decision i; NaN when it was no candidate there (or is None)."""
        key = pd.MultiIndex.from_arrays([self.decision, self.message_id.astype(str)])
        wanted = pd.MultiIndex.from_arrays([np.arange(len(message_ids)), pd.Series(message_ids, dtype=object).astype(str).to_numpy()])
        at = key.get_indexer(wanted)
        return np.where(at >= 0, self.score[np.maximum(at, 0)], np.nan)


@dataclass(frozen=True, eq=False)
class PolicyChoices:
    """What a policy served at each replayed decision (None: nothing, every candidate suppressed) and,
    when kept, every candidate's score (:class:`CandidateScores`)."""

    chosen: np.ndarray  # object: message id or None
    scores: CandidateScores | None = None


def off_policy_terms(replay: DecisionReplay, choices: PolicyChoices, estimator: str,
                     reward_model: CandidateScores | None = None) -> RatioTerms | None:
    """The per-decision terms of ``estimator`` (ips, snips or dr) for the deterministic policy that made
    ``choices``: its probability of the logged action is 1 if it served it, else 0. DR's predictions
    q̂(x, a) are ``reward_model``'s probabilities (0 for a message that was no candidate, and for serving
    nothing); None for dr without one."""
    d = replay.decisions
    chosen = pd.Series(choices.chosen, dtype=object)
    target = (chosen.astype(str).to_numpy() == d["message_id"].astype(str).to_numpy()).astype(np.float64)
    args = (d["reward"].to_numpy(), d["propensity"].to_numpy(), target)
    if estimator == "ips":
        return ips_terms(*args)
    if estimator == "snips":
        return snips_terms(*args)
    if estimator != "dr":
        raise ValueError(f"estimator {estimator!r}: expected one of {', '.join(ESTIMATORS)}")
    if reward_model is None:
        return None
    predicted_logged = np.nan_to_num(reward_model.at(d["message_id"].to_numpy()), nan=0.0)
    predicted_chosen = np.where(chosen.isna().to_numpy(), 0.0, np.nan_to_num(reward_model.at(choices.chosen), nan=0.0))
    return doubly_robust_terms(*args, predicted_logged, predicted_chosen)


def off_policy_estimates(replay: DecisionReplay, choices: PolicyChoices, *, reward_model: CandidateScores | None,
                         seed: int) -> dict[str, Estimate]:
    """IPS, SNIPS and (with a reward model) doubly robust value of the policy, with intervals."""
    out = {}
    for estimator in ESTIMATORS:
        terms = off_policy_terms(replay, choices, estimator, reward_model)
        if terms is not None:
            out[estimator] = estimate(terms, seed=seed)
    return out


def compare_policies(replay: DecisionReplay, candidate: PolicyChoices, others: Mapping[str, PolicyChoices], estimator: str,
                     *, reward_model: CandidateScores | None, seed: int) -> dict[str, PairedEstimate]:
    """The candidate against each other policy on ``estimator``, paired on the same resamples of the
    replayed decisions (:func:`engine.model.ope.paired_bootstrap`); empty for dr without a reward model."""
    mine = off_policy_terms(replay, candidate, estimator, reward_model)
    if mine is None:
        return {}
    terms = {name: off_policy_terms(replay, choices, estimator, reward_model) for name, choices in others.items()}
    return paired_bootstrap(mine, terms, seed=seed)
