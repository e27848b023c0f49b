"""The online event store: where the API keeps acknowledged events until the nightly export.

The interface is small and backend-neutral: SQLite embedded by default (``engine/store/events.py``), a shared
store such as Redis when several replicas serve. Events go in validated and canonical (see
:func:`engine.contract.records.validate_event_records`) and come out in contract columns, time in UTC.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from engine.config import ValidationSettings
from engine.contract.parse import TEXT, TIMESTAMP
from engine.contract.records import EventProblem, validate_event_records
from engine.contract.schema import EVENTS
from engine.contract.validate import CONFLICTING_EVENT_ID
from engine.errors import NbmError
from engine.timeutil import to_ns

# Contract order: ts, customer_id, event_type, channel, message_id, value, topic, decision_id, propensity, event_id.
EVENT_COLUMNS: tuple[str, ...] = EVENTS.required + EVENTS.optional
_NUMBERS = ("value", "propensity")
EXPORT_CHUNK_ROWS = 100_000
# Event types a decision applies whatever their time, from their time on: email and SMS providers deliver
# opt-outs (and complaints) late, after the model's feature cutoff has passed them, and they must still hold.
APPLIED_AT_ANY_TIME: tuple[str, ...] = ("unsubscribe", "complaint")
_TS, _EVENT_TYPE, _EVENT_ID = (EVENT_COLUMNS.index(name) for name in ("ts", "event_type", "event_id"))


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
class EventIdConflict:
    """A batch event whose ``event_id`` is already stored, or used earlier in the batch, with other content."""

    index: int  # position in the batch, from 0
    event_id: str
    earlier: int | None  # the batch position of the earlier event with this id; None: the stored one
    differs: tuple[tuple[str, object, object], ...]  # (column, the earlier value, this event's value)
    reason: ClassVar[str] = CONFLICTING_EVENT_ID

    @property
    def message(self) -> str:
        first = "the stored event" if self.earlier is None else f"event {self.earlier} of this batch"
        changes = ", ".join(f"{column} {_shown(column, before)} there, {_shown(column, now)} here" for column, before, now in self.differs)
        return (f"event_id {self.event_id!r} is already used by {first} with other content ({changes}); only an "
                f"identical resend is a duplicate: send a new event with a new event_id")


class EventIdConflictError(NbmError):
    """An ``event_id`` was reused with other content (customer, type, time, ...): a new event under an old id,
    which storing it as a duplicate would lose. Nothing of the batch was stored (the API answers 409, each
    conflict with the reason code :data:`CONFLICTING_EVENT_ID`, as ``nbm validate`` gives it for files)."""

    def __init__(self, conflicts: tuple[EventIdConflict, ...]) -> None:
        self.conflicts = conflicts
        shown = "; ".join(f"event {c.index}: {c.message}" for c in conflicts[:3])
        more = f"; and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
        super().__init__(f"{len(conflicts)} event(s) reuse an event_id with other content, nothing stored: {shown}{more}")


@dataclass(frozen=True)
class AppendResult:
    stored: int  # events new to the store
    duplicates: int  # identical resends: the event_id already stored, or earlier in the batch, with the same content
    late: int = 0  # of the stored: stamped before the cutoff asked for, and not APPLIED_AT_ANY_TIME (see is_late)


class EventStore(ABC):
    """Acknowledged events, durable once :meth:`append` returns, each ``event_id`` stored once."""

    @abstractmethod
    def append(self, events: pd.DataFrame, *, cutoff_ns: int | None = None) -> AppendResult:
        """Store a validated batch (contract columns, ``event_id`` on every row) atomically: all or nothing.

        An event whose ``event_id`` is already stored, or used earlier in the batch, with the same content
        (:func:`event_id_conflicts`) is a duplicate: acknowledged, not stored again. With other content it
        is a conflict: raises :class:`EventIdConflictError` and stores nothing, checked under the same
        write lock as the insert. ``late`` counts the stored events :func:`is_late` at ``cutoff_ns`` (0
        without one). Raises :class:`StoreUnavailableError` when the store cannot write.
        """

    def append_rows(self, rows: list[tuple], *, cutoff_ns: int | None = None) -> AppendResult:
        """:meth:`append` of contract rows (:func:`contract_rows`): backends that store rows override it
        to skip the frame."""
        return self.append(contract_frame(rows), cutoff_ns=cutoff_ns)

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

    def rows_for_decisions(self, customer_ids: Sequence[str], cutoff_ns: int) -> dict[str, list[tuple]]:
        """What decisions read, per distinct customer: the events with ``ts >= cutoff_ns`` and every event
        of the :data:`APPLIED_AT_ANY_TIME` types whatever its time, as :func:`contract_rows` rows sorted by
        ``ts`` (equal times in arrival order). Backends override it to answer in one read."""
        return {customer: [row for row in self.rows_for_customer(customer) if not is_late(row, cutoff_ns)]
                for customer in dict.fromkeys(customer_ids)}

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
    cutoff_ns: int | None = None,
) -> AppendResult:
    """Validate a batch as it arrived (JSON objects) and store it: the one engine call of ``POST /v1/events``.

    Raises :class:`InvalidEventsError` with every problem (index, column, reason, message) if any event is
    invalid, storing nothing; :class:`EventIdConflictError` if an event reuses an ``event_id`` with other
    content, storing nothing; :class:`StoreUnavailableError` if the store cannot write. ``lookup``: as for
    :func:`~engine.contract.records.validate_event_records`. ``cutoff_ns``: the serving model's feature
    cutoff, for the result's ``late`` count.
    """
    batch = validate_event_records(records, messages, now=now, settings=settings, lookup=lookup)
    if batch.problems:
        raise InvalidEventsError(batch.problems)
    if batch.rows is None:
        return store.append(batch.events, cutoff_ns=cutoff_ns)
    return store.append_rows(batch.rows, cutoff_ns=cutoff_ns)


def is_late(row: Sequence[object], cutoff_ns: int | None) -> bool:
    """Whether a stored event (a :func:`contract_rows` row) is one a model with this feature cutoff cannot
    use until the next training: stamped before the cutoff (decisions read live events from the cutoff
    on) and not of a type applied at any time (:data:`APPLIED_AT_ANY_TIME`)."""
    return cutoff_ns is not None and int(row[_TS]) < cutoff_ns and row[_EVENT_TYPE] not in APPLIED_AT_ANY_TIME


def event_id_conflicts(rows: Sequence[tuple], stored: dict[str, tuple]) -> tuple[tuple[EventIdConflict, ...], list[int]]:
    """The conflicts of a batch of :func:`contract_rows` rows, and the positions of its events new to the
    store. ``stored``: the stored row of each batch ``event_id`` already stored.

    An event is compared with the stored event of its id, else with the first event of the batch with its
    id, on every column but ``event_id``: equal, it is a duplicate (neither a conflict nor new); different,
    a conflict naming the columns that differ."""
    first: dict[str, int] = {}
    conflicts, new = [], []
    for index, row in enumerate(rows):
        event_id = row[_EVENT_ID]
        earlier = stored.get(event_id)
        position = None
        if earlier is None:
            position = first.setdefault(event_id, index)
            if position == index:
                new.append(index)
                continue
            earlier = rows[position]
        if tuple(earlier) != tuple(row):
            differs = tuple((column, a, b) for column, a, b in zip(EVENT_COLUMNS, earlier, row) if a != b)
            conflicts.append(EventIdConflict(index, str(event_id), position, differs))
    return tuple(conflicts), new


def _shown(column: str, value: object) -> str:
    if value is None:
        return "empty"
    if column == "ts":
        return pd.Timestamp(int(value), tz="UTC").isoformat()  # type: ignore[call-overload]
    return repr(value)


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
