"""Columnar buffer of simulated events as compact codes, appended in chunks and sorted once at the end."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from engine.contract.schema import EVENT_TYPES
from engine.simulate.timeline import MS_NS

KIND: dict[str, int] = {name: code for code, name in enumerate(EVENT_TYPES)}
# Ties in time are broken by the contract's order of event types (impression < open < click < conversion),
# then by generation order, so an outcome at the same millisecond never precedes its impression.
_KIND_SLOTS = 16


@dataclass(frozen=True, eq=False)
class EventColumns:
    """One array per column; -1 (codes) and NaN (floats) mean "not applicable"."""

    customer: np.ndarray  # int32 customer code
    kind: np.ndarray  # int8 index into EVENT_TYPES
    ts: np.ndarray  # int64 ns since epoch, whole milliseconds
    channel: np.ndarray  # int8 channel code or -1
    message: np.ndarray  # int32 message code or -1
    topic: np.ndarray  # int8 topic code or -1
    decision: np.ndarray  # int64 decision number or -1
    propensity: np.ndarray  # float64 or NaN
    value: np.ndarray  # float64 or NaN

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: np.ndarray) -> EventColumns:
        return EventColumns(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


_DTYPES = {"customer": np.int32, "kind": np.int8, "ts": np.int64, "channel": np.int8, "message": np.int32,
           "topic": np.int8, "decision": np.int64, "propensity": np.float64, "value": np.float64}
_MISSING = {"channel": -1, "message": -1, "topic": -1, "decision": -1, "propensity": np.nan, "value": np.nan}


class EventLog:
    """Collects event chunks; ``finish`` returns them sorted by time (then type, then generation order)."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in _DTYPES}

    def add(self, kind: str, customer: np.ndarray, ts: np.ndarray, **columns: np.ndarray | int | float) -> None:
        size = len(customer)
        if size == 0:
            return
        given = {"customer": customer, "kind": KIND[kind], "ts": ts, **columns}
        unknown = set(given) - set(_DTYPES)
        if unknown:
            raise ValueError(f"unknown event columns {sorted(unknown)}")
        for name, dtype in _DTYPES.items():
            value = given.get(name, _MISSING.get(name))
            self._chunks[name].append(np.broadcast_to(np.asarray(value, dtype=dtype), (size,)).copy())

    def finish(self) -> EventColumns:
        chunks, self._chunks = self._chunks, {name: [] for name in _DTYPES}

        def joined(name: str) -> np.ndarray:
            parts = chunks.pop(name)  # released column by column to keep the peak memory low
            return np.concatenate(parts) if parts else np.empty(0, dtype=_DTYPES[name])

        ts, kind = joined("ts"), joined("kind")
        order = np.argsort(ts // MS_NS * _KIND_SLOTS + kind, kind="stable")
        columns = {"ts": ts[order], "kind": kind[order]}
        del ts, kind
        for name in list(chunks):
            columns[name] = joined(name)[order]
        return EventColumns(**columns)
