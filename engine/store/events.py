"""The embedded event store: SQLite in WAL mode, one file under the server's home (``<home>/events.db``).

Durability: a batch is one transaction with ``synchronous=FULL``, so once :meth:`SqliteEventStore.append`
returns the batch survives a killed process and a power cut, and a batch cut short leaves nothing. A batch of
new ids is one plain ``INSERT`` (the primary key refuses it whole if an id is taken); one that repeats an id
is checked against the stored events inside a ``BEGIN IMMEDIATE`` transaction, so that no other writer
can store an id between the check and the insert. Each thread gets its own connection (FastAPI runs sync endpoints in a
threadpool): in WAL mode readers never wait for the writer, and writers, from any thread or process,
queue on SQLite's lock for up to ``busy_timeout_s``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

from engine.durable import fsync_directory
from engine.store.interface import APPLIED_AT_ANY_TIME, EVENT_COLUMNS, EXPORT_CHUNK_ROWS, AppendResult, EventIdConflictError, EventStore
from engine.store.interface import StoreUnavailableError, contract_frame, contract_rows, event_id_conflicts, is_late
from engine.store.sqlite import EARLIEST_NS, SqliteFile, transaction

EVENTS_DB = "events.db"
SCHEMA_VERSION = 1
# Contract columns in contract order; the time is stored as int64 ns since the epoch, UTC.
_COLUMNS = ("ts_ns", *EVENT_COLUMNS[1:])
_EVENT_ID = EVENT_COLUMNS.index("event_id")
_CUSTOMER_ID = EVENT_COLUMNS.index("customer_id")
_IN_LIMIT = 500  # customers per IN (...) list: well under SQLite's limit on bound parameters
# The events a decision reads before the cutoff: the same text in the partial index and in the query, which
# is how SQLite knows the index applies.
_APPLIED_AT_ANY_TIME = f"event_type IN ({', '.join(repr(kind) for kind in APPLIED_AT_ANY_TIME)})"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        ts_ns INTEGER NOT NULL, customer_id TEXT NOT NULL, event_type TEXT NOT NULL, channel TEXT,
        message_id TEXT, value REAL, topic TEXT, decision_id TEXT, propensity REAL,
        event_id TEXT NOT NULL PRIMARY KEY)""",
    "CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, ts_ns)",
    "CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts_ns)",
    # Opt-outs and complaints by customer, whatever their time: a few rows, read on every decision.
    f"CREATE INDEX IF NOT EXISTS applied_at_any_time_by_customer ON events (customer_id, ts_ns) WHERE {_APPLIED_AT_ANY_TIME}",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM events"
_INSERT = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def store_path(home: Path) -> Path:
    """Where the embedded store lives under a state directory (``paths.home``)."""
    return Path(home) / EVENTS_DB


