"""The SQLite event store: idempotent atomic appends, reads by customer and time, schema, threads."""

from __future__ import annotations

import sqlite3
import threading

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from engine.config import ValidationSettings
from engine.eventstore import AppendResult, InvalidEventsError, record_events
from engine.eventstore import contract_rows
from serving.sqlite import _many_values
from serving.store import _CUSTOMER_ID, SqliteEventStore, store_path
from tests.builders import DEFAULT_MESSAGES, events_frame, messages_frame

MESSAGES = messages_frame(DEFAULT_MESSAGES)
NOW = pd.Timestamp("2026-02-10T12:00:00Z")


def visit(event_id: str, ts: str = "2026-02-10T09:00:00Z", customer_id: str = "c1") -> dict:
    return {"ts": ts, "customer_id": customer_id, "event_type": "visit", "topic": "travel", "event_id": event_id}


@pytest.fixture
def store(tmp_path):
    with SqliteEventStore(store_path(tmp_path / "home")) as opened:
        yield opened


def test_the_store_lives_under_the_home_directory(tmp_path):
    assert store_path(tmp_path / ".nbm") == tmp_path / ".nbm" / "events.db"


def test_a_repeated_event_id_is_acknowledged_but_stored_once_within_and_across_batches(store):
    first = events_frame([visit("a"), visit("b"), {**visit("a"), "customer_id": "other"}])
    assert store.append(first) == AppendResult(stored=2, duplicates=1)
    assert store.append(events_frame([visit("b"), visit("c")])) == AppendResult(stored=1, duplicates=1)
    assert store.append(first) == AppendResult(stored=0, duplicates=3)
    assert store.count() == 3
    assert list(store.for_customer("other")["event_id"]) == []  # the first "a" won
    assert store.append(events_frame([])) == AppendResult(stored=0, duplicates=0)


def test_a_batch_with_one_invalid_event_stores_nothing(store):
    records = [visit("a"), {**visit("b"), "event_type": "like"}, visit("c"), {**visit("d"), "ts": "2026-02-10T12:05:01Z"}]
    with pytest.raises(InvalidEventsError) as caught:
        record_events(store, records, MESSAGES, now=NOW, settings=ValidationSettings())
    assert [(p.index, p.column, p.reason) for p in caught.value.problems] == [
        (1, "event_type", "unknown_event_type"),
        (3, "ts", "future_ts"),
    ]
    assert str(caught.value).startswith("2 invalid event(s), nothing stored: event 1: unknown_event_type")
    assert store.count() == 0
    assert record_events(store, [visit("a"), visit("a")], MESSAGES, now=NOW, settings=ValidationSettings()) == AppendResult(1, 1)


def test_events_come_back_exactly_in_contract_form(store):
    rows = [
        {"ts": "2026-02-10T10:00:00Z", "customer_id": "c1", "event_type": "impression", "channel": "email",
         "message_id": "m1", "topic": "travel", "decision_id": "d1", "propensity": 1 / 3, "event_id": "e1"},
        {"ts": "2026-02-10T11:00:00.123456Z", "customer_id": "c1", "event_type": "purchase", "value": 129.9, "event_id": "e2"},
        {"ts": "2026-02-10T12:00:00Z", "customer_id": "c1", "event_type": "unsubscribe", "channel": "sms", "event_id": "e3"},
    ]
    store.append(events_frame(rows))
    assert_frame_equal(store.for_customer("c1"), events_frame(rows))


def test_for_customer_is_sorted_by_time_since_is_inclusive_and_ties_keep_arrival_order(store):
    store.append(events_frame([visit("late", "2026-02-10T11:00:00Z"), visit("tie-1", "2026-02-10T10:00:00Z")]))
    store.append(events_frame([visit("tie-2", "2026-02-10T10:00:00Z"), visit("early", "2026-02-10T08:00:00Z")]))
    store.append(events_frame([visit("other", "2026-02-10T09:00:00Z", customer_id="c2")]))
    assert list(store.for_customer("c1")["event_id"]) == ["early", "tie-1", "tie-2", "late"]
    since = pd.Timestamp("2026-02-10T10:00:00Z").value
    assert list(store.for_customer("c1", since_ns=since)["event_id"]) == ["tie-1", "tie-2", "late"]
    assert list(store.for_customer("c2")["event_id"]) == ["other"]
    assert store.for_customer("nobody").empty


