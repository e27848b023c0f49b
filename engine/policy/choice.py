"""Choosing among candidates: the best-scoring message per decision."""

from __future__ import annotations

import numpy as np


def argmax_per_decision(decision: np.ndarray, scores: np.ndarray, n_decisions: int) -> np.ndarray:
    """Row index of the best score of each decision (ties: the first row); -1 for a decision without rows."""
    best = np.full(n_decisions, -1, dtype=np.int64)
    if len(decision) == 0:
        return best
    # Sort by decision, then score descending, then row: the first row of each decision wins.
    order = np.lexsort((np.arange(len(scores)), -scores, decision))
    first = np.ones(len(order), dtype=bool)
    first[1:] = decision[order][1:] != decision[order][:-1]
    best[decision[order][first]] = order[first]
    return best
