"""Rank the eligible messages of each (customer, channel) decision: shared by ``nbm score`` and the API.

eligibility (channel, validity, consent) -> features -> model score -> top k per decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.errors import NbmError
from engine.features.build import CatalogTable, ProfileTable, build_features
from engine.features.history import History
from engine.features.spec import FeatureSpec
from engine.policy.eligibility import expand_candidates


class ModelMismatchError(NbmError):
    """The features built here are not the ones the model was trained on."""


@dataclass(frozen=True, eq=False)
class Scorer:
    """A trained model and everything needed to build its features."""

    booster: lgb.Booster
    feature_names: tuple[str, ...]
    spec: FeatureSpec
    catalog: CatalogTable
    profiles: ProfileTable
    num_threads: int = 1

    def score(self, history: History, rows: pd.DataFrame) -> np.ndarray:
        """Model scores of rows (``customer_id``, ``as_of``, ``message_id``)."""
        if rows.empty:
            return np.zeros(0)
        matrix = build_features(rows, history, self.catalog, self.profiles, self.spec)
        if matrix.names != self.feature_names:
            missing = sorted(set(self.feature_names) - set(matrix.names))
            raise ModelMismatchError(f"feature mismatch with the model: missing {missing[:5]} (the bundle needs this nbm's feature code)")
        return self.booster.predict(matrix.values, num_threads=self.num_threads)


def rank_decisions(decisions: pd.DataFrame, blocked: np.ndarray, messages: pd.DataFrame, history: History,
                   scorer: Scorer, k: int) -> pd.DataFrame:
    """Top ``k`` eligible messages per decision (``customer_id``, ``channel``, ``as_of``).

    ``blocked`` marks decisions without consent (an unsubscribe from that channel): they get no row.
    Returns customer_id, channel, message_id, score, rank (1 = best), ordered by decision then rank.
    """
    allowed = decisions.loc[~np.asarray(blocked, dtype=bool)].reset_index(drop=True)
    candidates = expand_candidates(allowed, messages)
    at = candidates["decision"].to_numpy()
    rows = pd.DataFrame({"customer_id": allowed["customer_id"].to_numpy()[at], "as_of": allowed["as_of"].to_numpy()[at],
                         "message_id": candidates["message_id"].to_numpy()})
    scores = scorer.score(history, rows)
    # Best first within each decision; equal scores keep catalog order so results are reproducible.
    order = np.lexsort((np.arange(len(scores)), -scores, at))
    ranked_decision = at[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = ranked_decision[1:] != ranked_decision[:-1]
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    rank = np.arange(len(order)) - group_start + 1
    keep = rank <= k
    picked = order[keep]
    return pd.DataFrame({
        "customer_id": rows["customer_id"].to_numpy()[picked],
        "channel": allowed["channel"].to_numpy()[at[picked]],
        "message_id": rows["message_id"].to_numpy()[picked],
        "score": scores[picked],
        "rank": rank[keep].astype(np.int64),
    })
