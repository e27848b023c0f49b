"""Table-level problems stop loading with a DataError that names the file and the problem."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.config import ValidationSettings
from engine.contract.load import load_dataset
from engine.errors import DataError
from tests.builders import DEFAULT_MESSAGES, event, make_data_dir, write_csv, write_jsonl


def _error(data_dir) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(data_dir, ValidationSettings())
    return str(info.value)


def test_missing_directory(tmp_path):
    assert _error(tmp_path / "nope") == f"{tmp_path / 'nope'}: data directory not found (or not a directory)"


def test_missing_messages_table(tmp_path):
    write_csv(tmp_path / "events.csv", [event("2026-02-10")])
    assert _error(tmp_path) == (
        f"{tmp_path}: required table 'messages' is missing: expected messages.csv or messages.parquet"
    )


def test_missing_events_table(tmp_path):
    write_csv(tmp_path / "messages.csv", DEFAULT_MESSAGES)
    assert "required table 'events' is missing: expected events.csv or events.parquet or events.jsonl" in _error(tmp_path)


def test_customers_table_is_optional(tmp_path):
    dataset = load_dataset(make_data_dir(tmp_path, [event("2026-02-10")]), ValidationSettings())
    assert dataset.report.table("customers").files == ()
    assert list(dataset.customers.columns) == ["customer_id"]


def test_two_files_for_one_table_are_ambiguous(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    pd.read_csv(tmp_path / "messages.csv").to_parquet(tmp_path / "messages.parquet")
    assert _error(tmp_path) == (
        f"{tmp_path}: table 'messages' is ambiguous: found messages.csv, messages.parquet; keep exactly one"
    )


def test_missing_required_column_names_file_and_columns(tmp_path):
    make_data_dir(tmp_path, [{"ts": "2026-02-10", "customer": "c1", "event_type": "visit"}])
    assert _error(tmp_path) == (
        f"{tmp_path / 'events.csv'}: missing required column customer_id "
        "(table 'events' needs ts, customer_id, event_type; the file has: ts, customer, event_type)"
    )


def test_binary_file_is_refused(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").write_bytes(b"PAR1\x00\x01\x02binary")
    assert _error(tmp_path) == f"{tmp_path / 'events.csv'}: not a text file (binary content); expected CSV text"


def test_non_utf8_text_is_refused(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").write_bytes("ts,customer_id,event_type\n2026-02-10,Jos\xe9,visit\n".encode("latin-1"))
    assert _error(tmp_path) == f"{tmp_path / 'events.csv'}: not UTF-8 text: line 2, byte 15 cannot be decoded"


def test_corrupt_parquet_is_refused(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").unlink()
    (tmp_path / "events.parquet").write_bytes(b"this is not parquet")
    assert _error(tmp_path).startswith(f"{tmp_path / 'events.parquet'}: not a readable Parquet file")


def test_empty_file_is_refused(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").write_text("")
    assert _error(tmp_path) == f"{tmp_path / 'events.csv'}: empty file: no header line"


def test_header_only_events_means_no_events(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").write_text("ts,customer_id,event_type\n")
    assert _error(tmp_path) == f"{tmp_path / 'events.csv'}: no events: the table has a header but no rows"


def test_messages_all_invalid_means_no_catalog(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")], messages=[{"message_id": "", "channel": "email", "topic": "t"}])
    assert _error(tmp_path) == f"{tmp_path / 'messages.csv'}: no valid messages (1 rows read, all rejected or none present)"


def test_epoch_numbers_as_timestamps_are_refused_for_the_whole_column(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").unlink()
    pd.DataFrame({"ts": [1767225600], "customer_id": ["c1"], "event_type": ["visit"]}).to_parquet(tmp_path / "events.parquet")
    assert _error(tmp_path) == (
        f"{tmp_path / 'events.parquet'}: column 'ts' holds numbers (int64); expected ISO-8601 text or a timestamp type"
    )


def test_parquet_timestamps_naive_and_aware_are_both_utc(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").unlink()
    naive = pd.DataFrame({"ts": pd.to_datetime(["2026-02-10 09:00"]), "customer_id": ["c1"], "event_type": ["visit"]})
    naive.to_parquet(tmp_path / "events.parquet")
    dataset = load_dataset(tmp_path, ValidationSettings())
    assert dataset.events["ts"].iloc[0] == pd.Timestamp("2026-02-10T09:00Z")
    aware = naive.assign(ts=naive["ts"].dt.tz_localize("Europe/Amsterdam"))
    aware.to_parquet(tmp_path / "events.parquet")
    dataset = load_dataset(tmp_path, ValidationSettings())
    assert dataset.events["ts"].iloc[0] == pd.Timestamp("2026-02-10T08:00Z")


def test_events_folder_of_mixed_files_is_one_table_with_per_file_row_numbers(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").unlink()
    write_csv(tmp_path / "events" / "a.csv", [event("2026-02-10", event_id="a1"), event("bad", event_id="a2")])
    write_jsonl(tmp_path / "events" / "b.jsonl", [event("2026-02-11", event_id="b1"), event("2026-02-12", event_type="??", event_id="b2")])
    dataset = load_dataset(tmp_path, ValidationSettings(max_reject_share=1))
    assert list(dataset.events["event_id"]) == ["a1", "b1"]
    rejects = dataset.report.rejects.set_index("event_id")
    assert rejects.loc["a2", "source_file"] == str(tmp_path / "events" / "a.csv")
    assert rejects.loc["a2", "row_number"] == 2
    assert rejects.loc["b2", "source_file"] == str(tmp_path / "events" / "b.jsonl")
    assert rejects.loc["b2", "row_number"] == 2
    assert dataset.report.table("events").files == (str(tmp_path / "events" / "a.csv"), str(tmp_path / "events" / "b.jsonl"))


def test_empty_events_folder_is_refused(tmp_path):
    make_data_dir(tmp_path, [event("2026-02-10")])
    (tmp_path / "events.csv").unlink()
    (tmp_path / "events").mkdir()
    assert _error(tmp_path) == f"{tmp_path / 'events'}: folder holds no .csv/.parquet/.jsonl files for table 'events'"
