"""Split examples by time: train, then validation, then the last ``test_days`` as test.

Splitting by time, not at random, is what makes evaluation honest: the model is judged on a period it
has never seen, as it will be in production.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import DataError

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitBounds:
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp  # exclusive: the end of the data


def split_bounds(end: pd.Timestamp, test_days: float, validation_days: float) -> SplitBounds:
    test_start = end - pd.Timedelta(days=test_days)
    return SplitBounds(test_start - pd.Timedelta(days=validation_days), test_start, end)


def assign_split(ts: pd.Series, bounds: SplitBounds) -> np.ndarray:
    """0 train (ts < validation_start), 1 validation, 2 test (ts >= test_start)."""
    values = ts.astype("datetime64[ns, UTC]").array.asi8
    split = np.full(len(values), TRAIN, dtype=np.int8)
    split[values >= bounds.validation_start.value] = VALIDATION
    split[values >= bounds.test_start.value] = TEST
    return split


def check_split_sizes(split: np.ndarray, minimum: int = 1, censored: np.ndarray | None = None) -> None:
    """Refuse data too short in time for the configured windows, naming what is missing; ``censored``:
    impressions per split left out because their attribution window reaches past the data's end."""
    counts = np.bincount(split, minlength=3)
    empty = [SPLIT_NAMES[i] for i in range(3) if counts[i] < minimum]
    if empty:
        cut = "" if censored is None or not np.any(censored) else (
            f"; left out because their attribution window reaches past the end of the data: train {censored[0]:,}, "
            f"validation {censored[1]:,}, test {censored[2]:,} (make training.test_days longer than the attribution window)")
        raise DataError(
            f"not enough history to split by time: {', '.join(empty)} window has fewer than {minimum} impressions "
            f"(train {counts[0]:,}, validation {counts[1]:,}, test {counts[2]:,}){cut}; "
            "shorten training.test_days / training.validation_days or provide more days"
        )
