"""Replaying logged decisions: what would a policy have chosen among the eligible messages?

From the test window we sample logged decisions (customer, channel, time, the logged message, its
propensity and reward), expand each into its eligible candidates, let a policy score them, and take
its best. Off-policy estimators and, on simulated data, the ground truth then value those choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.model.ope import Estimate, doubly_robust, ips, snips
from engine.policy.choice import argmax_per_decision
from engine.policy.eligibility import expand_candidates


@dataclass(frozen=True, eq=False)
class DecisionReplay:
    decisions: pd.DataFrame  # customer_id, channel, as_of, message_id (logged), propensity, reward
    candidates: pd.DataFrame  # decision (row of decisions), customer_id, channel, as_of, message_id

    @classmethod
    def sample(cls, examples: pd.DataFrame, messages: pd.DataFrame, *, n: int, seed: int, relevant_from: int) -> DecisionReplay:
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
        candidates = expand_candidates(decisions, messages)
        at = candidates["decision"].to_numpy()
        for name in ("customer_id", "channel", "as_of"):
            candidates[name] = decisions[name].to_numpy()[at]
        return cls(decisions, candidates)

    @property
    def has_propensities(self) -> bool:
        """Every replayed decision has its logged propensity (and there is at least one)."""
        return len(self.decisions) > 0 and bool(self.decisions["propensity"].notna().all())

    def choose(self, scores: np.ndarray) -> np.ndarray:
        """The message each decision's policy picks (argmax of ``scores`` over its candidates)."""
        best = argmax_per_decision(self.candidates["decision"].to_numpy(), scores, len(self.decisions))
        ids = self.candidates["message_id"].to_numpy(dtype=object)
        return np.where(best >= 0, ids[np.maximum(best, 0)], None)

    def score_at_choice(self, scores: np.ndarray, chosen: np.ndarray, message_ids: np.ndarray | None = None) -> np.ndarray:
        """The policy's score of a given message per decision (e.g. the logged one); NaN if not a candidate."""
        key = pd.MultiIndex.from_arrays([self.candidates["decision"].to_numpy(), self.candidates["message_id"].astype(str).to_numpy()])
        wanted = pd.MultiIndex.from_arrays([np.arange(len(self.decisions)), pd.Series(chosen if message_ids is None else message_ids).astype(str).to_numpy()])
        at = key.get_indexer(wanted)
        return np.where(at >= 0, scores[np.maximum(at, 0)], np.nan)


def off_policy_estimates(replay: DecisionReplay, chosen: np.ndarray, *, predicted_logged: np.ndarray | None,
                         predicted_chosen: np.ndarray | None, seed: int) -> dict[str, Estimate]:
    """IPS, SNIPS and (when the scores are probabilities) doubly robust value of a deterministic policy."""
    d = replay.decisions
    target = (pd.Series(chosen).astype(str).to_numpy() == d["message_id"].astype(str).to_numpy()).astype(np.float64)
    args = (d["reward"].to_numpy(), d["propensity"].to_numpy(), target)
    out = {"ips": ips(*args, seed=seed), "snips": snips(*args, seed=seed)}
    if predicted_logged is not None and predicted_chosen is not None:
        q_logged = np.nan_to_num(predicted_logged, nan=0.0)
        out["dr"] = doubly_robust(*args, q_logged, np.nan_to_num(predicted_chosen, nan=0.0), seed=seed)
    return out
