"""Requests that arrive together are answered together: an asyncio micro-batcher.

A route awaits :meth:`MicroBatcher.submit`: its item joins a queue in the event loop and the route's task
waits on an asyncio future. One asyncio task (started by the first ``submit``, in the loop that serves)
takes the items waiting, up to ``max_size``, and hands them to ``run`` with one
``loop.run_in_executor``: ``run`` does the blocking work of the whole batch in the executor's thread and
returns one answer per item. Back in the loop, the task settles each item's future. Items that queue
while a batch runs form the next batch.

Before it takes a batch the task yields to the event loop ``gather_yields`` times: requests that are
already being read then reach the queue and join this batch instead of starting the next one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

from serving.errors import ShuttingDownError

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """``run(items)`` returns one answer per item, an exception in the place of an item that failed; if
    ``run`` raises, every item of that batch gets the exception. ``run`` runs in ``executor``, never in
    the event loop."""

    def __init__(self, run: Callable[[list[In]], Sequence[Out | BaseException]], executor: Executor, max_size: int,
                 *, gather_yields: int = 1) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if gather_yields < 0:
            raise ValueError(f"gather_yields must not be negative, got {gather_yields}")
        self._run = run
        self._executor = executor
        self._max_size = max_size
        self._gather_yields = gather_yields
        self._queue: deque[tuple[In, asyncio.Future[Out]]] = deque()
        self._queued: asyncio.Event | None = None  # made in the serving loop, with the task
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.runs = 0  # batches handed to the executor so far, and the items they held
        self.items = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, item: In) -> Out:
        """``item``'s answer, or the exception ``run`` gave in its place."""
        if self._closed:
            raise ShuttingDownError("the server is shutting down: no new decisions are taken")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._queued = asyncio.Event()
            self._task = loop.create_task(self._serve(loop), name="nbm-micro-batcher")
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        self._queued.set()  # type: ignore[union-attr]
        return await future

    async def close(self) -> None:
        """Take no new item; answer every item already queued, then stop the task."""
        self._closed = True
        if self._task is None:
            return
        self._queued.set()  # type: ignore[union-attr]
        await self._task

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        queued = self._queued
        assert queued is not None
        try:
            while True:
                while not self._queue:
                    if self._closed:
                        return
                    queued.clear()
                    await queued.wait()
                for _ in range(self._gather_yields):
                    await asyncio.sleep(0)
                batch = [self._queue.popleft() for _ in range(min(self._max_size, len(self._queue)))]
                await self._answer(loop, batch)
        except asyncio.CancelledError:  # the loop is being torn down: nobody may be left waiting
            self._closed = True
            _fail_all(self._queue, ShuttingDownError("the server stopped before this decision was made"))
            raise

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        self.runs += 1
        self.items += len(batch)
        try:
            answers: Sequence[Out | BaseException] = await loop.run_in_executor(self._executor, self._run, [item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} items got {len(answers)} answers")
        except asyncio.CancelledError:
            _fail_all(batch, ShuttingDownError("the server stopped before this decision was made"))
            raise
        except Exception as exc:  # noqa: BLE001 - each route re-raises it in its own task
            answers = [exc] * len(batch)
        for (_, future), answer in zip(batch, answers):
            if future.done():  # cancelled: the client went away
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)


def _fail_all(pending: Sequence[tuple[object, asyncio.Future]] | deque, error: BaseException) -> None:
    for _, future in pending:
        if not future.done():
            future.set_exception(error)
    if isinstance(pending, deque):
        pending.clear()
