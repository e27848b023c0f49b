"""Vectorised parsers that turn a raw column (text from CSV/JSON, typed from Parquet) into canonical form.

Each returns the parsed column plus a boolean mask of values that were present but could not be parsed,
so the validator can reject exactly those rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import DataError

TEXT = pd.StringDtype()
TIMESTAMP = pd.DatetimeTZDtype(unit="ns", tz="UTC")


def absent(length: int, dtype: object) -> pd.Series:
    return pd.Series(pd.array([pd.NA] * length, dtype=dtype) if dtype == TEXT else np.full(length, np.nan))


def parse_text(column: pd.Series) -> pd.Series:
    """Trimmed text; empty strings and nulls become <NA>."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        # Clean each distinct value once (Parquet often stores text dictionary-encoded).
        categories = parse_text(pd.Series(column.cat.categories))
        codes = column.cat.codes.to_numpy()
        text = categories.take(np.where(codes >= 0, codes, 0)).set_axis(column.index)
        return text.mask(codes < 0)
    text = column.astype(TEXT).str.strip()
    return text.mask(text == "")


def parse_lower_text(column: pd.Series) -> pd.Series:
    """Like :func:`parse_text`, lower-cased: vocabularies (event types, channels, stages) ignore case."""
    return parse_text(column).str.lower()


def parse_number(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float64 with NaN for missing; ``bad`` marks present values that are not finite numbers."""
    if pd.api.types.is_bool_dtype(column):
        numbers = pd.Series(np.full(len(column), np.nan), index=column.index)
        return numbers, column.notna()
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.astype("float64")
        present = column.notna()
    else:
        text = parse_text(column)
        present = text.notna()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    numbers = numbers.where(np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan)))
    bad = present & numbers.isna()
    return numbers.astype("float64"), bad.astype(bool)


def is_blank(column: pd.Series) -> pd.Series:
    """Null, or text that is empty once trimmed (without formatting typed values as text)."""
    if pd.api.types.is_string_dtype(column) or column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
        return parse_text(column).isna()
    return column.isna()


def parse_timestamp(column: pd.Series, *, source: str, name: str) -> tuple[pd.Series, pd.Series]:
    """UTC-aware timestamps (offsets converted, naive taken as UTC); ``bad`` marks unparseable values.

    A Parquet column of timestamps is accepted as is; numbers (epochs) are refused for the whole column
    because the contract asks for ISO-8601 and guessing the unit would silently shift every event.
    """
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").astype(TIMESTAMP), pd.Series(False, index=column.index)
    if pd.api.types.is_datetime64_dtype(column):
        return column.dt.tz_localize("UTC").astype(TIMESTAMP), pd.Series(False, index=column.index)
    if pd.api.types.is_numeric_dtype(column) and not column.isna().all():
        raise DataError(
            f"column '{name}' holds numbers ({column.dtype}); expected ISO-8601 text or a timestamp type",
            path=source,
        )
    text = parse_text(column)
    present = text.notna()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    # pandas may parse years outside the nanosecond range (1677-2262) at a coarser unit: those are bad values
    # like any unparseable text, not an overflow while converting.
    parsed = parsed.where(parsed.isna() | parsed.between(pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")))
    parsed = parsed.astype(TIMESTAMP)
    bad = present & parsed.isna()
    return parsed, bad.astype(bool)


# A time of day followed by Z or a numeric offset (a date alone never carries one in ISO-8601).
_ZONED = r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def has_utc_offset(column: pd.Series) -> pd.Series:
    """True where the timestamp text states its zone (``Z`` or ``+hh:mm``); typed zoned values count too."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.notna()
    if pd.api.types.is_datetime64_dtype(column):
        return pd.Series(False, index=column.index)
    return parse_text(column).str.contains(_ZONED, regex=True).fillna(False).astype(bool)
