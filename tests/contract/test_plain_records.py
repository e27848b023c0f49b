"""The row-by-row path for plain API events agrees with the pandas chain on every batch it answers."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import ValidationSettings
from engine.contract.plain_records import check_plain_records, check_plain_rows, message_catalog
from engine.contract.records import check_records_with_pandas, validate_event_records
from engine.store.interface import contract_rows
from tests.builders import DEFAULT_MESSAGES, messages_frame

MESSAGES = messages_frame(DEFAULT_MESSAGES)
NOW = pd.Timestamp("2026-02-10T12:00:00Z")
NOT_AFTER = NOW + pd.Timedelta(seconds=ValidationSettings().max_future_seconds)
MANY = settings(derandomize=True, max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Each column's pool mixes plain values (every rule's both sides) with values only the pandas chain reads.
TIMESTAMPS = [
    "2026-02-10T09:00:00Z", "2026-02-10T09:00:00.123456789Z", "2026-02-10T11:30:00+02:00", "2026-02-09T23:00:00-05:00",
    "2026-02-10T09:00:00", "2026-02-30T09:00:00Z", "2026-02-10T25:00:00Z", "2026-02-11T09:00:00Z", "2026-02-10T12:05:00Z",
    "", None, "yesterday", " 2026-02-10T09:00:00Z", "2026-02-10 09:00:00Z", "1500-01-01T00:00:00Z", "2026-02-10", 1770714000,
]
TEXTS = ["c1", "c2", "", None, " c1", 7, "ü-1"]
EVENT_TYPES = ["visit", "impression", "click", "open", "conversion", "purchase", "survey", "unsubscribe", "complaint",
               "support", "sent", "Click", "SENT", "like", "", None, "İmpression", 3]
CHANNELS = ["email", "sms", "EMAIL", "fax", "", None, " sms"]
MESSAGE_IDS = ["m1", "m2", "m3", "m9", "", None, "M1"]
NUMBERS = [None, 0, 5, -1, 11, 2.5, 0.5, 1, 1.5, "3", "0.25", "-2", "1e-3", "ten", "", True, float("inf"), " 4"]
EVENT_IDS = ["e1", "e2", "", None]


def _records() -> st.SearchStrategy[list]:
    field = {"ts": TIMESTAMPS, "customer_id": TEXTS, "event_type": EVENT_TYPES, "channel": CHANNELS,
             "message_id": MESSAGE_IDS, "value": NUMBERS, "propensity": NUMBERS, "topic": TEXTS,
             "decision_id": TEXTS, "event_id": EVENT_IDS}
    record = st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in field.items()})
    return st.lists(st.one_of(record, record, record, st.just(["not", "an", "object"])), min_size=1, max_size=6)


def _plain(record: dict) -> dict:
    return {"event_id": "e1", "ts": "2026-02-10T09:00:00Z", "customer_id": "c1", **record}


@MANY
@given(_records())
def test_the_plain_path_agrees_with_the_pandas_chain_wherever_it_answers(records):
    plain = check_plain_records(records, message_catalog(MESSAGES), NOT_AFTER.value, NOT_AFTER.isoformat())
    reference = check_records_with_pandas(records, MESSAGES, NOT_AFTER)
    if plain is None:
        return  # not plain: validate_event_records takes the pandas chain itself
    problems, events = plain
    assert problems == reference.problems
    pd.testing.assert_frame_equal(events, reference.events)


@MANY
@given(st.lists(st.fixed_dictionaries({}, optional={
    "event_type": st.sampled_from(EVENT_TYPES[:12]), "channel": st.sampled_from(CHANNELS[:4]),
    "message_id": st.sampled_from(MESSAGE_IDS[:4]), "value": st.sampled_from(NUMBERS[:13]),
    "propensity": st.sampled_from(NUMBERS[:13]), "topic": st.sampled_from(TEXTS[:4]),
    "ts": st.sampled_from(TIMESTAMPS[:9])}).map(_plain), min_size=1, max_size=6))
def test_plain_batches_with_and_without_problems_take_the_plain_path_and_agree(records):
    plain = check_plain_records(records, message_catalog(MESSAGES), NOT_AFTER.value, NOT_AFTER.isoformat())
    assert plain is not None
    reference = check_records_with_pandas(records, MESSAGES, NOT_AFTER)
    assert plain[0] == reference.problems
    pd.testing.assert_frame_equal(plain[1], reference.events)
    # The rows a store writes straight from the plain path are those it would make of the reference frame.
    rows = check_plain_rows(records, message_catalog(MESSAGES), NOT_AFTER.value, NOT_AFTER.isoformat())
    assert rows is not None and rows[1] == contract_rows(reference.events)


def test_a_value_only_pandas_reads_sends_the_whole_batch_to_the_pandas_chain():
    records = [_plain({"event_type": "visit"}), _plain({"event_type": "purchase", "value": "ten"})]
    assert check_plain_records(records, message_catalog(MESSAGES), NOT_AFTER.value, NOT_AFTER.isoformat()) is None
    batch = validate_event_records(records, MESSAGES, now=NOW, settings=ValidationSettings())
    assert batch.problems == ((1, "value", "bad_value", "value='ten' is not a number"),)


def test_a_click_without_channel_takes_its_message_channel_and_topic():
    records = [_plain({"event_type": "click", "message_id": "m2"}), _plain({"event_type": "sent", "message_id": "m3", "topic": "own"})]
    batch = validate_event_records(records, MESSAGES, now=NOW, settings=ValidationSettings())
    assert batch.problems == ()
    assert batch.events[["event_type", "channel", "topic"]].astype(object).values.tolist() == [
        ["click", "email", "fashion"], ["impression", "sms", "own"]]
