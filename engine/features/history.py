"""Point-in-time queries over an event log. The only module that compares event times with ``as_of``.

Every query answers for many requests at once, with sorted arrays and ``np.searchsorted``: no loop per
customer or per event. The rule everywhere: an event counts for a request when ``ts < as_of``, and for a
window of W days when ``as_of - W <= ts < as_of``.

Sums are accumulated in fixed point (int64) so that they are exact: the same events give the same
bits whether they come from the whole history (training) or from a compacted state plus live events
(serving).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from engine.features.log import EVENT_CODE, EventLog
from engine.features.sorting import ranks_in, unique_sorted
from engine.timeutil import NS_PER_DAY

# Decay weights are taken relative to the start of fixed epochs counted from this instant, so that they
# stay bounded and identical in every process.
DECAY_ANCHOR_NS = int(pd.Timestamp("2000-01-01", tz="UTC").value)
_VALUE_SCALE = 10_000  # amounts are exact to 1/10,000 of a unit
_DECAY_SCALE = float(2**32)

By = Literal["customer", "channel", "topic", "message", "stage"]


@dataclass(frozen=True, eq=False)
class Requests:
    """Who and when: customer codes of the log (-1: unknown customer) and ``as_of`` in ns (UTC)."""

    customer: np.ndarray
    as_of: np.ndarray

    def __len__(self) -> int:
        return len(self.as_of)


class _KeyedIndex:
    """Events of some types, keyed by customer x (channel | topic | message), sorted by (key, time rank)."""

    def __init__(self, history: History, types: tuple[str, ...], by: By) -> None:
        log = history.log
        self.width = history.width(by)
        sub = history.sub_keys(by)
        mask = np.isin(log.event_type, [EVENT_CODE[t] for t in types]) & (sub >= 0)
        self.stride = len(history.times) + 1
        key = log.customer[mask].astype(np.int64) * self.width + sub[mask]
        rank = history.event_ranks[mask]
        combined = key * self.stride + rank
        order = np.argsort(combined, kind="stable")
        self.combined = combined[order]
        self.ts = log.ts[mask][order]
        values = log.value[mask][order]
        # Most event types carry no value: keep the value arrays only where there is one (memory).
        has_values = bool(np.any(~np.isnan(values)))
        self.value = values if has_values else np.full(0, np.nan)
        self.cum_weight = _cumsum0(log.weight[mask][order])
        self.cum_value: np.ndarray | None = (
            _cumsum0(np.rint(np.nan_to_num(values, nan=0.0) * _VALUE_SCALE).astype(np.int64)) if has_values else None
        )
        self._history = history
        self._cum_decay: np.ndarray | None = None

    def positions(self, key: np.ndarray, rank: np.ndarray) -> np.ndarray:
        return ranks_in(self.combined, key * self.stride + rank, side="left")

    def cum_decay(self) -> np.ndarray:
        # Built on first use: most indexes never need it. Compacted records are never inside a window,
        # so each record weighs 1 here whatever its ``weight``.
        if self._cum_decay is None:
            h = self._history
            epoch_start = _epoch_start(self.ts, h.epoch_ns)
            weights = np.exp((self.ts - epoch_start) / h.decay_tau_ns)
            self._cum_decay = _cumsum0(np.rint(weights * _DECAY_SCALE).astype(np.int64))
        return self._cum_decay


class _WideIndex:
    """Events of some types keyed by customer alone, with cumulative counts per channel or topic.

    One pair of look-ups per request answers every channel (or topic) at once: the counts are the
    difference of two rows of the cumulative matrix.
    """

    def __init__(self, history: History, types: tuple[str, ...], by: By) -> None:
        log = history.log
        mask = np.isin(log.event_type, [EVENT_CODE[t] for t in types])
        self.width = history.width(by)
        self.stride = len(history.times) + 1
        rank = history.event_ranks[mask]
        # The log is sorted by (customer, ts), so these keys are sorted already.
        self.combined = log.customer[mask].astype(np.int64) * self.stride + rank
        self.ts = log.ts[mask]
        self.sub = history.sub_keys(by)[mask]
        self.cum_count = self._cumulative(log.weight[mask].astype(np.int64), np.int32)
        self._history = history
        self._cum_decay: np.ndarray | None = None

    def _cumulative(self, weights: np.ndarray, dtype: type) -> np.ndarray:
        table = np.zeros((len(self.sub) + 1, self.width), dtype=dtype)
        known = self.sub >= 0
        rows = np.nonzero(known)[0]
        table[rows + 1, self.sub[known]] = weights[known]
        np.cumsum(table, axis=0, out=table)
        return table

    def cum_decay(self) -> np.ndarray:
        if self._cum_decay is None:
            h = self._history
            weights = np.exp((self.ts - _epoch_start(self.ts, h.epoch_ns)) / h.decay_tau_ns)
            self._cum_decay = self._cumulative(np.rint(weights * _DECAY_SCALE).astype(np.int64), np.int64)
        return self._cum_decay

    def positions(self, customer: np.ndarray, rank: np.ndarray) -> np.ndarray:
        key = np.where(customer >= 0, customer, -1)
        return ranks_in(self.combined, key * self.stride + rank, side="left")


class History:
    """Answers point-in-time questions about one event log; indexes are built lazily and reused."""

    def __init__(self, log: EventLog, widths: dict[str, int], *, max_window_days: int, half_life_days: float,
                 message_stage: np.ndarray | None = None) -> None:
        self.log = log
        self._message_stage = message_stage
        self._widths = {"customer": 1, **widths}
        self.times = unique_sorted(log.ts)
        # Each event's rank on the time axis, found once and shared by every index.
        self.event_ranks = ranks_in(self.times, log.ts)
        self.epoch_ns = int(max_window_days) * NS_PER_DAY
        self.max_window_days = int(max_window_days)
        self.decay_tau_ns = float(half_life_days) * NS_PER_DAY / np.log(2.0)
        self._indexes: dict[tuple[tuple[str, ...], str], _KeyedIndex] = {}
        self._wide_indexes: dict[tuple[tuple[str, ...], str], _WideIndex] = {}
        # Ranks of the current requests' as_of and window starts, reused by every query on them.
        self._rank_cache: tuple[Requests | None, dict[int, np.ndarray]] = (None, {})
        self._position_cache: dict[tuple, np.ndarray] = {}
        if len(log) and int(log.customer.max(initial=0) + 1) * max(self._widths.values()) * (len(self.times) + 1) >= 2**62:
            raise ValueError("event log too large for 64-bit keys; partition it by customer")

    def sub_keys(self, by: By) -> np.ndarray:
        """Per log event, its code under ``by`` (-1: none); "stage" is the stage of the event's message."""
        if by == "customer":
            return np.zeros(len(self.log), dtype=np.int64)
        if by == "stage":
            if self._message_stage is None or not len(self._message_stage):
                return np.full(len(self.log), -1, dtype=np.int64)
            message = self.log.message.astype(np.int64)
            return np.where(message >= 0, self._message_stage[np.maximum(message, 0)], -1)
        return getattr(self.log, by).astype(np.int64)

    def width(self, by: By) -> int:
        return max(self._widths[by], 1)

    def _index(self, types: tuple[str, ...], by: By) -> _KeyedIndex:
        key = (tuple(sorted(types)), by)
        if key not in self._indexes:
            self._indexes[key] = _KeyedIndex(self, key[0], by)
        return self._indexes[key]

    def _wide(self, types: tuple[str, ...], by: By, requests: Requests, days_back: int) -> tuple[_WideIndex, np.ndarray]:
        self._rank_before(requests, 0)  # resets the caches when the requests change
        key = (tuple(sorted(types)), by)
        if key not in self._wide_indexes:
            self._wide_indexes[key] = _WideIndex(self, key[0], by)
        index = self._wide_indexes[key]
        cache_key = ("wide", index, days_back)
        if cache_key not in self._position_cache:
            self._position_cache[cache_key] = index.positions(requests.customer.astype(np.int64), self._rank_before(requests, days_back))
        return index, self._position_cache[cache_key]

    def count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        """Counts in the window per channel or topic code: an array of shape (requests, width)."""
        self._check_window(window_days)
        index, end = self._wide(types, by, requests, 0)
        _, start = self._wide(types, by, requests, window_days)
        return (index.cum_count[end] - index.cum_count[start]).astype(np.float64)

    def decayed_count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        """:meth:`decayed_count` for every channel or topic code at once: shape (requests, width)."""
        start_ns = self._window_start(requests, window_days)
        index, p_end = self._wide(types, by, requests, 0)
        _, p_start = self._wide(types, by, requests, window_days)
        cum = index.cum_decay()
        late_epoch = _epoch_start(requests.as_of - 1, self.epoch_ns)
        split_ns = np.maximum(late_epoch, start_ns)
        early_epoch = _epoch_start(start_ns, self.epoch_ns)
        p_split = index.positions(requests.customer.astype(np.int64), self._rank(split_ns))
        early = (cum[p_split] - cum[p_start]) / _DECAY_SCALE
        late = (cum[p_end] - cum[p_split]) / _DECAY_SCALE
        early_scale = np.exp(-(requests.as_of - early_epoch) / self.decay_tau_ns)[:, None]
        late_scale = np.exp(-(requests.as_of - late_epoch) / self.decay_tau_ns)[:, None]
        return early * early_scale + late * late_scale

    def _keys(self, index: _KeyedIndex, requests: Requests, sub: np.ndarray | int | None) -> np.ndarray:
        customer = requests.customer.astype(np.int64)
        sub_arr = np.zeros(len(requests), dtype=np.int64) if sub is None else np.broadcast_to(np.asarray(sub, dtype=np.int64), customer.shape)
        valid = (customer >= 0) & (sub_arr >= 0)
        # -1 sorts before every real key, so unknown customers or sub-keys find nothing.
        return np.where(valid, customer * index.width + sub_arr, -1)

    def _rank(self, t_ns: np.ndarray) -> np.ndarray:
        return ranks_in(self.times, t_ns, side="left")

    def _rank_before(self, requests: Requests, days_back: int) -> np.ndarray:
        """Rank of ``as_of - days_back``: events with a smaller rank happened before that instant."""
        owner, ranks = self._rank_cache
        if owner is not requests:
            ranks = {}
            self._rank_cache = (requests, ranks)
            self._position_cache = {}
        if days_back not in ranks:
            ranks[days_back] = self._rank(requests.as_of - int(days_back) * NS_PER_DAY)
        return ranks[days_back]

    def _positions(self, types: tuple[str, ...], by: By, requests: Requests, sub, days_back: int | None) -> tuple[_KeyedIndex, np.ndarray]:
        """Index of ``types`` by ``by`` and, per request, the position of its key at ``as_of - days_back``
        (None: the start of the key's events). Memoised while the same requests are queried."""
        self._rank_before(requests, 0)  # resets the caches when the requests change
        index = self._index(types, by)
        rank = None if days_back is None else self._rank_before(requests, days_back)
        sub_key = sub if sub is None or isinstance(sub, (int, np.integer)) else id(sub)
        key = (index, sub_key, days_back)
        if key not in self._position_cache:
            keys = self._keys(index, requests, sub)
            ranks = np.zeros(len(requests), dtype=np.int64) if rank is None else rank
            # Holding ``sub`` keeps its id from being reused by another array while cached.
            self._position_cache[key] = (sub, keys, index.positions(keys, ranks))
        return index, self._position_cache[key][2]

    def _cached_keys(self, index: _KeyedIndex, sub) -> np.ndarray:
        sub_key = sub if sub is None or isinstance(sub, (int, np.integer)) else id(sub)
        return self._position_cache[(index, sub_key, 0)][1]

    def _window_start(self, requests: Requests, window_days: int) -> np.ndarray:
        self._check_window(window_days)
        return requests.as_of - int(window_days) * NS_PER_DAY

    def _check_window(self, window_days: int) -> None:
        if window_days > self.max_window_days:
            raise ValueError(f"window {window_days} d is longer than the longest configured window")

    def count(self, types: tuple[str, ...], requests: Requests, *, window_days: int | None = None,
              by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        """Number of events of ``types`` before ``as_of`` (within the window, if given)."""
        if window_days is not None:
            self._check_window(window_days)
        index, end = self._positions(types, by, requests, sub, 0)
        _, start = self._positions(types, by, requests, sub, window_days)
        return (index.cum_weight[end] - index.cum_weight[start]).astype(np.float64)

    def value_sum(self, types: tuple[str, ...], requests: Requests, *, window_days: int,
                  by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        """Sum of ``value`` (missing counts as 0) of events of ``types`` in the window."""
        self._check_window(window_days)
        index, end = self._positions(types, by, requests, sub, 0)
        _, start = self._positions(types, by, requests, sub, window_days)
        if index.cum_value is None:  # no event of these types carries a value
            return np.zeros(len(requests))
        return (index.cum_value[end] - index.cum_value[start]) / _VALUE_SCALE

    def _last(self, types: tuple[str, ...], by: By, requests: Requests, sub) -> tuple[_KeyedIndex, np.ndarray, np.ndarray]:
        index, end = self._positions(types, by, requests, sub, 0)
        keys = self._cached_keys(index, sub)
        last = end - 1
        safe = np.maximum(last, 0)
        found = (last >= 0) & (keys >= 0) & (index.combined[safe] // index.stride == keys) if len(index.combined) else np.zeros(len(keys), bool)
        return index, safe, found

    def days_since_last(self, types: tuple[str, ...], requests: Requests, *, by: By = "customer",
                        sub: np.ndarray | int | None = None) -> np.ndarray:
        """Days from the last event of ``types`` before ``as_of`` to ``as_of``; NaN if there is none."""
        index, at, found = self._last(types, by, requests, sub)
        last_ts = index.ts[at] if len(index.ts) else np.zeros(len(at), dtype=np.int64)
        return np.where(found, (requests.as_of - last_ts) / NS_PER_DAY, np.nan)

    def last_value(self, types: tuple[str, ...], requests: Requests, *, by: By = "customer",
                   sub: np.ndarray | int | None = None) -> np.ndarray:
        """``value`` of the last event of ``types`` before ``as_of``; NaN if there is none."""
        index, at, found = self._last(types, by, requests, sub)
        values = index.value[at] if len(index.value) else np.full(len(at), np.nan)
        return np.where(found, values, np.nan)

    def decayed_count(self, types: tuple[str, ...], requests: Requests, *, window_days: int,
                      by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        """Sum over events in the window of 2^(-age / half-life), age = as_of - ts."""
        start_ns = self._window_start(requests, window_days)
        index, p_end = self._positions(types, by, requests, sub, 0)
        _, p_start = self._positions(types, by, requests, sub, window_days)
        keys = self._cached_keys(index, sub)
        cum = index.cum_decay()
        # The window spans at most two epochs (it is never longer than one): split it at the later
        # epoch's start and scale each part from its epoch's start to as_of.
        late_epoch = _epoch_start(requests.as_of - 1, self.epoch_ns)
        split_ns = np.maximum(late_epoch, start_ns)
        early_epoch = _epoch_start(start_ns, self.epoch_ns)
        p_split = index.positions(keys, self._rank(split_ns))
        early = (cum[p_split] - cum[p_start]) / _DECAY_SCALE
        late = (cum[p_end] - cum[p_split]) / _DECAY_SCALE
        return early * np.exp(-(requests.as_of - early_epoch) / self.decay_tau_ns) + late * np.exp(
            -(requests.as_of - late_epoch) / self.decay_tau_ns
        )


def _cumsum0(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=out[1:])
    return out


def _epoch_start(ts: np.ndarray, epoch_ns: int) -> np.ndarray:
    return DECAY_ANCHOR_NS + np.floor_divide(np.asarray(ts, dtype=np.int64) - DECAY_ANCHOR_NS, epoch_ns) * epoch_ns
