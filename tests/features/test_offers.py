"""Impressions per offer (one offer sent as several messages on several channels): by hand on a tiny
history, History's count by offer against a slow loop, the numba matrix against the numpy one, and no
offer columns for a catalog that shares no offer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.build import CatalogTable, EncodedTables, ProfileTable, build_encoded_features, build_features, make_history
from engine.features.history import Requests
from engine.features.log import EventLog
from engine.features.numba_interpreter import compile_features
from engine.features.spec import FeatureSpec
from tests.builders import events_frame, messages_frame
from tests.features.worlds import random_events

AS_OF = pd.Timestamp("2026-03-31T00:00:00Z")
SETTINGS = FeatureSettings()  # windows 7 / 30 / 90 days
# Offer o1 by email (m1) and app (m3); m2 (sms) is an offer of its own.
MESSAGES = messages_frame([
    {"message_id": "m1", "channel": "email", "topic": "travel", "offer_id": "o1"},
    {"message_id": "m2", "channel": "sms", "topic": "food", "offer_id": None},
    {"message_id": "m3", "channel": "app", "topic": "travel", "offer_id": "o1"},
])
CUSTOMERS = pd.DataFrame({"customer_id": ["c1", "c2"]})
OFFER_COLUMNS = ["msg_offer_impressions_7d", "msg_offer_impressions_30d", "msg_offer_impressions_90d"]


def _impression(days_before: float, message: str, customer: str = "c1") -> dict:
    channel = dict(zip(MESSAGES["message_id"], MESSAGES["channel"]))[message]
    return {"ts": (AS_OF - pd.Timedelta(days=days_before)).isoformat(), "customer_id": customer, "event_type": "impression",
            "channel": channel, "message_id": message}


# c1: o1 by email 1 day before as_of, by app 10 and 40 days before, by email at as_of (not before it: never
# counted); m2 2 days before. c2: o1 by app exactly 7 days before (a window's first instant is inside).
EVENTS = events_frame([
    _impression(1, "m1"), _impression(10, "m3"), _impression(40, "m3"), _impression(0, "m1"), _impression(2, "m2"),
    _impression(7, "m3", "c2"), {"ts": (AS_OF - pd.Timedelta(days=3)).isoformat(), "customer_id": "c2", "event_type": "click",
                                 "channel": "app", "message_id": "m3"},
])


def _matrix(messages: pd.DataFrame, events: pd.DataFrame, rows: list[tuple[str, str]]) -> pd.DataFrame:
    spec = FeatureSpec.fit(messages, CUSTOMERS, SETTINGS)
    history = make_history(EventLog.from_events(events, spec.vocab), spec)
    requests = pd.DataFrame({"customer_id": [c for c, _ in rows], "as_of": [AS_OF] * len(rows), "message_id": [m for _, m in rows]})
    return build_features(requests, history, CatalogTable.from_messages(messages, spec), ProfileTable.from_customers(CUSTOMERS), spec,
                          dtype=np.float64).to_frame()


def test_offer_impressions_by_hand():
    frame = _matrix(MESSAGES, EVENTS, [("c1", "m1"), ("c1", "m3"), ("c1", "m2"), ("c2", "m1"), ("c2", "m2"), ("nobody", "m1")])
    assert frame[OFFER_COLUMNS].to_numpy().tolist() == [
        [1, 2, 3],  # m1 is o1: its own impression and both of m3's (the one at as_of is not before it)
        [1, 2, 3],  # m3 is o1 too: the same count, whatever the channel
        [1, 1, 1],  # m2 is its own offer
        [1, 1, 1],  # exactly 7 days before as_of is inside the 7-day window; a click is no impression
        [0, 0, 0],
        [0, 0, 0],  # a customer without history
    ]
    # The per-message count beside it stays per message.
    assert frame["msg_seen_count"].tolist() == [1, 2, 1, 0, 0, 0]


def test_no_offer_columns_when_no_offer_is_shared():
    # Without the column, or with every offer a single message, each message is its own offer and
    # msg_seen_count already says how often it was shown: no per-offer columns, no change to the model.
    for messages in (MESSAGES.drop(columns="offer_id"), MESSAGES.assign(offer_id=["o1", None, "o3"])):
        frame = _matrix(messages, EVENTS, [("c1", "m1")])
        assert not [c for c in frame.columns if "offer" in c]
        assert FeatureSpec.fit(messages, CUSTOMERS, SETTINGS).message_offers == ()


def _slow_offer_count(events: pd.DataFrame, offer_of: dict[str, str], customer: str, as_of: pd.Timestamp, offer: str,
                      window_days: int) -> float:
    """The obvious loop: impressions before as_of, inside the window, of any message of the offer."""
    total = 0.0
    for row in events.itertuples():
        if (row.customer_id == customer and row.event_type == "impression" and row.ts < as_of
                and row.ts >= as_of - pd.Timedelta(days=window_days) and pd.notna(row.message_id)
                and offer_of[row.message_id] == offer):
            total += 1
    return total


def _random_offer_events(seed: int, customers: int, n: int) -> pd.DataFrame:
    """Random events of every type over 120 days before AS_OF (some exactly a window's length before it, in
    whole minutes), about messages m1, m2 and m3 of MESSAGES."""
    events = random_events(seed, MESSAGES[MESSAGES['message_id'] != 'm3'], customers, n, SETTINGS.max_window_days)  # about m1 and m2
    rng = np.random.default_rng(seed)
    events["message_id"] = events["message_id"].mask((events["message_id"] == "m2") & (rng.random(len(events)) < 0.5), "m3")
    events["channel"] = events["message_id"].map(MESSAGES.set_index("message_id")["channel"]).astype("string")
    events["topic"] = events["message_id"].map(MESSAGES.set_index("message_id")["topic"]).astype("string").fillna(events["topic"])
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_count_by_offer_against_a_slow_loop(seed):
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    events = _random_offer_events(seed, 4, 300)
    history = make_history(EventLog.from_events(events, spec.vocab), spec)
    rng = np.random.default_rng(seed)
    customers = [f"c{c}" for c in rng.integers(0, 4, 40)]
    as_of = [AS_OF - pd.Timedelta(hours=int(h)) for h in rng.integers(0, 24 * 30, 40)]
    candidates = [str(m) for m in rng.choice(MESSAGES["message_id"], 40)]
    offer_of = {m: (f"offer {o}" if pd.notna(o) else f"message {m}") for m, o in zip(MESSAGES["message_id"], MESSAGES["offer_id"])}
    requests = Requests(history.log.customers.encode(customers).astype(np.int64), np.array([t.value for t in as_of], dtype=np.int64))
    sub = spec.offer_codes()[spec.vocab.messages.encode(candidates)]
    for window in SETTINGS.windows_days:
        fast = history.count(("impression",), requests, window_days=window, by="offer", sub=sub)
        slow = [_slow_offer_count(events, offer_of, c, t, offer_of[m], window) for c, t, m in zip(customers, as_of, candidates)]
        np.testing.assert_array_equal(fast, slow)


def _encoded(spec: FeatureSpec, messages: pd.DataFrame) -> EncodedTables:
    return EncodedTables.build(CatalogTable.from_messages(messages, spec), ProfileTable.from_customers(CUSTOMERS), spec)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("wanted", ["all", "cheap"])
def test_numba_matrix_equals_numpy(seed, wanted):
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    log = EventLog.from_events(_random_offer_events(seed, 5, 400), spec.vocab)
    rng = np.random.default_rng(seed)
    as_of = np.full(len(log.customers), AS_OF.value, dtype=np.int64) - rng.integers(0, 48, len(log.customers)) * 3_600_000_000_000
    as_of[::2] = AS_OF.value  # their events exactly a window's length before: on the window's first instant
    codes = np.arange(-1, len(spec.vocab.messages), dtype=np.int64)
    customer = np.repeat(np.arange(-1, len(as_of), dtype=np.int64), len(codes))
    at = np.where(customer >= 0, as_of[np.maximum(customer, 0)], as_of[0])
    message, profile = np.tile(codes, len(as_of) + 1), np.full(len(customer), -1, dtype=np.int64)
    tables = _encoded(spec, MESSAGES)
    names = spec.features.names
    chosen = None if wanted == "all" else frozenset(n for n in names if n not in (*OFFER_COLUMNS, "msg_seen_count"))
    compiled = compile_features(tables, names, chosen)
    assert compiled.reads_offers == (wanted == "all")

    # The numpy interpreter (on History) and the numba one: one matrix.
    reference = build_encoded_features(make_history(log, spec), tables, customer, at, message, profile, dtype=np.float64, wanted=chosen)
    got = compiled.build(log, customer, at, message, profile, dtype=np.float64)
    assert got.names == reference.names and set(OFFER_COLUMNS) <= set(got.names)
    for j, name in enumerate(reference.names):
        np.testing.assert_array_equal(got.values[:, j], reference.values[:, j], err_msg=name)
    offers = reference.values[:, [reference.names.index(c) for c in OFFER_COLUMNS]]
    if wanted == "all":  # the counts are not all zero: the comparison compares something
        assert (offers[message >= 0] > 0).any() and np.isnan(offers[message < 0]).all()
    else:
        assert np.isnan(offers).all()


def test_the_offer_code_of_each_message_is_saved_with_the_model():
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    assert spec.vocab.messages.values == ("m1", "m2", "m3") and spec.message_offers == (0, 1, 0)
    assert FeatureSpec.from_dict(spec.to_dict()).message_offers == (0, 1, 0)
    older = {k: v for k, v in spec.to_dict().items() if k != "message_offers"}  # a bundle from before offers
    assert FeatureSpec.from_dict(older).offer_codes().tolist() == [0, 1, 2]
