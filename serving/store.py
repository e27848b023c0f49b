"""The embedded event store: SQLite in WAL mode, one file under the server's home (``<home>/events.db``).

Durability: a batch is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous=FULL``, so once
:meth:`SqliteEventStore.append` returns the batch survives a killed process and a power cut, and a
batch cut short leaves nothing. Each thread gets its own connection (FastAPI runs sync endpoints in a
threadpool): in WAL mode readers never wait for the writer, and writers, from any thread or process,
queue on SQLite's lock for up to ``busy_timeout_s``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd

from engine.eventstore import EVENT_COLUMNS, EXPORT_CHUNK_ROWS, AppendResult, EventStore, StoreUnavailableError
from engine.eventstore import contract_frame, contract_rows

EVENTS_DB = "events.db"
SCHEMA_VERSION = 1
# Contract columns in contract order; the time is stored as int64 ns since the epoch, UTC.
_COLUMNS = ("ts_ns", *EVENT_COLUMNS[1:])
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        ts_ns INTEGER NOT NULL, customer_id TEXT NOT NULL, event_type TEXT NOT NULL, channel TEXT,
        message_id TEXT, value REAL, topic TEXT, decision_id TEXT, propensity REAL,
        event_id TEXT NOT NULL PRIMARY KEY)""",
    "CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, ts_ns)",
    "CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts_ns)",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM events"
_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_EARLIEST = -(2**63)
# SQLite result codes that mean "cannot store now" rather than a bug in nbm.
_CAUSES = {
    sqlite3.SQLITE_READONLY: "read-only (file or directory not writable, read-only mount, or opened read-only)",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database file (directory missing or not writable?)",
    sqlite3.SQLITE_PERM: "permission denied",
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_IOERR: "I/O error (disk full, file size limit or failing device)",
    sqlite3.SQLITE_BUSY: "locked by another writer for longer than the busy timeout of {timeout:g} s",
    sqlite3.SQLITE_LOCKED: "locked by another connection",
    sqlite3.SQLITE_PROTOCOL: "file locking failed",
    sqlite3.SQLITE_CORRUPT: "the database file is corrupt",
    sqlite3.SQLITE_NOTADB: "not an SQLite database",
}


def store_path(home: Path) -> Path:
    """Where the embedded store lives under a state directory (``paths.home``)."""
    return Path(home) / EVENTS_DB


class SqliteEventStore(EventStore):
    """:class:`~engine.eventstore.EventStore` on one SQLite file; ``read_only`` opens it for export."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 5.0, read_only: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        if read_only and not self.path.is_file():
            raise StoreUnavailableError("no event store here (nothing was ever stored)", path=str(self.path))
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(f"cannot create its directory: {exc.strerror or exc}", path=str(self.path)) from exc
        new = not self.path.exists()
        try:
            with self._errors("open the store"):
                connection = self._connection()
                if not read_only:
                    self._create_schema(connection)
        except BaseException:
            self.close()
            raise
        if new:
            _fsync_directory(self.path.parent)

    def append(self, events: pd.DataFrame) -> AppendResult:
        rows = contract_rows(events)
        if not rows:
            return AppendResult(stored=0, duplicates=0)
        with self._errors("store the batch"):
            connection = self._connection()
            with _transaction(connection):
                before = connection.total_changes
                connection.executemany(_INSERT, rows)
                stored = connection.total_changes - before
        return AppendResult(stored=stored, duplicates=len(rows) - stored)

    def for_customer(self, customer_id: str, since_ns: int | None = None) -> pd.DataFrame:
        query = f"{_SELECT} WHERE customer_id = ? AND ts_ns >= ? ORDER BY ts_ns, rowid"
        with self._errors("read events"):
            rows = self._connection().execute(query, (customer_id, _EARLIEST if since_ns is None else since_ns)).fetchall()
        return contract_frame(rows)

    def since(self, ts_ns: int | None, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        # One statement: the chunks form a consistent snapshot even while the API keeps appending.
        query = f"{_SELECT} WHERE ts_ns >= ? ORDER BY ts_ns, rowid"
        with self._errors("read events"):
            cursor = self._connection().execute(query, (_EARLIEST if ts_ns is None else ts_ns,))
        try:
            while True:
                with self._errors("read events"):
                    rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    return
                yield contract_frame(rows)
        finally:
            cursor.close()

    def count(self) -> int:
        with self._errors("count events"):
            return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailableError("the store is closed", path=str(self.path))
        connection = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"{self.path.resolve().as_uri()}?mode={'ro' if self.read_only else 'rwc'}"
            # Autocommit: transactions are explicit. Other threads only ever close it (see close()).
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s)
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            connection.execute("PRAGMA synchronous = FULL")
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreUnavailableError(f"the file system does not support WAL mode (got {mode})", path=str(self.path))
        with _transaction(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StoreUnavailableError(f"schema version {version}; this nbm reads version {SCHEMA_VERSION}", path=str(self.path))
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SQLite's "cannot store now" errors into :class:`StoreUnavailableError`; let bugs through."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            cause = _CAUSES.get(code & 0xFF) if code is not None else None
            if cause is None:
                raise
            cause = cause.format(timeout=self.busy_timeout_s)
            raise StoreUnavailableError(f"cannot {doing}: {cause} (sqlite: {exc})", path=str(self.path)) from exc


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front: a deferred transaction could fail to upgrade under load.
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            with suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise


def _fsync_directory(directory: Path) -> None:
    # SQLite syncs the directory for its journal and WAL but not for a new database file; without this a
    # power cut right after the first batch could lose the file's directory entry.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
