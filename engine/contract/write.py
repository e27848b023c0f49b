"""Write contract tables to a data directory (CSV, Parquet or JSON Lines)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
