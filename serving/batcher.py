"""Requests that arrive together are answered together, without waiting for a timer.

A route thread hands its item to :meth:`Batcher.submit`. If no batch is running, that thread runs one
with every item waiting at that moment (its own included); otherwise it waits, for its answer or for
the running batch to end, and then the first waiter to get in leads the next batch. Under light load a
batch holds one item and costs nothing extra; under concurrent load the items that queued during one
batch form the next, and ``run`` answers them in one pass (for decisions: one feature build and one
model call, :meth:`engine.policy.online.DecisionEngine.decide_each`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(eq=False)
class _Pending(Generic[In, Out]):
    item: In
    done: bool = False
    answer: Out | BaseException | None = field(default=None)


class Batcher(Generic[In, Out]):
    """``run(items)`` returns one answer per item, an exception in the place of an item that failed; if
    ``run`` itself raises, every item of that batch gets the exception."""

    def __init__(self, run: Callable[[list[In]], Sequence[Out | BaseException]], max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._run = run
        self._max_size = int(max_size)
        self._changed = threading.Condition()
        self._waiting: list[_Pending[In, Out]] = []
        self._running = False
        self.batches = 0  # batches run so far, and the items they held: what the metrics and tests read
        self.items = 0

    def submit(self, item: In) -> Out:
        mine: _Pending[In, Out] = _Pending(item)
        with self._changed:
            self._waiting.append(mine)
        while True:  # more than max_size waiting: this thread may lead a batch of earlier items first
            with self._changed:
                while self._running and not mine.done:
                    self._changed.wait()
                if mine.done:
                    break
                self._running = True
                batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
            self._lead(batch)
        if isinstance(mine.answer, BaseException):
            raise mine.answer
        return mine.answer  # type: ignore[return-value]

    def _lead(self, batch: list[_Pending[In, Out]]) -> None:
        try:
            answers: Sequence[Out | BaseException] = self._run([p.item for p in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} items got {len(answers)} answers")
        except BaseException as exc:  # each waiter re-raises it in its own thread
            answers = [exc] * len(batch)
        with self._changed:
            for pending, answer in zip(batch, answers):
                pending.answer, pending.done = answer, True
            self.batches += 1
            self.items += len(batch)
            self._running = False
            self._changed.notify_all()
