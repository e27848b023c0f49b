"""Events arriving through the API: the file rules and codes, plus event_id, zoned ts and no future ts."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.config import ValidationSettings
from engine.contract.records import EventProblem, validate_event_records
from engine.contract.validate import validate_events
from tests.builders import DEFAULT_MESSAGES, messages_frame

MESSAGES = messages_frame(DEFAULT_MESSAGES)
NOW = pd.Timestamp("2026-02-10T12:00:00Z")


def record(ts: str = "2026-02-10T09:00:00Z", event_type: str = "visit", **extra: object) -> dict:
    return {"ts": ts, "customer_id": "c1", "event_type": event_type, "event_id": "e", **extra}


def check(records: list, settings: ValidationSettings = ValidationSettings(), now: pd.Timestamp = NOW):
    return validate_event_records(records, MESSAGES, now=now, settings=settings)


def test_each_invalid_event_is_reported_with_its_index_column_and_reason():
    batch = check(
        [
            record(event_id="ok-1"),
            record("2026-02-10T09:00:00"),
            record(event_type="click", message_id="m9"),
            record(event_id="ok-2"),
            {"ts": "2026-02-10T09:00:00Z", "customer_id": "c1", "event_type": "visit"},
            ["not", "an", "object"],
            record(event_type="survey", value=11),
        ]
    )
    assert batch.problems == (
        (1, "ts", "naive_ts", "ts='2026-02-10T09:00:00' has no zone; end it with Z or +hh:mm"),
        (2, "message_id", "unknown_message", "message_id='m9' is not in the messages table"),
        (4, "event_id", "missing_event_id", "event_id is empty; it is required to store an event once"),
        (5, None, "malformed_line", "not a JSON object (list)"),
        (6, "value", "survey_score_out_of_range", "value='11' is outside the survey scale 0-10"),
    )
    assert isinstance(batch.problems[0], EventProblem)
    assert batch.events.empty  # the batch is all or nothing


@pytest.mark.parametrize(
    "bad",
    [
        record(""),
        record("2026-13-01T00:00:00Z"),
        record(event_type="like"),
        record(customer_id=" "),
        record(event_type="purchase", value="ten"),
        record(event_type="purchase", value=-5),
        record(event_type="survey"),
        record(event_type="impression", message_id="m1", propensity=0),
        record(event_type="impression", message_id="m1", propensity="p"),
        record(event_type="click"),
        record(event_type="unsubscribe"),
        record(event_type="impression", channel="sms", message_id="m1"),
    ],
)
def test_reason_and_message_are_the_file_validators(bad):
    raw = pd.DataFrame([bad], dtype=object).assign(source_file="events.jsonl", row_number=1)
    from_file = validate_events(raw, MESSAGES).rejects.iloc[0]
    (problem,) = check([bad]).problems
    assert (problem.index, problem.reason, problem.message) == (0, from_file["reason"], from_file["detail"])


def test_a_valid_batch_comes_back_canonical_in_batch_order():
    batch = check(
        [
            record("2026-02-10T11:30:00+01:00", event_type=" Click ", message_id="m1", event_id="e1"),
            record("2026-02-10T09:00:00Z", event_type="SENT", message_id="m3", propensity=0.25, event_id="e2"),
            record("2026-02-10T08:00:00Z", event_type="purchase", value=129.9, customer_id="new-customer", event_id="e3"),
        ]
    )
    assert batch.problems == ()
    events = batch.events
    assert list(events["event_id"]) == ["e1", "e2", "e3"]
    assert list(events["ts"]) == [pd.Timestamp(t) for t in ("2026-02-10T10:30:00Z", "2026-02-10T09:00:00Z", "2026-02-10T08:00:00Z")]
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]"
    assert list(events["event_type"]) == ["click", "impression", "purchase"]
    assert list(events["channel"].fillna("-")) == ["email", "sms", "-"]  # from the message when not given
    assert list(events["value"].fillna(-1)) == [-1, -1, 129.9]
    assert events["propensity"].iloc[1] == 0.25
    # Customers unknown to the customers table are accepted (cold start), as in files.
    assert events["customer_id"].iloc[2] == "new-customer"


def test_a_repeated_event_id_within_the_batch_is_not_a_problem():
    batch = check([record(event_id="same"), record(event_id="same")])
    assert batch.problems == ()
    assert list(batch.events["event_id"]) == ["same", "same"]  # the store keeps the first


@pytest.mark.parametrize(
    ("ts", "max_future_seconds", "refused"),
    [
        ("2026-02-10T12:05:00Z", 300, False),  # exactly now + 300 s
        ("2026-02-10T12:05:00.000001Z", 300, True),
        ("2026-02-10T13:04:59+01:00", 300, False),  # 12:04:59 UTC
        ("2026-02-10T13:05:01+01:00", 300, True),  # 12:05:01 UTC
        ("2026-02-10T12:00:00Z", 0, False),
        ("2026-02-10T12:00:01Z", 0, True),
        ("2020-01-01T00:00:00Z", 0, False),  # the past is never refused
    ],
)
def test_events_later_than_now_plus_the_allowed_skew_are_future_ts(ts, max_future_seconds, refused):
    batch = check([record(ts)], settings=ValidationSettings(max_future_seconds=max_future_seconds))
    limit = (NOW + pd.Timedelta(seconds=max_future_seconds)).isoformat()
    expected = ((0, "ts", "future_ts", f"ts={ts!r} is after {limit} (now + validation.max_future_seconds)"),)
    assert batch.problems == (expected if refused else ())


def test_now_is_the_callers_clock_not_the_machines():
    assert check([record("2030-01-01T00:00:00Z")], now=pd.Timestamp("2030-01-01T00:00:00Z")).problems == ()
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        check([record()], now=pd.Timestamp("2026-02-10T12:00:00"))


@pytest.mark.parametrize("ts", ["2026-02-10", "2026-02-10T09:00:00", "2026-02-10 09:00"])
def test_a_timestamp_without_zone_is_refused(ts):
    assert [p.reason for p in check([record(ts)]).problems] == ["naive_ts"]


@pytest.mark.parametrize("ts", ["2026-02-10T09:00:00Z", "2026-02-10T09:00:00.5+02:00", "2026-02-10T04:00-0500", "20260210T090000Z"])
def test_a_timestamp_with_zone_is_accepted(ts):
    assert check([record(ts)]).problems == ()


def test_json_numbers_are_judged_like_text_in_a_file():
    batch = check([record(ts=1770714000), record(event_type="survey", value=9, customer_id=42, event_id=7)])
    assert batch.problems == ((0, "ts", "bad_timestamp", "ts='1770714000' is not an ISO-8601 timestamp"),)
    ok = check([record(event_type="survey", value=9, customer_id=42, event_id=7)]).events
    assert (ok["customer_id"].iloc[0], ok["event_id"].iloc[0], ok["value"].iloc[0]) == ("42", "7", 9.0)


def test_an_empty_batch_has_no_problems_and_no_events():
    batch = check([])
    assert batch.problems == () and batch.events.empty
