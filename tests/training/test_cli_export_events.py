"""``nbm export-events``: the API's stored events as a contract file that ``nbm validate`` accepts whole."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from engine.config import ValidationSettings
from engine.contract.load import load_dataset
from engine.store.events import SqliteEventStore, store_path
from engine.store.interface import record_events
from tests.builders import DEFAULT_MESSAGES, MESSAGE_HEADER, events_frame, messages_frame, write_csv
from training.cli import main

MESSAGES = messages_frame(DEFAULT_MESSAGES)
# One event of each kind the API receives, with awkward values: an offset, a float that 10 digits cannot
# hold, microseconds, a channel and topic inherited from the message, an alias, an id that looks numeric.
RECORDS = [
    {"ts": "2026-02-10T10:00:00+01:00", "customer_id": "c1", "event_type": "sent", "message_id": "m1", "decision_id": "d1", "propensity": 1 / 3, "event_id": "e1"},
    {"ts": "2026-02-10T09:41:00.123456Z", "customer_id": "c1", "event_type": "click", "message_id": "m1", "decision_id": "d1", "event_id": "e2"},
    {"ts": "2026-02-10T08:00:00Z", "customer_id": "c2", "event_type": "unsubscribe", "channel": "SMS", "event_id": "e3"},
    {"ts": "2026-02-11T08:00:00Z", "customer_id": "c2", "event_type": "complaint", "message_id": "m3", "event_id": "e4"},
    {"ts": "2026-02-12T08:00:00Z", "customer_id": "c1", "event_type": "purchase", "value": 129.9, "topic": "travel", "event_id": "e5"},
    {"ts": "2026-02-12T09:00:00Z", "customer_id": "c3", "event_type": "survey", "value": 9, "event_id": "0042"},
    {"ts": "2026-02-12T10:00:00Z", "customer_id": "c3", "event_type": "visit", "channel": "web", "topic": "fashion", "event_id": "e7"},
]
# What every reader must get back: canonical, UTC, sorted by time.
EXPECTED = events_frame(
    [
        {"ts": "2026-02-10T08:00:00Z", "customer_id": "c2", "event_type": "unsubscribe", "channel": "sms", "event_id": "e3"},
        {"ts": "2026-02-10T09:00:00Z", "customer_id": "c1", "event_type": "impression", "channel": "email", "message_id": "m1", "topic": "travel", "decision_id": "d1", "propensity": 1 / 3, "event_id": "e1"},
        {"ts": "2026-02-10T09:41:00.123456Z", "customer_id": "c1", "event_type": "click", "channel": "email", "message_id": "m1", "topic": "travel", "decision_id": "d1", "event_id": "e2"},
        {"ts": "2026-02-11T08:00:00Z", "customer_id": "c2", "event_type": "complaint", "channel": "sms", "message_id": "m3", "topic": "travel", "event_id": "e4"},
        {"ts": "2026-02-12T08:00:00Z", "customer_id": "c1", "event_type": "purchase", "value": 129.9, "topic": "travel", "event_id": "e5"},
        {"ts": "2026-02-12T09:00:00Z", "customer_id": "c3", "event_type": "survey", "value": 9.0, "event_id": "0042"},
        {"ts": "2026-02-12T10:00:00Z", "customer_id": "c3", "event_type": "visit", "channel": "web", "topic": "fashion", "event_id": "e7"},
    ]
)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    with SqliteEventStore(store_path(home)) as store:
        record_events(store, RECORDS, MESSAGES, now=pd.Timestamp("2026-02-12T10:00:00Z"), settings=ValidationSettings())
    return home


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_export_round_trips_through_the_loader_and_passes_validate(tmp_path, home, capsys, suffix):
    data = tmp_path / "data"
    write_csv(data / "messages.csv", DEFAULT_MESSAGES, MESSAGE_HEADER)
    out = data / f"events{suffix}"
    assert main(["export-events", "--out", str(out), "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == f"exported 7 events from {store_path(home)} to {out}"
    assert_frame_equal(load_dataset(data, ValidationSettings(max_reject_share=0)).events, EXPECTED)
    assert main(["validate", "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "events              7 accepted        0 rejected" in printed
    assert "PASS: 0.00% of events rejected" in printed
    assert sorted(p.name for p in data.iterdir()) == sorted(["messages.csv", out.name])  # no partial file left


def test_since_keeps_events_at_or_after_it_and_home_comes_from_the_config(tmp_path, home, capsys):
    config = tmp_path / "nbm.toml"
    config.write_text(f"[paths]\nhome = {str(home)!r}\n")
    out = tmp_path / "since.csv"
    assert main(["export-events", "--out", str(out), "--since", "2026-02-11T09:00:00+01:00", "--config", str(config)]) == 0
    assert "exported 4 events at or after 2026-02-11T08:00:00+00:00" in capsys.readouterr().out
    assert pd.read_csv(out, dtype=str)["event_id"].tolist() == ["e4", "e5", "0042", "e7"]  # e4 is exactly at --since


def test_an_empty_store_exports_the_header_alone(tmp_path, capsys):
    SqliteEventStore(store_path(tmp_path / "home")).close()
    out = tmp_path / "events.csv"
    assert main(["export-events", "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    assert capsys.readouterr().out.startswith("exported 0 events from ")
    assert out.read_text() == "ts,customer_id,event_type,channel,message_id,value,topic,decision_id,propensity,event_id\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{tmp}/events.txt", "--home", "{home}"], "{tmp}/events.txt: unsupported output type '.txt'; use .csv, .parquet, .jsonl"),
        (["--out", "{tmp}/events.csv", "--home", "{home}", "--since", "yesterday"], "--since 'yesterday' is not an ISO-8601 timestamp"),
        (["--out", "{tmp}/events.csv", "--home", "{tmp}/elsewhere"], "{tmp}/elsewhere/events.db: no event store here: the API has stored no event"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, home, capsys, args, message):
    argv = [a.format(tmp=tmp_path, home=home) for a in args]
    assert main(["export-events", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message.format(tmp=tmp_path)}")
    assert not (tmp_path / "events.csv").exists() and not (tmp_path / "events.txt").exists()


def test_an_unusable_store_exits_1_so_the_scheduler_retries(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    store_path(home).write_bytes(b"this is not a database, it is " * 100)
    assert main(["export-events", "--out", str(tmp_path / "events.csv"), "--home", str(home)]) == 1
    assert capsys.readouterr().err.startswith(f"error: event store {store_path(home)}: cannot open the store: not an SQLite database")
    assert not (tmp_path / "events.csv").exists()


def test_a_decision_log_of_an_earlier_layout_exits_2_saying_what_to_do(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(store_path(home)) as connection:  # the table as an earlier nbm made it: candidates as text
        connection.execute("CREATE TABLE decisions (decision_id TEXT NOT NULL PRIMARY KEY, decided_ns INTEGER NOT NULL, "
                           "as_of_ns INTEGER NOT NULL, customer_id TEXT NOT NULL, channel TEXT NOT NULL, "
                           "model_version TEXT NOT NULL, cold_start INTEGER NOT NULL, served TEXT NOT NULL, "
                           "candidates TEXT NOT NULL, suppressed TEXT NOT NULL)")
        connection.execute("INSERT INTO decisions VALUES ('d1', 1, 1, 'c1', 'email', '3', 0, '[]', '[]', '{}')")
    connection.close()
    assert main(["export-decisions", "--out", str(tmp_path / "decisions.csv"), "--home", str(home)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {store_path(home)}: its decision log (1 decision(s)) has an earlier nbm's layout, which this nbm does not "
        "read; nbm serve on this home sets those decisions aside as table decisions_earlier_layout and starts a new log")
    assert not (tmp_path / "decisions.csv").exists()
