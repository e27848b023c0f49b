"""SnapshotHistory (serving batches) against History (tested by hand and against a naive loop in
test_history.py): every query, and the whole feature matrix, must be identical to the last bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine.features.build import CatalogTable, EncodedTables, ProfileTable, build_encoded_features, make_history
from engine.features.history import NS_PER_DAY, History, Requests, _epoch_start
from engine.features.log import EventLog
from engine.features.snapshot import SnapshotHistory
from engine.features.spec import FeatureSpec
from tests.builders import events_frame
from tests.features.test_families import AS_OF, CUSTOMERS, EVENTS, MESSAGES, SETTINGS

TYPES = ("visit", "impression", "open", "click", "conversion", "purchase", "survey", "support", "complaint")


def _random_events(seed: int, customers: int, n: int, as_of: pd.Timestamp) -> pd.DataFrame:
    """Events of ``customers`` over 120 days before ``as_of`` and a day after it, in whole minutes (ties),
    some exactly a window's length before ``as_of`` (the window's first instant) or at the start of the
    decay epoch ``as_of`` is in (where the decayed counts split the window)."""
    rng = np.random.default_rng(seed)
    epoch = pd.Timestamp(int(_epoch_start(np.array([as_of.value - 1]), SETTINGS.max_window_days * NS_PER_DAY)[0]), tz="UTC")
    rows = []
    for i in range(n):
        kind = TYPES[rng.integers(0, len(TYPES))]
        edge = rng.random()
        ts = (as_of - pd.Timedelta(days=int(rng.choice([1, 7, 30, 90]))) if edge < 0.15 else epoch if edge < 0.25
              else as_of - pd.Timedelta(minutes=int(rng.integers(-1440, 120 * 1440))))
        message = MESSAGES.iloc[rng.integers(0, len(MESSAGES))] if rng.random() < 0.7 else None
        rows.append({"ts": ts.isoformat(), "customer_id": f"c{rng.integers(0, customers)}", "event_type": kind,
                     "channel": None if message is None else message["channel"], "topic": None if message is None else message["topic"],
                     "message_id": None if message is None else message["message_id"],
                     "value": float(rng.integers(0, 2000)) / 7 if kind in ("purchase", "survey") else None})
    return events_frame(rows)


def _world(seed: int, customers: int = 6, n: int = 400) -> tuple[FeatureSpec, EventLog, np.ndarray]:
    """A spec, a log whose customers are 0..customers-1 (some records weigh more than one event, as
    compacted ones do) and each customer's own as_of (some exactly at one of its event times)."""
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    base = pd.Timestamp(AS_OF)
    frame = _random_events(seed, customers, n, base)
    log = EventLog.from_events(frame, spec.vocab)
    rng = np.random.default_rng(seed + 1)
    log = replace(log, weight=np.where(rng.random(len(log)) < 0.1, rng.integers(2, 5, len(log)), 1).astype(np.int64))
    as_of = np.full(len(log.customers), base.value, dtype=np.int64) + rng.integers(-3, 3, len(log.customers)) * 3_600_000_000_000
    for code in range(0, len(log.customers), 2):  # at an event time of its own: that event must not count
        own = log.ts[log.customer == code]
        if len(own):
            as_of[code] = own[rng.integers(0, len(own))]
    return spec, log, as_of


def _both(spec: FeatureSpec, log: EventLog, as_of: np.ndarray) -> tuple[History, SnapshotHistory]:
    history = make_history(log, spec)
    widths = {"channel": len(spec.vocab.channels), "topic": len(spec.vocab.topics), "message": len(spec.vocab.messages), "stage": 4}
    snapshot = SnapshotHistory(log, widths, as_of, max_window_days=spec.settings.max_window_days,
                               half_life_days=spec.settings.affinity_half_life_days,
                               message_stage=np.asarray(spec.message_stages, dtype=np.int64))
    return history, snapshot


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_query_answers_as_history(seed):
    spec, log, as_of = _world(seed)
    history, snapshot = _both(spec, log, as_of)
    # Requests repeat customers (candidate rows do) and include an unknown one (-1).
    customer = np.array([*range(len(as_of)), *range(len(as_of)), -1], dtype=np.int64)
    requests = Requests(customer, np.where(customer >= 0, as_of[np.maximum(customer, 0)], as_of[0]))
    rng = np.random.default_rng(seed)
    subs = {"channel": len(spec.vocab.channels), "topic": len(spec.vocab.topics), "message": len(spec.vocab.messages), "stage": 4}
    for types in [("visit",), ("impression",), ("click", "purchase", "visit"), ("survey",), ("purchase",), ("conversion",)]:
        # Customer-level queries (the families' usual ones), the unknown customer included.
        np.testing.assert_array_equal(snapshot.days_since_last(types, requests), history.days_since_last(types, requests))
        np.testing.assert_array_equal(snapshot.last_value(types, requests), history.last_value(types, requests))
        for window in (None, 1, 7, 30, 90):
            np.testing.assert_array_equal(snapshot.count(types, requests, window_days=window),
                                          history.count(types, requests, window_days=window))
            for by, width in subs.items():
                sub = rng.integers(-1, width, len(customer))
                np.testing.assert_array_equal(snapshot.count(types, requests, window_days=window, by=by, sub=sub),
                                              history.count(types, requests, window_days=window, by=by, sub=sub))
                if window is not None:
                    np.testing.assert_array_equal(snapshot.count_by(types, requests, window_days=window, by=by),
                                                  history.count_by(types, requests, window_days=window, by=by))
                    np.testing.assert_array_equal(snapshot.value_sum(types, requests, window_days=window, by=by, sub=sub),
                                                  history.value_sum(types, requests, window_days=window, by=by, sub=sub))
                    np.testing.assert_array_equal(snapshot.decayed_count(types, requests, window_days=window, by=by, sub=sub),
                                                  history.decayed_count(types, requests, window_days=window, by=by, sub=sub))
                    np.testing.assert_array_equal(snapshot.decayed_count_by(types, requests, window_days=window, by=by),
                                                  history.decayed_count_by(types, requests, window_days=window, by=by))
                np.testing.assert_array_equal(snapshot.days_since_last(types, requests, by=by, sub=sub),
                                              history.days_since_last(types, requests, by=by, sub=sub))
                np.testing.assert_array_equal(snapshot.last_value(types, requests, by=by, sub=sub),
                                              history.last_value(types, requests, by=by, sub=sub))


