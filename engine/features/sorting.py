"""Sorting helpers that are much faster than their generic NumPy spellings on large int64 arrays."""

from __future__ import annotations

import numpy as np


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` takes a slow hashing path on mostly distinct int64)."""
    if len(values) == 0:
        return np.asarray(values).copy()
    ordered = np.sort(values, kind="stable")
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def ranks_in(sorted_values: np.ndarray, needles: np.ndarray, side: str = "left") -> np.ndarray:
    """``np.searchsorted(sorted_values, needles)`` with the needles sorted first: binary searches in
    ascending order stay in cache, which is an order of magnitude faster on millions of needles."""
    needles = np.asarray(needles)
    if len(needles) < 2:
        return np.searchsorted(sorted_values, needles, side=side)
    order = np.argsort(needles, kind="stable")
    out = np.empty(len(needles), dtype=np.int64)
    out[order] = np.searchsorted(sorted_values, needles[order], side=side)
    return out
