"""Stable categorical encodings: a value's code never depends on the data it is applied to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Vocabulary:
    """An ordered set of strings; ``encode`` maps each to its position, anything else to -1."""

    values: tuple[str, ...]

    @classmethod
    def of(cls, series: pd.Series) -> Vocabulary:
        """The sorted distinct non-null values of ``series`` (sorted so the order is reproducible)."""
        return cls(tuple(sorted(str(v) for v in pd.unique(series.dropna()))))

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, series: pd.Series | np.ndarray | list) -> np.ndarray:
        codes = pd.Categorical(pd.Series(series, dtype="object").astype("string"), categories=list(self.values)).codes
        return codes.astype(np.int32, copy=False)

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            return -1