def _every_message(history, spec: FeatureSpec, as_of: np.ndarray) -> tuple:
    """build_encoded_features' arguments for every customer of ``as_of`` with every message, and a row
    without one."""
    tables = EncodedTables.build(CatalogTable.from_messages(MESSAGES, spec), ProfileTable.from_customers(CUSTOMERS), spec)
    messages = np.arange(-1, len(spec.vocab.messages), dtype=np.int64)
    customer = np.repeat(np.arange(len(as_of), dtype=np.int64), len(messages))
    return history, tables, customer, as_of[customer], np.tile(messages, len(as_of)), np.zeros(len(customer), dtype=np.int64)


def _matrix(history, spec: FeatureSpec, as_of: np.ndarray) -> np.ndarray:
    return build_encoded_features(*_every_message(history, spec, as_of), dtype=np.float64).values


@pytest.mark.parametrize("seed", [4, 5])
def test_the_feature_matrix_is_the_same_to_the_bit(seed):
    spec, log, as_of = _world(seed, customers=8, n=600)
    history, snapshot = _both(spec, log, as_of)
    np.testing.assert_array_equal(_matrix(snapshot, spec, as_of), _matrix(history, spec, as_of))


def test_the_hand_made_history_of_the_family_tests_gives_the_same_matrix():
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    log = EventLog.from_events(EVENTS, spec.vocab)
    as_of = np.array([pd.Timestamp(AS_OF).value], dtype=np.int64)
    history, snapshot = _both(spec, log, as_of)
    expected = _matrix(history, spec, as_of)
    assert np.count_nonzero(~np.isnan(expected)) > 100  # the world is not empty: most features have a value
    np.testing.assert_array_equal(_matrix(snapshot, spec, as_of), expected)


def test_a_request_at_another_instant_than_its_customers_is_refused():
    spec, log, as_of = _world(6, customers=2, n=20)
    _, snapshot = _both(spec, log, as_of)
    with pytest.raises(ValueError, match="its own as_of"):
        snapshot.count(("visit",), Requests(np.array([0]), np.array([as_of[0] + NS_PER_DAY])))
    with pytest.raises(ValueError, match="longer than the longest configured window"):
        snapshot.count(("visit",), Requests(np.array([0]), as_of[:1]), window_days=91)


def test_a_float32_matrix_keeps_the_precise_columns_in_float64():
    spec, log, as_of = _world(7, customers=4, n=300)
    args = _every_message(_both(spec, log, as_of)[1], spec, as_of)
    wide = build_encoded_features(*args, dtype=np.float64)
    names = ("days_since_last_purchase", "msg_days_since_valid_from")  # a customer column and a candidate's
    narrow = build_encoded_features(*args, precise=names)
    assert narrow.values.dtype == np.float32 and wide.precise == {}
    np.testing.assert_array_equal(narrow.values, wide.values.astype(np.float32))
    for name in names:
        column = wide.values[:, wide.names.index(name)]
        assert np.count_nonzero(~np.isnan(column)) > 0 and narrow.precise[name].dtype == np.float64
        np.testing.assert_array_equal(narrow.precise[name], column)
        np.testing.assert_array_equal(narrow.rows(5, 9).precise[name], column[5:9])
    np.testing.assert_array_equal(narrow.rows(5, 9).values, narrow.values[5:9])


def test_columns_not_wanted_may_be_left_nan_and_the_others_do_not_change():
    spec, log, as_of = _world(8, customers=4, n=300)
    args = _every_message(_both(spec, log, as_of)[1], spec, as_of)
    every = build_encoded_features(*args, dtype=np.float64)
    skipped = {"msg_seen_count", "msg_days_since_shown", "msg_topic_days_since_shown"}
    some = build_encoded_features(*args, dtype=np.float64, wanted=frozenset(every.names) - skipped)
    assert some.names == every.names
    for j, name in enumerate(every.names):
        if name in skipped:
            assert np.count_nonzero(~np.isnan(every.values[:, j])) > 0 and np.isnan(some.values[:, j]).all(), name
        else:
            np.testing.assert_array_equal(some.values[:, j], every.values[:, j], err_msg=name)
