"""Run a function in the event loop's thread from another thread and wait for its result.

Why: CPython runs one thread's Python at a time (the GIL). A decision's engine work is Python and numpy,
CPU-bound: in the batcher's thread it does not run beside the event loop but against it. Each time numpy
releases the GIL the loop takes it, and the two threads pass it back and forth, each hand-over a futex
system call (docs/benchmarks.md has the measured counts, throughput and p99). The batcher's thread keeps the blocking I/O (the
event store read, the decision log write) and the gathering of a batch.

:class:`LoopCall` hands a call over and waits for it. A loop that cannot run it (closed, or stopping
and waiting for the calling thread: a shutdown that joins the batcher) must not leave the caller
waiting forever: when ``given_up()`` turns true before the loop has started the call, the caller
takes the call back and runs it in its own thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_PENDING, _RUNNING, _TAKEN_BACK = "pending", "running", "taken back"


class LoopCall(Generic[T]):
    """``fn()`` run once: in the loop's thread, or in the caller's when the loop gives it up."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._state = _PENDING
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self, loop: asyncio.AbstractEventLoop, given_up: Callable[[], bool], poll_seconds: float = 0.05) -> T:
        """Schedule the call in ``loop`` and wait for it; run it here instead if the loop is closed, or if
        ``given_up()`` is true while the loop has not started it (checked every ``poll_seconds``)."""
        if _running_loop() is loop:  # called from the loop's own thread: waiting for it would never end
            return self._here()
        try:
            loop.call_soon_threadsafe(self._in_loop)
        except RuntimeError:  # the loop is closed
            return self._here()
        while not self._done.wait(poll_seconds):
            if given_up() and self._take_back():
                return self._here()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def _in_loop(self) -> None:
        with self._lock:
            if self._state != _PENDING:
                return  # taken back by the caller
            self._state = _RUNNING
        try:
            self._result = self._fn()
        except BaseException as exc:  # re-raised in the waiting thread
            self._error = exc
        finally:
            self._done.set()

    def _take_back(self) -> bool:
        with self._lock:
            if self._state != _PENDING:
                return False  # running or done in the loop: wait for it
            self._state = _TAKEN_BACK
            return True

    def _here(self) -> T:
        return self._fn()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
