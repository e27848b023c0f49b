"""History queries for a serving batch: each customer is asked at one instant, over a few hundred events.

:class:`History` answers any mix of customers and instants with sorted indexes and binary searches; their
construction is what a serving batch pays for, query after query, over events it could simply scan.
:class:`SnapshotHistory` answers the same queries, with the same rule (an event counts when
``ts < as_of``, and for a window of W days when ``as_of - W <= ts``) and the same arithmetic (integer
counts, fixed-point sums), from masks and ``bincount`` tables over the snapshot's events: the tables of a
window are built once and every count of that window is a slice of them.
``tests/features/test_snapshot.py`` checks every query, and the whole feature matrix, against History.
"""

from __future__ import annotations

import numpy as np

from engine.features.history import _DECAY_SCALE, _VALUE_SCALE, By, Requests, _epoch_start, _type_table, of_message
from engine.features.log import EVENT_CODE, EventLog
from engine.timeutil import NS_PER_DAY

_TYPE_CODES = len(EVENT_CODE) + 1  # the known types' codes, and one slot for an unknown type (in no query)


class SnapshotHistory:
    """The queries of :class:`History` for requests where every customer code of ``log`` has the one
    instant ``as_of_ns[code]`` (a request for code c must ask at ``as_of_ns[c]``; -1: an unknown customer)."""

    def __init__(self, log: EventLog, widths: dict[str, int], as_of_ns: np.ndarray, *, max_window_days: int,
                 half_life_days: float, message_stage: np.ndarray | None = None, message_offer: np.ndarray | None = None) -> None:
        self.log = log
        self.max_window_days = int(max_window_days)
        self.epoch_ns = self.max_window_days * NS_PER_DAY
        self.decay_tau_ns = float(half_life_days) * NS_PER_DAY / np.log(2.0)
        self._widths = {"customer": 1, **widths}
        self._message_stage = message_stage
        self._message_offer = message_offer
        self.as_of_ns = np.asarray(as_of_ns, dtype=np.int64)
        self._customers = len(self.as_of_ns)
        customer = log.customer.astype(np.int64)
        self._customer = customer
        self._age = self.as_of_ns[customer] - log.ts  # > 0: before as_of
        codes = log.event_type.astype(np.int64)
        self._type = np.where((codes >= 0) & (codes < _TYPE_CODES - 1), codes, _TYPE_CODES - 1)
        self._weight = log.weight.astype(np.float64)  # bincount adds float64: exact for integer sums below 2**53
        self._windows: dict[int | None, np.ndarray] = {}
        self._subs: dict[str, np.ndarray] = {}
        self._tables: dict[tuple[int | None, str], np.ndarray] = {}
        self._value_tables: dict[int, np.ndarray] = {}
        self._has_values: dict[tuple[tuple[str, ...], By], bool] = {}
        self._last: np.ndarray | None = None
        self._days: np.ndarray | None = None  # per customer and type code: days since its last event (NaN: none)
        self._fixed: np.ndarray | None = None  # per event: its value in fixed point (0 for none), as float64
        self._cell: np.ndarray | None = None  # per event: customer x type code
        self._checked: Requests | None = None
        self._checked_customer = np.zeros(0, dtype=np.int64)
        self._all_known = True

    # -- building blocks ---------------------------------------------------------------------------

    def width(self, by: By) -> int:
        return max(self._widths[by], 1)

    def _window(self, window_days: int | None) -> np.ndarray:
        """Per event: inside the window ending at its customer's as_of (None: anywhere before as_of)."""
        if window_days not in self._windows:
            if window_days is not None and window_days > self.max_window_days:
                raise ValueError(f"window {window_days} d is longer than the longest configured window")
            inside = self._age > 0
            if window_days is not None:
                inside &= self._age <= int(window_days) * NS_PER_DAY
            self._windows[window_days] = inside
        return self._windows[window_days]

    def _sub(self, by: By) -> np.ndarray:
        """Per event: its code under ``by`` (-1: none); "stage" and "offer" are the stage and the offer of
        the event's message."""
        if by not in self._subs:
            if by == "customer":
                sub = np.zeros(len(self.log), dtype=np.int64)
            elif by in ("stage", "offer"):
                sub = of_message(self._message_stage if by == "stage" else self._message_offer, self.log.message)
            else:
                sub = getattr(self.log, by).astype(np.int64)
            self._subs[by] = sub
        return self._subs[by]

    def _table(self, window_days: int | None, by: By) -> np.ndarray:
        """Weighted event counts in the window, shape (customers, type codes, width of ``by``)."""
        key = (window_days, by)
        if key not in self._tables:
            width, sub = self.width(by), self._sub(by)
            keep = self._window(window_days) & (sub >= 0)
            cell = (self._customer[keep] * _TYPE_CODES + self._type[keep]) * width + sub[keep]
            counts = np.bincount(cell, weights=self._weight[keep], minlength=self._customers * _TYPE_CODES * width)
            self._tables[key] = counts.reshape(self._customers, _TYPE_CODES, width)
        return self._tables[key]

    def _value_table(self, window_days: int) -> np.ndarray:
        """Fixed-point value sums in the window, shape (customers, type codes): History's integer sums, as
        exact float64 (below 2**53)."""
        if window_days not in self._value_tables:
            if self._fixed is None:
                value = self.log.value
                self._fixed = np.rint(np.where(np.isnan(value), 0.0, value) * _VALUE_SCALE).astype(np.int64).astype(np.float64)
                self._cell = self._customer * _TYPE_CODES + self._type
            keep = self._window(window_days)
            sums = np.bincount(self._cell[keep], weights=self._fixed[keep], minlength=self._customers * _TYPE_CODES)
            self._value_tables[window_days] = sums.reshape(self._customers, _TYPE_CODES)
        return self._value_tables[window_days]

    def _last_table(self) -> np.ndarray:
        """Per customer and type code, the log row of the last event before as_of (-1: none). The log is in
        (customer, time) order: a customer's last row is its latest event, equal times in log order."""
        if self._last is None:
            rows = np.flatnonzero(self._window(None))
            last = np.full(self._customers * _TYPE_CODES, -1, dtype=np.int64)
            np.maximum.at(last, self._customer[rows] * _TYPE_CODES + self._type[rows], rows)
            self._last = last.reshape(self._customers, _TYPE_CODES)
        return self._last

    def _days_table(self) -> np.ndarray:
        """Per customer and type code, the days from its last event before as_of to as_of (NaN: none), in
        History's arithmetic (an int64 difference of ns, divided)."""
        if self._days is None:
            last = self._last_table()
            last_ts = self.log.ts[np.maximum(last, 0)] if len(self.log) else np.zeros(last.shape, dtype=np.int64)
            self._days = np.where(last >= 0, (self.as_of_ns[:, None] - last_ts) / NS_PER_DAY, np.nan)
        return self._days

    def _requested(self, requests: Requests) -> np.ndarray:
        """The requests' customer codes, after checking that each asks at its customer's instant."""
        if self._checked is not requests:
            customer = np.asarray(requests.customer, dtype=np.int64)
            known = customer >= 0
            if np.any(requests.as_of[known] != self.as_of_ns[customer[known]]):
                raise ValueError("a snapshot history answers each customer at its own as_of only")
            self._checked, self._checked_customer, self._all_known = requests, customer, bool(known.all())
        return self._checked_customer

    def _per_customer(self, table: np.ndarray, customer: np.ndarray) -> np.ndarray:
        """Rows of a per-customer table for the requests' customers (zeros for an unknown one)."""
        if self._all_known:  # the usual case: every request's customer is in the batch
            return table[customer]
        if not len(table):
            return np.zeros((len(customer), *table.shape[1:]))
        known = (customer >= 0).reshape(-1, *([1] * (table.ndim - 1)))
        return np.where(known, table[np.maximum(customer, 0)], 0.0)

    def _summed(self, table: np.ndarray, types: tuple[str, ...]) -> np.ndarray:
        """A table's counts (customers, types, width) added over ``types``."""
        if len(types) == 1:
            return table[:, EVENT_CODE[types[0]], :]
        return table[:, [EVENT_CODE[t] for t in types], :].sum(axis=1)

    def _of_types(self, types: tuple[str, ...]) -> np.ndarray:
        """Per event: whether its type is one of ``types``."""
        return _type_table(tuple(sorted(types)))[self._type]

    def _keyed(self, types: tuple[str, ...], window_days: int | None, by: By) -> tuple[np.ndarray, np.ndarray]:
        """The events of ``types`` in the window with a code under ``by``: (their rows, their customer x
        code keys)."""
        sub = self._sub(by)
        rows = np.flatnonzero(self._of_types(types) & self._window(window_days) & (sub >= 0))
        return rows, self._customer[rows] * self.width(by) + sub[rows]

    def _request_keys(self, customer: np.ndarray, by: By, sub: np.ndarray | int | None) -> np.ndarray:
        """Each request's customer x code key, -1 where the customer or the code is unknown."""
        code = np.zeros(len(customer), dtype=np.int64) if sub is None else np.broadcast_to(np.asarray(sub, dtype=np.int64), customer.shape)
        return np.where((customer >= 0) & (code >= 0), customer * self.width(by) + code, -1)

    @staticmethod
    def _gather(table: np.ndarray, keys: np.ndarray, missing: float) -> np.ndarray:
        return np.where(keys >= 0, table[np.maximum(keys, 0)], missing) if len(table) else np.full(len(keys), missing)

    # -- the queries of History --------------------------------------------------------------------

    def count(self, types: tuple[str, ...], requests: Requests, *, window_days: int | None = None,
              by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        customer = self._requested(requests)
        if sub is None and by == "customer":
            return self._per_customer(self._summed(self._table(window_days, "customer"), types)[:, 0], customer)
        rows, keys = self._keyed(types, window_days, by)
        table = np.bincount(keys, weights=self._weight[rows], minlength=self._customers * self.width(by))
        return self._gather(table, self._request_keys(customer, by, sub), 0.0)

    def count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        customer = self._requested(requests)
        if window_days > self.max_window_days:
            raise ValueError(f"window {window_days} d is longer than the longest configured window")
        return self._per_customer(self._summed(self._table(window_days, by), types), customer)

    def value_sum(self, types: tuple[str, ...], requests: Requests, *, window_days: int,
                  by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        customer = self._requested(requests)
        self._window(window_days)  # refuses a window too long
        # As History: zeros when no event of these types with a code under ``by``, at any time, has a value.
        if (types, by) not in self._has_values:
            self._has_values[(types, by)] = bool(np.any(~np.isnan(self.log.value[self._of_types(types) & (self._sub(by) >= 0)])))
        if not self._has_values[(types, by)]:
            return np.zeros(len(customer))
        if by == "customer" and sub is None:
            return self._per_customer(self._summed(self._value_table(window_days)[:, :, None], types)[:, 0], customer) / _VALUE_SCALE
        rows, keys = self._keyed(types, window_days, by)
        fixed = np.rint(np.nan_to_num(self.log.value[rows], nan=0.0) * _VALUE_SCALE).astype(np.int64)
        table = np.bincount(keys, weights=fixed.astype(np.float64), minlength=self._customers * self.width(by))
        return self._gather(table, self._request_keys(customer, by, sub), 0.0) / _VALUE_SCALE

    def _last_rows(self, types: tuple[str, ...], requests: Requests, by: By, sub) -> np.ndarray:
        """Per request, the log row of its key's last event before as_of (latest time, then log order); -1: none."""
        customer = self._requested(requests)
        if by == "customer" and sub is None:
            table = self._last_table()[:, [EVENT_CODE[t] for t in types]].max(axis=1)
            if self._all_known:
                return table[customer]
            return np.where(customer >= 0, table[np.maximum(customer, 0)], -1) if len(table) else np.full(len(customer), -1)
        rows, keys = self._keyed(types, None, by)
        last = np.full(self._customers * self.width(by), -1, dtype=np.int64)
        # The log is in (customer, time) order and a key belongs to one customer: its greatest row is its
        # latest event, equal times in log order.
        np.maximum.at(last, keys, rows)
        request_keys = self._request_keys(customer, by, sub)
        return np.where(request_keys >= 0, last[np.maximum(request_keys, 0)], -1) if len(last) else np.full(len(customer), -1)

    def days_since_last(self, types: tuple[str, ...], requests: Requests, *, by: By = "customer",
                        sub: np.ndarray | int | None = None) -> np.ndarray:
        if by == "customer" and sub is None and len(types) == 1:  # the families' usual query: a column of one table
            customer = self._requested(requests)
            days = self._days_table()[:, EVENT_CODE[types[0]]]
            if self._all_known:
                return days[customer]
            return np.where(customer >= 0, days[np.maximum(customer, 0)], np.nan) if len(days) else np.full(len(customer), np.nan)
        at = self._last_rows(types, requests, by, sub)
        last_ts = self.log.ts[np.maximum(at, 0)] if len(self.log) else np.zeros(len(at), dtype=np.int64)
        return np.where(at >= 0, (requests.as_of - last_ts) / NS_PER_DAY, np.nan)

    def last_value(self, types: tuple[str, ...], requests: Requests, *, by: By = "customer",
                   sub: np.ndarray | int | None = None) -> np.ndarray:
        at = self._last_rows(types, requests, by, sub)
        values = self.log.value[np.maximum(at, 0)] if len(self.log) else np.full(len(at), np.nan)
        return np.where(at >= 0, values, np.nan)

    def _decay_parts(self, types: tuple[str, ...], requests: Requests, window_days: int, by: By
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fixed-point decay weights summed per customer x code before and after each customer's split
        instant, as History sums them (the window spans at most two epochs), and the epochs' scales per request."""
        self._requested(requests)  # refuses a request at another instant than its customer's
        rows, keys = self._keyed(types, window_days, by)
        ts = self.log.ts[rows]
        weights = np.rint(np.exp((ts - _epoch_start(ts, self.epoch_ns)) / self.decay_tau_ns) * _DECAY_SCALE).astype(np.int64)
        start = self.as_of_ns - int(window_days) * NS_PER_DAY
        late_epoch = _epoch_start(self.as_of_ns - 1, self.epoch_ns)
        split = np.maximum(late_epoch, start)
        late = ts >= split[self._customer[rows]]
        size = self._customers * self.width(by)
        # Integer sums, as History's int64 cumulative sums: a float accumulation could round differently.
        early_sum, late_sum = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        np.add.at(early_sum, keys[~late], weights[~late])
        np.add.at(late_sum, keys[late], weights[late])
        as_of = requests.as_of
        request_start = as_of - int(window_days) * NS_PER_DAY
        early_scale = np.exp(-(as_of - _epoch_start(request_start, self.epoch_ns)) / self.decay_tau_ns)
        late_scale = np.exp(-(as_of - _epoch_start(as_of - 1, self.epoch_ns)) / self.decay_tau_ns)
        return early_sum.reshape(self._customers, -1), late_sum.reshape(self._customers, -1), early_scale, late_scale

    def decayed_count_by(self, types: tuple[str, ...], requests: Requests, *, window_days: int, by: By) -> np.ndarray:
        early, late, early_scale, late_scale = self._decay_parts(types, requests, window_days, by)
        customer = np.asarray(requests.customer, dtype=np.int64)
        if not len(early):
            return np.zeros((len(customer), self.width(by)))
        known = (customer >= 0)[:, None]
        at = np.maximum(customer, 0)
        early_rows = np.where(known, early[at], 0) / _DECAY_SCALE
        late_rows = np.where(known, late[at], 0) / _DECAY_SCALE
        return early_rows * early_scale[:, None] + late_rows * late_scale[:, None]

    def decayed_count(self, types: tuple[str, ...], requests: Requests, *, window_days: int,
                      by: By = "customer", sub: np.ndarray | int | None = None) -> np.ndarray:
        early, late, early_scale, late_scale = self._decay_parts(types, requests, window_days, by)
        keys = self._request_keys(np.asarray(requests.customer, dtype=np.int64), by, sub)
        early_rows = self._gather(early.ravel(), keys, 0) / _DECAY_SCALE
        late_rows = self._gather(late.ravel(), keys, 0) / _DECAY_SCALE
        return early_rows * early_scale + late_rows * late_scale
