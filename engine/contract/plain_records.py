"""The API's common case, validated row by row: small batches of plain JSON events.

:func:`engine.contract.validate.check_events` judges whole columns with pandas, which costs about 150
pandas calls whatever the number of rows: ~15 ms for a batch of five events, most of a ``POST /v1/events``.
This module applies the same rules, in the same order, with the same reason codes and messages, to each
record in plain Python, but only to records whose every value has one obvious reading:

- text columns hold ``str`` (or nothing) with no surrounding whitespace; ``event_type`` and ``channel``
  are ASCII (lower-casing non-ASCII text is where Python and Arrow may differ);
- ``ts`` is ``YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]`` with a year from 1900 to 2199;
- ``value`` and ``propensity`` are JSON numbers (not booleans, finite) or decimal text.

Anything else (a number where text is expected, an exotic timestamp, a nested object, a record that is
not an object) returns ``None`` and the batch goes through the pandas chain: the two paths never disagree
because the fast one only answers where its reading is the pandas one, which ``tests/contract`` checks on
generated batches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.contract.parse import TEXT, TIMESTAMP
from engine.contract.rules import show_value
from engine.contract.schema import (
    CHANNEL_REQUIRED_EVENT_TYPES,
    EVENTS,
    EVENT_TYPE_ALIASES,
    EVENT_TYPES,
    MESSAGE_EVENT_TYPES,
    OUTCOME_EVENT_TYPES,
    SURVEY_MAX,
    SURVEY_MIN,
)

# (index, column, reason, message), as EventProblem holds them.
Problem = tuple[int, "str | None", str, str]

_TEXT_COLUMNS = ("customer_id", "message_id", "topic", "decision_id", "event_id")
_LOWER_COLUMNS = ("event_type", "channel")
_NUMBER_COLUMNS = ("value", "propensity")
EVENT_COLUMNS: tuple[str, ...] = EVENTS.required + EVENTS.optional  # the order of contract rows
# The bookkeeping column a line that is not a JSON object gets; a record carrying it is not plain.
_RESERVED = "_jsonl_error"
_TS = re.compile(r"(?:19|20|21)\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(Z|[+-]\d\d:\d\d)?")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_EVENT_TYPES = frozenset(EVENT_TYPES)
_NEEDS_MESSAGE = frozenset(("impression", *OUTCOME_EVENT_TYPES))
_NAMES_MESSAGE = frozenset(MESSAGE_EVENT_TYPES)
_NEEDS_CHANNEL = frozenset(CHANNEL_REQUIRED_EVENT_TYPES)


class _NotPlain(Exception):
    """A value the fast path does not read: the batch takes the pandas chain."""


def _text(record: dict, column: str, lower: bool = False) -> str | None:
    value = record.get(column)
    if value is None:
        return None
    if type(value) is not str or (value and (value[0].isspace() or value[-1].isspace())):
        raise _NotPlain
    if lower:
        if not value.isascii():
            raise _NotPlain
        value = value.lower()
    return value or None


def _number(record: dict, column: str) -> float:
    """NaN when absent (text that is not a decimal, even a bad one, is left to the pandas chain)."""
    value = record.get(column)
    if value is None:
        return np.nan
    if type(value) is int:
        return float(value)
    if type(value) is float:
        if not np.isfinite(value):
            raise _NotPlain
        return value
    if type(value) is str and _DECIMAL.fullmatch(value):
        return float(value)
    raise _NotPlain


def _timestamp(record: dict) -> tuple[int | None, bool, bool]:
    """(ns since the epoch in UTC or None if unparseable, present, zoned)."""
    value = record.get("ts")
    if value is None or value == "":
        return None, False, False
    if type(value) is not str:
        raise _NotPlain
    match = _TS.fullmatch(value)
    if match is None:
        raise _NotPlain
    try:
        stamp = pd.Timestamp(value)
    except ValueError:  # e.g. February 30th: what pandas' ISO-8601 parse calls unparseable too
        return None, True, match[1] is not None
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return stamp.as_unit("ns").value, True, match[1] is not None


def message_catalog(messages: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """message_id -> (channel, topic) of the canonical messages table."""
    return dict(zip(messages["message_id"].tolist(), zip(messages["channel"].tolist(), messages["topic"].tolist())))


def check_plain_records(records: Sequence[object], catalog: dict[str, tuple[str, str]],
                        not_after_ns: int, not_after_text: str) -> tuple[tuple[Problem, ...], pd.DataFrame] | None:
    """The live rules of ``check_events`` on plain records: (problems, canonical events in batch order),
    or None when a record is not plain. ``catalog`` maps message_id to its (channel, topic)."""
    checked = check_plain_rows(records, catalog, not_after_ns, not_after_text)
    return None if checked is None else (checked[0], canonical_frame(checked[1]))


def check_plain_rows(records: Sequence[object], catalog: dict[str, tuple[str, str]],
                     not_after_ns: int, not_after_text: str) -> tuple[tuple[Problem, ...], list[tuple]] | None:
    """:func:`check_plain_records` with the events as contract rows (``EVENTS`` column order, ``ts`` in
    int ns UTC, None where missing): what a store writes, with no frame built on the way."""
    try:
        rows = [_read(record) for record in records]
    except _NotPlain:
        return None
    problems = []
    for index, (row, record) in enumerate(zip(rows, records)):
        verdict = _first_problem(row, record, catalog, not_after_ns, not_after_text)
        if verdict is not None:
            problems.append((index, *verdict))
    return tuple(problems), _canonical_rows([] if problems else rows, catalog)


def _read(record: object) -> dict:
    if type(record) is not dict or _RESERVED in record:
        raise _NotPlain
    row = {c: _text(record, c) for c in _TEXT_COLUMNS}
    row.update({c: _text(record, c, lower=True) for c in _LOWER_COLUMNS})
    if row["event_type"] is not None:
        row["event_type"] = EVENT_TYPE_ALIASES.get(row["event_type"], row["event_type"])
    row.update({c: _number(record, c) for c in _NUMBER_COLUMNS})
    row["ts"], row["ts_present"], row["zoned"] = _timestamp(record)
    return row


def _first_problem(row: dict, record: dict, catalog: dict[str, tuple[str, str]], not_after_ns: int,
                   not_after_text: str) -> tuple[str | None, str, str] | None:
    """(column, reason, message) of the first rule the event breaks, in ``check_events``' order."""
    def shown(column: str) -> str:
        return show_value(record.get(column))

    event_type, value, propensity = row["event_type"], row["value"], row["propensity"]
    message_id, channel = row["message_id"], row["channel"]
    if row["event_id"] is None:
        return "event_id", "missing_event_id", "event_id is empty; it is required to store an event once"
    if not row["ts_present"]:
        return "ts", "missing_ts", "ts is empty"
    if row["ts"] is None:
        return "ts", "bad_timestamp", f"ts={shown('ts')} is not an ISO-8601 timestamp"
    if not row["zoned"]:
        return "ts", "naive_ts", f"ts={shown('ts')} has no zone; end it with Z or +hh:mm"
    if row["ts"] > not_after_ns:
        return "ts", "future_ts", f"ts={shown('ts')} is after {not_after_text} (now + validation.max_future_seconds)"
    if row["customer_id"] is None:
        return "customer_id", "missing_customer_id", "customer_id is empty"
    if event_type is None:
        return "event_type", "missing_event_type", "event_type is empty"
    if event_type not in _EVENT_TYPES:
        return ("event_type", "unknown_event_type",
                f"event_type={shown('event_type')} is not one of {', '.join(EVENT_TYPES)} (or the alias sent)")
    # bad_value and bad_propensity come here in check_events; a value they reject is not plain.
    if event_type == "survey" and np.isnan(value):
        return "value", "missing_survey_score", "a survey needs value = the 0-10 score"
    if event_type == "survey" and (value < SURVEY_MIN or value > SURVEY_MAX):
        return "value", "survey_score_out_of_range", f"value={shown('value')} is outside the survey scale 0-10"
    if value < 0:
        return "value", "negative_value", f"value={shown('value')} is negative; expected >= 0"
    if propensity <= 0 or propensity > 1:
        return "propensity", "propensity_out_of_range", f"propensity={shown('propensity')} is outside (0, 1]"
    if event_type in _NEEDS_MESSAGE and message_id is None:
        return "message_id", "missing_message_id", "this event type must name its message_id"
    if message_id is not None and message_id not in catalog:
        return "message_id", "unknown_message", f"message_id={shown('message_id')} is not in the messages table"
    if event_type in _NEEDS_CHANNEL and channel is None:
        return "channel", "missing_channel", "an unsubscribe must name its channel"
    if event_type in _NAMES_MESSAGE and message_id is not None and channel is not None and channel != catalog[message_id][0]:
        return "channel", "channel_mismatch", f"channel={shown('channel')} differs from the channel of its message"
    return None


