"""What the event store and the decision log share: one SQLite file, one connection per thread.

Each thread gets its own connection (FastAPI runs sync endpoints in a threadpool), opened with a ``file:``
URI (``mode=ro`` for a read-only open, which never creates or changes the file) in autocommit mode:
transactions are explicit, :func:`transaction`. SQLite's "cannot store now" errors become
:class:`~engine.store.interface.StoreUnavailableError` naming the file; anything else is a bug and passes through.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from engine.store.interface import StoreUnavailableError

EARLIEST_NS = -(2**63)  # the smallest int64 time: "since the beginning"
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
Chunk = TypeVar("Chunk")
# Rows per INSERT statement: SQLite allows 32,766 parameters in one (since 3.32), and rows here have a
# dozen columns at most.
ROWS_PER_STATEMENT = 500
WAL_SIZE_LIMIT_BYTES = 256 * 2**20


class SqliteFile:
    """Per-thread connections to one SQLite file, closed together by :meth:`close`.

    A subclass names itself in its errors, chooses its durability and prepares the file in :meth:`_prepare`.
    """

    _TABLE: ClassVar[str]  # the table it keeps its rows in
    _SYNCHRONOUS: ClassVar[str]  # PRAGMA synchronous of every connection: FULL or NORMAL
    _MISSING: ClassVar[str]  # the error when a read-only open finds no file
    _CLOSED: ClassVar[str]  # the error when used after close()
    _OPENING: ClassVar[str]  # what opening does, for its errors ("cannot <_OPENING>: ...")
    # False: its commits never checkpoint the WAL (a subclass that does so in a thread of its own).
    _AUTOCHECKPOINT: ClassVar[bool] = True

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 5.0, read_only: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        if read_only and not self.path.is_file():
            raise StoreUnavailableError(self._MISSING, path=str(self.path))
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(f"cannot create its directory: {exc.strerror or exc}", path=str(self.path)) from exc
        try:
            with self._errors(self._OPENING):
                self._prepare(self._connection())
        except BaseException:
            self.close()
            raise

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Check the file, and create the schema unless read-only, on the first connection."""
        raise NotImplementedError

    def count(self) -> int:
        with self._errors(f"count {self._TABLE}"):
            return int(self._connection().execute(f"SELECT COUNT(*) FROM {self._TABLE}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailableError(self._CLOSED, path=str(self.path))
        connection = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"{self.path.resolve().as_uri()}?mode={'ro' if self.read_only else 'rwc'}"
            # Autocommit: transactions are explicit. Other threads only ever close it (see close()).
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s)
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            connection.execute(f"PRAGMA synchronous = {self._SYNCHRONOUS}")
            # A WAL started over is cut back to this size (else it keeps its largest size on disk).
            connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            if not self._AUTOCHECKPOINT:
                connection.execute("PRAGMA wal_autocheckpoint = 0")
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    def _insert_new(self, doing: str, insert: str, rows: Sequence[tuple]) -> int:
        """Run ``insert`` (an ``INSERT``, or ``INSERT OR IGNORE``, ending in one ``VALUES (?, ...)``) for every
        row, all or none; returns how many were new (an ``INSERT`` refused by a constraint raises
        :class:`sqlite3.IntegrityError` and stores none).

        The rows go in statements of many ``VALUES`` tuples (:data:`ROWS_PER_STATEMENT`), one statement
        being a transaction of its own: the sqlite3 module lets go of the GIL for every step of a
        statement, and under load each time the event loop's thread takes it and hands it back
        (``executemany`` steps once per row, and ``BEGIN`` and ``COMMIT`` once each)."""
        with self._errors(doing):
            connection = self._connection()
            statements = self._statements(insert, rows)
            before = connection.total_changes
            if len(statements) == 1:
                connection.execute(*statements[0])
            else:
                with transaction(connection):
                    for statement in statements:
                        connection.execute(*statement)
            return connection.total_changes - before

    @staticmethod
    def _statements(insert: str, rows: Sequence[tuple]) -> list[tuple[str, list]]:
        """``insert`` (ending in one ``VALUES (?, ...)``) for every row: (statement, parameters) of
        :data:`ROWS_PER_STATEMENT` rows each."""
        return [(_many_values(insert, len(chunk)), [value for row in chunk for value in row])
                for chunk in (rows[at : at + ROWS_PER_STATEMENT] for at in range(0, len(rows), ROWS_PER_STATEMENT))]

    def _chunks(self, doing: str, query: str, parameters: tuple, chunk_rows: int,
                to_chunk: Callable[[list[tuple]], Chunk]) -> Iterator[Chunk]:
        # One statement: the chunks form a consistent snapshot even while the API keeps appending.
        with self._errors(doing):
            cursor = self._connection().execute(query, parameters)
        try:
            while True:
                with self._errors(doing):
                    rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    return
                yield to_chunk(rows)
        finally:
            cursor.close()

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
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
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


@lru_cache(maxsize=64)
def _many_values(insert: str, rows: int) -> str:
    """``insert``, whose text ends in one ``VALUES (...)`` tuple, with ``rows`` tuples."""
    head, values, one = insert.rpartition("VALUES ")
    if not values or not one.startswith("("):
        raise ValueError(f"not an INSERT ending in VALUES (...): {insert!r}")
    return f"{head}VALUES {', '.join([one.strip()] * rows)}"
