"""Look-up threads: kept across queries, shared by a History's partitions, safe to nest, gone with their owner."""

from __future__ import annotations

import gc
import threading

import numpy as np

from engine.features import sorting
from engine.features.sorting import ranks_in
from engine.features.workers import LookupThreads
from tests.features.test_history import _history, _random_log


def _thread_of(_item: int) -> threading.Thread:
    return threading.current_thread()


def test_one_thread_does_the_work_in_the_callers_thread_in_order():
    workers = LookupThreads(1)
    assert workers.map(lambda x: x * x, range(5)) == [0, 1, 4, 9, 16]
    assert set(workers.map(_thread_of, range(3))) == {threading.current_thread()}


def test_the_same_threads_answer_every_call_in_order():
    workers = LookupThreads(2)
    assert workers.map(lambda x: x * 10, range(50)) == list(range(0, 500, 10))
    every = set().union(*(workers.map(_thread_of, range(40)) for _ in range(5)))
    assert threading.current_thread() not in every
    assert len(every) <= 2 and all(t.name.startswith("nbm-lookup") for t in every)  # kept, not started again


def test_work_mapped_from_inside_a_thread_runs_there_without_waiting_on_the_pool():
    workers = LookupThreads(2)
    barrier = threading.Barrier(2, timeout=10)

    def outer(i: int) -> list[int]:
        barrier.wait()  # both threads busy at once: a nested map queued on the pool would never start
        inner_threads = set(workers.map(_thread_of, range(3)))
        assert inner_threads == {threading.current_thread()}
        return workers.map(lambda j: i * 10 + j, range(3))

    answers: list = []
    caller = threading.Thread(target=lambda: answers.append(workers.map(outer, range(2))), daemon=True)
    caller.start()
    caller.join(timeout=30)
    assert not caller.is_alive(), "a nested map waited on its own pool"
    assert answers == [[[0, 1, 2], [10, 11, 12]]]


def test_the_threads_end_once_their_owner_is_garbage():
    workers = LookupThreads(2)
    threads = set(workers.map(_thread_of, range(10)))
    del workers
    gc.collect()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


def test_ranks_in_split_over_threads_equals_one_search(monkeypatch):
    monkeypatch.setattr(sorting, "_PARALLEL_FROM", 10)  # so that a small case takes the threaded path
    rng = np.random.default_rng(3)
    haystack = np.sort(rng.integers(0, 1_000, 500))
    needles = rng.integers(-5, 1_005, 101)
    workers = LookupThreads(2)
    spread = []
    monkeypatch.setattr(workers, "map", lambda work, items: spread.append(work) or LookupThreads.map(workers, work, items))
    for side in ("left", "right"):
        expected = np.searchsorted(haystack, needles, side=side)
        np.testing.assert_array_equal(ranks_in(haystack, needles, side=side, workers=workers), expected)
        np.testing.assert_array_equal(ranks_in(haystack, np.sort(needles), side=side, workers=workers), np.sort(expected))
    assert len(spread) == 4  # every search took the threaded path


def test_a_historys_partitions_share_its_threads():
    h = _history(_random_log(8))
    h.workers = LookupThreads(2)
    part = h.for_customers(0, 3)
    assert part.workers is h.workers and part.for_customers(1, 2).workers is h.workers
