"""Vectorised "strictly before t" look-ups over keyed event times (no loop per row).

The simulator and the ground truth count history with these same helpers, so a state the simulator used
is recomputable exactly from the event log. Events at exactly ``t`` never count (the contract's as-of rule).
"""

from __future__ import annotations

import numpy as np

_MAX_COMPOSITE = np.iinfo(np.int64).max // 2


def _composite(event_key: np.ndarray, event_ts: np.ndarray, query_key: np.ndarray,
               query_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    # Replace times by their rank among all times involved, so (key, time) packs into one sortable int64
    # whatever the time span.
    times = np.sort(np.concatenate([event_ts, query_ts]))  # sort + dedupe: much faster than np.unique here
    if len(times):
        times = times[np.concatenate([[True], times[1:] != times[:-1]])]
    span = len(times) + 1
    largest_key = max(int(event_key.max(initial=0)), int(query_key.max(initial=0)))
    if (largest_key + 1) * span >= _MAX_COMPOSITE:
        raise ValueError(f"too many keys x distinct times to pack: {largest_key + 1} x {span}")
    event = event_key.astype(np.int64) * span + np.searchsorted(times, event_ts)
    query = query_key.astype(np.int64) * span + np.searchsorted(times, query_ts)
    return event, query, span


def count_before(event_key: np.ndarray, event_ts: np.ndarray, query_key: np.ndarray,
                 query_ts: np.ndarray) -> np.ndarray:
    """For each query, how many events have the same key and a time strictly before the query time."""
    event, query, span = _composite(event_key, event_ts, query_key, query_ts)
    event.sort()
    group_start = np.searchsorted(event, query_key.astype(np.int64) * span, side="left")
    return np.searchsorted(event, query, side="left") - group_start


def last_before(event_key: np.ndarray, event_ts: np.ndarray, event_value: np.ndarray, query_key: np.ndarray,
                query_ts: np.ndarray) -> np.ndarray:
    """For each query, the value of the latest same-key event strictly before the query time (NaN if none).

    Among events at the same time the one given last wins, as in a log sorted by time then event_id.
    """
    event, query, _ = _composite(event_key, event_ts, query_key, query_ts)
    order = np.argsort(event, kind="stable")
    position = np.searchsorted(event[order], query, side="left") - 1
    found = position >= 0
    position = np.maximum(position, 0)
    if len(order):
        found &= event_key[order][position] == query_key
        values = np.asarray(event_value, dtype=np.float64)[order][position]
    else:
        values = np.zeros(len(query))
        found &= False
    return np.where(found, values, np.nan)


def earlier_same_key(key: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """For each row, how many other rows have the same key and a strictly earlier time (ties excluded)."""
    order = np.lexsort((ts, key))
    sorted_key, sorted_ts = key[order], ts[order]
    index = np.arange(len(key))
    new_key = np.ones(len(key), dtype=bool)
    new_key[1:] = sorted_key[1:] != sorted_key[:-1]
    new_time = new_key.copy()
    new_time[1:] |= sorted_ts[1:] != sorted_ts[:-1]
    key_start = np.maximum.accumulate(np.where(new_key, index, 0))
    time_start = np.maximum.accumulate(np.where(new_time, index, 0))
    counts = np.empty(len(key), dtype=np.int64)
    counts[order] = time_start - key_start
    return counts
