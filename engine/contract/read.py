"""Find and read the contract tables of a data directory into raw frames.

Raw means: the columns exactly as the file has them, plus two bookkeeping columns (``SOURCE_COLUMN``,
``ROW_COLUMN``) that let every rejected row be traced back to its file and 1-based data row (the header
line is not counted). Anything that makes a whole file unusable raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.contract.schema import TableSpec
from engine.errors import DataError

SOURCE_COLUMN = "source_file"
ROW_COLUMN = "row_number"
_SNIFF_BYTES = 8192


def find_table_files(data_dir: Path, spec: TableSpec) -> list[Path]:
    """The files that hold ``spec``'s table: one ``<name>.<ext>`` file or a ``<name>/`` folder of them.

    Returns an empty list when the table is absent and allowed to be.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError("data directory not found (or not a directory)", path=str(data_dir))
    single = [data_dir / f"{spec.name}{ext}" for ext in spec.formats if (data_dir / f"{spec.name}{ext}").is_file()]
    folder = data_dir / spec.name
    in_folder = (
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in spec.formats and not p.name.startswith("."))
        if folder.is_dir()
        else []
    )
    expected = " or ".join(f"{spec.name}{ext}" for ext in spec.formats)
    if len(single) > 1 or (single and in_folder):
        found = ", ".join(p.name for p in single) + (f", {spec.name}/" if in_folder else "")
        raise DataError(f"table '{spec.name}' is ambiguous: found {found}; keep exactly one", path=str(data_dir))
    if single:
        return single
    if in_folder:
        return in_folder
    if folder.is_dir():
        raise DataError(f"folder holds no {'/'.join(spec.formats)} files for table '{spec.name}'", path=str(folder))
    if spec.may_be_missing:
        return []
    raise DataError(f"required table '{spec.name}' is missing: expected {expected}", path=str(data_dir))


def read_table(files: list[Path], spec: TableSpec) -> pd.DataFrame:
    """Read and concatenate ``files``; check that the required columns are there in every file."""
    frames = [_read_one(path, spec) for path in files]
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype="string") for name in spec.required})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_chunks(files: list[Path], spec: TableSpec, rows: int) -> Iterator[pd.DataFrame]:
    """:func:`read_table`'s rows, file after file in chunks of about ``rows`` rows (CSV and Parquet; a JSON
    lines file in one piece), each checked and numbered as :func:`read_table` does: memory holds a chunk,
    not the table."""
    for path in files:
        first_row = 1
        for frame in _raw_chunks(path, rows):
            yield _checked(frame, path, spec, first_row)
            first_row += len(frame)


def _read_one(path: Path, spec: TableSpec) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame = _read_parquet(path)
    else:
        _refuse_binary(path)
        frame = _read_csv(path) if path.suffix == ".csv" else _read_jsonl(path)
    return _checked(frame, path, spec, 1)


def _raw_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    if path.suffix == ".parquet":
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
            for batch in batches:
                # A dictionary column (a pandas categorical) carries its whole dictionary in every batch (all
                # customer ids, say): its values as plain text are what a chunk holds.
                yield pa.Table.from_batches([batch]).cast(_plain(batch.schema)).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"not a readable Parquet file: {exc}", path=str(path)) from None
        return
    _refuse_binary(path)
    if path.suffix != ".csv":
        yield _read_jsonl(path)
        return
    with _csv_errors(path):
        yield from _csv(path, chunksize=rows)


def _plain(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each dictionary-encoded field as its values' type."""
    return pa.schema([field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field for field in schema],
                     metadata=None)


def _checked(frame: pd.DataFrame, path: Path, spec: TableSpec, first_row: int) -> pd.DataFrame:
    """The frame with its columns checked and its bookkeeping columns added (rows numbered from ``first_row``)."""
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        have = ", ".join(frame.columns) or "none"
        raise DataError(
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(table '{spec.name}' needs {', '.join(spec.required)}; the file has: {have})",
            path=str(path),
        )
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DataError(f"column{'s' if len(duplicated) > 1 else ''} {', '.join(duplicated)} appear twice", path=str(path))
    frame[SOURCE_COLUMN] = pd.Categorical([str(path)] * len(frame)) if len(frame) else pd.Categorical([])
    if "_jsonl_line" in frame.columns:
        frame[ROW_COLUMN] = frame.pop("_jsonl_line").to_numpy()
    else:
        frame[ROW_COLUMN] = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return frame


def _refuse_binary(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise DataError(f"not a text file (binary content); expected {path.suffix[1:].upper()} text", path=str(path))


def _where_not_utf8(path: Path) -> str:
    """Name the first line (1-based, header included) and column that is not UTF-8."""
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text: line {line_number}, byte {exc.start + 1} cannot be decoded"
    return "not UTF-8 text"


def _read_csv(path: Path) -> pd.DataFrame:
    with _csv_errors(path):
        return _csv(path)


def _csv(path: Path, chunksize: int | None = None):
    # Everything as text: the validator parses each column itself so it can reject single rows.
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8", chunksize=chunksize)


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """A CSV file that cannot be read as a table becomes a :class:`DataError` naming it and why."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError("empty file: no header line", path=str(path)) from None
    except UnicodeDecodeError:
        raise DataError(_where_not_utf8(path), path=str(path)) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed CSV: {exc}".strip(), path=str(path)) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", path=str(path)) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object a line; a malformed line becomes a row whose ``_jsonl_error`` says why."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(_where_not_utf8(path), path=str(path)) from None
    records: list[dict] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            record = {"_jsonl_error": f"line is not valid JSON ({exc.msg} at column {exc.colno})"}
        if not isinstance(record, dict):
            record = {"_jsonl_error": "line is valid JSON but not an object"}
        records.append(record)
        line_numbers.append(number)
    frame = pd.DataFrame.from_records(records)
    frame["_jsonl_line"] = np.asarray(line_numbers, dtype=np.int64)
    return frame
