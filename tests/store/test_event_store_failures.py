"""The store under failure: SIGKILL after an acknowledgement, read-only files, a full disk, a held lock.

Each failure must raise StoreUnavailableError naming the file and the cause (the API answers 503), and
must leave the store as it was: a batch is stored whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.store.events import SqliteEventStore
from engine.store.interface import StoreUnavailableError
from tests.builders import events_frame

ROOT = Path(__file__).resolve().parents[2]


def visits(prefix: str, n: int) -> pd.DataFrame:
    return events_frame([{"ts": "2026-02-10T09:00:00Z", "customer_id": "c1", "event_type": "visit", "event_id": f"{prefix}{i}"} for i in range(n)])


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_acknowledged_batches_survive_sigkill_exactly_once(tmp_path):
    path = tmp_path / "events.db"
    child_code = """
        import sys
        from engine.store.events import SqliteEventStore
        from tests.builders import events_frame
        store = SqliteEventStore(sys.argv[1])
        batch = 0
        while True:  # appends until killed; each acknowledgement is printed once the batch is committed
            rows = [{"ts": "2026-02-10T09:00:00Z", "customer_id": f"c{batch}", "event_type": "visit", "event_id": f"b{batch}-{i}"} for i in range(10)]
            result = store.append(events_frame(rows))
            print(f"ack {batch} {result.stored} {result.duplicates}", flush=True)
            batch += 1
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(child_code), str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        acks = [child.stdout.readline().split() for _ in range(5)]
        child.send_signal(signal.SIGKILL)  # right after the fifth acknowledgement, likely mid-transaction
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert acks == [["ack", str(b), "10", "0"] for b in range(5)], child.stderr.read()
    assert child.returncode == -signal.SIGKILL
    with SqliteEventStore(path) as reopened:
        ids = [i for chunk in reopened.export() for i in chunk["event_id"]]
        assert len(ids) == len(set(ids))  # exactly once
        assert {f"b{b}-{i}" for b in range(5) for i in range(10)} <= set(ids)  # every acknowledged event
        assert len(ids) % 10 == 0  # the batch being written when killed is all there or absent
        retried = [{"ts": "2026-02-10T09:00:00Z", "customer_id": "c0", "event_type": "visit", "event_id": f"b0-{i}"} for i in range(10)]
        assert reopened.append(events_frame(retried)).duplicates == 10  # retried after the restart: not stored twice


def test_a_store_opened_read_only_refuses_writes(tmp_path):
    path = tmp_path / "events.db"
    with SqliteEventStore(path) as store:
        store.append(visits("a", 2))
    # mode=ro is enforced by SQLite itself, so this holds even for root, who ignores file permissions.
    with SqliteEventStore(path, read_only=True) as read_only:
        assert read_only.count() == 2
        with pytest.raises(StoreUnavailableError) as caught:
            read_only.append(visits("b", 1))
        assert read_only.count() == 2
    assert str(caught.value) == (
        f"event store {path}: cannot store the batch: read-only (file or directory not writable, read-only mount, "
        "or opened read-only) (sqlite: attempt to write a readonly database)"
    )


def _as_unprivileged_user(attempt) -> list[str]:
    """Run ``attempt`` in a forked child that became the user nobody (65534); return the lines it printed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read)
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            except PermissionError:
                code = 3
            else:
                os.write(write, "\n".join(attempt()).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent through the pipe
            os.write(write, f"child failed: {exc!r}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 3:
        pytest.skip("running as root without the right to become an unprivileged user (no CAP_SETUID)")
    return output.splitlines()


def test_a_read_only_directory_makes_the_store_unavailable():
    # Root ignores permission bits, so as root the attempt runs in a forked child that has become the user
    # nobody, for whom the kernel enforces them: a genuinely read-only directory, not a simulated error.
    as_root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="nbm-ro-", dir="/tmp" if as_root else None))

    def attempt() -> list[str]:
        lines = []
        for path in (directory / "events.db", directory / "new" / "events.db"):  # existing; cannot be created
            try:
                SqliteEventStore(path).append(visits("b", 1))
                lines.append("stored")
            except StoreUnavailableError as err:
                lines.append(str(err))
        return lines

    try:
        with SqliteEventStore(directory / "events.db") as store:
            store.append(visits("a", 1))
        os.chmod(directory / "events.db", 0o444)
        os.chmod(directory, 0o555)
        lines = _as_unprivileged_user(attempt) if as_root else attempt()
        assert len(lines) == 2, lines
        assert lines[0].startswith(f"event store {directory / 'events.db'}: cannot open the store: read-only ("), lines
        assert lines[1] == f"event store {directory / 'new' / 'events.db'}: cannot create its directory: Permission denied"
        os.chmod(directory, 0o755)
        with SqliteEventStore(directory / "events.db", read_only=True) as store:
            assert list(store.export())[0]["event_id"].tolist() == ["a0"]  # nothing was written
    finally:
        os.chmod(directory, 0o755)
        shutil.rmtree(directory)


def test_a_full_disk_makes_the_store_unavailable_and_leaves_it_as_it_was(tmp_path):
    # A file size limit makes the kernel refuse writes past it (EFBIG), as a full disk does (ENOSPC).
    attempt = """
        import resource, signal, sys
        from engine.store.interface import StoreUnavailableError
        from engine.store.events import SqliteEventStore
        from tests.builders import events_frame
        def batch(prefix, n):
            return events_frame([{"ts": "2026-02-10T09:00:00Z", "customer_id": "c1", "event_type": "visit", "topic": "t" * 200, "event_id": f"{prefix}{i}"} for i in range(n)])
        store = SqliteEventStore(sys.argv[1])
        store.append(batch("small", 10))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
        try:
            store.append(batch("big", 5000))
            print("stored")
        except StoreUnavailableError as err:
            print(err)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        print(store.count(), store.append(batch("after", 1)).stored)
    """
    path = tmp_path / "events.db"
    lines = run_child(attempt, str(path)).stdout.splitlines()
    assert len(lines) == 2, lines
    # A write cut short is SQLITE_FULL, a refused one SQLITE_IOERR: which one depends on where the limit falls.
    assert lines[0] in (
        f"event store {path}: cannot store the batch: I/O error (disk full, file size limit or failing device) (sqlite: disk I/O error)",
        f"event store {path}: cannot store the batch: disk full (sqlite: database or disk is full)",
    )
    assert lines[1] == "10 1"  # the failed batch left nothing; the store works once there is room


def test_a_lock_held_longer_than_the_busy_timeout_makes_the_store_unavailable(tmp_path):
    path = tmp_path / "events.db"
    with SqliteEventStore(path, busy_timeout_s=0.2) as store:
        other_writer = sqlite3.connect(path, isolation_level=None)
        other_writer.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        with pytest.raises(StoreUnavailableError) as caught:
            store.append(visits("a", 3))
        assert time.perf_counter() - started >= 0.2  # it waited for the lock first
        assert str(caught.value) == (
            f"event store {path}: cannot store the batch: locked by another writer for longer than the busy timeout "
            "of 0.2 s (sqlite: database is locked)"
        )
        other_writer.execute("ROLLBACK")
        other_writer.close()
        assert store.append(visits("a", 3)).stored == 3


def test_a_closed_store_and_a_missing_store_are_unavailable(tmp_path):
    store = SqliteEventStore(tmp_path / "events.db")
    store.close()
    with pytest.raises(StoreUnavailableError, match="the store is closed"):
        store.count()
    with pytest.raises(StoreUnavailableError, match=r"missing\.db: no event store here \(nothing was ever stored\)"):
        SqliteEventStore(tmp_path / "missing.db", read_only=True)
