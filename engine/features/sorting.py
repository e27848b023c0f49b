"""Sorting helpers that are much faster than their generic NumPy spellings on large int64 arrays."""

from __future__ import annotations

import numpy as np

from engine.features.workers import LookupThreads

# Below this many needles one thread is faster than starting more.
_PARALLEL_FROM = 500_000
# Below this many needles, searching them in their own order is as fast as sorting them first.
_SORT_FROM = 4_096


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` takes a slow hashing path on mostly distinct int64)."""
    if len(values) == 0:
        return np.asarray(values).copy()
    ordered = np.sort(values, kind="stable")
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def is_sorted(values: np.ndarray) -> bool:
    """Whether ``values`` ascend (ties allowed): one O(n) pass, cheap next to any sort it can save."""
    return len(values) < 2 or bool(np.all(values[1:] >= values[:-1]))


def ranks_in(sorted_values: np.ndarray, needles: np.ndarray, side: str = "left", workers: LookupThreads | None = None) -> np.ndarray:
    """``np.searchsorted(sorted_values, needles)`` with the needles sorted first: binary searches in
    ascending order stay in cache, which is an order of magnitude faster on millions of needles.
    ``workers`` split the searches (NumPy releases the GIL in them); the answer does not depend on them."""
    needles = np.asarray(needles)
    # A few needles (an online decision's) stay in cache anyway: sorting them first would cost more.
    # Needles that arrive sorted (requests ordered by customer and time usually do) need no sort.
    if len(needles) < _SORT_FROM or is_sorted(needles):
        return _searchsorted(sorted_values, needles, side, workers)
    order = np.argsort(needles, kind="stable")
    out = np.empty(len(needles), dtype=np.int64)
    out[order] = _searchsorted(sorted_values, needles[order], side, workers)
    return out


def _searchsorted(sorted_values: np.ndarray, needles: np.ndarray, side: str, workers: LookupThreads | None) -> np.ndarray:
    if workers is None or workers.count < 2 or len(needles) < _PARALLEL_FROM:
        return np.searchsorted(sorted_values, needles, side=side)
    out = np.empty(len(needles), dtype=np.int64)
    bounds = np.linspace(0, len(needles), workers.count + 1).astype(np.int64)

    def search(part: int) -> None:
        lo, hi = bounds[part], bounds[part + 1]
        out[lo:hi] = np.searchsorted(sorted_values, needles[lo:hi], side=side)

    workers.map(search, range(workers.count))
    return out
