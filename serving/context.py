"""What the routes call: one object per app holding the model, the store, the decision log and metrics.

Each route makes one call here with its validated request; this module does the bookkeeping around the
engine (live events in, decision log and metrics out) so that routes stay thin.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pandas as pd
from starlette.concurrency import run_in_threadpool

from engine.config import ServingSettings, Settings
from engine.contract.records import validate_event_records
from engine.errors import NbmError
from engine.ids import time_ordered_ids
from engine.eventstore import AppendResult, EventIdConflictError, EventStore, InvalidEventsError, StoreUnavailableError
from engine.eventstore import record_events
from serving.batcher import Batcher
from engine.store.decisions import SqliteDecisionLog
from serving.errors import BatchItemError, BatchTooLargeError, NoModelError
from serving.ids import id_problems
from serving.logs import LOGGER, add_request_fields, customer_for_log
from serving.loop_call import LoopCall
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
    batcher: Batcher[tuple[DecisionRequest, pd.Timestamp | None, bool], Decision] = field(init=False)
    # The event loop the app serves in (set by the lifespan, cleared by close()): where small batches of
    # decisions are computed (:mod:`serving.loop_call`). None: in the batcher's thread.
    loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Single decisions that arrive together (concurrent clients) are decided, and logged, together.
        serving = self.serving
        self.batcher = Batcher(self._decide_and_record, serving.max_batch_size, name="nbm-decisions",
                               gather_gap_seconds=serving.batch_gather_gap_ms / 1000,
                               gather_max_seconds=serving.batch_gather_max_ms / 1000)

    def close(self) -> None:
        # close() runs in the loop's thread and joins the batcher's: a batch waiting for the loop, and every
        # later one, is computed in the batcher's thread instead.
        self.loop = None
        self.batcher.close()

    def now(self) -> pd.Timestamp:
        return read_clock(self.clock)

    # ---- decisions
    async def decide_one(self, request: DecisionRequest, caller: Hashable | None = None) -> Decision:
        """One decision, answered by the batcher's thread together with the others waiting (counted and
        stored by the batch), at the instant the batch reads the clock. ``caller``: the client's
        connection, which asks again only once answered (:meth:`Batcher.submit`)."""
        decision = await self.batcher.submit((request, None, True), caller)
        add_request_fields(customer=self._customer(request.customer_id))
        self._log_decisions([decision])
        return decision

    async def decide_batch(self, requests: Sequence[DecisionRequest], now: pd.Timestamp) -> list[Decision]:
        """One decision per request, stored together; any failing request fails the whole call, naming
        it, and then none is stored. Decided by the batcher's thread in its bulk lane, taking turns with
        the single decisions: one thread does all decision work, so the two never compete for the GIL."""
        if len(requests) > self.serving.max_batch_size:
            raise BatchTooLargeError(f"{len(requests):,} decision requests in one batch; at most "
                                     f"{self.serving.max_batch_size:,} ([serving] max_batch_size)")
        answers = await self.batcher.submit_many([(request, now, False) for request in requests])
        for index, answer in enumerate(answers):
            if isinstance(answer, NbmError):
                raise BatchItemError(index, answer) from answer
            if isinstance(answer, BaseException):
                raise answer
        decisions: list[Decision] = list(answers)  # type: ignore[arg-type]
        await run_in_threadpool(self._record, decisions, now)  # a disk write: out of the event loop
        self._log_decisions(decisions)
        return decisions

    def _decide_and_record(self, items: list[tuple[DecisionRequest, pd.Timestamp | None, bool]]) -> list[Decision | Exception]:
        """The batcher's run: each item ``(request, now, record)``, ``now`` None for the clock read once
        here; those with ``record`` are counted and stored here, the others by their caller (a batch
        request stores all of its decisions or none). The decisions are counted and answered as soon as
        the engine has made them, in the event loop's thread; the log write follows in this thread,
        beside the routes' answers (a decision is in the log a fraction of a millisecond after its
        answer went out: :meth:`logged` waits for it)."""
        self.metrics.decision_batch_size.observe(len(items))
        batch_now = self.now() if any(now is None for _, now, _ in items) else None
        dated = [(request, batch_now if now is None else now) for request, now, _ in items]
        recorded = [record for _, _, record in items]

        def count_and_answer(answers: list[Decision | Exception]) -> None:
            self._count_decisions([answer for answer, record in zip(answers, recorded) if record and not isinstance(answer, Exception)])
            self.batcher.answer_now(answers)

        answers = self._decide_each(dated, count_and_answer)
        decided = [(answer, now) for answer, (_, now), record in zip(answers, dated, recorded)
                   if record and not isinstance(answer, Exception)]
        self._append_to_log([d for d, _ in decided], [now for _, now in decided])
        return answers

    def _decide_each(self, items: list[tuple[DecisionRequest, pd.Timestamp]],
                     then: Callable[[list[Decision | Exception]], None] | None = None) -> list[Decision | Exception]:
        """Each request at its own ``now`` (the default as_of), with one model: each decision or its error;
        ``then(answers)`` runs right after the engine, in the thread that ran it."""
        loaded = self.model()
        # One read of the store for the whole batch.
        live = self.store.get().rows_for_decisions([request.customer_id for request, _ in items], loaded.bundle.state.cutoff_ns)
        ids = _decision_ids([now for _, now in items])
        inputs = [DecisionInput(request.customer_id, request.channel,
                                now if request.as_of is None else pd.Timestamp(request.as_of).tz_convert("UTC"),
                                live[request.customer_id], request.k, request.explain, decision_id)
                  for (request, now), decision_id in zip(items, ids)]
        engine = loaded.engine
        return self._compute(lambda: engine.decide_each(inputs), len(inputs), then)

    def logged(self, timeout: float | None = 10.0) -> bool:
        """Wait until every decision answered so far is in the decision log (or failed to be): True, or
        False after ``timeout`` seconds. Single decisions are answered before their log write ends."""
        return self.batcher.idle(timeout)

    def decide_customer(self, customer_id: str, as_of: pd.Timestamp | None, explain: bool, now: pd.Timestamp) -> tuple[LoadedModel, list[Decision]]:
        loaded = self.model()
        add_request_fields(customer=self._customer(customer_id))
        engine, live = loaded.engine, self._live_events(loaded, customer_id)
        ids = _decision_ids([now] * len(engine.channels))
        decisions = list(self._compute(lambda: engine.decide_all_channels(
            customer_id, as_of=now if as_of is None else as_of, live_events=live, explain=explain, decision_ids=ids),
            len(ids)))
        self._record(decisions, now)
        self._log_decisions(decisions)
        return loaded, decisions

    def _compute(self, work: Callable[[], _T], decisions: int, then: Callable[[_T], None] | None = None) -> _T:
        """``work()`` (the engine deciding ``decisions`` decisions) in the event loop's thread if there are
        at most ``[serving] loop_batch_max`` of them (:mod:`serving.loop_call`), else in this thread;
        ``then(result)`` right after it, in the same thread."""
        def work_then() -> _T:
            result = work()
            if then is not None:
                then(result)
            return result

        loop = self.loop
        if loop is None or decisions > self.serving.loop_batch_max:
            return work_then()
        return LoopCall(work_then).run(loop, given_up=lambda: self.loop is None)

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
        return customer_for_log(customer_id, self.serving.hash_customer_ids_in_logs)

    def _log_decisions(self, decisions: Sequence[Decision]) -> None:
        """A debug line per decision, from the request's own thread: it carries that request's id."""
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