class SqliteEventStore(SqliteFile, EventStore):
    """:class:`~engine.store.interface.EventStore` on one SQLite file; ``read_only`` opens it for export."""

    _TABLE = "events"
    _SYNCHRONOUS = "FULL"  # acknowledged events must survive a power cut (see the module docstring)
    _MISSING = "no event store here (nothing was ever stored)"
    _CLOSED = "the store is closed"
    _OPENING = "open the store"

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 5.0, read_only: bool = False) -> None:
        new = not Path(path).exists()
        super().__init__(path, busy_timeout_s=busy_timeout_s, read_only=read_only)
        if new:
            fsync_directory(self.path.parent)

    def append(self, events: pd.DataFrame, *, cutoff_ns: int | None = None) -> AppendResult:
        return self.append_rows(contract_rows(events), cutoff_ns=cutoff_ns)

    def append_rows(self, rows: list[tuple], *, cutoff_ns: int | None = None) -> AppendResult:
        if any(row[_EVENT_ID] is None for row in rows):
            raise ValueError("every stored event needs an event_id (validate the batch first)")
        if not rows:
            return AppendResult(stored=0, duplicates=0)
        if len({row[_EVENT_ID] for row in rows}) == len(rows):
            try:  # the common case, ids new to the store: one statement, refused whole if an id is taken
                self._insert_new("store the batch", _INSERT, rows)
            except sqlite3.IntegrityError:
                pass  # an id is stored already: nothing of the batch was; judge each event below
            else:
                return AppendResult(stored=len(rows), duplicates=0, late=sum(is_late(row, cutoff_ns) for row in rows))
        new = self._append_checked(rows)
        return AppendResult(stored=len(new), duplicates=len(rows) - len(new), late=sum(is_late(row, cutoff_ns) for row in new))

    def _append_checked(self, rows: list[tuple]) -> list[tuple]:
        """Store the events of ``rows`` whose id is new to the store and first in the batch, after checking
        every other one is an identical resend (:func:`~engine.store.interface.event_id_conflicts`), all under
        the write lock; returns the rows stored."""
        ids = list(dict.fromkeys(row[_EVENT_ID] for row in rows))
        with self._errors("store the batch"):
            connection = self._connection()
            with transaction(connection):
                stored: dict[str, tuple] = {}
                for start in range(0, len(ids), _IN_LIMIT):
                    part = ids[start : start + _IN_LIMIT]
                    query = f"{_SELECT} WHERE event_id IN ({', '.join('?' * len(part))})"
                    stored.update((row[_EVENT_ID], row) for row in connection.execute(query, part))
                conflicts, new = event_id_conflicts(rows, stored)
                if conflicts:
                    raise EventIdConflictError(conflicts)  # rolls the transaction back: it wrote nothing
                fresh = [rows[i] for i in new]
                for statement in self._statements(_INSERT, fresh):
                    connection.execute(*statement)
        return fresh

    def for_customer(self, customer_id: str, since_ns: int | None = None) -> pd.DataFrame:
        return contract_frame(self.rows_for_customer(customer_id, since_ns))

    def rows_for_customer(self, customer_id: str, since_ns: int | None = None) -> list[tuple]:
        query = f"{_SELECT} WHERE customer_id = ? AND ts_ns >= ? ORDER BY ts_ns, rowid"
        with self._errors("read events"):
            return self._connection().execute(query, (customer_id, EARLIEST_NS if since_ns is None else since_ns)).fetchall()

    def rows_for_decisions(self, customer_ids: Sequence[str], cutoff_ns: int) -> dict[str, list[tuple]]:
        # Two index ranges per customer in one statement: from the cutoff on (events_by_customer), and the
        # opt-outs and complaints before it (the partial index, empty for almost every customer).
        found: dict[str, list[tuple]] = {customer: [] for customer in dict.fromkeys(customer_ids)}
        wanted = list(found)
        with self._errors("read events"):
            for start in range(0, len(wanted), _IN_LIMIT):
                part = wanted[start : start + _IN_LIMIT]
                query = _decision_query(len(part))
                for row in self._connection().execute(query, (*part, cutoff_ns, *part, cutoff_ns)):
                    found[row[_CUSTOMER_ID]].append(row[:-1])  # in (ts, arrival) order; the arrival column dropped
        return found

    def rows_for_customers(self, customer_ids: Sequence[str], since_ns: int | None = None) -> dict[str, list[tuple]]:
        found: dict[str, list[tuple]] = {customer: [] for customer in dict.fromkeys(customer_ids)}
        wanted = list(found)
        since = EARLIEST_NS if since_ns is None else since_ns
        with self._errors("read events"):
            for start in range(0, len(wanted), _IN_LIMIT):
                part = wanted[start : start + _IN_LIMIT]
                query = f"{_SELECT} WHERE customer_id IN ({', '.join('?' * len(part))}) AND ts_ns >= ? ORDER BY ts_ns, rowid"
                for row in self._connection().execute(query, (*part, since)):
                    found[row[_CUSTOMER_ID]].append(row)  # in (ts, arrival) order, as rows_for_customer
        return found

    def since(self, ts_ns: int | None, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        query = f"{_SELECT} WHERE ts_ns >= ? ORDER BY ts_ns, rowid"
        yield from self._chunks("read events", query, (EARLIEST_NS if ts_ns is None else ts_ns,), chunk_rows, contract_frame)

    def _prepare(self, connection: sqlite3.Connection) -> None:
        if self.read_only:
            return
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreUnavailableError(f"the file system does not support WAL mode (got {mode})", path=str(self.path))
        with transaction(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StoreUnavailableError(f"schema version {version}; this nbm reads version {SCHEMA_VERSION}", path=str(self.path))
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@lru_cache(maxsize=8)
def _decision_query(customers: int) -> str:
    """:meth:`SqliteEventStore.rows_for_decisions` for ``customers`` ids: parameters (ids, cutoff, ids, cutoff)."""
    listed = ", ".join("?" * customers)
    columns = ", ".join(_COLUMNS)
    return (f"SELECT {columns}, rowid AS arrival FROM events WHERE customer_id IN ({listed}) AND ts_ns >= ? "
            f"UNION ALL SELECT {columns}, rowid FROM events WHERE customer_id IN ({listed}) AND ts_ns < ? "
            f"AND {_APPLIED_AT_ANY_TIME} ORDER BY ts_ns, arrival")