def _canonical_rows(rows: list[dict], catalog: dict[str, tuple[str, str]]) -> list[tuple]:
    """Contract rows as ``check_events`` makes them: a message event takes its channel and topic from
    the catalog where it leaves them out."""
    out = []
    for row in rows:
        known = catalog.get(row["message_id"]) if row["event_type"] in _NAMES_MESSAGE and row["message_id"] is not None else None
        channel = row["channel"] if row["channel"] is not None or known is None else known[0]
        topic = row["topic"] if row["topic"] is not None or known is None else known[1]
        values = {**row, "channel": channel, "topic": topic}
        out.append(tuple(_cell(values[c], c) for c in EVENT_COLUMNS))
    return out


def _cell(value: object, column: str) -> object:
    if column in _NUMBER_COLUMNS:
        return None if value is None or value != value else float(value)  # NaN (no value) stored as None
    return value


def canonical_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """The contract frame of contract rows, with the validator's dtypes."""
    at = {c: i for i, c in enumerate(EVENT_COLUMNS)}

    def column(name: str) -> list:
        return [r[at[name]] for r in rows]

    ts = np.array([np.iinfo(np.int64).min if t is None else t for t in column("ts")], dtype=np.int64)
    frame = {"ts": pd.Series(ts.view("datetime64[ns]")).dt.tz_localize("UTC").astype(TIMESTAMP)}
    for name in EVENT_COLUMNS[1:]:
        if name in _NUMBER_COLUMNS:
            frame[name] = pd.Series([np.nan if v is None else v for v in column(name)], dtype="float64")
        else:
            frame[name] = pd.Series(column(name), dtype=TEXT)
    return pd.DataFrame(frame)
