"""Validate raw contract tables: canonical frames for the good rows, reason-coded rejects for the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.contract.parse import TEXT, TIMESTAMP, has_utc_offset, is_blank, parse_lower_text, parse_number, parse_text, parse_timestamp
from engine.contract.read import ROW_COLUMN, SOURCE_COLUMN
from engine.contract.rules import RowVerdicts, show_value
from engine.contract.schema import (
    CHANNEL_REQUIRED_EVENT_TYPES,
    CUSTOMERS,
    DEFAULT_MESSAGE_VALUE,
    EVENT_TYPE_ALIASES,
    EVENT_TYPES,
    EVENTS,
    JOURNEY_STAGES,
    MESSAGE_EVENT_TYPES,
    MESSAGES,
    OUTCOME_EVENT_TYPES,
    SURVEY_MAX,
    SURVEY_MIN,
)

_JSONL_ERROR = "_jsonl_error"
# An event_id repeated with the same content is a duplicate (kept once); with other content, a conflict.
DUPLICATE_EVENT_ID = "duplicate_event_id"
CONFLICTING_EVENT_ID = "conflicting_event_id"
_BOOKKEEPING = (SOURCE_COLUMN, ROW_COLUMN, _JSONL_ERROR)


@dataclass(frozen=True)
class TableResult:
    """The accepted rows in canonical form and the rejected rows as they were read, with reasons."""

    accepted: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int


@dataclass(frozen=True)
class LiveRules:
    """Stricter rules for events arriving through the API: ``event_id`` is required (a retried batch is then
    idempotent), ``ts`` must state its zone, and events after ``not_after`` (now + allowed skew) are refused."""

    not_after: pd.Timestamp


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    if name in raw.columns:
        return raw[name]
    return pd.Series(pd.array([pd.NA] * len(raw), dtype=TEXT), index=raw.index)


def _source(raw: pd.DataFrame) -> str:
    files = raw[SOURCE_COLUMN].astype(str).unique() if SOURCE_COLUMN in raw.columns and len(raw) else []
    return ", ".join(files) or "(no file)"


def _finish(raw: pd.DataFrame, verdicts: RowVerdicts, canonical: pd.DataFrame, table: str) -> TableResult:
    ok = verdicts.ok
    rejected = raw.loc[~ok].drop(columns=[_JSONL_ERROR], errors="ignore")
    original = [c for c in rejected.columns if c not in _BOOKKEEPING]
    rejects = pd.DataFrame(
        {
            "table": table,
            SOURCE_COLUMN: rejected[SOURCE_COLUMN].astype(str).to_numpy() if len(rejected) else [],
            ROW_COLUMN: rejected[ROW_COLUMN].to_numpy() if len(rejected) else [],
            "reason": verdicts.reason[~ok],
            "detail": verdicts.detail[~ok],
        }
    )
    for name in original:
        rejects[name] = rejected[name].to_numpy()
    accepted = canonical.loc[ok].reset_index(drop=True)
    return TableResult(accepted=accepted, rejects=rejects, rows_read=len(raw))


def _reject_malformed_lines(raw: pd.DataFrame, verdicts: RowVerdicts) -> None:
    if _JSONL_ERROR in raw.columns:
        verdicts.reject(raw[_JSONL_ERROR].notna().to_numpy(), "malformed_line", "{value}", _JSONL_ERROR)


def validate_messages(raw: pd.DataFrame) -> TableResult:
    verdicts = RowVerdicts(raw)
    _reject_malformed_lines(raw, verdicts)
    source = _source(raw)
    message_id = parse_text(_column(raw, "message_id"))
    channel = parse_lower_text(_column(raw, "channel"))
    topic = parse_text(_column(raw, "topic"))
    stage = parse_lower_text(_column(raw, "journey_stage"))
    value, bad_value = parse_number(_column(raw, "value"))
    valid_from, bad_from = parse_timestamp(_column(raw, "valid_from"), source=source, name="valid_from")
    valid_to, bad_to = parse_timestamp(_column(raw, "valid_to"), source=source, name="valid_to")
    offer_id = parse_text(_column(raw, "offer_id"))
    attribution_days, bad_window = parse_number(_column(raw, "attribution_days"))

    verdicts.reject(message_id.isna(), "missing_message_id", "message_id is empty")
    verdicts.reject(channel.isna(), "missing_channel", "channel is empty")
    verdicts.reject(topic.isna(), "missing_topic", "topic is empty")
    verdicts.reject(
        stage.notna() & ~stage.isin(JOURNEY_STAGES),
        "unknown_journey_stage",
        f"journey_stage={{value}} is not one of {', '.join(JOURNEY_STAGES)}",
        "journey_stage",
    )
    verdicts.reject(bad_value, "bad_value", "value={value} is not a number", "value")
    verdicts.reject(value < 0, "negative_value", "value={value} is negative; expected >= 0", "value")
    verdicts.reject(bad_window, "bad_attribution_days", "attribution_days={value} is not a number", "attribution_days")
    verdicts.reject(attribution_days <= 0, "bad_attribution_days", "attribution_days={value} is not positive; expected a "
                    "number of days > 0, or empty for [training] attribution_days", "attribution_days")
    verdicts.reject(bad_from, "bad_timestamp", "valid_from={value} is not an ISO-8601 timestamp", "valid_from")
    verdicts.reject(bad_to, "bad_timestamp", "valid_to={value} is not an ISO-8601 timestamp", "valid_to")
    verdicts.reject(
        (valid_to <= valid_from).fillna(False),
        "empty_validity_window",
        "valid_to={value} is not after valid_from",
        "valid_to",
    )
    verdicts.reject_duplicates(message_id, "duplicate_message_id", "message_id")
    _reject_offer_twice_on_a_channel(verdicts, offer_id, channel)

    extras = [c for c in raw.columns if c not in MESSAGES.required + MESSAGES.optional and c not in _BOOKKEEPING]
    canonical = pd.DataFrame(
        {
            "message_id": message_id,
            "channel": channel,
            "topic": topic,
            "journey_stage": stage,
            "value": value.fillna(DEFAULT_MESSAGE_VALUE),
            "valid_from": valid_from,
            "valid_to": valid_to,
            "offer_id": offer_id,
            "attribution_days": attribution_days,
        }
    )
    for name in extras:
        canonical[name] = raw[name].to_numpy()
    return _finish(raw, verdicts, canonical, MESSAGES.name)


def _reject_offer_twice_on_a_channel(verdicts: RowVerdicts, offer_id: pd.Series, channel: pd.Series) -> None:
    """An offer is one message per channel (the same offer sent by email, app and web): a second message
    of an offer on a channel that already has one (in an earlier clean row) is rejected. Coordination and
    the offer spacing rule block an offer on the OTHER channels; two messages of one offer on one channel
    could fill two slots of one slate."""
    clean = pd.Series(verdicts.ok, index=offer_id.index) & offer_id.notna() & channel.notna()
    pair = (offer_id + "\x1f" + channel).where(clean)
    repeated = clean & pair.duplicated(keep="first")
    verdicts.reject(repeated.to_numpy(dtype=bool), "offer_on_one_channel_twice",
                    "offer_id={value} already has a message on this channel in an earlier row; an offer has one message per channel",
                    "offer_id")


def validate_customers(raw: pd.DataFrame) -> TableResult:
    verdicts = RowVerdicts(raw)
    _reject_malformed_lines(raw, verdicts)
    customer_id = parse_text(_column(raw, "customer_id"))
    verdicts.reject(customer_id.isna(), "missing_customer_id", "customer_id is empty")
    verdicts.reject_duplicates(customer_id, "duplicate_customer_id", "customer_id")
    canonical = pd.DataFrame({"customer_id": customer_id})
    for name in raw.columns:
        if name not in ("customer_id", *_BOOKKEEPING):
            canonical[name] = raw[name].to_numpy()
    return _finish(raw, verdicts, canonical, CUSTOMERS.name)


def validate_events(raw: pd.DataFrame, messages: pd.DataFrame) -> TableResult:
    """``messages`` is the accepted, canonical catalog: events may only name messages in it."""
    verdicts, canonical = check_events(raw, messages)
    _reject_repeated_event_ids(raw, verdicts, canonical)
    result = _finish(raw, verdicts, canonical, EVENTS.name)
    # Sorted by time (stable, so equal timestamps keep file order): every consumer relies on it.
    ordered = result.accepted.sort_values("ts", kind="stable").reset_index(drop=True)
    return TableResult(accepted=ordered, rejects=result.rejects, rows_read=result.rows_read)


def _reject_repeated_event_ids(raw: pd.DataFrame, verdicts: RowVerdicts, canonical: pd.DataFrame) -> None:
    """Among valid rows, the first of each ``event_id`` is kept; a later one is a duplicate when its canonical
    content (every other column) equals the first's, else a conflict naming the first's file and row and
    the columns that differ: another event under a used id, which keeping the first would lose."""
    event_id = canonical["event_id"]
    clean = pd.Series(verdicts.ok, index=event_id.index) & event_id.notna()
    keys = event_id.where(clean)
    repeated = (clean & keys.duplicated(keep=False)).to_numpy()  # every row of an id used twice or more
    if not repeated.any():
        return
    rows = np.flatnonzero(repeated)
    first = pd.Series(rows).groupby(keys.iloc[rows].to_numpy()).transform("min").to_numpy()
    later = first < rows
    at, earlier = rows[later], first[later]
    columns = [c for c in canonical.columns if c != "event_id"]
    differs = np.column_stack([_differ(canonical[name].iloc[at], canonical[name].iloc[earlier]) for name in columns])
    conflict = differs.any(axis=1)
    details = np.full(len(raw), None, dtype=object)
    where = _row_names(raw, earlier[conflict])
    for row, name, changed in zip(at[conflict], where, differs[conflict]):
        shown = ", ".join(c for c, d in zip(columns, changed) if d)
        details[row] = (f"event_id={show_value(event_id.iloc[row])} was used by {name} with other {shown}; "
                        "only an identical repeat is a duplicate")
    mask = np.zeros(len(raw), dtype=bool)
    mask[at[conflict]] = True
    verdicts.reject_each(mask, CONFLICTING_EVENT_ID, details, "event_id")
    mask[:] = False
    mask[at[~conflict]] = True
    verdicts.reject(mask, DUPLICATE_EVENT_ID, "event_id={value} appeared in an earlier row with the same content; kept once",
                    "event_id")


def _differ(mine: pd.Series, theirs: pd.Series) -> np.ndarray:
    """Pairwise: the two values differ (two missing values are equal)."""
    mine, theirs = mine.reset_index(drop=True), theirs.reset_index(drop=True)
    same = (mine == theirs).fillna(False).to_numpy(dtype=bool) | (mine.isna() & theirs.isna()).to_numpy(dtype=bool)
    return ~same


def _row_names(raw: pd.DataFrame, rows: np.ndarray) -> list[str]:
    """Rows of ``raw`` (by position) as a person finds them: file and 1-based data row (line in JSON Lines)."""
    if SOURCE_COLUMN not in raw.columns or ROW_COLUMN not in raw.columns:
        return [f"row {row + 1}" for row in rows]
    files, numbers = raw[SOURCE_COLUMN].astype(str).to_numpy(), raw[ROW_COLUMN].to_numpy()
    return [f"{files[row]} row {numbers[row]}" for row in rows]


def check_events(raw: pd.DataFrame, messages: pd.DataFrame, live: LiveRules | None = None) -> tuple[RowVerdicts, pd.DataFrame]:
    """Every events rule but the duplicate one (files and the API share this chain, so a reason code means
    the same everywhere); returns the verdicts and all rows in canonical form.

    The API's plain events are judged row by row by ``plain_records.py`` with these rules in this order:
    a rule added or changed here goes there too (tests/contract/test_plain_records.py checks they agree)."""
    verdicts = RowVerdicts(raw)
    _reject_malformed_lines(raw, verdicts)
    source = _source(raw)
    ts, bad_ts = parse_timestamp(_column(raw, "ts"), source=source, name="ts")
    customer_id = parse_text(_column(raw, "customer_id"))
    event_type = parse_lower_text(_column(raw, "event_type")).replace(EVENT_TYPE_ALIASES)
    channel = parse_lower_text(_column(raw, "channel"))
    message_id = parse_text(_column(raw, "message_id"))
    topic = parse_text(_column(raw, "topic"))
    value, bad_value = parse_number(_column(raw, "value"))
    propensity, bad_propensity = parse_number(_column(raw, "propensity"))
    event_id = parse_text(_column(raw, "event_id"))
    decision_id = parse_text(_column(raw, "decision_id"))

    if live is not None:
        verdicts.reject(event_id.isna(), "missing_event_id", "event_id is empty; it is required to store an event once", "event_id")
    verdicts.reject(is_blank(_column(raw, "ts")), "missing_ts", "ts is empty", "ts")
    verdicts.reject(bad_ts, "bad_timestamp", "ts={value} is not an ISO-8601 timestamp", "ts")
    if live is not None:
        verdicts.reject(~has_utc_offset(_column(raw, "ts")), "naive_ts", "ts={value} has no zone; end it with Z or +hh:mm", "ts")
        verdicts.reject(
            (ts > live.not_after).fillna(False),
            "future_ts",
            f"ts={{value}} is after {live.not_after.isoformat()} (now + validation.max_future_seconds)",
            "ts",
        )
    verdicts.reject(customer_id.isna(), "missing_customer_id", "customer_id is empty", "customer_id")
    verdicts.reject(event_type.isna(), "missing_event_type", "event_type is empty", "event_type")
    verdicts.reject(
        ~event_type.isin(EVENT_TYPES).fillna(False),
        "unknown_event_type",
        f"event_type={{value}} is not one of {', '.join(EVENT_TYPES)} (or the alias sent)",
        "event_type",
    )
    verdicts.reject(bad_value, "bad_value", "value={value} is not a number", "value")
    verdicts.reject(bad_propensity, "bad_propensity", "propensity={value} is not a number", "propensity")
    is_survey = (event_type == "survey").fillna(False)
    verdicts.reject(is_survey & value.isna(), "missing_survey_score", "a survey needs value = the 0-10 score", "value")
    verdicts.reject(
        is_survey & ((value < SURVEY_MIN) | (value > SURVEY_MAX)),
        "survey_score_out_of_range",
        "value={value} is outside the survey scale 0-10",
        "value",
    )
    verdicts.reject(value < 0, "negative_value", "value={value} is negative; expected >= 0", "value")
    verdicts.reject(
        (propensity <= 0) | (propensity > 1),
        "propensity_out_of_range",
        "propensity={value} is outside (0, 1]",
        "propensity",
    )
    needs_message = event_type.isin(("impression", *OUTCOME_EVENT_TYPES)).fillna(False)
    verdicts.reject(
        needs_message & message_id.isna(), "missing_message_id", "this event type must name its message_id", "message_id"
    )
    catalog = messages.set_index("message_id")
    known = message_id.isin(catalog.index)
    verdicts.reject(
        message_id.notna() & ~known, "unknown_message", "message_id={value} is not in the messages table", "message_id"
    )
    needs_channel = event_type.isin(CHANNEL_REQUIRED_EVENT_TYPES).fillna(False)
    verdicts.reject(needs_channel & channel.isna(), "missing_channel", "an unsubscribe must name its channel", "channel")

    # Events about a message inherit its channel and topic; a contradicting channel is an error upstream.
    names_message = event_type.isin(MESSAGE_EVENT_TYPES).fillna(False) & known
    lookup = message_id.where(names_message)
    message_channel = lookup.map(catalog["channel"]).astype(TEXT)
    message_topic = lookup.map(catalog["topic"]).astype(TEXT)
    verdicts.reject(
        (names_message & channel.notna() & (channel != message_channel)).fillna(False),
        "channel_mismatch",
        "channel={value} differs from the channel of its message",
        "channel",
    )

    canonical = pd.DataFrame(
        {
            "ts": ts.astype(TIMESTAMP),
            "customer_id": customer_id,
            "event_type": event_type,
            "channel": channel.fillna(message_channel),
            "message_id": message_id,
            "value": value,
            "topic": topic.fillna(message_topic),
            "decision_id": decision_id,
            "propensity": propensity,
            "event_id": event_id,
        }
    )
    return verdicts, canonical
