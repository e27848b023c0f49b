"""Label each logged impression with the best outcome linked to it within the attribution window.

Grades: 0 none, 1 open, 2 click, 3 conversion. An outcome links to an impression
- by ``decision_id`` and ``message_id`` when the outcome carries a decision_id, else
- to the latest impression of the same customer and message at or before it (so never past that
  message's next impression to the customer),
and counts only if it happened within the impression's attribution window: its message's own
``attribution_days`` (a ``messages`` column) where given, else the configured default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.contract.schema import OUTCOME_GRADES
from engine.features.timecode import time_code_for
from engine.timeutil import to_ns

EXAMPLE_COLUMNS = ("ts", "customer_id", "channel", "topic", "message_id", "decision_id", "propensity")


NS_PER_DAY = 86_400 * 10**9
WINDOW_COLUMN = "attribution_days"


def attribution_windows_ns(message_ids: pd.Series, messages: pd.DataFrame | None, default_days: float) -> np.ndarray:
    """Each impression's attribution window in ns: its message's ``attribution_days`` where the catalog
    gives one, else ``default_days``."""
    days = np.full(len(message_ids), float(default_days))
    if messages is not None and WINDOW_COLUMN in messages.columns:
        own = pd.to_numeric(messages[WINDOW_COLUMN], errors="coerce")
        by_message = pd.Series(own.to_numpy(dtype=np.float64), index=messages["message_id"].astype(str).to_numpy())
        found = by_message.reindex(message_ids.astype(str).to_numpy()).to_numpy(dtype=np.float64)
        days = np.where(np.isfinite(found) & (found > 0), found, days)
    return np.round(days * NS_PER_DAY).astype(np.int64)


def label_impressions(events: pd.DataFrame, attribution_days: float, messages: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per impression (``EXAMPLE_COLUMNS`` + ``grade`` + ``window_end``, the instant its
    attribution window closes), in the order of ``events``. ``messages``: the catalog, for per-message
    windows."""
    impressions = events.loc[events["event_type"] == "impression", list(EXAMPLE_COLUMNS)].reset_index(drop=True)
    outcomes = events.loc[events["event_type"].isin(tuple(OUTCOME_GRADES))].reset_index(drop=True)
    grade = np.zeros(len(impressions), dtype=np.int8)
    window_ns = attribution_windows_ns(impressions["message_id"], messages, attribution_days)
    if len(impressions) and len(outcomes):
        linked = outcomes["decision_id"].notna().to_numpy()
        target = np.full(len(outcomes), -1, dtype=np.int64)
        target[linked] = _by_decision(impressions, outcomes.loc[linked])
        target[~linked] = _by_latest_impression(impressions, outcomes.loc[~linked])
        found = target >= 0
        lag = to_ns(outcomes["ts"])[found] - to_ns(impressions["ts"])[target[found]]
        inside = (lag >= 0) & (lag <= window_ns[target[found]])
        outcome_grade = outcomes["event_type"].map(OUTCOME_GRADES).to_numpy(dtype=np.int8)[found][inside]
        np.maximum.at(grade, target[found][inside], outcome_grade)
    impressions["grade"] = grade
    impressions["window_end"] = pd.to_datetime(to_ns(impressions["ts"]) + window_ns, unit="ns", utc=True)
    return impressions


def observed_in_full(window_end: pd.Series, end: pd.Timestamp) -> np.ndarray:
    """True where an impression's whole attribution window lies before ``end`` (exclusive: the instant
    after the last event). The others are cut short by the end of the data: an outcome still to come
    would be missing, so their label is not known yet."""
    return to_ns(window_end) < end.value


def _by_decision(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    """Index of the impression with the outcome's (decision_id, message_id), -1 if none."""
    if impressions.empty or outcomes.empty:
        return np.full(len(outcomes), -1, dtype=np.int64)
    imp_key, out_key = _pair_keys(impressions, outcomes, "decision_id", "message_id")
    # A repeated (decision, message) pair would be ambiguous: the first impression wins.
    order = np.argsort(imp_key, kind="stable")
    sorted_key = imp_key[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_key[1:] != sorted_key[:-1]
    unique_key, positions = sorted_key[first], order[first]
    at = np.minimum(np.searchsorted(unique_key, out_key), len(unique_key) - 1)
    found = (out_key >= 0) & (unique_key[at] == out_key)
    return np.where(found, positions[at], -1)


def _by_latest_impression(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    """Index of the latest impression of the same customer and message at or before the outcome."""
    if impressions.empty or outcomes.empty:
        return np.full(len(outcomes), -1, dtype=np.int64)
    imp_pair, out_pair = _pair_keys(impressions, outcomes, "customer_id", "message_id")
    imp_ts, out_ts = to_ns(impressions["ts"]), to_ns(outcomes["ts"])
    # Both sides are coded on one exact time axis, so that (pair, time) fits one int64 key.
    times = time_code_for(np.concatenate([imp_ts, out_ts]), n_keys=int(max(imp_pair.max(initial=0), out_pair.max(initial=0))) + 1)
    key = imp_pair * times.stride + times.of_events(imp_ts)
    query = out_pair * times.stride + times.of_events(out_ts)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    last = np.searchsorted(sorted_key, query, side="right") - 1
    safe = np.maximum(last, 0)
    ok = (last >= 0) & (out_pair >= 0) & (imp_pair[order[safe]] == out_pair)
    return np.where(ok, order[safe], -1)


def _pair_keys(impressions: pd.DataFrame, outcomes: pd.DataFrame, first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    """One int64 key per row for the pair of text columns (first, second), shared by both frames; -1 where
    either is missing. Each column is factorised on its own: far cheaper than hashing pairs of strings."""
    n = len(impressions)
    a, _ = pd.factorize(pd.concat([impressions[first], outcomes[first]], ignore_index=True))
    b, b_values = pd.factorize(pd.concat([impressions[second], outcomes[second]], ignore_index=True))
    key = np.where((a >= 0) & (b >= 0), a.astype(np.int64) * max(len(b_values), 1) + b, -1)
    return key[:n], key[n:]
