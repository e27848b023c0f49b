"""The decision log: every decision the API served, appended durably for off-policy evaluation.

A ``decisions`` table in the event store's SQLite file (``<home>/events.db``), one row per decision: when
it was made, for whom, by which model, every eligible candidate with its score and propensity, the
messages served (in slot order) and the suppressions. The decisions of one request are one
``BEGIN IMMEDIATE`` ... ``COMMIT``, one connection per thread, with ``synchronous=NORMAL``: in WAL mode a
logged decision survives a killed process; a power cut may lose the last few. Syncing every commit
(FULL, as the event store must for acknowledged events) would cost a disk sync per decision, far more
than the decision itself. A single decision is answered before its batch is written here (a fraction of
a millisecond later, :meth:`serving.context.ServingContext.logged` waits for it), so the answer does not
wait for the write: a process killed in between loses that batch's rows, the same kind of loss as
NORMAL's.
The events table's schema version (``PRAGMA user_version``) belongs to :mod:`engine.store.events` and is not
touched.

Its commits never checkpoint the WAL: a thread of its own does, every ``checkpoint_every_s``
(``PRAGMA wal_checkpoint(PASSIVE)``, which never blocks a writer). A checkpoint copies the WAL into the
file and syncs it; run by the commit that crosses SQLite's threshold, it would stall that batch of
decisions, and so every request waiting on it.

A passive checkpoint alone lets the WAL grow without end under steady load: SQLite writes the WAL from
its start again only when a write begins with every frame copied, and under load a batch is always being
written while the checkpoint runs. So once the
WAL holds more than ``restart_wal_frames`` frames, the thread follows its passive checkpoint with a
``RESTART`` one: it holds new writers back while it copies what the passive one left and syncs
(the batch being logged then waits), and the next write starts the
WAL over. It waits at most ``_RESTART_WAIT_MS`` for the
current writer and readers, else it tries again at its next turn. ``journal_size_limit``
(:mod:`engine.store.sqlite`) then cuts the file back.

Decisions older than ``retention`` are deleted by the same thread, at most every ``prune_every_s``, in
transactions of ``PRUNE_ROWS`` rows with a pause between them, so that the log's writes never wait long
(:meth:`prune`). The freed pages are reused by later rows: the file stops growing at about the
retention's worth of decisions (it does not shrink; ``VACUUM`` offline does that).

``candidates`` holds a decision's eligible candidates as one Arrow IPC stream (a BLOB, :mod:`engine.store.candidates`):
the one form nbm writes and reads.

A file whose ``decisions`` table has another layout (an earlier nbm kept the candidates as text, in JSON
or in packed forms of its own) is not read: opened for writing, the log renames that table to
``decisions_earlier_layout`` (``_2``, ``_3``, ... if taken), logs a warning naming the file, the table and
its row count, and starts a new ``decisions`` table. The earlier decisions stay in the file, untouched and
never pruned: readable with the ``sqlite3`` shell, or by an earlier nbm's ``export-decisions`` in a copy
of the file where the table is renamed back to ``decisions``; ``DROP TABLE`` it once no longer needed. A read-only open (``nbm export-decisions``) of such a file refuses with
:class:`~engine.errors.DataError` saying so.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from engine.errors import DataError
from engine.store.candidates import LoggedCandidates, decode_candidates, encode_candidates
from engine.store.interface import StoreUnavailableError
from engine.store.sqlite import EARLIEST_NS, SqliteFile, transaction

LOGGER = "nbm.store"  # in the "nbm" tree: serving's logging configuration handles it

# The table's layout: (column, declared type) in order. A table with any other is an earlier nbm's.
_LAYOUT = (("decision_id", "TEXT"), ("decided_ns", "INTEGER"), ("as_of_ns", "INTEGER"), ("customer_id", "TEXT"),
           ("channel", "TEXT"), ("model_version", "TEXT"), ("cold_start", "INTEGER"), ("served", "TEXT"),
           ("candidates", "BLOB"), ("suppressed", "TEXT"))
_COLUMNS = tuple(name for name, _ in _LAYOUT)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS decisions (
        decision_id TEXT NOT NULL PRIMARY KEY, decided_ns INTEGER NOT NULL, as_of_ns INTEGER NOT NULL,
        customer_id TEXT NOT NULL, channel TEXT NOT NULL, model_version TEXT NOT NULL, cold_start INTEGER NOT NULL,
        served TEXT NOT NULL, candidates BLOB NOT NULL, suppressed TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_ns)",
)
_SET_ASIDE = "decisions_earlier_layout"  # where a table of an earlier layout goes (module docstring)
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
# The WAL is started over once it holds this many frames (pages of 4 KiB: 256 MiB), and a RESTART
# checkpoint waits at most this long for the writer and readers of the moment (module docstring). A
# restart holds writers back for its sync, so it should be rare under load: a much smaller limit made it
# come every few seconds and raised the decisions' p99.
RESTART_WAL_FRAMES = 65_536
_RESTART_WAIT_MS = 100
# Decisions deleted per transaction by the retention, and the pause between two such transactions:
# a transaction of 1,000 decisions holds the log's writes back about as long as a WAL restart does (the
# time grows with the rows per transaction; docs/benchmarks.md); in the pause, a write waiting in SQLite's busy handler (which
# retries after 1, 2, 5, 10, ... ms) gets its turn.
PRUNE_ROWS = 1_000
_PRUNE_PAUSE_S = 0.02
_PRUNE = ("DELETE FROM decisions WHERE rowid IN "
          "(SELECT rowid FROM decisions WHERE decided_ns < ? ORDER BY decided_ns LIMIT ?)")
_INSERT = f"INSERT OR IGNORE INTO decisions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# One row per candidate: what an off-policy estimator reads (served_rank is null for candidates not served).
EXPORT_COLUMNS = ("decision_id", "decided_at", "as_of", "customer_id", "channel", "model_version", "cold_start",
                  "message_id", "score", "propensity", "served_rank", "served_propensity")


class LoggedMessage(Protocol):
    """What the log reads of a served message."""

    @property
    def message_id(self) -> str: ...
    @property
    def propensity(self) -> float: ...


class LoggedDecision(Protocol):
    """What the log reads of a decision (:class:`engine.policy.online_decision.Decision` is one)."""

    @property
    def decision_id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def as_of(self) -> pd.Timestamp: ...
    @property
    def model_version(self) -> str: ...
    @property
    def cold_start(self) -> bool: ...
    @property
    def messages(self) -> Sequence[LoggedMessage]: ...  # served, in slot order
    @property
    def suppressed(self) -> Mapping[str, int]: ...
    @property
    def candidates(self) -> LoggedCandidates: ...


class SqliteDecisionLog(SqliteFile):
    _TABLE = "decisions"
    _SYNCHRONOUS = "NORMAL"  # see the module docstring
    _MISSING = "no decision log here (nothing was ever stored)"
    _CLOSED = "the decision log is closed"
    _OPENING = "open the decision log"
    _AUTOCHECKPOINT = False  # the checkpoint thread does it (module docstring)

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 5.0, read_only: bool = False,
                 checkpoint_every_s: float = 1.0, restart_wal_frames: int = RESTART_WAL_FRAMES,
                 retention: pd.Timedelta | None = None, clock: Callable[[], pd.Timestamp] | None = None,
                 prune_every_s: float = 60.0, on_pruned: Callable[[int], None] | None = None) -> None:
        """``retention``: the checkpoint thread deletes decisions made longer ago than this by ``clock``
        (None: keep every decision), and tells ``on_pruned`` how many after each transaction (a metric)."""
        if (retention is None) != (clock is None):
            raise ValueError("retention and clock go together")
        if retention is not None and retention <= pd.Timedelta(0):
            raise ValueError(f"retention must be positive, got {retention}")
        self.checkpoint_every_s = checkpoint_every_s
        self.restart_wal_frames = restart_wal_frames
        self.retention = retention
        self.prune_every_s = prune_every_s
        self._clock = clock
        self._on_pruned = on_pruned
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        super().__init__(path, busy_timeout_s=busy_timeout_s, read_only=read_only)

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join()
        super().close()

    def _start_checkpoints(self) -> None:
        with self._lock:
            if self._checkpointer is None and not self._closed:
                self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="nbm-decision-log-checkpoint", daemon=True)
                self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        failing = False
        pruned_at = float("-inf")
        while not self._stop.wait(self.checkpoint_every_s):
            try:
                with self._errors("checkpoint the decision log"):
                    self.checkpoint()
                if self.retention is not None and time.monotonic() - pruned_at >= self.prune_every_s:
                    pruned_at = time.monotonic()
                    self._prune_expired()
                failing = False
            except StoreUnavailableError as exc:
                if not failing:  # once per run of failures; the next commit's own error reaches a client
                    logging.getLogger(LOGGER).warning("%s", exc)
                failing = True

    def checkpoint(self) -> tuple[int, bool]:
        """One turn of the checkpoint thread (module docstring): (the WAL's frames before it, whether the
        WAL was restarted)."""
        connection = self._connection()
        _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames <= self.restart_wal_frames:
            return frames, False
        connection.execute(f"PRAGMA busy_timeout = {_RESTART_WAIT_MS}")  # never hold writers back for long
        try:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        return frames, not busy

    def prune(self, before: pd.Timestamp, chunk_rows: int = PRUNE_ROWS) -> int:
        """Delete the decisions made before ``before``, oldest first, ``chunk_rows`` per transaction;
        returns how many were deleted."""
        connection = self._connection()
        deleted = 0
        with self._errors("prune the decision log"):
            while True:
                with transaction(connection):
                    gone = connection.execute(_PRUNE, (int(before.value), int(chunk_rows))).rowcount
                deleted += gone
                if gone and self._on_pruned is not None:  # per transaction: a later failure keeps this count
                    self._on_pruned(gone)
                if gone < chunk_rows or self._stop.wait(_PRUNE_PAUSE_S):
                    return deleted

    def _prune_expired(self) -> None:
        assert self.retention is not None and self._clock is not None
        before = pd.Timestamp(self._clock()) - self.retention
        deleted = self.prune(before)
        if deleted:
            logging.getLogger(LOGGER).info("decision log: deleted %d decision(s) made before %s (retention %s)",
                                           deleted, before.isoformat(), self.retention)

    def append(self, decisions: Sequence[LoggedDecision], decided_at: pd.Timestamp | Sequence[pd.Timestamp]) -> int:
        """Store decisions atomically (one request's, or a batch's with one ``decided_at`` each); returns
        how many were new (ids are unique)."""
        times = [decided_at] * len(decisions) if isinstance(decided_at, pd.Timestamp) else list(decided_at)
        if len(times) != len(decisions):
            raise ValueError(f"{len(decisions)} decisions but {len(times)} decision times")
        rows = [
            (
                d.decision_id, int(pd.Timestamp(at).value), int(pd.Timestamp(d.as_of).value), d.customer_id, d.channel, d.model_version,
                int(d.cold_start),
                json.dumps([[m.message_id, m.propensity] for m in d.messages]),
                encode_candidates(d.candidates),
                json.dumps({str(k): int(v) for k, v in d.suppressed.items()}),
            )
            for d, at in zip(decisions, times)
        ]
        if not rows:
            return 0
        if self._checkpointer is None:
            self._start_checkpoints()
        return self._insert_new("log the decisions", _INSERT, rows)

    def since(self, ts_ns: int | None, chunk_rows: int = 10_000) -> Iterator[pd.DataFrame]:
        """Decisions made at or after ``ts_ns`` (all if None), oldest first, one row per candidate
        (:data:`EXPORT_COLUMNS`); a decision without candidates is one row with no message."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE decided_ns >= ? ORDER BY decided_ns, rowid"
        since = EARLIEST_NS if ts_ns is None else ts_ns
        yield from self._chunks("read decisions", query, (since,), chunk_rows, lambda rows: decision_frame(rows, path=self.path))

    def _prepare(self, connection: sqlite3.Connection) -> None:
        if self.read_only:
            if connection.execute(_HAS_TABLE, ("decisions",)).fetchone() is None:
                raise StoreUnavailableError("no decision log in this store (no decision was ever logged)", path=str(self.path))
            if _layout(connection) != _LAYOUT:
                rows = connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
                raise DataError(
                    f"its decision log ({rows:,} decision(s)) has an earlier nbm's layout, which this nbm does not read; "
                    f"nbm serve on this home sets those decisions aside as table {_SET_ASIDE} and starts a new log",
                    path=str(self.path))
            return
        connection.execute("PRAGMA journal_mode = WAL")
        set_aside = None
        with transaction(connection):
            layout = _layout(connection)
            if layout and layout != _LAYOUT:
                set_aside = _set_aside(connection)
            for statement in _SCHEMA:
                connection.execute(statement)
        if set_aside is not None:
            logging.getLogger(LOGGER).warning(
                "decision log %s: %d decision(s) in an earlier nbm's layout, which this nbm does not read, set "
                "aside as table %s; a new decision log starts", self.path, set_aside[1], set_aside[0])


