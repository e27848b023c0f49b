"""Data contract v1: table names, columns and vocabularies (see docs/data-contract.md).

This module is the single source of truth for the contract; the loader, the validator, the simulator and
the docs' examples all refer to these names.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT_VERSION = 1

EVENT_TYPES: tuple[str, ...] = (
    "impression",
    "open",
    "click",
    "conversion",
    "purchase",
    "visit",
    "support",
    "survey",
    "unsubscribe",
    "complaint",
)
# Spellings accepted on input and rewritten to the canonical type.
EVENT_TYPE_ALIASES: dict[str, str] = {"sent": "impression"}

# Outcomes of a delivered message; they must name it by message_id.
OUTCOME_EVENT_TYPES: tuple[str, ...] = ("open", "click", "conversion")
# An impression's label grade: the best outcome it earned (0 none).
OUTCOME_GRADES: dict[str, int] = {outcome: grade for grade, outcome in enumerate(OUTCOME_EVENT_TYPES, start=1)}
# Event types that may name a message; a named message must exist in the catalog.
MESSAGE_EVENT_TYPES: tuple[str, ...] = ("impression", "open", "click", "conversion", "complaint")
# An opt-out is always from one channel.
CHANNEL_REQUIRED_EVENT_TYPES: tuple[str, ...] = ("unsubscribe",)

JOURNEY_STAGES: tuple[str, ...] = ("awareness", "consideration", "purchase", "loyalty")

SURVEY_MIN, SURVEY_MAX = 0.0, 10.0
DEFAULT_MESSAGE_VALUE = 1.0


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: str | None
    formats: tuple[str, ...]
    # A table that may be absent from the data directory.
    may_be_missing: bool = False


MESSAGES = TableSpec(
    name="messages",
    required=("message_id", "channel", "topic"),
    optional=("journey_stage", "value", "valid_from", "valid_to", "offer_id", "attribution_days"),
    key="message_id",
    formats=(".csv", ".parquet"),
)
CUSTOMERS = TableSpec(
    name="customers",
    required=("customer_id",),
    optional=(),
    key="customer_id",
    formats=(".csv", ".parquet"),
    may_be_missing=True,
)
EVENTS = TableSpec(
    name="events",
    required=("ts", "customer_id", "event_type"),
    optional=("channel", "message_id", "value", "topic", "decision_id", "propensity", "event_id"),
    key="event_id",
    formats=(".csv", ".parquet", ".jsonl"),
)
TABLES: tuple[TableSpec, ...] = (MESSAGES, CUSTOMERS, EVENTS)
