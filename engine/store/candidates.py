"""A decision's candidates in the decision log: one Arrow IPC stream per decision, in a BLOB column.

The stream is the standard one (``pyarrow.ipc.open_stream`` and any other Arrow reader read it without
nbm): the schema :data:`SCHEMA`, one record batch with a row per eligible candidate in the order the
decision engine listed them, and the end-of-stream marker. ``score`` and ``propensity`` are stored as
their 8 bytes, so they read back exactly.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
import pyarrow as pa

SCHEMA = pa.schema([("message_id", pa.string()), ("score", pa.float64()), ("propensity", pa.float64())])
_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # a continuation marker followed by a length of 0


class LoggedCandidates(Protocol):
    """What the log reads of a decision's candidates (:class:`engine.policy.scored.ScoredCandidates` is one):
    arrays with one element per candidate."""

    @property
    def message_id(self) -> np.ndarray: ...  # text
    @property
    def score(self) -> np.ndarray: ...  # float64
    @property
    def propensity(self) -> np.ndarray: ...  # float64: the probability of being served in slot 1


def encode_candidates(candidates: LoggedCandidates) -> bytes:
    """The candidates as one Arrow IPC stream: the bytes ``pyarrow.ipc.new_stream`` writes, put together
    from the schema's message (serialized once) and the record batch's, without a writer per decision."""
    batch = pa.RecordBatch.from_arrays(
        [_message_ids(np.asarray(candidates.message_id)), pa.array(np.asarray(candidates.score, dtype=np.float64)),
         pa.array(np.asarray(candidates.propensity, dtype=np.float64))],
        schema=SCHEMA,
    )
    return b"".join((_schema_message(), batch.serialize().to_pybytes(), _END_OF_STREAM))


def decode_candidates(stored: object) -> tuple[list[str], list[float], list[float]]:
    """``(message ids, scores, propensities)`` of one stored stream; ``ValueError`` saying why if it is not
    an Arrow IPC stream of :data:`SCHEMA`."""
    if not isinstance(stored, bytes):
        raise ValueError(f"a {type(stored).__name__} where an Arrow IPC stream (bytes) was expected")
    try:
        table = pa.ipc.open_stream(stored).read_all()
    except pa.ArrowInvalid as exc:
        raise ValueError(f"not an Arrow IPC stream ({exc})") from None
    if not table.schema.equals(SCHEMA):
        raise ValueError(f"an Arrow IPC stream of ({_fields(table.schema)}), not ({_fields(SCHEMA)})")
    return tuple(table.column(name).to_pylist() for name in SCHEMA.names)  # type: ignore[return-value]


def _fields(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name} {field.type}" for field in schema)


@functools.cache
def _schema_message() -> bytes:
    return SCHEMA.serialize().to_pybytes()


def _message_ids(ids: np.ndarray) -> pa.Array:
    if ids.dtype.kind == "U":
        return _cached_message_ids(ids.tobytes(), ids.dtype.str)
    return pa.array([str(i) for i in ids.tolist()], type=pa.string())


@functools.lru_cache(maxsize=1024)
def _cached_message_ids(raw: bytes, dtype: str) -> pa.Array:
    """The ids' Arrow array, from their numpy array's bytes and dtype. Cached: a channel's candidates are the
    same few lists of ids decision after decision, and converting them anew each time is a noticeable part
    of logging a decision."""
    return pa.array(np.frombuffer(raw, dtype=dtype), type=pa.string())