def test_since_and_export_stream_all_events_by_time_in_chunks(store):
    store.append(events_frame([visit(f"e{h}", f"2026-02-10T{h:02d}:00:00Z", customer_id=f"c{h % 2}") for h in (5, 1, 4, 2, 3)]))
    chunks = list(store.export(chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert list(pd.concat(chunks)["event_id"]) == ["e1", "e2", "e3", "e4", "e5"]
    later = pd.concat(store.since(pd.Timestamp("2026-02-10T03:00:00Z").value))
    assert list(later["event_id"]) == ["e3", "e4", "e5"]
    assert list(store.since(pd.Timestamp("2026-02-11T00:00:00Z").value)) == []


def test_schema_wal_full_sync_ns_timestamps_and_customer_index(tmp_path, store):
    store.append(events_frame([visit("a")]))
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert raw.execute("PRAGMA user_version").fetchone() == (1,)
    assert raw.execute("SELECT ts_ns, typeof(ts_ns) FROM events").fetchone() == (1770714000000000000, "integer")
    indexes = {row[0]: row[1] for row in raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "ON events (customer_id, ts_ns)" in indexes["events_by_customer"]
    assert "sqlite_autoindex_events_1" in indexes  # the event_id primary key
    raw.close()
    # synchronous is a per-connection setting: every connection the store opens uses FULL (2).
    assert store._connection().execute("PRAGMA synchronous").fetchone() == (2,)


def test_events_survive_closing_and_reopening(tmp_path):
    path = store_path(tmp_path)
    with SqliteEventStore(path) as first:
        first.append(events_frame([visit("a"), visit("b")]))
    with SqliteEventStore(path) as second:
        assert second.count() == 2
        assert second.append(events_frame([visit("a")])) == AppendResult(stored=0, duplicates=1)


def test_many_threads_appending_overlapping_batches_store_each_event_once(store):
    results: list[AppendResult] = []
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for batch in range(10):
                # Every thread sends the same 100 ids in its own order: a storm of retries.
                ids = [(thread * 7 + batch * 10 + i) % 100 for i in range(10)]
                results.append(store.append(events_frame([visit(f"e{i}", customer_id=f"c{i % 5}") for i in ids])))
                store.for_customer(f"c{thread % 5}")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.stored for r in results) == 100
    assert sum(r.duplicates for r in results) == 8 * 10 * 10 - 100
    assert store.count() == 100


def test_rows_of_several_customers_in_one_read_are_each_customers_own_rows(store, monkeypatch):
    rows = [visit(f"e{i}", ts=f"2026-02-10T0{i % 9}:00:00Z", customer_id=f"c{i % 3}") for i in range(12)]
    rows.append(visit("same-time", ts="2026-02-10T04:00:00Z", customer_id="c1"))  # ties e4 in time: arrival order
    store.append(events_frame(rows))
    since = pd.Timestamp("2026-02-10T02:00:00Z").value
    asked = ["c1", "nobody", "c0", "c1"]
    expected = {c: store.rows_for_customer(c, since) for c in asked}
    assert store.rows_for_customers(asked, since) == expected and list(expected) == ["c1", "nobody", "c0"]
    assert [r[-1] for r in expected["c1"]] == ["e4", "same-time", "e7"]  # by time, then arrival
    assert store.rows_for_customers(asked) == {c: store.rows_for_customer(c) for c in asked}
    monkeypatch.setattr("serving.store._IN_LIMIT", 2)  # more customers than one IN list holds
    assert store.rows_for_customers(["c2", "c0", "c1"], since) == {c: store.rows_for_customer(c, since) for c in ("c2", "c0", "c1")}


def test_a_batch_longer_than_one_statement_is_still_idempotent_and_all_or_nothing(store, monkeypatch):
    monkeypatch.setattr("serving.sqlite.ROWS_PER_STATEMENT", 2)  # 5 events: statements of 2, 2 and 1
    first = events_frame([visit("a"), visit("b"), visit("c"), visit("a"), visit("d")])  # "a" again, in the next statement
    assert store.append(first) == AppendResult(stored=4, duplicates=1)
    rows = contract_rows(events_frame([visit("e"), visit("f"), visit("g"), visit("h"), visit("i")]))
    rows[4] = tuple(object() if i == _CUSTOMER_ID else value for i, value in enumerate(rows[4]))  # the last cannot be bound
    with pytest.raises(sqlite3.ProgrammingError):
        store.append_rows(rows)
    assert store.count() == 4  # the first two statements of the failed batch were rolled back
    assert sorted(store.since(None).__next__()["event_id"]) == ["a", "b", "c", "d"]


def test_many_values_repeats_the_one_values_tuple():
    assert _many_values("INSERT OR IGNORE INTO t (a, b) VALUES (?, ?)", 3) == "INSERT OR IGNORE INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
    with pytest.raises(ValueError, match="not an INSERT ending in VALUES"):
        _many_values("INSERT INTO t SELECT * FROM u", 2)
