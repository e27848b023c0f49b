"""Point-in-time queries over an event log, for the numpy interpreter of the features. With the numba
interpreter's loops (tested equal to the bit), the only code that compares event times with ``as_of``.

Every query answers for many requests at once, with sorted arrays and ``np.searchsorted``: no loop per
customer or per event. The rule everywhere: an event counts for a request when ``ts < as_of``, and for a
window of W days when ``as_of - W <= ts < as_of``.

Sums are accumulated in fixed point (int64) so that they are exact: the same events give the same
bits whether they come from the whole history (training) or from a compacted state plus live events
(serving).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from engine.features.log import EVENT_CODE, EventLog
from engine.features.sorting import is_sorted, ranks_in, unique_sorted
from engine.features.timecode import TimeCode, time_code_for
from engine.features.workers import LookupThreads
from engine.timeutil import NS_PER_DAY

# Decay weights are taken relative to the start of fixed epochs counted from this instant, so that they
# stay bounded and identical in every process.
DECAY_ANCHOR_NS = int(pd.Timestamp("2000-01-01", tz="UTC").value)
_VALUE_SCALE = 10_000  # amounts are exact to 1/10,000 of a unit
_DECAY_SCALE = float(2**32)

By = Literal["customer", "channel", "topic", "message", "stage", "offer"]


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
        self.stride = history.time_code.stride
        rows = np.flatnonzero(history.type_mask(types))
        key = log.customer[rows].astype(np.int64) - history.customer_base
        if by != "customer":
            sub = history.sub_keys(by, rows)
            known = sub >= 0
            rows, key = rows[known], key[known] * self.width + sub[known]
        combined = key * self.stride + history.event_codes[rows]
        # The log is sorted by (customer, ts): keyed by customer alone, the events are in order already.
        if not is_sorted(combined):
            order = np.argsort(combined, kind="stable")
            rows, combined = rows[order], combined[order]
        self.combined = combined
        self.cum_weight = _cumsum0(log.weight[rows])
        self._rows = rows  # log rows in index order: times and values are gathered when a query needs them
        self._history = history
        self._cum_decay: np.ndarray | None = None

    @cached_property
    def ts(self) -> np.ndarray:
        return self._history.log.ts[self._rows]

    @cached_property
    def value(self) -> np.ndarray:
        values = self._history.log.value[self._rows]
        # Most event types carry no value: keep the value arrays only where there is one (memory).
        return values if bool(np.any(~np.isnan(values))) else np.full(0, np.nan)

    @cached_property
    def cum_value(self) -> np.ndarray | None:
        """Cumulative sums of ``value`` (missing counts as 0) in fixed point; None if no event has a value."""
        if not len(self.value):
            return None
        return _cumsum0(np.rint(np.nan_to_num(self.value, nan=0.0) * _VALUE_SCALE).astype(np.int64))

    def positions(self, key: np.ndarray, rank: np.ndarray) -> np.ndarray:
        needles = np.multiply(key, self.stride, dtype=np.int64)
        needles += rank
        return ranks_in(self.combined, needles, side="left", workers=self._history.workers)

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
        rows = np.flatnonzero(history.type_mask(types))
        self.width = history.width(by)
        self.stride = history.time_code.stride
        # The log is sorted by (customer, ts), so these keys are sorted already.
        self.combined = (log.customer[rows].astype(np.int64) - history.customer_base) * self.stride + history.event_codes[rows]
        self.ts = log.ts[rows]
        self.sub = history.sub_keys(by, rows)
        self.cum_count = self._cumulative(log.weight[rows].astype(np.int64), np.int32)
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
        needles = np.multiply(key, self.stride, dtype=np.int64)
        needles += rank
        return ranks_in(self.combined, needles, side="left", workers=self._history.workers)


class History:
    """Answers point-in-time questions about one event log; indexes are built lazily and reused."""

    def __init__(self, log: EventLog, widths: dict[str, int], *, max_window_days: int, half_life_days: float,
                 message_stage: np.ndarray | None = None, threads: int = 1, time_code: TimeCode | None = None,
                 customer_base: int = 0, workers: LookupThreads | None = None, message_offer: np.ndarray | None = None) -> None:
        self.log = log
        # Index keys count customers from this code (a partition's first): keys, and so the time codes
        # that fit beside them in 64 bits, stay as small as the partition.
        self.customer_base = int(customer_base)
        # ``threads`` look-up threads, or the ``workers`` of the History this one is a partition of.
        self.workers = workers if workers is not None else LookupThreads(threads)
        self._message_stage = message_stage
        self._message_offer = message_offer
        self._widths = {"customer": 1, **widths}
        self._given_time_code = time_code
        self.epoch_ns = int(max_window_days) * NS_PER_DAY
        self.max_window_days = int(max_window_days)
        self.half_life_days = float(half_life_days)
        self.decay_tau_ns = float(half_life_days) * NS_PER_DAY / np.log(2.0)
        self._indexes: dict[tuple[tuple[str, ...], str], _KeyedIndex] = {}
        self._wide_indexes: dict[tuple[tuple[str, ...], str], _WideIndex] = {}
        # Ranks of the current requests' as_of and window starts, reused by every query on them.
        self._rank_cache: tuple[Requests | None, dict[int, np.ndarray]] = (None, {})
        self._position_cache: dict[tuple, np.ndarray] = {}

    @cached_property
    def time_code(self) -> TimeCode:
        """The coding of event times in index keys: chosen from the data unless one was given (tests
        force each kind). Found on first use: a History that is only partitioned never needs it."""
        n_keys = int(self.log.customer.max(initial=self.customer_base) - self.customer_base + 1) * max(self._widths.values())
        code = self._given_time_code if self._given_time_code is not None else time_code_for(self.log.ts, n_keys)
        if len(self.log) and n_keys * code.stride >= 2**62:
            raise ValueError("event log too large for 64-bit keys; partition it by customer")
        return code

    @cached_property
    def event_codes(self) -> np.ndarray:
        """Each event's time code, found once and shared by every index."""
        return self.time_code.of_events(self.log.ts)

    def for_customers(self, first: int, last: int) -> History:
        """The same queries over the events of customer codes ``first..last`` only.

        Every query answers per customer, so a request of a customer in that range gets the same answer
        here as from the whole history; the indexes, though, are only as large as the partition. The log
        is sorted by customer, so the partition's arrays are views, not copies.
        """
        customer = self.log.customer
        # Needles of the haystack's dtype: a Python int would make NumPy convert the whole column first.
        start = int(np.searchsorted(customer, np.asarray(first, dtype=customer.dtype), side="left"))
        stop = int(np.searchsorted(customer, np.asarray(last, dtype=customer.dtype), side="right"))
        return History(self.log.take(slice(start, stop)), {k: v for k, v in self._widths.items() if k != "customer"},
                       max_window_days=self.max_window_days, half_life_days=self.half_life_days,
                       message_stage=self._message_stage, time_code=self._given_time_code, customer_base=first,
                       workers=self.workers, message_offer=self._message_offer)

    def sub_keys(self, by: By, rows: np.ndarray) -> np.ndarray:
        """For the log events at ``rows``, their code under ``by`` (-1: none); "stage" and "offer" are the
        stage and the offer of the event's message."""
        if by == "customer":
            return np.zeros(len(rows), dtype=np.int64)
        if by in ("stage", "offer"):
            return of_message(self._message_stage if by == "stage" else self._message_offer, self.log.message[rows])
        return getattr(self.log, by)[rows].astype(np.int64)

    def type_mask(self, types: tuple[str, ...]) -> np.ndarray:
        """Per log event, whether its type is one of ``types`` (a table look-up: much faster than np.isin)."""
        codes = self.log.event_type
        # Codes are int8 (-1: unknown type, 255 as uint8, in no table): reinterpreted, not copied.
        codes = codes.view(np.uint8) if codes.dtype.itemsize == 1 else codes.astype(np.uint8)
        return _type_table(tuple(sorted(types)))[codes]

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
            self._position_cache[cache_key] = index.positions(self._local(requests.customer), self._rank_before(requests, days_back))
        return index, self._position_cache[cache_key]

    def count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        """Counts in the window per channel or topic code: an array of shape (requests, width)."""
        self._check_window(window_days)
        if len(requests) and _all_equal(requests.as_of):
            return self._count_by_at(int(requests.as_of[0]), types, requests.customer, window_days, by)
        index, end = self._wide(types, by, requests, 0)
        _, start = self._wide(types, by, requests, window_days)
        return (index.cum_count[end] - index.cum_count[start]).astype(np.float64)

    def _count_by_at(self, as_of: int, types: tuple[str, ...], customer: np.ndarray, window_days: int, by: By) -> np.ndarray:
        """:meth:`count_by` when every request has the same ``as_of`` (a serving snapshot): one pass over
        the events in the window and a bincount, instead of an index over all history."""
        log = self.log
        rows = np.flatnonzero(self.type_mask(types) & (log.ts >= as_of - int(window_days) * NS_PER_DAY) & (log.ts < as_of))
        wanted = unique_sorted(customer[customer >= 0])
        slot = np.full(len(log.customers), -1, dtype=np.int64)  # log customer code -> row of the table
        slot[wanted] = np.arange(len(wanted))
        width = self.width(by)
        event_slot, sub = slot[log.customer[rows]], self.sub_keys(by, rows)
        keep = (event_slot >= 0) & (sub >= 0)
        table = np.bincount(event_slot[keep] * width + sub[keep], weights=log.weight[rows[keep]],
                            minlength=len(wanted) * width).reshape(len(wanted), width)
        if not len(wanted):  # no requested customer is known: nothing to count
            return np.zeros((len(customer), width))
        request_slot = np.where(customer >= 0, slot[np.maximum(customer, 0)], -1)
        return np.where((request_slot >= 0)[:, None], table[np.maximum(request_slot, 0)], 0.0)

    def decayed_count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        """:meth:`decayed_count` for every channel or topic code at once: shape (requests, width)."""
        start_ns = self._window_start(requests, window_days)
        index, p_end = self._wide(types, by, requests, 0)
        _, p_start = self._wide(types, by, requests, window_days)
        cum = index.cum_decay()
        late_epoch = _epoch_start(requests.as_of - 1, self.epoch_ns)
        split_ns = np.maximum(late_epoch, start_ns)
        early_epoch = _epoch_start(start_ns, self.epoch_ns)
        p_split = index.positions(self._local(requests.customer), self._rank(split_ns))
        early = (cum[p_split] - cum[p_start]) / _DECAY_SCALE
        late = (cum[p_end] - cum[p_split]) / _DECAY_SCALE
        early_scale = np.exp(-(requests.as_of - early_epoch) / self.decay_tau_ns)[:, None]
        late_scale = np.exp(-(requests.as_of - late_epoch) / self.decay_tau_ns)[:, None]
        return early * early_scale + late * late_scale

    def _keys(self, index: _KeyedIndex, requests: Requests, sub: np.ndarray | int | None) -> np.ndarray:
        customer = self._local(requests.customer)
        if sub is None and index.width == 1:  # keyed by customer alone: the key is the customer code
            return customer
        sub_arr = np.zeros(len(requests), dtype=np.int64) if sub is None else np.broadcast_to(np.asarray(sub, dtype=np.int64), customer.shape)
        valid = (customer >= 0) & (sub_arr >= 0)
        # -1 sorts before every real key, so unknown customers or sub-keys find nothing.
        return np.where(valid, customer * index.width + sub_arr, -1)

    def _local(self, customer: np.ndarray) -> np.ndarray:
        """Request customer codes as index keys count them (-1: unknown, or before this partition)."""
        customer = np.asarray(customer, dtype=np.int64)
        if self.customer_base == 0:
            return np.maximum(customer, -1)
        return np.where(customer >= self.customer_base, customer - self.customer_base, -1)

    def _rank(self, t_ns: np.ndarray) -> np.ndarray:
        return self.time_code.before(t_ns)

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
        # The event before the position has this request's key exactly when it is not below the key's first
        # possible value (it is below the request's own value, which is under the next key's first).
        found = (last >= 0) & (keys >= 0) & (index.combined[safe] >= keys * index.stride) if len(index.combined) else np.zeros(len(keys), bool)
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


@functools.lru_cache(maxsize=64)
def _type_table(types: tuple[str, ...]) -> np.ndarray:
    """Indexed by an event type code (as uint8): whether it is one of ``types``. Built once per set."""
    wanted = np.zeros(256, dtype=bool)
    wanted[[EVENT_CODE[t] for t in types]] = True
    wanted.flags.writeable = False
    return wanted


def of_message(table: np.ndarray | None, message: np.ndarray) -> np.ndarray:
    """``table[message]`` for each message code (a code per message: its stage, its offer), -1 where the
    message is none or the table is absent."""
    message = np.asarray(message).astype(np.int64)
    if table is None or not len(table):
        return np.full(len(message), -1, dtype=np.int64)
    return np.where(message >= 0, np.asarray(table, dtype=np.int64)[np.maximum(message, 0)], -1)


def _all_equal(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def _cumsum0(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=out[1:])
    return out


def _epoch_start(ts: np.ndarray, epoch_ns: int) -> np.ndarray:
    return DECAY_ANCHOR_NS + np.floor_divide(np.asarray(ts, dtype=np.int64) - DECAY_ANCHOR_NS, epoch_ns) * epoch_ns
