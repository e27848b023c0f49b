"""The online event store: where the API keeps acknowledged events until the nightly export.

The interface is small and backend-neutral: SQLite embedded by default (``serving/store.py``), a shared
store such as Redis when several replicas serve. Events go in validated and canonical (see
:func:`engine.contract.records.validate_event_records`) and come out in contract columns, time in UTC.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.config import ValidationSettings
from engine.contract.parse import TEXT, TIMESTAMP
from engine.contract.records import EventProblem, validate_event_records
from engine.contract.schema import EVENTS
from engine.errors import NbmError
from engine.timeutil import to_ns

# Contract order: ts, customer_id, event_type, channel, message_id, value, topic, decision_id, propensity, event_id.
EVENT_COLUMNS: tuple[str, ...] = EVENTS.required + EVENTS.optional
_NUMBERS = ("value", "propensity")
EXPORT_CHUNK_ROWS = 100_000


class StoreUnavailableError(NbmError):
    """The store cannot take or serve events now (read-only, disk full, locked too long, closed).

    Nothing of the batch was stored; the client may retry the same batch (the API answers 503).
    """

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(f"event store {path}: {message}")


class InvalidEventsError(NbmError):
    """At least one event of a batch broke a contract rule; nothing of the batch was stored."""

    def __init__(self, problems: tuple[EventProblem, ...]) -> None:
        self.problems = problems
        shown = "; ".join(f"event {p.index}: {p.reason} ({p.message})" for p in problems[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        super().__init__(f"{len(problems)} invalid event(s), nothing stored: {shown}{more}")


@dataclass(frozen=True)
class AppendResult:
    stored: int  # events new to the store
    duplicates: int  # events whose event_id was already stored, or repeated earlier in the batch


class EventStore(ABC):
    """Acknowledged events, durable once :meth:`append` returns, each ``event_id`` stored once."""

    @abstractmethod
    def append(self, events: pd.DataFrame) -> AppendResult:
        """Store a validated batch (contract columns, ``event_id`` on every row) atomically: all or nothing.

        An ``event_id`` already stored, or seen earlier in the batch, is acknowledged and not stored again:
        the first one wins. Raises :class:`StoreUnavailableError` when the store cannot write.
        """

    def append_rows(self, rows: list[tuple]) -> AppendResult:
        """:meth:`append` of contract rows (:func:`contract_rows`): backends that store rows override it
        to skip the frame."""
        return self.append(contract_frame(rows))

    @abstractmethod
    def for_customer(self, customer_id: str, since_ns: int | None = None) -> pd.DataFrame:
        """The customer's events with ``ts >= since_ns``, in contract columns, sorted by ``ts``
        (equal times in arrival order): what the API needs to rebuild a customer's live state."""

    def rows_for_customer(self, customer_id: str, since_ns: int | None = None) -> list[tuple]:
        """:meth:`for_customer` as :func:`contract_rows` rows: what a decision reads, with no frame built
        for the handful of events a customer sends between two trainings. Backends that store rows
        override it to skip the frame altogether."""
        return contract_rows(self.for_customer(customer_id, since_ns))

    def rows_for_customers(self, customer_ids: Sequence[str], since_ns: int | None = None) -> dict[str, list[tuple]]:
        """:meth:`rows_for_customer` of each distinct customer: what a batch of decisions reads. Backends
        override it to answer in one read."""
        return {customer: self.rows_for_customer(customer, since_ns) for customer in dict.fromkeys(customer_ids)}

    @abstractmethod
    def since(self, ts_ns: int | None, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """Every event with ``ts >= ts_ns`` (all if None) in contract columns, by ``ts``, in chunks."""

    def export(self, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """Every stored event in contract columns, by ``ts``, in chunks."""
        return self.since(None, chunk_rows)

    @abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; later calls raise :class:`StoreUnavailableError`."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def record_events(
    store: EventStore,
    records: Sequence[object],
    messages: pd.DataFrame,
    *,
    now: pd.Timestamp,
    settings: ValidationSettings,
    lookup: dict[str, tuple[str, str]] | None = None,
) -> AppendResult:
    """Validate a batch as it arrived (JSON objects) and store it: the one engine call of ``POST /v1/events``.

    Raises :class:`InvalidEventsError` with every problem (index, column, reason, message) if any event is
    invalid, storing nothing; :class:`StoreUnavailableError` if the store cannot write. ``lookup``: as
    for :func:`~engine.contract.records.validate_event_records`.
    """
    batch = validate_event_records(records, messages, now=now, settings=settings, lookup=lookup)
    if batch.problems:
        raise InvalidEventsError(batch.problems)
    return store.append(batch.events) if batch.rows is None else store.append_rows(batch.rows)


def contract_rows(events: pd.DataFrame) -> list[tuple]:
    """Plain rows in :data:`EVENT_COLUMNS` order with ``ts`` as int ns UTC and None for missing values:
    how backends store events."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack contract columns {missing}")
    if events["event_id"].isna().any():
        raise ValueError("every stored event needs an event_id (validate the batch first)")
    columns: list[list] = [to_ns(events["ts"]).tolist()]
    for name in EVENT_COLUMNS[1:]:
        column = events[name]
        if name in _NUMBERS:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            columns.append([None if np.isnan(v) else float(v) for v in values])
        else:
            columns.append([None if pd.isna(v) else str(v) for v in column.to_numpy(dtype=object)])
    return list(zip(*columns))


@functools.cache
def _empty_frame() -> pd.DataFrame:
    """The frame of no events, built once (callers get shallow copies): its dtypes cost as much as rows."""
    return contract_frame([(0,) + (None,) * (len(EVENT_COLUMNS) - 1)]).iloc[:0]


def contract_frame(rows: Iterable[Sequence[object]]) -> pd.DataFrame:
    """The canonical events frame (as the contract loader returns it) from :func:`contract_rows` rows.

    Built column by column from plain lists: the API calls this on every decision for the customer's
    live events, most often none, so the fixed cost of ``from_records`` plus a cast per column counts.
    """
    columns = list(zip(*rows))
    if not columns:
        return _empty_frame().copy(deep=False)
    data = {"ts": pd.Series(pd.to_datetime(np.asarray(columns[0], dtype=np.int64), unit="ns", utc=True), dtype=TIMESTAMP)}
    for name, values in zip(EVENT_COLUMNS[1:], columns[1:]):
        if name in _NUMBERS:
            data[name] = pd.Series(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
        else:
            data[name] = pd.Series(list(values), dtype=TEXT)
    return pd.DataFrame(data, columns=list(EVENT_COLUMNS))
