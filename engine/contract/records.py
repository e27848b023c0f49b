"""Validate a batch of events as they arrive through the API: a list of JSON objects.

The rules and reason codes are the file validator's (:func:`engine.contract.validate.check_events`), plus
the live rules of :class:`~engine.contract.validate.LiveRules`: ``missing_event_id``, ``naive_ts`` and
``future_ts``. A batch is all or nothing: ``events`` is empty as soon as one event has a problem.

Differences from files, on purpose:
- an ``event_id`` repeated within the batch is not a problem here: the store acknowledges an identical
  resend as a duplicate and refuses one with other content as a conflict (reason ``conflicting_event_id``,
  :func:`engine.store.interface.event_id_conflicts`), judging both against the stored events under its write lock;
- customers missing from the customers table are accepted, as in files (where they are kept and only
  counted in the summary): a new customer's first events arrive before the nightly table names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from engine.contract.plain_records import canonical_frame, check_plain_rows, message_catalog
from engine.contract.validate import LiveRules, check_events

if TYPE_CHECKING:  # annotations only: the configuration reads the contract's vocabulary, not the reverse
    from engine.config import ValidationSettings

# The validator's marker for a line that is not a JSON object (reason code ``malformed_line``).
_MALFORMED = "_jsonl_error"


class EventProblem(NamedTuple):
    index: int  # position in the batch, from 0
    column: str | None  # None when the event as a whole is malformed
    reason: str  # a reason code of docs/data-contract.md
    message: str  # a sentence naming the column and the value


@dataclass(frozen=True)
class EventBatch:
    """The batch in canonical contract columns (batch order), or empty if any event has a problem:
    ``events`` as a frame, or ``rows`` as contract rows when the row-by-row path checked it (the
    frame is then built only if asked for)."""

    problems: tuple[EventProblem, ...]
    frame: pd.DataFrame | None = field(default=None, repr=False)
    rows: list[tuple] | None = field(default=None, repr=False)

    @property
    def events(self) -> pd.DataFrame:
        return self.frame if self.frame is not None else canonical_frame(self.rows or [])


def validate_event_records(
    records: Sequence[object], messages: pd.DataFrame, *, now: pd.Timestamp, settings: ValidationSettings,
    lookup: dict[str, tuple[str, str]] | None = None,
) -> EventBatch:
    """Check ``records`` against the accepted, canonical ``messages`` catalog.

    ``now`` is the caller's clock (timezone-aware): events later than ``now + settings.max_future_seconds``
    are refused as ``future_ts``. ``lookup`` is :func:`message_catalog` of ``messages``, if the caller
    keeps one (the API checks every batch against its model's one catalog: reading it costs more than
    checking a batch of events).
    """
    now = pd.Timestamp(now)
    if now.tz is None:
        raise ValueError("now must be timezone-aware (UTC)")
    not_after = now.tz_convert("UTC") + pd.Timedelta(seconds=settings.max_future_seconds)
    plain = check_plain_rows(records, message_catalog(messages) if lookup is None else lookup, not_after.value,
                             not_after.isoformat())
    if plain is not None:  # the common case, row by row (same rules and messages; see plain_records.py)
        found, rows = plain
        return EventBatch(problems=tuple(EventProblem(*p) for p in found), rows=rows)
    return check_records_with_pandas(records, messages, not_after)


def check_records_with_pandas(records: Sequence[object], messages: pd.DataFrame, not_after: pd.Timestamp) -> EventBatch:
    """The file validator's chain on any batch: the reference the row-by-row path must agree with."""
    rows = [r if isinstance(r, dict) else {_MALFORMED: f"not a JSON object ({type(r).__name__})"} for r in records]
    # Everything as Python objects, so that JSON numbers in ts or ids are judged like text in a file.
    raw = pd.DataFrame(rows, dtype=object, index=pd.RangeIndex(len(rows)))
    verdicts, canonical = check_events(raw, messages, LiveRules(not_after=not_after))
    problems = tuple(
        EventProblem(i, None, "malformed_line", rows[i][_MALFORMED])
        if verdicts.reason[i] == "malformed_line"
        else EventProblem(i, verdicts.column[i], str(verdicts.reason[i]), str(verdicts.detail[i]))
        for i in range(len(rows))
        if verdicts.reason[i] is not None
    )
    events = canonical.iloc[:0] if problems else canonical
    return EventBatch(problems=problems, frame=events.reset_index(drop=True))
