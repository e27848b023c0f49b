"""Decisions as the decision log reads them, for the store's tests and the server's."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from engine.policy.scored import ScoredCandidates
from engine.store.decisions import SqliteDecisionLog

AT = pd.Timestamp("2026-11-30T06:00:00Z")
CANDIDATES = (("m1", 0.1, 0.9166666666666666), ("m-ü", 1e-300, 0.041666666666666664), ("m\"3", 0.7300000000000001, 0.0),
              ("m\x1f4🙂,x", 0.5, 0.0))


def scored(candidates) -> ScoredCandidates:
    ids, scores, first = zip(*candidates) if candidates else ((), (), ())
    return ScoredCandidates(np.array(ids, dtype=str), np.array(scores, dtype=float), np.array(first, dtype=float))


def logged_decision(i: int) -> SimpleNamespace:
    """What :meth:`SqliteDecisionLog.append` reads of a Decision."""
    return SimpleNamespace(decision_id=f"d{i}", as_of=AT, customer_id=f"c{i}", channel="email", model_version="3",
                           cold_start=False, messages=[SimpleNamespace(message_id="m1", propensity=0.9166666666666666)],
                           candidates=scored(CANDIDATES), suppressed={})



def logged_ids(log: SqliteDecisionLog) -> list[str]:
    frame = pd.concat(list(log.since(None)))
    return frame.drop_duplicates("decision_id")["decision_id"].tolist()
