"""Small integer codes for event times, so that (key, time) pairs fit one sortable int64.

History indexes sort events by ``key * stride + code(ts)`` and find a request's position with one
``searchsorted`` of ``key * stride + before(as_of)``. The only property needed is exactness:

    code(ts) < before(as_of)  <=>  ts < as_of      for every event time ts and any as_of.

Two codings satisfy it:

- :class:`GranularTimeCode`: when every event time is a whole number of some unit (seconds,
  milliseconds, ...; real logs rarely carry nanoseconds), ``code = (ts - t0) // unit`` and
  ``before = ceil((as_of - t0) / unit)``. Pure arithmetic, O(n), no sort.
- :class:`RankTimeCode`: the rank on the sorted distinct event times. Always exact, but ranking a request
  time is a binary search, and ranking millions of them costs a sort; used when the granular codes of the
  key space would overflow int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.features.sorting import ranks_in, unique_sorted

_UNITS_NS = (1_000_000_000, 1_000_000, 1_000, 1)  # s, ms, us, ns: the coarsest one that fits all events
_KEY_LIMIT = 2**62  # keys * stride must stay below this (headroom under int64's 2**63)


@dataclass(frozen=True, eq=False)
class GranularTimeCode:
    origin_ns: int
    unit_ns: int
    stride: int  # every code, including before(as_of), lies in [0, stride)

    def of_events(self, ts: np.ndarray) -> np.ndarray:
        code = np.subtract(ts, self.origin_ns, dtype=np.int64)
        if self.unit_ns != 1:
            np.floor_divide(code, self.unit_ns, out=code)
        return code

    def before(self, as_of: np.ndarray) -> np.ndarray:
        # ceil((as_of - origin) / unit) as -((origin - as_of) // unit), clipped: earlier than every event
        # is 0, later than every event is the largest code + 1. In place: these arrays are request-sized.
        code = np.subtract(self.origin_ns, as_of, dtype=np.int64)
        np.floor_divide(code, self.unit_ns, out=code)
        np.negative(code, out=code)
        np.maximum(code, 0, out=code)
        np.minimum(code, self.stride - 1, out=code)
        return code


@dataclass(frozen=True, eq=False)
class RankTimeCode:
    times: np.ndarray  # sorted distinct event times

    @property
    def stride(self) -> int:
        return len(self.times) + 1

    def of_events(self, ts: np.ndarray) -> np.ndarray:
        return ranks_in(self.times, ts)

    def before(self, as_of: np.ndarray) -> np.ndarray:
        return ranks_in(self.times, as_of, side="left")


TimeCode = GranularTimeCode | RankTimeCode


def time_code_for(ts: np.ndarray, n_keys: int) -> TimeCode:
    """The cheapest exact coding of the event times ``ts`` for ``n_keys`` distinct keys."""
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) == 0:
        return RankTimeCode(np.zeros(0, dtype=np.int64))
    lo, hi = int(ts.min()), int(ts.max())
    remainder = np.empty_like(ts)
    for unit in _UNITS_NS:
        if unit == 1 or not np.remainder(ts, unit, out=remainder).any():
            stride = (hi - lo) // unit + 2
            if max(n_keys, 1) * stride < _KEY_LIMIT:
                return GranularTimeCode(origin_ns=lo, unit_ns=unit, stride=stride)
            break  # a finer unit only makes the codes larger
    return RankTimeCode(unique_sorted(ts))
