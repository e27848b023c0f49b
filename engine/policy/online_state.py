"""One customer's events at decision time: the bundle's compacted state for that customer plus the live
events the API read from the event store since the state's cutoff, as one small :class:`EventLog`.

Opt-outs and complaints apply whatever their time (:data:`~engine.store.interface.APPLIED_AT_ANY_TIME`): one
stamped before the cutoff that the state does not hold (it reached the store late) is merged into the
state's slice at its time. Any other live event before the cutoff is left out: the state holds that past.

The state is sliced by customer once per bundle (the log is sorted by customer, so a slice is a view);
live events are encoded with dictionaries built once, because pandas' encoders cost more than the
handful of events a customer sends between two trainings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.store.interface import APPLIED_AT_ANY_TIME, EVENT_COLUMNS
from engine.features.log import EVENT_CODE, CatalogVocabularies, EventLog
from engine.features.state import FeatureState
from engine.features.vocab import Vocabulary
from engine.timeutil import to_ns

EVENT_FIELDS = ("ts", "event_type", "channel", "topic", "message", "value", "weight")  # a customer log, but the customer
_ROW_COLUMNS = {name: i for i, name in enumerate(EVENT_COLUMNS)}
_TS, _CUSTOMER, _EVENT_TYPE, _CHANNEL = (_ROW_COLUMNS[name] for name in ("ts", "customer_id", "event_type", "channel"))
# A customer's live events: a contract frame, or contract rows (engine.store.interface.contract_rows).
LiveEvents = pd.DataFrame | Sequence[tuple]
_DTYPES = {"ts": np.int64, "event_type": np.int8, "channel": np.int16, "topic": np.int16, "message": np.int32,
           "value": np.float64, "weight": np.int64}


@dataclass(frozen=True, eq=False)
class CustomerEvents:
    """``log`` holds this customer only (customer code 0); ``known``: the bundle has a profile or an event
    before the cutoff for them; ``profile``: their row in the customers table, -1 if none."""

    customer_id: str
    log: EventLog
    known: bool
    profile: int


@dataclass(frozen=True, eq=False)
class BatchEvents:
    """The events of several requests' customers in one log: request i's customer is customer code i (a
    customer asked twice is in it twice), rows ``bounds[i]:bounds[i + 1]``. What one feature build for a
    batch of decisions reads, without a log per customer first."""

    customer_ids: tuple[str, ...]
    log: EventLog
    bounds: np.ndarray
    known: np.ndarray  # bool, as CustomerEvents.known
    profile: np.ndarray  # int64, as CustomerEvents.profile

    def __len__(self) -> int:
        return len(self.customer_ids)

    def one(self, i: int) -> CustomerEvents:
        """Request i's customer alone, as :meth:`CustomerStates.events_of` gives it."""
        rows = slice(int(self.bounds[i]), int(self.bounds[i + 1]))
        arrays = {k: getattr(self.log, k)[rows] for k in EVENT_FIELDS}
        log = EventLog(customers=Vocabulary((self.customer_ids[i],)), customer=np.zeros(len(arrays["ts"]), np.int32), **arrays)
        return CustomerEvents(self.customer_ids[i], log, known=bool(self.known[i]), profile=int(self.profile[i]))


