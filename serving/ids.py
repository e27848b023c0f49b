"""Identifier checks for events arriving through the API, reported like the contract's row problems.

Files may hold any text as an id; through the API an id also becomes a log field, a metric label and a
database key, so it must be 1-128 printable characters (the same rule as the request models).
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.contract.records import EventProblem
from serving.schemas import MAX_ID_CHARS

ID_COLUMNS = ("event_id", "customer_id", "channel", "message_id", "decision_id")
INVALID_ID = "invalid_id"
_JSON_TYPES = {"dict": "object", "list": "array", "bool": "boolean"}


def id_problems(records: Sequence[object]) -> tuple[EventProblem, ...]:
    """One problem per bad id (reason ``invalid_id``); missing ids are left to the contract's rules."""
    problems = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue  # the contract reports it as malformed_line
        for column in ID_COLUMNS:
            message = _id_problem(column, record.get(column))
            if message is not None:
                problems.append(EventProblem(index, column, INVALID_ID, message))
    return tuple(problems)


def _id_problem(column: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        kind = _JSON_TYPES.get(type(value).__name__, type(value).__name__)
        return f"{column} is a JSON {kind}; expected text"
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        return f"{column} is {len(text)} characters long; at most {MAX_ID_CHARS}"
    if not text.isprintable():
        return f"{column} has control characters (line breaks, tabs, ...); ids are printable text"
    return None
