"""The events table split by customer (engine/contract/partition.py) and read in chunks (read_chunks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import ValidationSettings
from engine.contract.load import load_dataset, load_in_parts
from engine.contract.partition import EventParts, part_of, parts_for
from engine.contract.read import ROW_COLUMN, SOURCE_COLUMN, read_chunks, read_table
from engine.contract.schema import EVENTS
from engine.errors import DataError
from tests.builders import write_csv

MESSAGES = [{"message_id": "m1", "channel": "email", "topic": "t"}, {"message_id": "m2", "channel": "sms", "topic": "t"}]


def _events(n: int, customers: int = 7) -> list[dict]:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        rows.append({"ts": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", "customer_id": f"c{int(rng.integers(customers))}",
                     "event_type": "visit", "topic": "t"})
    rows[5]["event_type"] = "teleport"  # one bad row: rejected, named by its file and row, in every way of reading
    return rows


def _data(tmp_path, rows: list[dict], *, parquet: bool = False):
    write_csv(tmp_path / "messages.csv", MESSAGES)
    if parquet:
        (tmp_path / "events").mkdir()
        pd.DataFrame(rows[:20]).to_parquet(tmp_path / "events" / "a.parquet", index=False)
        pd.DataFrame(rows[20:]).to_parquet(tmp_path / "events" / "b.parquet", index=False)
    else:
        write_csv(tmp_path / "events.csv", rows)
    return tmp_path


def test_parts_are_stable_and_in_range():
    ids = pd.Series([f"c{i}" for i in range(200)])
    parts = part_of(ids, 5)
    assert parts.min() >= 0 and parts.max() <= 4 and len(np.unique(parts)) == 5
    assert part_of(ids[::-1], 5).tolist() == parts[::-1].tolist()  # a customer's part depends on its id alone
    assert part_of(ids, 1).tolist() == [0] * 200


@pytest.mark.parametrize("parquet", [False, True])
def test_chunks_are_the_tables_rows_with_their_file_and_row_numbers(tmp_path, parquet):
    data = _data(tmp_path, _events(57), parquet=parquet)
    files = sorted((data / "events").glob("*.parquet")) if parquet else [data / "events.csv"]
    whole = read_table(files, EVENTS)
    chunks = list(read_chunks(files, EVENTS, rows=8))
    assert max(len(c) for c in chunks) == 8
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined.astype({SOURCE_COLUMN: str}), whole.astype({SOURCE_COLUMN: str}))


@pytest.mark.parametrize("parquet", [False, True])
def test_each_customer_is_in_one_part_and_the_parts_validate_as_the_whole(tmp_path, parquet):
    data = _data(tmp_path, _events(57), parquet=parquet)
    whole = load_dataset(data, ValidationSettings())
    parted = load_in_parts(data, tmp_path / "parts", rows_per_part=15)
    assert parted.events.parts == 4 and parted.events.rows_read == 57
    results = [parted.events_of(part) for part in range(parted.events.parts)]
    owners = [set(r.accepted["customer_id"]) for r in results]
    assert sum(map(len, owners)) == len(set().union(*owners))  # no customer in two parts
    accepted = pd.concat([r.accepted for r in results]).sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    expected = whole.events.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(accepted, expected)
    report = parted.report(results, ValidationSettings())
    assert report.table("events").rows_read == 57 and report.table("events").rows_accepted == 56
    assert report.rejects[["reason", ROW_COLUMN]].values.tolist() == whole.report.rejects[["reason", ROW_COLUMN]].values.tolist()


def test_parts_needed_count_parquet_rows_and_estimate_text_rows(tmp_path):
    rows = _events(100)
    pd.DataFrame(rows).to_parquet(tmp_path / "e.parquet", index=False)
    write_csv(tmp_path / "e.csv", rows)
    assert parts_for([tmp_path / "e.parquet"], rows_per_part=30) == 4  # 100 rows
    assert parts_for([tmp_path / "e.csv"], rows_per_part=30) in (4, 5)  # header and line lengths make it ~101
    assert parts_for([tmp_path / "e.parquet"], rows_per_part=10**6) == 1


def test_an_empty_part_reads_as_an_empty_events_table(tmp_path):
    parts = EventParts.split([_data(tmp_path, _events(9, customers=1)) / "events.csv"], 8, tmp_path / "parts")
    empty = [p for p in range(8) if not (tmp_path / "parts" / f"{p:05d}").exists()]
    assert len(empty) == 7 and list(parts.raw(empty[0]).columns) == list(EVENTS.required)


def test_a_broken_file_read_in_chunks_is_refused_naming_it(tmp_path):
    path = tmp_path / "events.csv"
    lines = ["ts,customer_id,event_type"] + [f"2026-03-01T00:00:00Z,c{i},visit" for i in range(30)] + ['2026-03-01T00:00:00Z,"c1,visit']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="malformed CSV") as caught:
        list(read_chunks([path], EVENTS, rows=10))
    assert str(path) in str(caught.value)
