"""Linking outcomes to impressions, by hand on tiny logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.model.labels import label_impressions
from tests.builders import events_frame


def _e(ts, kind, message="m1", customer="c1", decision=None):
    return {"ts": ts, "customer_id": customer, "event_type": kind, "message_id": message, "decision_id": decision,
            "channel": "email", "topic": "t"}


def _grades(rows, days=7.0):
    return list(label_impressions(events_frame(rows), days)["grade"])


def test_best_outcome_within_the_window_by_decision_id():
    rows = [
        _e("2026-01-01T10:00:00Z", "impression", decision="d1"),
        _e("2026-01-01T10:05:00Z", "open", decision="d1"),
        _e("2026-01-01T10:06:00Z", "click", decision="d1"),
        _e("2026-01-02T10:00:00Z", "impression", decision="d2"),
        _e("2026-01-09T10:00:01Z", "conversion", decision="d2"),  # 7 days + 1 s later: outside
        _e("2026-01-03T10:00:00Z", "impression", decision="d3"),
        _e("2026-01-10T10:00:00Z", "conversion", decision="d3"),  # exactly 7 days later: inside
    ]
    assert _grades(rows) == [2, 0, 3]


def test_decision_id_beats_recency_when_present():
    # d1's click arrives after d2's impression of the same message; the decision id says it is d1's.
    rows = [
        _e("2026-01-01T10:00:00Z", "impression", decision="d1"),
        _e("2026-01-01T11:00:00Z", "impression", decision="d2"),
        _e("2026-01-01T12:00:00Z", "click", decision="d1"),
    ]
    assert _grades(rows) == [2, 0]


def test_without_decision_id_the_latest_earlier_impression_of_that_message_gets_it():
    rows = [
        _e("2026-01-01T10:00:00Z", "impression"),
        _e("2026-01-01T10:30:00Z", "open"),
        _e("2026-01-02T10:00:00Z", "impression"),  # the next impression of m1: later outcomes are its
        _e("2026-01-02T10:00:00Z", "click"),  # same instant: belongs to the impression at that instant
        _e("2026-01-02T09:00:00Z", "impression", message="m2"),
        _e("2026-01-02T09:30:00Z", "conversion", message="m2", customer="c2"),  # another customer: nobody's
        _e("2025-12-31T09:30:00Z", "click", message="m2"),  # before any impression of m2: nobody's
    ]
    grades = label_impressions(events_frame(rows), 7.0).set_index("ts")["grade"]
    assert list(grades) == [1, 0, 2]  # sorted by ts: d1 10:00 (open), m2 09:00 (none), m1 day 2 10:00 (click)


def test_window_is_configurable():
    rows = [_e("2026-01-01T00:00:00Z", "impression", decision="d"), _e("2026-01-02T12:00:00Z", "click", decision="d")]
    assert _grades(rows, days=1.0) == [0]
    assert _grades(rows, days=2.0) == [2]


def test_a_repeated_decision_and_message_pair_credits_the_first_impression():
    rows = [
        _e("2026-01-01T10:00:00Z", "impression", decision="d1"),
        _e("2026-01-01T11:00:00Z", "impression", decision="d1"),  # the same pair again: ambiguous
        _e("2026-01-01T12:00:00Z", "click", decision="d1"),
    ]
    assert _grades(rows) == [2, 0]


def _naive_grades(frame, days):
    """The linking rules spelled out one outcome at a time."""
    impressions = frame[frame["event_type"] == "impression"].reset_index(drop=True)
    grades = [0] * len(impressions)
    window = pd.Timedelta(days=days)
    for _, out in frame[frame["event_type"].isin(["open", "click", "conversion"])].iterrows():
        if pd.notna(out["decision_id"]):
            same = impressions.index[(impressions["decision_id"] == out["decision_id"])
                                     & (impressions["message_id"] == out["message_id"])]
            target = same[0] if len(same) else None
        else:
            same = impressions[(impressions["customer_id"] == out["customer_id"]) & (impressions["message_id"] == out["message_id"])
                               & (impressions["ts"] <= out["ts"])]
            target = same.index[-1] if len(same) else None  # rows are in time order: the last is the latest
        if target is not None and pd.Timedelta(0) <= out["ts"] - impressions.loc[target, "ts"] <= window:
            grades[target] = max(grades[target], {"open": 1, "click": 2, "conversion": 3}[out["event_type"]])
    return grades


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linking_matches_a_naive_loop(seed):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = []
    for _ in range(300):
        kind = ["impression", "impression", "open", "click", "conversion"][rng.integers(0, 5)]
        decision = None if rng.random() < 0.5 else f"d{rng.integers(0, 40)}"
        rows.append(_e((start + pd.Timedelta(hours=int(rng.integers(0, 24 * 20)))).isoformat(), kind,
                       message=f"m{rng.integers(0, 3)}", customer=f"c{rng.integers(0, 4)}", decision=decision))
    frame = events_frame(rows).sort_values("ts", kind="stable", ignore_index=True)
    assert list(label_impressions(frame, 3.0)["grade"]) == _naive_grades(frame, 3.0)


def test_a_message_s_own_attribution_window_wins_over_the_default():
    rows = [
        _e("2026-01-01T10:00:00Z", "impression", message="short", decision="d1"),
        _e("2026-01-04T10:00:01Z", "conversion", message="short", decision="d1"),  # 3 days + 1 s: outside its 3 days
        _e("2026-01-01T10:00:00Z", "impression", message="long", decision="d2"),
        _e("2026-01-10T10:00:00Z", "conversion", message="long", decision="d2"),  # 9 days: inside its 10 days
        _e("2026-01-01T10:00:00Z", "impression", message="plain", decision="d3"),
        _e("2026-01-08T10:00:00Z", "click", message="plain", decision="d3"),  # 7 days: inside the default
    ]
    messages = pd.DataFrame({"message_id": ["short", "long", "plain"], "attribution_days": [3.0, 10.0, np.nan]})
    labelled = label_impressions(events_frame(rows), 7.0, messages)
    assert list(labelled["grade"]) == [0, 3, 2]
    assert list(labelled["window_end"]) == [pd.Timestamp(t, tz="UTC") for t in
                                            ("2026-01-04T10:00:00", "2026-01-11T10:00:00", "2026-01-08T10:00:00")]
    # Without the catalog every impression has the default window.
    assert list(label_impressions(events_frame(rows), 7.0)["grade"]) == [3, 0, 2]


def test_an_impression_is_observed_in_full_only_if_its_window_closes_before_the_end_of_the_data():
    from engine.model.labels import observed_in_full

    end = pd.Timestamp("2026-01-10T00:00:00Z")  # exclusive: the instant after the last event
    window_end = pd.Series(pd.to_datetime(["2026-01-09T23:59:59", "2026-01-10T00:00:00", "2026-01-12T00:00:00"], utc=True))
    assert list(observed_in_full(window_end, end)) == [True, False, False]
