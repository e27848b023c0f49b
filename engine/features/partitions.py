"""Queries per customer partition: runs of requests sorted by customer, each answered by a History over
just those customers' events.

A query answers each customer from that customer's events alone, so a partition's answers are the
whole history's; but each partition's indexes and temporaries are small, so they stay in cache and are
reused by the allocator instead of being faulted in afresh from the kernel, and partitions can run on
several threads. The seam for running them on several machines later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from engine.features.history import History, Requests


def customer_partitions(history: History, customer: np.ndarray, rows: int) -> Iterator[tuple[int, int, History]]:
    """Split requests sorted by ``customer`` code into runs of about ``rows`` requests; yield each run's
    ``(start, stop)`` and a History over that run's customers only. No requests: one empty run over the
    whole history, so that callers still learn their columns."""
    if len(customer) == 0:
        yield 0, 0, history
        return
    for start in range(0, len(customer), rows):
        stop = min(start + rows, len(customer))
        yield start, stop, history.for_customers(int(customer[start]), int(customer[stop - 1]))


def per_partition(history: History, requests: Requests, query: Callable[[History, Requests], np.ndarray],
                  rows: int) -> np.ndarray:
    """``query`` (one answer per request) over runs of about ``rows`` requests sorted by customer, each on a
    History of its own customers (:func:`customer_partitions`), the runs spread over the history's
    look-up threads (``history.workers``): NumPy releases the GIL in the searches and arithmetic that make
    up a query."""
    out = np.empty(len(requests), dtype=np.float64)

    def answer(run: tuple[int, int, History]) -> None:
        start, stop, part = run
        out[start:stop] = query(part, Requests(requests.customer[start:stop], requests.as_of[start:stop]))

    history.workers.map(answer, customer_partitions(history, requests.customer, rows))
    return out
