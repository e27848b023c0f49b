"""Write contract tables to a data directory (CSV, Parquet or JSON Lines)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.timeutil import to_ns

WRITE_FORMATS = ("parquet", "csv", "jsonl")


def _iso_utc(column: pd.Series) -> pd.Series:
    # ISO-8601 with an explicit Z so that a reader never has to guess the zone; NaT becomes empty.
    text = column.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return text.where(column.notna(), "")


def write_table(frame: pd.DataFrame, out_dir: Path, table: str, fmt: str = "parquet") -> Path:
    """Write ``frame`` as ``out_dir/<table>.<fmt>`` and return the path.

    Datetime columns must be UTC-aware; in CSV and JSON Lines they are written as ISO-8601 text.
    """
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{table}.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        return path
    text_frame = frame.copy()
    for name in text_frame.columns:
        if isinstance(text_frame[name].dtype, pd.DatetimeTZDtype):
            text_frame[name] = _iso_utc(text_frame[name])
    if fmt == "csv":
        text_frame.to_csv(path, index=False)
    else:
        text_frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


FILE_SUFFIXES = (".csv", ".parquet", ".jsonl")


def write_frames(frames: Iterable[pd.DataFrame], path: Path) -> int:
    """Write chunks of one table to ``path`` (format by suffix) and return the number of rows.

    Chunks are written as they come, so memory stays bounded; the first fixes the columns and types (pass
    an empty frame first if there may be none). The file appears whole or not at all: it is written
    beside ``path`` and renamed into place, so a nightly job never reads half an export.
    """
    path = Path(path)
    if path.suffix not in FILE_SUFFIXES:
        raise ValueError(f"unsupported file type {path.suffix!r}; use {', '.join(FILE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    rows = 0
    try:
        with _ChunkWriter(partial, path.suffix) as writer:
            for frame in frames:
                writer.write(frame)
                rows += len(frame)
        if not partial.exists():
            raise ValueError("no frame to write; pass an empty frame first to write the columns alone")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    # Zoned times go over as UTC nanoseconds: pyarrow would read pandas' deprecated zone-dropping .values.
    columns = {
        name: pa.array(to_ns(column), type=pa.timestamp("ns", tz="UTC"), mask=column.isna().to_numpy())
        if isinstance(column.dtype, pd.DatetimeTZDtype)
        else pa.Array.from_pandas(column)
        for name, column in frame.items()
    }
    return pa.table(columns)


class _ChunkWriter:
    def __init__(self, path: Path, suffix: str) -> None:
        self._path, self._suffix = path, suffix
        self._parquet: pq.ParquetWriter | None = None
        self._text = None if suffix == ".parquet" else path.open("w", encoding="utf-8", newline="")
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self._text is None:
            table = _arrow_table(frame)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        text = frame.copy()
        for name in text.columns:
            if isinstance(text[name].dtype, pd.DatetimeTZDtype):
                text[name] = _iso_utc(text[name])
        if self._suffix == ".csv":
            text.to_csv(self._text, index=False, header=self._header)
            self._header = False
            return
        # json.dumps writes floats exactly (pandas' to_json rounds to 10 digits); missing values are null.
        records = text.astype(object).where(text.notna(), None).to_dict("records")
        self._text.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            self._text.close()
        if self._path.exists():  # on disk before the rename, so a power cut cannot leave an empty file
            descriptor = os.open(self._path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
