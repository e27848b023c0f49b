"""Label each logged impression with the best outcome linked to it within the attribution window.

Grades: 0 none, 1 open, 2 click, 3 conversion. An outcome links to an impression
- by ``decision_id`` and ``message_id`` when the outcome carries a decision_id, else
- to the latest impression of the same customer and message at or before it (so never past that
  message's next impression to the customer),
and counts only if it happened within ``attribution_days`` after the impression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.features.sorting import ranks_in, unique_sorted
from engine.timeutil import to_ns

GRADES: dict[str, int] = {"open": 1, "click": 2, "conversion": 3}
EXAMPLE_COLUMNS = ("ts", "customer_id", "channel", "topic", "message_id", "decision_id", "propensity")


def label_impressions(events: pd.DataFrame, attribution_days: float) -> pd.DataFrame:
    """One row per impression (``EXAMPLE_COLUMNS`` + ``grade``), in the order of ``events``."""
    impressions = events.loc[events["event_type"] == "impression", list(EXAMPLE_COLUMNS)].reset_index(drop=True)
    outcomes = events.loc[events["event_type"].isin(tuple(GRADES))].reset_index(drop=True)
    grade = np.zeros(len(impressions), dtype=np.int8)
    if len(impressions) and len(outcomes):
        window_ns = int(attribution_days * 86_400 * 10**9)
        linked = outcomes["decision_id"].notna().to_numpy()
        target = np.full(len(outcomes), -1, dtype=np.int64)
        target[linked] = _by_decision(impressions, outcomes.loc[linked])
        target[~linked] = _by_latest_impression(impressions, outcomes.loc[~linked])
        found = target >= 0
        lag = to_ns(outcomes["ts"])[found] - to_ns(impressions["ts"])[target[found]]
        inside = (lag >= 0) & (lag <= window_ns)
        outcome_grade = outcomes["event_type"].map(GRADES).to_numpy(dtype=np.int8)[found][inside]
        np.maximum.at(grade, target[found][inside], outcome_grade)
    impressions["grade"] = grade
    return impressions


def _by_decision(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    """Index of the impression with the outcome's (decision_id, message_id), -1 if none."""
    if outcomes.empty:
        return np.zeros(0, dtype=np.int64)
    keys = pd.MultiIndex.from_arrays([impressions["decision_id"], impressions["message_id"]])
    # A repeated (decision, message) pair would be ambiguous: the first impression wins.
    first = ~keys.duplicated(keep="first")
    unique_keys = keys[first]
    positions = np.flatnonzero(first)
    wanted = pd.MultiIndex.from_arrays([outcomes["decision_id"], outcomes["message_id"]])
    at = unique_keys.get_indexer(wanted)
    return np.where(at >= 0, positions[np.maximum(at, 0)], -1)


def _by_latest_impression(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    """Index of the latest impression of the same customer and message at or before the outcome."""
    if outcomes.empty:
        return np.zeros(0, dtype=np.int64)
    pair_codes, _ = pd.factorize(
        pd.MultiIndex.from_arrays(
            [
                pd.concat([impressions["customer_id"], outcomes["customer_id"]], ignore_index=True),
                pd.concat([impressions["message_id"], outcomes["message_id"]], ignore_index=True),
            ]
        )
    )
    imp_pair, out_pair = pair_codes[: len(impressions)], pair_codes[len(impressions) :]
    imp_ts, out_ts = to_ns(impressions["ts"]), to_ns(outcomes["ts"])
    order = np.lexsort((imp_ts, imp_pair))
    sorted_pair, sorted_ts = imp_pair[order], imp_ts[order]
    # Rank times within one sorted axis so that (pair, time) fits one int64 key.
    times = unique_sorted(np.concatenate([imp_ts, out_ts]))
    stride = len(times) + 1
    key = sorted_pair.astype(np.int64) * stride + ranks_in(times, sorted_ts)
    query = out_pair.astype(np.int64) * stride + ranks_in(times, out_ts)
    last = np.searchsorted(key, query, side="right") - 1
    safe = np.maximum(last, 0)
    ok = (last >= 0) & (out_pair >= 0) & (sorted_pair[safe] == out_pair)
    return np.where(ok, order[safe], -1)

