"""Each events rule on a tiny hand-made file, asserting the exact reason code and what is kept."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.config import ValidationSettings
from engine.contract.load import load_dataset
from tests.builders import event, make_data_dir, write_jsonl

GOOD = event("2026-02-10T09:00:00Z", event_id="good")


def _only_reject(tmp_path, bad: dict) -> pd.Series:
    """Load one good and one bad event; return the single rejected row (the good one must be kept)."""
    data = make_data_dir(tmp_path, [GOOD, bad])
    dataset = load_dataset(data, ValidationSettings())
    assert list(dataset.events["event_id"]) == ["good"]
    rejects = dataset.report.rejects
    assert len(rejects) == 1
    row = rejects.iloc[0]
    assert row["table"] == "events"
    assert row["source_file"] == str(data / "events.csv")
    assert row["row_number"] == 2
    return row


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [
        (event("", event_id="x"), "missing_ts", "ts is empty"),
        (event("2026-13-01", event_id="x"), "bad_timestamp", "ts='2026-13-01' is not an ISO-8601 timestamp"),
        (event("02/10/2026", event_id="x"), "bad_timestamp", "ts='02/10/2026' is not an ISO-8601 timestamp"),
        (event("0740-12-09T02:46:06Z", event_id="x"), "bad_timestamp", None),  # outside 1677-2262: no overflow
        (event("6093-09-22T15:15:05Z", event_id="x"), "bad_timestamp", None),
        (event("2026-02-10", customer_id="", event_id="x"), "missing_customer_id", "customer_id is empty"),
        (event("2026-02-10", event_type=" ", event_id="x"), "missing_event_type", "event_type is empty"),
        (event("2026-02-10", event_type="like", event_id="x"), "unknown_event_type", None),
        (event("2026-02-10", event_type="purchase", value="ten", event_id="x"), "bad_value", "value='ten' is not a number"),
        (event("2026-02-10", event_type="purchase", value="-5", event_id="x"), "negative_value", "value='-5' is negative; expected >= 0"),
        (event("2026-02-10", event_type="survey", event_id="x"), "missing_survey_score", "a survey needs value = the 0-10 score"),
        (event("2026-02-10", event_type="survey", value="11", event_id="x"), "survey_score_out_of_range", "value='11' is outside the survey scale 0-10"),
        (event("2026-02-10", event_type="survey", value="-1", event_id="x"), "survey_score_out_of_range", "value='-1' is outside the survey scale 0-10"),
        (event("2026-02-10", event_type="impression", message_id="m1", propensity="p", event_id="x"), "bad_propensity", "propensity='p' is not a number"),
        (event("2026-02-10", event_type="impression", message_id="m1", propensity="0", event_id="x"), "propensity_out_of_range", "propensity='0' is outside (0, 1]"),
        (event("2026-02-10", event_type="impression", message_id="m1", propensity="1.5", event_id="x"), "propensity_out_of_range", "propensity='1.5' is outside (0, 1]"),
        (event("2026-02-10", event_type="click", event_id="x"), "missing_message_id", "this event type must name its message_id"),
        (event("2026-02-10", event_type="impression", event_id="x"), "missing_message_id", "this event type must name its message_id"),
        (event("2026-02-10", event_type="click", message_id="m9", event_id="x"), "unknown_message", "message_id='m9' is not in the messages table"),
        (event("2026-02-10", event_type="complaint", message_id="m9", event_id="x"), "unknown_message", "message_id='m9' is not in the messages table"),
        (event("2026-02-10", event_type="unsubscribe", event_id="x"), "missing_channel", "an unsubscribe must name its channel"),
        (event("2026-02-10", event_type="impression", channel="sms", message_id="m1", event_id="x"), "channel_mismatch", "channel='sms' differs from the channel of its message"),
        (GOOD, "duplicate_event_id", "event_id='good' appeared in an earlier row with the same content; kept once"),
        (event("2026-02-10", event_id="good"), "conflicting_event_id", None),  # another time: test_a_reused_event_id_...
    ],
)
def test_each_row_rule_rejects_with_its_reason(tmp_path, bad, reason, detail):
    row = _only_reject(tmp_path, bad)
    assert row["reason"] == reason
    if detail is not None:
        assert row["detail"] == detail


def test_the_first_broken_rule_decides_the_reason(tmp_path):
    row = _only_reject(tmp_path, event("garbage", event_type="like", event_id="x"))
    assert row["reason"] == "bad_timestamp"


def test_rejected_rows_keep_their_original_text(tmp_path):
    row = _only_reject(tmp_path, event(" 2026-13-01 ", event_type="Visit", event_id="x"))
    assert row["ts"] == " 2026-13-01 "
    assert row["event_type"] == "Visit"


def test_boundary_values_are_accepted(tmp_path):
    events = [
        event("2026-02-10", event_type="survey", value="0", event_id="s0"),
        event("2026-02-10", event_type="survey", value="10", event_id="s10"),
        event("2026-02-10", event_type="impression", message_id="m1", propensity="1", event_id="p1"),
        event("2026-02-10", event_type="purchase", value="0", event_id="v0"),
        event("2026-02-10", event_type="purchase", event_id="no-amount"),
    ]
    dataset = load_dataset(make_data_dir(tmp_path, events), ValidationSettings())
    assert dataset.report.rejects.empty
    assert len(dataset.events) == 5


def test_timestamps_become_utc_offsets_converted_naive_taken_as_utc(tmp_path):
    events = [
        event("2026-02-10T12:00:00+02:00", event_id="offset"),
        event("2026-02-10T09:30:00", event_id="naive"),
        event("2026-02-10", event_id="date-only"),
        event("2026-03-29T01:30:00-05:00", event_id="negative-offset"),
    ]
    dataset = load_dataset(make_data_dir(tmp_path, events), ValidationSettings())
    by_id = dataset.events.set_index("event_id")["ts"]
    assert str(by_id.dtype) == "datetime64[ns, UTC]"
    assert by_id["offset"] == pd.Timestamp("2026-02-10T10:00:00Z")
    assert by_id["naive"] == pd.Timestamp("2026-02-10T09:30:00Z")
    assert by_id["date-only"] == pd.Timestamp("2026-02-10T00:00:00Z")
    assert by_id["negative-offset"] == pd.Timestamp("2026-03-29T06:30:00Z")


def test_events_are_sorted_by_time_and_vocabulary_is_canonical(tmp_path):
    events = [
        event("2026-02-12", event_type="SENT", message_id="m2", event_id="late"),
        event("2026-02-11", event_type=" Click ", message_id="m1", channel="EMAIL", event_id="early"),
    ]
    dataset = load_dataset(make_data_dir(tmp_path, events), ValidationSettings())
    frame = dataset.events
    assert list(frame["event_id"]) == ["early", "late"]
    assert list(frame["event_type"]) == ["click", "impression"]
    # Channel and topic come from the catalog when the event does not say them.
    assert list(frame["channel"]) == ["email", "email"]
    assert list(frame["topic"]) == ["travel", "fashion"]


def test_events_without_event_id_are_all_kept(tmp_path):
    events = [event("2026-02-10"), event("2026-02-10")]
    dataset = load_dataset(make_data_dir(tmp_path, events), ValidationSettings())
    assert len(dataset.events) == 2


def test_a_repeated_event_id_keeps_the_first_valid_occurrence(tmp_path):
    events = [
        event("not-a-time", event_id="e1"),
        event("2026-02-10", event_id="e1", customer_id="second"),
        event("2026-02-10", event_id="e1", customer_id="second"),
    ]
    dataset = load_dataset(make_data_dir(tmp_path, events), ValidationSettings(max_reject_share=1))
    assert list(dataset.events["customer_id"]) == ["second"]
    assert list(dataset.report.rejects["reason"]) == ["bad_timestamp", "duplicate_event_id"]
    assert list(dataset.report.rejects["row_number"]) == [1, 3]


def test_a_reused_event_id_with_other_content_is_a_conflict_naming_the_first_row(tmp_path):
    unsubscribe = {"event_type": "unsubscribe", "channel": "email"}
    events = [
        event("2026-02-10T09:00:00Z", "c1", event_id="u1", **unsubscribe),
        event("2026-02-10T09:00:00Z", "c2", event_id="u1", **unsubscribe),  # another customer: an opt-out keeping it would lose
        event("2026-02-10T09:00:00Z", "c1", event_id="u1", **unsubscribe),  # the first again: a duplicate
        event("2026-02-11T09:00:00Z", "c1", event_id="u1", event_type="unsubscribe", channel="sms"),
        event("2026-02-10T10:00:00+01:00", "c1", event_id="u1", **unsubscribe),  # the same instant, written otherwise
    ]
    data = make_data_dir(tmp_path, events)
    dataset = load_dataset(data, ValidationSettings(max_reject_share=1))
    assert list(dataset.events["customer_id"]) == ["c1"]
    rejects = dataset.report.rejects
    assert list(zip(rejects["row_number"], rejects["reason"])) == [
        (2, "conflicting_event_id"), (3, "duplicate_event_id"), (4, "conflicting_event_id"), (5, "duplicate_event_id")]
    first = f"{data / 'events.csv'} row 1"
    assert list(rejects["detail"][rejects["reason"] == "conflicting_event_id"]) == [
        f"event_id='u1' was used by {first} with other customer_id; only an identical repeat is a duplicate",
        f"event_id='u1' was used by {first} with other ts, channel; only an identical repeat is a duplicate",
    ]


def test_events_naming_a_rejected_message_are_rejected_too(tmp_path):
    messages = [{"message_id": "m1", "channel": "email", "topic": "t", "value": "-1"}, {"message_id": "m2", "channel": "email", "topic": "t"}]
    events = [event("2026-02-10", event_type="click", message_id="m1"), event("2026-02-10", event_type="click", message_id="m2")]
    dataset = load_dataset(make_data_dir(tmp_path, events, messages=messages), ValidationSettings(max_reject_share=1))
    counts = dataset.report.reject_counts.set_index(["table", "reason"])["count"]
    assert counts[("messages", "negative_value")] == 1
    assert counts[("events", "unknown_message")] == 1


def test_jsonl_events_reject_a_malformed_line_and_keep_the_rest(tmp_path):
    make_data_dir(tmp_path, [GOOD])
    (tmp_path / "events.csv").unlink()
    write_jsonl(
        tmp_path / "events.jsonl",
        [
            {"ts": "2026-02-10T09:00:00Z", "customer_id": "c1", "event_type": "purchase", "value": 12.5},
            '{"ts": "2026-02-10", "customer_id": ',
            "[1, 2]",
            {"ts": "2026-02-11", "customer_id": 42, "event_type": "visit", "topic": "travel"},
        ],
    )
    dataset = load_dataset(tmp_path, ValidationSettings(max_reject_share=1))
    assert list(dataset.events["customer_id"]) == ["c1", "42"]
    assert dataset.events["value"].iloc[0] == 12.5
    rejects = dataset.report.rejects
    assert list(rejects["reason"]) == ["malformed_line", "malformed_line"]
    assert list(rejects["row_number"]) == [2, 3]
    assert rejects["detail"].iloc[1] == "'line is valid JSON but not an object'"
