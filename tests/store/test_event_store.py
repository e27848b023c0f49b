"""The SQLite event store: idempotent atomic appends, reads by customer and time, schema, threads."""

from __future__ import annotations

import sqlite3
import threading

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from engine.config import ValidationSettings
from engine.store.events import _CUSTOMER_ID, SqliteEventStore, _decision_query, store_path
from engine.store.interface import AppendResult, EventIdConflictError, EventStore, InvalidEventsError, contract_rows, record_events
from engine.store.sqlite import _many_values
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


def test_an_identical_resend_is_acknowledged_but_stored_once_within_and_across_batches(store):
    first = events_frame([visit("a"), visit("b"), visit("a")])
    assert store.append(first) == AppendResult(stored=2, duplicates=1)
    assert store.append(events_frame([visit("b"), visit("c")])) == AppendResult(stored=1, duplicates=1)
    assert store.append(first) == AppendResult(stored=0, duplicates=3)
    assert store.count() == 3
    assert store.append(events_frame([])) == AppendResult(stored=0, duplicates=0)


@pytest.mark.parametrize(("change", "differs"), [
    ({"customer_id": "other"}, "customer_id 'c1' there, 'other' here"),
    ({"ts": "2026-02-10T09:00:01Z"}, "ts 2026-02-10T09:00:00+00:00 there, 2026-02-10T09:00:01+00:00 here"),
    ({"event_type": "support", "topic": None}, "event_type 'visit' there, 'support' here, topic 'travel' there, empty here"),
])
def test_a_reused_event_id_with_other_content_is_a_conflict_and_stores_nothing_of_the_batch(store, change, differs):
    store.append(events_frame([visit("a")]))
    with pytest.raises(EventIdConflictError) as caught:
        store.append(events_frame([visit("new"), {**visit("a"), **change}]))
    (conflict,) = caught.value.conflicts
    assert (conflict.index, conflict.event_id, conflict.earlier, conflict.reason) == (1, "a", None, "conflicting_event_id")
    assert conflict.message == (f"event_id 'a' is already used by the stored event with other content ({differs}); only an "
                                "identical resend is a duplicate: send a new event with a new event_id")
    assert store.count() == 1  # not even "new"
    # Within one batch: the later event conflicts with the earlier one.
    with pytest.raises(EventIdConflictError) as caught:
        store.append(events_frame([visit("b"), visit("c"), {**visit("b"), **change}]))
    assert [(c.index, c.event_id, c.earlier) for c in caught.value.conflicts] == [(2, "b", 0)]
    assert "already used by event 0 of this batch" in str(caught.value)
    assert store.count() == 1


def test_late_counts_the_stored_events_before_the_cutoff_but_never_opt_outs_or_complaints(store):
    cutoff = pd.Timestamp("2026-02-10T10:00:00Z").value
    before, after = "2026-02-10T09:00:00Z", "2026-02-10T10:00:00Z"
    batch = events_frame([visit("v-old", before), visit("v-new", after),
                          {"ts": before, "customer_id": "c1", "event_type": "unsubscribe", "channel": "sms", "event_id": "u-old"},
                          {"ts": before, "customer_id": "c1", "event_type": "complaint", "event_id": "k-old"},
                          visit("v-old", before)])  # an identical resend: not stored, so not late either
    assert store.append(batch, cutoff_ns=cutoff) == AppendResult(stored=4, duplicates=1, late=1)
    assert store.append(batch, cutoff_ns=cutoff) == AppendResult(stored=0, duplicates=5, late=0)
    assert store.append(events_frame([visit("v-older", "2026-02-10T08:00:00Z")])) == AppendResult(1, 0, late=0)  # no cutoff


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
    monkeypatch.setattr("engine.store.events._IN_LIMIT", 2)  # more customers than one IN list holds
    assert store.rows_for_customers(["c2", "c0", "c1"], since) == {c: store.rows_for_customer(c, since) for c in ("c2", "c0", "c1")}


def test_a_batch_longer_than_one_statement_is_still_idempotent_and_all_or_nothing(store, monkeypatch):
    monkeypatch.setattr("engine.store.sqlite.ROWS_PER_STATEMENT", 2)  # 5 events: statements of 2, 2 and 1
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


def _consent(event_id: str, ts: str, customer_id: str = "c1", kind: str = "unsubscribe") -> dict:
    return {"ts": ts, "customer_id": customer_id, "event_type": kind, "channel": "sms" if kind == "unsubscribe" else None,
            "event_id": event_id}


def test_decisions_read_the_events_since_the_cutoff_and_every_opt_out_and_complaint_before_it(store, monkeypatch):
    store.append(events_frame([
        visit("v-before", "2026-02-10T08:00:00Z"), _consent("u-before", "2026-02-09T08:00:00Z"),
        _consent("k-before", "2026-02-10T08:00:00Z", kind="complaint"), visit("v-after", "2026-02-10T11:00:00Z"),
        _consent("u-after", "2026-02-10T10:00:00Z"), _consent("k-tie", "2026-02-10T08:00:00Z", kind="complaint"),
        _consent("u-other", "2026-02-01T00:00:00Z", customer_id="c2"), visit("v-other", "2026-02-10T08:00:00Z", customer_id="c2"),
    ]))
    cutoff = pd.Timestamp("2026-02-10T10:00:00Z").value
    read = store.rows_for_decisions(["c1", "nobody", "c2", "c1"], cutoff)
    assert list(read) == ["c1", "nobody", "c2"]
    assert [r[-1] for r in read["c1"]] == ["u-before", "k-before", "k-tie", "u-after", "v-after"]  # by time, then arrival
    assert read["nobody"] == [] and [r[-1] for r in read["c2"]] == ["u-other"]
    assert read == EventStore.rows_for_decisions(store, ["c1", "nobody", "c2"], cutoff)  # the obvious reading
    assert read["c1"][0] == store.rows_for_customer("c1")[0]  # rows in contract form, nothing more
    monkeypatch.setattr("engine.store.events._IN_LIMIT", 2)  # more customers than one IN list holds
    assert store.rows_for_decisions(["c2", "nobody", "c1"], cutoff) == {c: read[c] for c in ("c2", "nobody", "c1")}


def test_the_opt_outs_before_the_cutoff_are_read_through_their_partial_index_which_old_files_gain(tmp_path):
    path = store_path(tmp_path)
    SqliteEventStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("DROP INDEX applied_at_any_time_by_customer")  # a file from before the index
    raw.close()
    with SqliteEventStore(path) as store:
        query = _decision_query(2)
        plan = [row[-1] for row in store._connection().execute(f"EXPLAIN QUERY PLAN {query}", ("a", "b", 0, "a", "b", 0))]
    assert "SEARCH events USING INDEX applied_at_any_time_by_customer (customer_id=? AND ts_ns<?)" in plan
    assert "SEARCH events USING INDEX events_by_customer (customer_id=? AND ts_ns>?)" in plan


def test_two_writers_racing_for_one_event_id_with_other_content_store_one_and_refuse_the_other(store):
    outcomes: list[object] = []
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        try:  # each thread: its own customer's opt-out, all under one id
            outcomes.append(store.append(events_frame([_consent("shared", "2026-02-10T09:00:00Z", customer_id=f"c{thread}")])))
        except EventIdConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["AppendResult"] + ["EventIdConflictError"] * 7
    assert store.count() == 1
