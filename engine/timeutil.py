"""Time in integer nanoseconds since the Unix epoch, UTC: the one representation the engine computes with."""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_DAY = 86_400 * 10**9


def to_ns(column: pd.Series) -> np.ndarray:
    """int64 ns of a UTC-aware (or UTC-parseable) timestamp column; NaT becomes int64 min."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        column = pd.to_datetime(column, utc=True)
    return column.astype("datetime64[ns, UTC]").array.asi8.astype(np.int64, copy=False)