class CustomerStates:
    """Per-customer access to a bundle's feature state, profiles and the attributes policy rules read."""

    def __init__(self, state: FeatureState, vocab: CatalogVocabularies, customers: pd.DataFrame,
                 attribute_columns: Sequence[str] = ()) -> None:
        log = state.log
        self.cutoff_ns = state.cutoff_ns
        self._state = state
        codes = np.arange(len(log.customers))
        starts = np.searchsorted(log.customer, codes, side="left")
        stops = np.searchsorted(log.customer, codes, side="right")
        self._span = dict(zip(log.customers.values, zip(starts.tolist(), stops.tolist())))
        ids = customers["customer_id"].astype(str).tolist() if "customer_id" in customers.columns else []
        self._profile = {cid: row for row, cid in enumerate(ids)}
        missing = [c for c in attribute_columns if c not in customers.columns]
        if missing:
            raise ConfigError(f"policy.rules read customer attribute(s) {missing}, which the model bundle's customers "
                              f"table does not have (columns: {sorted(customers.columns)})")
        # Raw values, as rules compare them (as text); None where missing.
        self._attributes = {c: customers[c].astype(object).where(customers[c].notna(), None).to_numpy() for c in attribute_columns}
        self._codes = {
            "event_type": EVENT_CODE,
            "channel": _lookup(vocab.channels), "topic": _lookup(vocab.topics), "message_id": _lookup(vocab.messages),
        }

    def events_of(self, customer_id: str, live_events: LiveEvents | None) -> CustomerEvents:
        """The customer's state slice and live events as one log (customer code 0)."""
        return self.events_of_each([customer_id], [live_events]).one(0)

    def events_of_each(self, customer_ids: Sequence[str], live_events: Sequence[LiveEvents | None]) -> BatchEvents:
        """Each request's customer's events in one log (:class:`BatchEvents`): the bundle state's slice
        (sorted) and then the live events since the cutoff, sorted by time (stable: equal times keep the
        store's order). Built field by field with one gather from the state and one write of every live
        event, not a piece per customer: serving builds this log for every batch. A late opt-out or
        complaint (:meth:`_own_rows`) is merged into its state slice at its time by one stable sort of
        the batch, made only then."""
        starts, sizes, live, known, profile = [], [], [], [], []
        merge = False  # some live event is older than the cutoff: the customer's rows need sorting by time
        for customer_id, events in zip(customer_ids, live_events):
            start, stop = self._span.get(customer_id, (0, 0))
            mine = self._own_rows(customer_id, events, start, stop)
            merge = merge or (bool(mine) and int(mine[0][_TS]) < self.cutoff_ns)
            live.extend(mine)
            starts.append(start)
            sizes.append((stop - start, len(mine)))
            row = self._profile.get(customer_id, -1)
            profile.append(row)
            known.append(stop > start or row >= 0)
        state_rows, live_rows = np.array(sizes, dtype=np.int64).reshape(-1, 2).T
        bounds = np.concatenate([[0], np.cumsum(state_rows + live_rows)])
        state_from, state_to = _runs(np.asarray(starts, dtype=np.int64), bounds[:-1], state_rows)
        state = self._state.log
        if live:
            _, live_to = _runs(np.zeros(len(starts), dtype=np.int64), bounds[:-1] + state_rows, live_rows)
            encoded = self._encode_rows(live)
            arrays = {}
            for name in EVENT_FIELDS:
                arrays[name] = np.empty(int(bounds[-1]), dtype=_DTYPES[name])
                arrays[name][state_to] = getattr(state, name)[state_from]
                arrays[name][live_to] = encoded[name]
        else:
            arrays = {name: getattr(state, name)[state_from].astype(_DTYPES[name], copy=False) for name in EVENT_FIELDS}
        arrays["customer"] = np.repeat(np.arange(len(starts), dtype=np.int32), np.diff(bounds))
        if merge:  # rare (a late opt-out or complaint): the state's rows, then the live ones, stably by time
            order = np.lexsort((arrays["ts"], arrays["customer"]))
            arrays = {name: values[order] for name, values in arrays.items()}
        log = EventLog(customers=Vocabulary(tuple(str(i) for i in range(len(starts)))), **arrays)
        return BatchEvents(tuple(customer_ids), log, bounds, np.array(known, dtype=bool), np.array(profile, dtype=np.int64))

    def attributes(self, profile: int, n: int) -> dict[str, np.ndarray]:
        """Each rule attribute of the customer's profile, repeated for n candidates (None: no profile)."""
        return {c: np.full(n, values[profile] if profile >= 0 else None, dtype=object) for c, values in self._attributes.items()}

    def _own_rows(self, customer_id: str, events: LiveEvents | None, start: int = 0, stop: int = 0) -> list[tuple]:
        """The customer's live events that the state (its rows ``start:stop``) does not hold, as contract rows
        (:func:`engine.store.interface.contract_rows`, the store's), in time order: those at or after the
        cutoff, and the :data:`~engine.store.interface.APPLIED_AT_ANY_TIME` ones before it that are not in the
        state already (:meth:`_in_state`). ``events``: such rows, or a contract frame (which may lack
        ``event_id`` and the optional columns)."""
        if events is None or len(events) == 0:
            return []
        rows = _frame_rows(events) if isinstance(events, pd.DataFrame) else events
        cutoff = self.cutoff_ns
        mine = [r for r in rows if r[_CUSTOMER] == customer_id
                and (int(r[_TS]) >= cutoff or (r[_EVENT_TYPE] in APPLIED_AT_ANY_TIME and not self._in_state(r, start, stop)))]
        if any(int(a[_TS]) > int(b[_TS]) for a, b in zip(mine, mine[1:])):
            mine.sort(key=lambda r: int(r[_TS]))  # stable: equal times keep their order
        return mine

    def _in_state(self, row: tuple, start: int, stop: int) -> bool:
        """Whether the state's rows ``start:stop`` hold an event at the row's time with its type and channel:
        the event was in the training data (exported from the store, then trained on), and counting it
        again would double it. A compacted record keeps its group's last time only; the earlier events it
        stands for lie before every window (the compaction boundary is the longest window before the
        cutoff), where counting one twice or not at all changes no feature and no contact rule."""
        log = self._state.log
        at = slice(start, stop)
        return bool(np.any((log.ts[at] == int(row[_TS])) & (log.event_type[at] == EVENT_CODE[row[_EVENT_TYPE]])
                           & (log.channel[at] == self._codes["channel"].get(row[_CHANNEL], -1))))

    def _encode_rows(self, rows: Sequence[tuple]) -> dict[str, np.ndarray]:
        """Contract rows encoded as :meth:`EventLog.from_events` encodes events, in plain Python: a batch
        has a handful of live events, and a list per column costs less than an object array."""
        at, codes = _ROW_COLUMNS, self._codes
        i_ts, i_value = at["ts"], at["value"]
        out = {"ts": np.array([int(r[i_ts]) for r in rows], dtype=np.int64)}
        for source, name in (("event_type", "event_type"), ("channel", "channel"), ("topic", "topic"), ("message_id", "message")):
            lookup, i = codes[source], at[source]
            out[name] = np.array([lookup.get(r[i], -1) for r in rows], dtype=_DTYPES[name])
        out["value"] = np.array([np.nan if r[i_value] is None else float(r[i_value]) for r in rows], dtype=np.float64)
        out["weight"] = np.ones(len(rows), dtype=np.int64)
        return out


def _frame_rows(events: pd.DataFrame) -> list[tuple]:
    """A contract frame's events as contract rows: ``ts`` in int ns UTC, None for a missing value or column."""
    table = events.to_numpy(dtype=object, na_value=None)
    at = {name: i for i, name in enumerate(events.columns)}
    columns = [to_ns(events["ts"]).tolist() if name == "ts" else table[:, at[name]].tolist() if name in at else [None] * len(table)
               for name in EVENT_COLUMNS]
    return list(zip(*columns))


def _runs(first: np.ndarray, to: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of ``lengths[i]`` consecutive positions starting at ``first[i]`` (source) and ``to[i]``
    (destination), every position of every run, run after run: (sources, destinations)."""
    run = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return first[run] + within, to[run] + within


def _lookup(vocabulary: Vocabulary) -> dict[str, int]:
    return {value: code for code, value in enumerate(vocabulary.values)}