def _layout(connection: sqlite3.Connection) -> tuple[tuple[str, str], ...]:
    """The ``decisions`` table's (column, declared type) in order; empty without the table."""
    return tuple((name, kind.upper()) for _, name, kind, *_ in connection.execute("PRAGMA table_info(decisions)"))


def _set_aside(connection: sqlite3.Connection) -> tuple[str, int]:
    """Rename the ``decisions`` table (an earlier layout) to a free name; returns the name and its rows.
    Its time index goes: it would keep the name the new table's index needs, and holds no data."""
    name, n = _SET_ASIDE, 1
    while connection.execute(_HAS_TABLE, (name,)).fetchone() is not None:
        n += 1
        name = f"{_SET_ASIDE}_{n}"
    rows = connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    connection.execute(f"ALTER TABLE decisions RENAME TO {name}")
    connection.execute("DROP INDEX IF EXISTS decisions_by_time")
    return name, int(rows)


def decision_frame(rows: Sequence[tuple], path: Path | None = None) -> pd.DataFrame:
    """Stored decision rows as the export's long frame (:data:`EXPORT_COLUMNS`); ``[]`` gives the empty frame.
    Raises :class:`DataError` naming the decision (and ``path``, the log's file) if its candidates do not
    read back."""
    records = []
    for decision_id, decided_ns, as_of_ns, customer_id, channel, version, cold, served, candidates, _ in rows:
        slots = {message_id: (rank, propensity) for rank, (message_id, propensity) in enumerate(json.loads(served), start=1)}
        head = (decision_id, decided_ns, as_of_ns, customer_id, channel, version, bool(cold))
        try:
            ids, scores, propensities = decode_candidates(candidates)
        except ValueError as exc:
            raise DataError(f"decision {decision_id}: its candidates do not read back: {exc}",
                            path=None if path is None else str(path)) from None
        listed = list(zip(ids, scores, propensities)) or [(None, None, None)]
        for message_id, score, propensity in listed:
            rank, served_propensity = slots.get(message_id, (None, None))
            records.append((*head, message_id, score, propensity, rank, served_propensity))
    frame = pd.DataFrame.from_records(records, columns=list(EXPORT_COLUMNS))
    for name in ("decided_at", "as_of"):
        frame[name] = pd.to_datetime(frame[name].astype("int64"), unit="ns", utc=True)
    for name in ("decision_id", "customer_id", "channel", "model_version", "message_id"):
        frame[name] = frame[name].astype("string")
    for name in ("score", "propensity", "served_propensity"):
        frame[name] = frame[name].astype("float64")
    frame["cold_start"] = frame["cold_start"].astype(bool)
    frame["served_rank"] = frame["served_rank"].astype("Int64")
    return frame
