"""What the routes call: one object per app holding the model, the store, the decision log and metrics.

Each route makes one call here with its validated request; this module does the bookkeeping around the
engine (live events in, decision log and metrics out) so that routes stay thin.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pandas as pd

from engine.config import ServingSettings, Settings
from engine.contract.records import validate_event_records
from engine.errors import NbmError
from engine.ids import time_ordered_ids
from engine.store.interface import AppendResult, EventIdConflictError, EventStore, InvalidEventsError, StoreUnavailableError
from engine.store.interface import record_events
from serving.batcher import MicroBatcher
from engine.store.decisions import SqliteDecisionLog
from serving.errors import BatchItemError, BatchTooLargeError, NoModelError, ShuttingDownError
from serving.ids import id_problems
from serving.logs import LOGGER, add_request_fields, customer_for_log
from serving.metrics import Metrics
from serving.model_holder import LoadedModel, ModelHolder
from serving.schemas import DecisionRequest

from engine.policy.online import DecisionInput

if TYPE_CHECKING:
    from engine.policy.online import Decision

_log = logging.getLogger(LOGGER)
_T = TypeVar("_T")


class Slot(Generic[_T]):
    """A resource opened on first use and re-tried after a failure (at most every ``retry_seconds``), so a
    store that comes back (a remounted disk) is used again without a restart."""

    def __init__(self, what: str, open_: Callable[[], _T], retry_seconds: float = 5.0) -> None:
        self._what = what
        self._open = open_
        self._retry_ns = int(retry_seconds * 1e9)
        self._lock = threading.Lock()
        self._value: _T | None = None
        self._error: StoreUnavailableError | None = None
        self._failed_at = 0

    def get(self) -> _T:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                if self._error is not None and time.monotonic_ns() - self._failed_at < self._retry_ns:
                    raise self._error.with_traceback(None)  # re-raised per request: keep its traceback short
                try:
                    self._value = self._open()
                    self._error = None
                except StoreUnavailableError as exc:
                    self._error, self._failed_at = exc, time.monotonic_ns()
                    _log.error("%s unavailable: %s", self._what, exc)
                    raise
            return self._value

    def problem(self) -> str | None:
        try:
            self.get()
        except StoreUnavailableError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        with self._lock:
            if self._value is not None:
                self._value.close()  # type: ignore[attr-defined]
            self._value = None


def read_clock(clock: Callable[[], pd.Timestamp]) -> pd.Timestamp:
    """The server's clock as requests see it: the default as_of and the events' future limit (UTC, in
    microseconds: what JSON timestamps carry)."""
    stamp = pd.Timestamp(clock())
    if stamp.tzinfo is None:
        raise ValueError("the server clock must give timezone-aware times")
    # .value counts ns since the epoch in UTC; flooring it is a fraction of tz_convert + floor's cost.
    return pd.Timestamp(stamp.value // 1_000 * 1_000, tz="UTC")


@dataclass(eq=False)
class ServingContext:
    settings: Settings
    serving: ServingSettings
    holder: ModelHolder
    store: Slot[EventStore]
    decision_log: Slot[SqliteDecisionLog] | None
    metrics: Metrics
    clock: Callable[[], pd.Timestamp]
    # Every piece of decision work (store read, engine, decision log write) runs in this one thread:
    # threads deciding side by side would only compete for the GIL.
    executor: ThreadPoolExecutor = field(init=False)
    batcher: MicroBatcher[DecisionRequest, Decision] = field(init=False)

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbm-decisions")
        # Single decisions that arrive together (concurrent clients) are decided, and logged, together.
        # Concurrent requests reach the queue over a few turns of the event loop: yielding 4 times before
        # taking a batch made batches of 8 clients' requests about twice as large as yielding once
        # (docs/benchmarks.md).
        self.batcher = MicroBatcher(self._decide_singles, self.executor, self.serving.max_batch_size, gather_yields=4)

    async def close(self) -> None:
        """Answer the decisions already asked for, then stop the decision thread."""
        await self.batcher.close()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown)

    def now(self) -> pd.Timestamp:
        return read_clock(self.clock)

    async def in_decision_thread(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(*args)`` in the decision thread, awaited from the event loop."""
        if self.batcher.closed:
            raise ShuttingDownError("the server is shutting down: no new decisions are taken")
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(work, *args))

    # ---- decisions
    async def decide_one(self, request: DecisionRequest) -> Decision:
        """One decision, made with the others waiting in the batcher at the instant the batch reads the
        clock; counted and in the decision log when it is answered."""
        decision = await self.batcher.submit(request)
        add_request_fields(customer=self._customer(request.customer_id))
        self._log_decisions([decision])
        return decision

    async def decide_batch(self, requests: Sequence[DecisionRequest], now: pd.Timestamp) -> list[Decision]:
        """One decision per request, stored together; any failing request fails the whole call, naming
        it, and then none is stored."""
        if len(requests) > self.serving.max_batch_size:
            raise BatchTooLargeError(f"{len(requests):,} decision requests in one batch; at most "
                                     f"{self.serving.max_batch_size:,} ([serving] max_batch_size)")
        decisions = await self.in_decision_thread(self._decide_all_or_none, requests, now)
        self._log_decisions(decisions)
        return decisions

    async def decide_customer(self, customer_id: str, as_of: pd.Timestamp | None, explain: bool, now: pd.Timestamp,
                              channels: Sequence[str] | None = None) -> tuple[LoadedModel, list[Decision]]:
        """One decision per channel (of ``channels``; None: all), coordinated; counted and stored."""
        add_request_fields(customer=self._customer(customer_id))
        loaded, decisions = await self.in_decision_thread(self._decide_all_channels, customer_id, as_of, explain, now, channels)
        self._log_decisions(decisions)
        return loaded, decisions

    def logged(self, timeout: float | None = 10.0) -> bool:
        """Wait until the decision thread has done the work handed to it so far (decisions are in the
        log when they are answered: this is for callers outside the event loop, such as tests): True,
        or False after ``timeout`` seconds."""
        done, _ = futures_wait([self.executor.submit(lambda: None)], timeout)
        return bool(done)

    def _decide_singles(self, requests: list[DecisionRequest]) -> list[Decision | Exception]:
        """The batcher's run, in the decision thread: one clock read, one store read and one engine call
        for the batch; the decisions made are counted and stored before they are answered."""
        self.metrics.decision_batch_size.observe(len(requests))
        now = self.now()
        answers = self._decide_each(requests, now)
        self._record([answer for answer in answers if not isinstance(answer, Exception)], now)
        return answers

    def _decide_all_or_none(self, requests: Sequence[DecisionRequest], now: pd.Timestamp) -> list[Decision]:
        answers = self._decide_each(requests, now)
        for index, answer in enumerate(answers):
            if isinstance(answer, NbmError):
                raise BatchItemError(index, answer) from answer
            if isinstance(answer, Exception):
                raise answer
        decisions: list[Decision] = answers  # type: ignore[assignment]
        self._record(decisions, now)
        return decisions

    def _decide_each(self, requests: Sequence[DecisionRequest], now: pd.Timestamp) -> list[Decision | Exception]:
        """Each request with ``now`` as its default as_of, with one model: each decision or its error."""
        loaded = self.model()
        # One read of the store for the whole batch.
        live = self.store.get().rows_for_decisions([request.customer_id for request in requests], loaded.bundle.state.cutoff_ns)
        ids = _decision_ids([now] * len(requests))
        inputs = [DecisionInput(request.customer_id, request.channel,
                                now if request.as_of is None else pd.Timestamp(request.as_of).tz_convert("UTC"),
                                live[request.customer_id], request.k, request.explain, decision_id)
                  for request, decision_id in zip(requests, ids)]
        return loaded.engine.decide_each(inputs)

    def _decide_all_channels(self, customer_id: str, as_of: pd.Timestamp | None, explain: bool, now: pd.Timestamp,
                             channels: Sequence[str] | None) -> tuple[LoadedModel, list[Decision]]:
        loaded = self.model()
        engine, live = loaded.engine, self._live_events(loaded, customer_id)
        answered = len(engine.channels) if channels is None else len({engine.channel_name(name) for name in channels})
        ids = _decision_ids([now] * answered)
        decisions = list(engine.decide_all_channels(customer_id, as_of=now if as_of is None else as_of, live_events=live,
                                                    explain=explain, decision_ids=ids, channels=channels))
        self._record(decisions, now)
        return loaded, decisions

    # ---- events
    def record_events(self, records: Sequence[Any], now: pd.Timestamp) -> AppendResult:
        if len(records) > self.serving.max_batch_size:
            raise BatchTooLargeError(f"{len(records):,} events in one request; at most "
                                     f"{self.serving.max_batch_size:,} ([serving] max_batch_size)")
        # Its catalog is what events are checked against; its feature cutoff says which events come late.
        bundle = self.model().bundle
        messages, lookup, validation = bundle.messages, bundle.message_lookup, self.settings.validation
        try:
            bad_ids = id_problems(records)
            if bad_ids:  # report them with every contract problem of the batch, in batch order
                others = validate_event_records(records, messages, now=now, settings=validation, lookup=lookup).problems
                raise InvalidEventsError(tuple(sorted(bad_ids + others, key=lambda p: p.index)))
            result = record_events(self.store.get(), records, messages, now=now, settings=validation, lookup=lookup,
                                   cutoff_ns=bundle.state.cutoff_ns)
        except InvalidEventsError as exc:
            for problem in exc.problems:
                self.metrics.events_rejected.labels(reason=problem.reason).inc()
            raise
        except EventIdConflictError as exc:
            for conflict in exc.conflicts:
                self.metrics.events_rejected.labels(reason=conflict.reason).inc()
            raise
        self.metrics.events.labels(outcome="stored").inc(result.stored)
        self.metrics.events.labels(outcome="duplicate").inc(result.duplicates)
        self.metrics.events_late.inc(result.late)
        return result

    # ---- state
    def model(self) -> LoadedModel:
        loaded = self.holder.current()
        if loaded is None:
            reason = self.holder.last_error or "the model is loading"
            raise NoModelError(f"no model loaded: {reason}")
        return loaded

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        loaded = self.holder.current()
        store_problem = self.store.problem()
        reasons = []
        if loaded is None:
            reasons.append(f"no model loaded: {self.holder.last_error or 'the model is loading'}")
        if store_problem is not None:
            reasons.append(store_problem)
        return not reasons, {
            "status": "not ready" if reasons else "ready",
            "model_version": loaded.version if loaded else None,
            "store": store_problem or "ok",
            "last_reload_error": self.holder.last_error,
            "reasons": reasons,
        }

    def _live_events(self, loaded: LoadedModel, customer_id: str) -> list[tuple]:
        return self.store.get().rows_for_decisions([customer_id], loaded.bundle.state.cutoff_ns)[customer_id]

    def _customer(self, customer_id: str) -> str:
        serving = self.serving
        return customer_for_log(customer_id, serving.log_customer_id_key if serving.hash_customer_ids_in_logs else None)

    def _log_decisions(self, decisions: Sequence[Decision]) -> None:
        """A debug line per decision, from the request's own task: it carries that request's id."""
        if not _log.isEnabledFor(logging.DEBUG):
            return  # the default: not even the fields are built
        for d in decisions:
            _log.debug("decision", extra={"decision_id": d.decision_id, "customer": self._customer(d.customer_id),
                                          "channel": d.channel, "model_version": d.model_version,
                                          "served": [x.message_id for x in d.messages]})

    def _record(self, decisions: Sequence[Decision], now: pd.Timestamp | Sequence[pd.Timestamp]) -> None:
        self._count_decisions(decisions)
        self._append_to_log(decisions, now)

    def _count_decisions(self, decisions: Sequence[Decision]) -> None:
        m = self.metrics
        for d in decisions:
            m.decisions.labels(channel=d.channel).inc()
            if d.cold_start:
                m.cold_starts.labels(channel=d.channel).inc()
            for message in d.messages:
                m.messages_served.labels(channel=d.channel, message_id=message.message_id).inc()
            for rule, count in d.suppressed.items():
                m.suppressions.labels(rule=rule).inc(count)

    def _append_to_log(self, decisions: Sequence[Decision], now: pd.Timestamp | Sequence[pd.Timestamp]) -> None:
        if self.decision_log is None or not decisions:
            return
        try:  # the decision stands even if it cannot be logged: serving matters more than the log
            self.decision_log.get().append(decisions, now)
        except StoreUnavailableError as exc:
            self.metrics.decision_log_failures.inc(len(decisions))
            _log.error("%d decision(s) served but not logged: %s", len(decisions), exc)


def _decision_ids(instants: Sequence[pd.Timestamp]) -> list[str]:
    """One time-ordered id per decision, from the millisecond of its instant (engine/ids.py): the decision
    log's key index then takes each batch at its end."""
    return time_ordered_ids([instant.value // 1_000_000 for instant in instants])
