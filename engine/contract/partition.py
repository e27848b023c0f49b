"""The events table split by customer into parts that each fit in memory.

A stable hash of ``customer_id`` (pandas' ``hash_pandas_object``: the same on every run and machine)
sends each event row, as read (raw text, with its file and row number), to one of ``parts`` folders of
Parquet files. All of a customer's events are then in one part, so a part validates and is decided on
its own: features, caps and consent read only the customer's own events. The files are read in chunks
(:func:`engine.contract.read.read_chunks`), so memory holds a chunk, then a part, never the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.contract.read import read_chunks
from engine.contract.schema import EVENTS

ROWS_PER_PART = 1_000_000  # events a part holds at most, about: under 1 GB of a process's memory once decided
CHUNK_ROWS = 1_000_000  # rows read at once


def part_of(customer_ids: pd.Series, parts: int) -> np.ndarray:
    """The part (0..parts-1) of each customer id."""
    hashed = pd.util.hash_pandas_object(customer_ids.astype(str), index=False).to_numpy()
    return (hashed % np.uint64(parts)).astype(np.int64)


def parts_for(files: list[Path], rows_per_part: int = ROWS_PER_PART) -> int:
    """How many parts keep each under ``rows_per_part`` events: exact for Parquet (its metadata counts
    rows), estimated for text files from their size and the length of their first lines."""
    rows = 0.0
    for path in files:
        if path.suffix == ".parquet":
            rows += pq.ParquetFile(path).metadata.num_rows
            continue
        with path.open("rb") as handle:
            head = handle.readlines(1 << 20)
        line = sum(map(len, head)) / max(len(head), 1)
        rows += path.stat().st_size / max(line, 1.0)
    return max(1, math.ceil(rows / rows_per_part))


@dataclass(frozen=True)
class EventParts:
    """The raw event rows of ``files`` in ``parts`` folders under ``folder`` (``rows_read`` in all)."""

    folder: Path
    parts: int
    rows_read: int
    columns: tuple[str, ...]  # every column some file has, in first-seen order

    @classmethod
    def split(cls, files: list[Path], parts: int, folder: Path, chunk_rows: int = CHUNK_ROWS) -> EventParts:
        folder.mkdir(parents=True, exist_ok=True)
        rows, columns, written = 0, dict.fromkeys(EVENTS.required), 0
        for chunk in read_chunks(files, EVENTS, chunk_rows):
            rows += len(chunk)
            columns.update(dict.fromkeys(chunk.columns))
            where = part_of(chunk["customer_id"], parts)
            # One stable sort by part, then a slice per part: a mask per part would copy the chunk per part.
            table = pa.Table.from_pandas(chunk, preserve_index=False).take(np.argsort(where, kind="stable"))
            stops = np.cumsum(np.bincount(where, minlength=parts))
            for part in np.flatnonzero(np.bincount(where, minlength=parts)).tolist():
                piece = folder / f"{part:05d}"
                piece.mkdir(exist_ok=True)
                start = int(stops[part - 1]) if part else 0
                pq.write_table(table.slice(start, int(stops[part]) - start), piece / f"{written:06d}.parquet")
            written += 1
        return cls(folder, parts, rows, tuple(columns))

    def raw(self, part: int) -> pd.DataFrame:
        """The part's rows in file and row order, with every column of :attr:`columns` (missing: absent)."""
        pieces = sorted((self.folder / f"{part:05d}").glob("*.parquet"))
        frames = [pd.read_parquet(path) for path in pieces]
        if not frames:
            return pd.DataFrame({name: pd.Series(dtype="string") for name in EVENTS.required})
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
