"""Write rejected rows (original columns + table, source file, row number, reason, detail)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.errors import DataError

_FORMATS = (".csv", ".parquet", ".jsonl")


def check_rejects_path(path: Path) -> None:
    """Refuse an unsupported rejects file type before any work is done."""
    if Path(path).suffix not in _FORMATS:
        raise DataError(f"unsupported rejects file type '{Path(path).suffix}'; use {', '.join(_FORMATS)}", path=str(path))


def write_rejects(rejects: pd.DataFrame, path: Path) -> Path:
    """Write ``rejects`` to ``path``; the format follows the suffix. Original values are written as text,
    since rows from different tables and files share columns of different types."""
    path = Path(path)
    check_rejects_path(path)
    text = rejects.copy()
    for name in text.columns:
        if name != "row_number":
            text[name] = text[name].map(lambda v: None if v is None or v is pd.NA or v != v else str(v)).astype("string")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            text.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            text.to_parquet(path, index=False)
        else:
            text.to_json(path, orient="records", lines=True, force_ascii=False)
    except OSError as exc:
        raise DataError(f"cannot write the rejects file: {exc.strerror or exc}", path=str(path)) from None
    return path
