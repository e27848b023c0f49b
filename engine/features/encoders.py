"""Encoders for profile and message attribute columns, fitted once at training and saved with the model.

A column becomes one numeric feature: numbers as they are, booleans as 0/1, timestamps as days before
``as_of``, anything else as a stable category code (NaN for a value not seen at training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from engine.contract.parse import parse_text
from engine.features.vocab import Vocabulary
from engine.timeutil import NS_PER_DAY

Kind = Literal["numeric", "boolean", "datetime", "category"]
MAX_CATEGORIES = 256  # more distinct values than this is an identifier, not a category
_TRUE, _FALSE = {"true", "yes", "1", "t", "y"}, {"false", "no", "0", "f", "n"}


@dataclass(frozen=True)
class ColumnEncoder:
    column: str
    kind: Kind
    categories: tuple[str, ...] = ()

    @classmethod
    def fit(cls, column: str, values: pd.Series) -> ColumnEncoder | None:
        """Choose the encoding from the training values; None for a column that cannot be a feature."""
        present = values.dropna()
        if pd.api.types.is_bool_dtype(values):
            return cls(column, "boolean")
        if pd.api.types.is_numeric_dtype(values):
            return cls(column, "numeric")
        if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
            return cls(column, "datetime")
        text = parse_text(present).dropna()
        if text.empty:
            return None
        lowered = set(text.str.lower().unique())
        if lowered <= _TRUE | _FALSE:
            return cls(column, "boolean")
        if pd.to_numeric(text, errors="coerce").notna().all():
            return cls(column, "numeric")
        if pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").notna().all():
            return cls(column, "datetime")
        categories = tuple(sorted(text.unique()))
        if len(categories) > MAX_CATEGORIES:
            return None
        return cls(column, "category", categories)

    def transform(self, values: pd.Series, as_of_ns: np.ndarray) -> np.ndarray:
        """One float per row; ``as_of_ns`` (per row) is only used by timestamps."""
        encoded = self.encode(values)
        return (as_of_ns - encoded) / NS_PER_DAY if self.kind == "datetime" else encoded

    def encode(self, values: pd.Series) -> np.ndarray:
        """The as_of-free part of :meth:`transform`: timestamps stay as ns since the epoch (float)."""
        if self.kind == "numeric":
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if self.kind == "boolean":
            if pd.api.types.is_bool_dtype(values):
                return values.astype("float64").to_numpy()
            lowered = parse_text(values).str.lower()
            return np.where(lowered.isin(_TRUE).fillna(False), 1.0, np.where(lowered.isin(_FALSE).fillna(False), 0.0, np.nan))
        if self.kind == "datetime":
            stamps = values if isinstance(values.dtype, pd.DatetimeTZDtype) else pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
            ns = stamps.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").array.asi8.astype(np.float64)
            ns[stamps.isna().to_numpy()] = np.nan
            return ns
        codes = Vocabulary(self.categories).encode(parse_text(values)).astype(np.float64)
        codes[codes < 0] = np.nan
        return codes

    def to_dict(self) -> dict:
        return {"column": self.column, "kind": self.kind, "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, data: dict) -> ColumnEncoder:
        return cls(data["column"], data["kind"], tuple(data.get("categories", ())))


def fit_encoders(frame: pd.DataFrame, skip: tuple[str, ...]) -> tuple[ColumnEncoder, ...]:
    encoders = (ColumnEncoder.fit(name, frame[name]) for name in frame.columns if name not in skip)
    return tuple(e for e in encoders if e is not None)
