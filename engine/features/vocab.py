"""Stable categorical encodings: a value's code never depends on the data it is applied to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
        values = series if isinstance(series, pd.Series) else pd.Series(np.asarray(series, dtype=object))
        # Factorize first: hashing each distinct value once is much cheaper than once per row.
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        mapped = self._index.get_indexer(pd.Index(uniques).astype("string"))
        mapped = np.append(mapped, -1).astype(np.int32)  # the NA sentinel -1 picks the appended -1
        return mapped[codes]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The values of ``codes`` as a text array; "" for -1 (none or unknown)."""
        table = self._names
        if not len(codes):
            return table[:0]
        return table[np.where(np.asarray(codes) >= 0, codes, len(self.values))]

    @cached_property
    def _names(self) -> np.ndarray:
        # Built once per vocabulary, not per call: a bundle's vocabularies live as long as its engine.
        return np.asarray((*self.values, ""), dtype=str)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(list(self.values), dtype="string")

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            return -1
