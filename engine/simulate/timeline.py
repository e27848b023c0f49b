"""Simulated time as int64 nanoseconds since the Unix epoch (UTC), and conversions to pandas.

Event times are whole milliseconds so that they survive any datetime resolution a reader may choose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MS_NS = 1_000_000
MINUTE_NS = 60_000 * MS_NS
DAY_NS = 86_400_000 * MS_NS
NEVER_NS = np.iinfo(np.int64).max  # an open-ended validity end, or a stage never reached
ALWAYS_NS = np.iinfo(np.int64).min  # an open-ended validity start, or a stage entered before the start


def to_ns(moment: pd.Timestamp | object) -> int:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {stamp} is naive; nbm times must be UTC-aware")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def series_to_ns(values: pd.Series, what: str = "ts") -> np.ndarray:
    """int64 ns of a UTC-aware datetime column (NaT is not allowed)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"column {what!r} must be UTC-aware datetimes, got dtype {values.dtype}")
    if values.isna().any():
        raise ValueError(f"column {what!r} has missing timestamps")
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8.copy()


def optional_series_to_ns(values: pd.Series, missing: int, what: str) -> np.ndarray:
    """int64 ns of a UTC-aware datetime column, NaT replaced by the sentinel ``missing``."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"column {what!r} must be UTC-aware datetimes, got dtype {values.dtype}")
    index = pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns")
    return np.where(index.isna(), missing, index.asi8)


def ns_to_series(values: np.ndarray, missing: int | None = None) -> pd.Series:
    """UTC-aware datetime64[ns] column from int64 ns; ``missing`` sentinel values become NaT."""
    values = np.asarray(values, dtype=np.int64)
    if missing is not None:
        values = np.where(values == missing, np.iinfo(np.int64).min, values)  # int64 min is NaT
    return pd.Series(pd.DatetimeIndex(values.view("datetime64[ns]"), tz="UTC"))


def midnight_ns(ts_ns: np.ndarray) -> np.ndarray:
    """UTC midnight starting the day of each time."""
    return ts_ns - np.mod(ts_ns, DAY_NS)
