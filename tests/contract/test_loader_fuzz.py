"""The loader never fails with anything but an NbmError, whatever the files hold.

``load_dataset`` either returns a Dataset (bad rows become reason-coded rejects) or raises an NbmError
(DataError, TooManyRejectsError) that names the file; any other exception is a bug: the CLI would report it
as an internal error instead of telling the user what is wrong with their data.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import ValidationSettings
from engine.contract.load import Dataset, load_dataset
from engine.contract.schema import EVENTS, MESSAGES, TableSpec
from engine.errors import NbmError
from tests.builders import DEFAULT_MESSAGES, EVENT_HEADER, MESSAGE_HEADER, event, write_csv

FUZZ = settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_EVENTS = [event("2026-02-10T09:00:00Z", "c1", "impression", message_id="m1"), event("2026-02-11T09:00:00Z")]

# Cells that reach deep into the validator: real timestamps, numbers, contract words, and junk.
CELLS = st.one_of(
    st.sampled_from(["", " ", "2026-02-10", "2026-02-10T09:00:00Z", "2026-02-10T09:00:00+05:30", "9999-12-31",
                     "0001-01-01", "1e400", "-1", "0.5", "nan", "inf", "NaN", "m1", "m2", "m3", "email", "sms",
                     "impression", "sent", "click", "survey", "unsubscribe", "complaint", "awareness", "c1", "null"]),
    st.text(max_size=12),
)
COLUMNS = st.one_of(st.sampled_from(EVENTS.required + EVENTS.optional + MESSAGES.required + MESSAGES.optional), st.text(max_size=6))
# Any JSON value, nested a little: JSON lines may hold lists, objects and numbers where text is expected.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | CELLS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _outcome(write: Callable[[Path], None]) -> Dataset | NbmError:
    with tempfile.TemporaryDirectory() as root:
        write(Path(root))
        try:
            return load_dataset(root, ValidationSettings(max_reject_share=1.0))
        except NbmError as error:  # anything else fails the test, with hypothesis' smallest example
            assert str(error)
            return error


def _valid_messages(root: Path) -> None:
    write_csv(root / "messages.csv", DEFAULT_MESSAGES, MESSAGE_HEADER)


def _valid_events(root: Path) -> None:
    write_csv(root / "events.csv", VALID_EVENTS, EVENT_HEADER)


def _header(draw, spec: TableSpec) -> list[str]:
    """Mostly the table's required columns (so rows reach the validator) plus others, in any order."""
    required = draw(st.lists(st.sampled_from(spec.required), unique=True)) if draw(st.integers(0, 9)) == 0 else list(spec.required)
    extra = draw(st.lists(COLUMNS, max_size=4))
    return draw(st.permutations(required + extra))


@st.composite
def csv_text(draw, spec: TableSpec) -> bytes:
    """A CSV-shaped table: a header of (mostly contract) columns and rows of cells, sometimes ragged."""
    header = _header(draw, spec) or ["x"]
    width = st.integers(len(header), len(header)) if draw(st.integers(0, 4)) else st.integers(0, len(header) + 1)
    rows = [draw(st.lists(CELLS, min_size=size, max_size=size)) for size in draw(st.lists(width, max_size=5))]
    quote = lambda cell: '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n\r') else cell  # noqa: E731
    lines = [",".join(quote(c) for c in header)] + [",".join(quote(c) for c in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")


@st.composite
def jsonl_text(draw) -> bytes:
    """Lines of JSON objects with contract keys and any JSON value, some lines broken or not objects."""
    keys = _header(draw, EVENTS)
    objects = st.lists(CELLS | JSON, min_size=len(keys), max_size=len(keys)).map(lambda values: dict(zip(keys, values)))
    line = st.one_of(objects.map(json.dumps), objects.map(json.dumps), JSON.map(json.dumps), st.text(max_size=10))
    return "\n".join(draw(st.lists(line, max_size=5))).encode("utf-8", errors="surrogatepass")


@given(content=st.binary(max_size=300))
@FUZZ
def test_arbitrary_bytes_as_events_csv(content):
    _outcome(lambda root: (_valid_messages(root), (root / "events.csv").write_bytes(content)))


@given(content=st.binary(max_size=300))
@FUZZ
def test_arbitrary_bytes_as_events_jsonl(content):
    _outcome(lambda root: (_valid_messages(root), (root / "events.jsonl").write_bytes(content)))


@given(content=st.binary(max_size=300))
@FUZZ
def test_arbitrary_bytes_as_messages_csv(content):
    _outcome(lambda root: ((root / "messages.csv").write_bytes(content), _valid_events(root)))


@given(content=csv_text(EVENTS))
@FUZZ
def test_csv_shaped_events_beside_a_valid_catalog(content):
    _outcome(lambda root: (_valid_messages(root), (root / "events.csv").write_bytes(content)))


@given(content=csv_text(MESSAGES))
@FUZZ
def test_csv_shaped_messages_beside_valid_events(content):
    _outcome(lambda root: ((root / "messages.csv").write_bytes(content), _valid_events(root)))


@given(content=jsonl_text())
@FUZZ
def test_json_lines_of_any_json_beside_a_valid_catalog(content):
    _outcome(lambda root: (_valid_messages(root), (root / "events.jsonl").write_bytes(content)))


# Parquet columns of every type pandas writes: text, numbers, booleans, timestamps (naive and zoned), nulls.
def _column(kind: str, values: list) -> pd.Series:
    n = len(values)
    if kind == "text":
        return pd.Series(values, dtype=object)
    if kind == "int":
        return pd.Series(np.arange(n, dtype=np.int64) * 1_000_000_007)
    if kind == "float":
        return pd.Series(np.linspace(-1.0, 1e12, n) if n else [], dtype="float64")
    if kind == "bool":
        return pd.Series([i % 2 == 0 for i in range(n)], dtype=bool)
    if kind == "nullable_int":
        return pd.Series([None if i % 2 else i for i in range(n)], dtype="Int64")
    if kind == "naive_ts":
        return pd.Series(pd.date_range("2026-01-01", periods=n, freq="37h"))
    if kind == "zoned_ts":
        return pd.Series(pd.date_range("2026-01-01", periods=n, freq="37h", tz="Europe/Paris"))
    if kind == "category":
        return pd.Series(values, dtype="category")
    return pd.Series([None] * n, dtype=object)  # all null


@st.composite
def parquet_frame(draw, spec: TableSpec) -> pd.DataFrame:
    n = draw(st.integers(0, 4))
    names = list(dict.fromkeys(_header(draw, spec))) or ["x"]
    kinds = st.sampled_from(["text", "int", "float", "bool", "nullable_int", "naive_ts", "zoned_ts", "category", "null"])
    texts = st.lists(st.one_of(st.none(), CELLS), min_size=n, max_size=n)
    return pd.DataFrame({name: _column(draw(kinds), draw(texts)) for name in names}, index=pd.RangeIndex(n))


@given(frame=parquet_frame(EVENTS))
@FUZZ
def test_any_parquet_events_beside_a_valid_catalog(frame):
    _outcome(lambda root: (_valid_messages(root), frame.to_parquet(root / "events.parquet")))


@given(frame=parquet_frame(MESSAGES))
@FUZZ
def test_any_parquet_messages_beside_valid_events(frame):
    _outcome(lambda root: (frame.to_parquet(root / "messages.parquet"), _valid_events(root)))
