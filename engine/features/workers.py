"""The threads that share a History's look-ups: started on first use, kept while their owner lives.

A pool started afresh for every query cost time and memory: the new threads did not reuse the heap
memory (glibc arenas) that the last query's threads had filled and freed, so every query faulted its
temporaries in again, and the process grew. Measured on the features bench's rolling 30-day count per
exposure (6.1 million requests, 2 threads), 8 runs in one process, each on a fresh History: with a pool
per query, 0.41 s at first and 0.78-1.09 s from the fourth run, the process 0.5 GB larger after each
run (130,000 page faults per run); with one set of threads kept across the runs, 0.32-0.34 s after the
first (0.42 s), the process within 50 MB (about 2,000 page faults per run). Threads of each History's
own did as badly as a pool per query from the fifth run (0.81-1.11 s): code that makes many Histories
passes them one :class:`LookupThreads` (``make_history(..., workers)``; bench/features.py does); a job
makes one History, whose queries and partitions all share its threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class LookupThreads:
    """``count`` threads that :meth:`map` spreads work over (one: the caller's thread does it all). Work
    mapped from inside one of these threads runs there, in order: a nested wait on the same pool could
    leave every thread waiting on work queued behind itself. The threads end once this object is
    garbage (:class:`ThreadPoolExecutor` wakes them when it is collected)."""

    def __init__(self, count: int) -> None:
        self.count = max(1, int(count))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._inside = threading.local()

    def map(self, work: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        if self.count < 2 or getattr(self._inside, "active", False):
            return [work(item) for item in items]
        return list(self._started().map(lambda item: self._run(work, item), items))

    def _run(self, work: Callable[[_T], _R], item: _T) -> _R:
        self._inside.active = True
        try:
            return work(item)
        finally:
            self._inside.active = False

    def _started(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="nbm-lookup")
            return self._pool
