"""The threads that share a History's look-ups: started on first use, kept while their owner lives.

One set of threads serves every query, because a pool started afresh for each query costs time and
memory: new threads do not reuse the heap memory (glibc arenas) that the last query's threads filled and
freed, so every query faults its temporaries in again and the process grows, query after query. Kept
threads reuse that memory: the process stays about the same size (docs/benchmarks.md has the features
bench's figures). Threads of each History's own do as badly once there are several Histories: code that
makes many Histories passes them one :class:`LookupThreads` (``make_history(..., workers)``;
bench/features.py does); a job makes one History, whose queries and partitions all share its threads."""

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
