"""Requests that arrive together are answered together, by one worker thread, without a fixed delay.

A route awaits :meth:`Batcher.submit`: its item joins a queue and the route's task sleeps on an asyncio
future. One thread (started on first use, so that a forked worker process starts its own) takes every
item waiting, up to ``max_size``, answers them in one ``run`` and wakes their routes with one callback
into the event loop. Before it starts a batch it lets the burst it belongs to arrive: it waits while
items keep coming, each within ``gather_gap_seconds`` of the last (at most ``gather_max_seconds``); a
lone request waits one gap. A caller that names itself (``submit(item, caller=...)``: an HTTP
connection, which sends its next request only once answered) spares that wait: once every caller of
the batch answered last is back in the queue, no one else is known to be on the way, and the batch
starts at once. Under light load a batch holds one item and costs one thread hand-off; under
concurrent load the items that queue during one batch form the next (for decisions: one feature build
and one model call, :meth:`engine.policy.online.DecisionEngine.decide_each`). Items queued together by
:meth:`Batcher.submit_many` (a batch request) wait in a lane of their own and are never batched with
single items; when both lanes wait, they take turns.

Why one thread and not the pool: with a thread per request every batch woke each waiting thread, and
each of them had to win the GIL back before its route could answer; here a batch costs one wake-up of
the worker and one of the event loop, whatever its size.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from serving.logs import LOGGER

_log = logging.getLogger(LOGGER)

In = TypeVar("In")
Out = TypeVar("Out")

_Pending = tuple[In, "asyncio.Future[Out]", asyncio.AbstractEventLoop, Hashable | None]


class Batcher(Generic[In, Out]):
    """``run(items)`` returns one answer per item, an exception in the place of an item that failed; if
    ``run`` itself raises, every item of that batch gets the exception. ``run`` runs in the worker
    thread, never in the event loop."""

    def __init__(self, run: Callable[[list[In]], Sequence[Out | BaseException]], max_size: int, *,
                 gather_gap_seconds: float = 0.0, gather_max_seconds: float = 0.0, name: str = "nbm-batcher") -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if gather_gap_seconds < 0 or gather_max_seconds < 0:
            raise ValueError("gather_gap_seconds and gather_max_seconds must not be negative")
        self._gather_gap = float(gather_gap_seconds)
        self._gather_max = float(gather_max_seconds)
        self._run = run
        self._max_size = int(max_size)
        self._name = name
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # an item queued, or the batcher closed: for the thread
        self._quiet = threading.Condition(lock)  # a batch finished: for idle()
        self._running = False
        self._waiting: deque[_Pending] = deque()  # single items
        self._bulk: deque[_Pending] = deque()  # items of submit_many
        self._thread: threading.Thread | None = None
        self._closed = False
        # Callers of the single-lane batch answered last that have not submitted again: while one is
        # missing, a gathering batch waits for it (within the gap). None: nobody is known to come back.
        self._missing: set[Hashable] | None = None
        self._current: list[_Pending] | None = None  # the batch being run, and whether answer_now gave its answers
        self._answered = False
        self.batches = 0  # batches run so far, and the items they held: what the metrics and tests read
        self.items = 0

    async def submit(self, item: In, caller: Hashable | None = None) -> Out:
        """``item``'s answer. ``caller``: who submits, when it submits again only after this answer (a
        keep-alive HTTP connection): a gathering batch stops waiting once every caller of the batch
        answered last is back (module docstring)."""
        (future,) = self._enqueue([item], self._waiting, caller)
        return await future

    async def submit_many(self, items: Sequence[In]) -> list[Out | BaseException]:
        """Queue ``items`` together, in the bulk lane, and return one answer per item, an exception in
        the place of an item that failed. Bulk items are answered in batches of their own, never beside
        single items: a batch request does not lengthen the wait of the single requests that arrive with
        it. When both lanes wait, they take turns."""
        return list(await asyncio.gather(*self._enqueue(items, self._bulk), return_exceptions=True))

    def _enqueue(self, items: Sequence[In], lane: deque[_Pending], caller: Hashable | None = None) -> list[asyncio.Future[Out]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Out]] = [loop.create_future() for _ in items]
        with self._changed:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            first = not self._waiting and not self._bulk
            lane.extend((item, future, loop, caller) for item, future in zip(items, futures))
            if caller is not None and self._missing:
                self._missing.discard(caller)
            # Wake the thread only for what it waits for: a first item, the last missing caller, a full
            # batch, or any item while no caller is known (each one restarts the gap). The other items
            # of a gathering batch are counted when its gap ends: a wake-up per item cost the event loop
            # the GIL eight times a batch.
            if first or lane is self._bulk or not self._missing or len(self._waiting) >= self._max_size:
                self._changed.notify()
        return futures

    def close(self, timeout: float | None = 10.0) -> None:
        """Answer what is queued, then stop the thread (a later ``submit`` raises)."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until no batch runs and none waits (every ``run`` done, also what it did after
        :meth:`answer_now`): True, or False after ``timeout`` seconds."""
        with self._changed:
            return self._quiet.wait_for(lambda: not self._running and not self._waiting and not self._bulk, timeout)

    def _serve(self) -> None:
        bulk_last = False
        while True:
            with self._changed:
                while not self._waiting and not self._bulk and not self._closed:
                    self._changed.wait()
                if not self._waiting and not self._bulk:
                    return
                bulk_last = bool(self._bulk) and (not self._waiting or not bulk_last)  # turns when both wait
                if bulk_last:
                    lane = self._bulk
                else:
                    self._gather()
                    lane = self._waiting
                batch = [lane.popleft() for _ in range(min(self._max_size, len(lane)))]
                self._running = True
            try:
                self._answer(batch, expect_back=not bulk_last)
            finally:
                with self._changed:
                    self._running = False
                    self._quiet.notify_all()

    def _gather(self) -> None:
        """With the lock held and an item waiting: let more join while they keep coming, each within
        ``gather_gap`` of the last, for at most ``gather_max`` in all, and not once every caller of the
        batch answered last is back. Clients that were answered together send their next requests
        together, a fraction of a millisecond apart; without this pause the first of them would start a
        batch alone and the others would form the next one. Once the last of them is back, the gap is not
        waited out: the event loop would otherwise sit idle for it in every batch. While callers are missing, the others' items do not wake this thread (:meth:`_enqueue`):
        they are counted when the gap ends, and still keep the gathering going."""
        if self._gather_gap <= 0:
            return
        deadline = time.monotonic() + self._gather_max
        seen = len(self._waiting)
        while seen < self._max_size and not self._closed and self._missing != set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.wait(min(self._gather_gap, left))
            if len(self._waiting) == seen:
                return  # none came within the gap: the burst is over
            seen = len(self._waiting)

    def answer_now(self, answers: Sequence[Out | BaseException]) -> None:
        """Give the batch being run its answers now, before ``run`` returns: called by ``run`` (or by code
        it waits for in the event loop's thread, where the routes' futures are then settled at once, with
        no hand-off). What ``run`` does afterwards (for decisions: the log write) then overlaps with the
        routes' answers instead of delaying them. Answers that ``run`` returns later are not given again."""
        batch = self._current
        if batch is None or self._answered:
            raise RuntimeError("answer_now() outside a batch's run, or twice in one")
        if len(answers) != len(batch):
            raise RuntimeError(f"batch of {len(batch)} items got {len(answers)} answers")
        self._answered = True
        _give(batch, answers)

    def _answer(self, batch: list[_Pending], expect_back: bool) -> None:
        with self._changed:
            self.batches += 1
            self.items += len(batch)
            if expect_back:  # set before any answer goes out: a caller may be back before run returns
                self._missing = {caller for _, _, _, caller in batch if caller is not None} or None
        self._current, self._answered = batch, False
        try:
            answers: Sequence[Out | BaseException] = self._run([item for item, _, _, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} items got {len(answers)} answers")
        except BaseException as exc:  # each route re-raises it in its own task
            if self._answered:  # the callers have their answers: the failure after them is only logged
                _log.exception("batch %s failed after its %d items were answered", self._name, len(batch))
                return
            answers = [exc] * len(batch)
        finally:
            self._current = None
        if not self._answered:
            _give(batch, answers)


def _give(batch: Sequence[_Pending], answers: Sequence[object]) -> None:
    """Settle each item's future with its answer: here if this thread runs that future's loop, else by a
    callback into it (one per loop)."""
    here = _running_loop()
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, object]]] = {}
    for (_, future, loop, _), answer in zip(batch, answers):
        by_loop.setdefault(loop, []).append((future, answer))
    for loop, settled in by_loop.items():
        if loop is here:
            _settle(settled)
            continue
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # that loop is closed: nobody is waiting for these answers any more
            pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(settled: list[tuple[asyncio.Future, object]]) -> None:
    for future, answer in settled:
        if future.done():  # cancelled: the client went away
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
