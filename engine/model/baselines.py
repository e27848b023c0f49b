"""Baselines the ranker must beat, with the same ``fit``/``score`` manners.

- random: a seeded uniform score (what choosing blindly among eligible messages is worth);
- popularity: each message's smoothed relevant-outcome rate in training (per channel, as messages
  belong to one channel), the "best seller" policy;
- most-engaged topic: the customer's decayed interest in the message's topic (feature
  ``msg_topic_affinity``), the classic rule-based next best action.

Each names the feature columns it reads (``reads``) and whether its scores are probabilities
(``probability``): what the decision engine needs to value it under the served policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIOR_STRENGTH = 20.0


class RandomBaseline:
    name = "random"
    reads: frozenset[str] = frozenset()
    probability = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, examples: pd.DataFrame, grades: np.ndarray) -> RandomBaseline:
        return self

    def score(self, examples: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(examples))


class PopularityBaseline:
    name = "popularity"
    reads: frozenset[str] = frozenset()
    probability = True  # a smoothed success rate

    def __init__(self, relevant_from: int = 2, prior_strength: float = PRIOR_STRENGTH) -> None:
        self.relevant_from = relevant_from
        self.prior_strength = prior_strength

    def fit(self, examples: pd.DataFrame, grades: np.ndarray) -> PopularityBaseline:
        relevant = pd.Series(grades >= self.relevant_from, index=examples.index, dtype=float)
        frame = pd.DataFrame({"message_id": examples["message_id"].astype(str), "channel": examples["channel"].astype(str), "relevant": relevant})
        channel_rate = frame.groupby("channel")["relevant"].mean()
        per_message = frame.groupby(["message_id", "channel"])["relevant"].agg(["sum", "count"]).reset_index()
        prior = per_message["channel"].map(channel_rate).to_numpy()
        rate = (per_message["sum"] + self.prior_strength * prior) / (per_message["count"] + self.prior_strength)
        self.rate_ = dict(zip(per_message["message_id"], rate))
        self.channel_rate_ = channel_rate.to_dict()
        return self

    def score(self, examples: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
        messages = examples["message_id"].astype(str)
        fallback = examples["channel"].astype(str).map(self.channel_rate_).astype(float).fillna(0.0)
        return messages.map(self.rate_).astype(float).fillna(fallback).to_numpy()


class MostEngagedTopicBaseline:
    name = "most_engaged_topic"
    reads = frozenset({"msg_topic_affinity"})
    probability = False

    def fit(self, examples: pd.DataFrame, grades: np.ndarray) -> MostEngagedTopicBaseline:
        return self

    def score(self, examples: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
        return features["msg_topic_affinity"].fillna(0.0).to_numpy(dtype=np.float64)


def all_baselines(seed: int, relevant_from: int) -> tuple:
    return (RandomBaseline(seed), PopularityBaseline(relevant_from), MostEngagedTopicBaseline())
