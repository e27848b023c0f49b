"""Time split edges and query grouping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.model.groups import assign_groups, group_sizes_in_order
from engine.model.split import TEST, TRAIN, VALIDATION, assign_split, check_split_sizes, split_bounds

END = pd.Timestamp("2026-03-01T00:00:00Z")


def test_split_edges_belong_to_the_later_split():
    bounds = split_bounds(END, test_days=14, validation_days=7)
    assert bounds.test_start == pd.Timestamp("2026-02-15T00:00:00Z")
    assert bounds.validation_start == pd.Timestamp("2026-02-08T00:00:00Z")
    one_ns = pd.Timedelta(1, "ns")
    ts = pd.Series([bounds.validation_start - one_ns, bounds.validation_start, bounds.test_start - one_ns,
                    bounds.test_start, END - one_ns]).astype("datetime64[ns, UTC]")
    assert list(assign_split(ts, bounds)) == [TRAIN, VALIDATION, VALIDATION, TEST, TEST]


def test_too_short_history_is_refused_with_counts():
    with pytest.raises(DataError, match=r"validation window has fewer than 1 impressions \(train 3, validation 0, test 2\)"):
        check_split_sizes(np.array([0, 0, 0, 2, 2]))


def _examples(rows):
    frame = pd.DataFrame(rows, columns=["ts", "customer_id", "channel", "decision_id"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")
    return frame


def test_groups_are_customer_channel_window_and_slates():
    examples = _examples([
        ("2026-01-01", "c1", "email", "d1"),
        ("2026-01-05", "c1", "email", "d2"),   # same customer, channel, 28-day window as d1
        ("2026-01-05", "c1", "sms", "d3"),     # other channel
        ("2026-01-05", "c2", "email", "d4"),   # other customer
        ("2026-02-01", "c1", "email", "d5"),   # next window (31 days after the first example)
        ("2026-01-05", "c1", "web", "s1"),     # a slate of two messages
        ("2026-01-05", "c1", "web", "s1"),
        ("2026-01-06", "c1", "web", "d6"),     # single-message decision on web: window group, not the slate
    ])
    groups = assign_groups(examples, np.zeros(len(examples), dtype=np.int8), group_window_days=28)
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3], groups[4], groups[5], groups[7]}) == 6
    assert groups[5] == groups[6]


def test_without_any_decision_id_groups_are_customer_channel_window():
    # Data exported without send ids: no slate, every impression goes to its customer x channel x window.
    examples = _examples([
        ("2026-01-01", "c1", "email", None),
        ("2026-01-05", "c1", "email", None),
        ("2026-01-05", "c1", "sms", None),
        ("2026-02-01", "c1", "email", None),
    ])
    groups = assign_groups(examples, np.zeros(len(examples), dtype=np.int8), group_window_days=28)
    assert list(groups) == [0, 0, 1, 2]


def test_groups_never_span_splits():
    examples = _examples([("2026-01-01", "c1", "email", "d1"), ("2026-01-02", "c1", "email", "d2")])
    groups = assign_groups(examples, np.array([TRAIN, VALIDATION], dtype=np.int8), group_window_days=28)
    assert groups[0] != groups[1]


def test_group_sizes_in_order():
    order, sizes = group_sizes_in_order(np.array([2, 0, 2, 1, 0, 2]))
    assert list(order) == [1, 4, 3, 0, 2, 5]
    assert list(sizes) == [2, 1, 3]
    # Groups that already are runs of rows need no reordering, whatever their ids.
    order, sizes = group_sizes_in_order(np.array([5, 5, 1, 3, 3, 3]))
    assert order is None
    assert list(sizes) == [2, 1, 3]


def test_groups_match_factorising_the_tuples():
    # The obvious spelling: a group is the tuple (split, customer, channel, window), or (split, decision)
    # for a slate of several messages; ids are numbered in order of first appearance.
    rng = np.random.default_rng(4)
    n = 400
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    examples = pd.DataFrame({
        "ts": [start + pd.Timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, n)],
        "customer_id": pd.array([f"c{i}" for i in rng.integers(0, 9, n)], dtype="string"),
        "channel": pd.array([["email", "sms", None][i] for i in rng.integers(0, 3, n)], dtype="string"),
        "decision_id": pd.array([None if i >= 30 else f"d{i}" for i in rng.integers(0, 60, n)], dtype="string"),
    })
    split = rng.integers(0, 3, n)
    got = assign_groups(examples, split, 28.0)
    window = ((examples["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(days=28)).to_numpy()
    slate_size = examples.groupby("decision_id")["decision_id"].transform("size").fillna(0).to_numpy()
    tuples = [("slate", s, d) if size > 1 else ("window", s, c, ch, w)
              for s, c, ch, d, w, size in zip(split, examples["customer_id"], examples["channel"], examples["decision_id"],
                                             window, slate_size)]
    tuples = [tuple("<NA>" if pd.isna(x) else x for x in t) for t in tuples]
    first_seen: dict = {}
    expected = [first_seen.setdefault(t, len(first_seen)) for t in tuples]
    assert got.tolist() == expected


def test_examples_can_release_all_feature_rows_but_one_splits():
    from engine.features.build import FeatureMatrix
    from engine.model.examples import Examples

    frame = pd.DataFrame({"split": [TRAIN, TRAIN, VALIDATION, TEST, TEST]})
    values = np.arange(10, dtype=np.float32).reshape(5, 2)
    examples = Examples(frame, FeatureMatrix(("a", "b"), values), bounds=None)
    assert examples.features_of(TEST).tolist() == [[6.0, 7.0], [8.0, 9.0]]
    kept = examples.keep_features_of(TEST)
    assert kept.features.values.shape == (2, 2) and not np.shares_memory(kept.features.values, values)
    assert kept.features_of(TEST).tolist() == [[6.0, 7.0], [8.0, 9.0]]
    with pytest.raises(ValueError, match="released"):
        kept.features_of(TRAIN)
