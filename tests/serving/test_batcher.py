"""The batcher: items that queue while a batch runs form the next batch; each caller gets its own answer."""

from __future__ import annotations

import threading
import time

import pytest

from serving.batcher import Batcher


class _Gate:
    """A run function that records its batches and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def _submit_all(batcher: Batcher, items: list[int]) -> tuple[dict[int, object], list[threading.Thread]]:
    answers: dict[int, object] = {}

    def call(item: int) -> None:
        try:
            answers[item] = batcher.submit(item)
        except Exception as exc:  # noqa: BLE001 - the test reads which exception each caller got
            answers[item] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in items]
    for thread in threads:
        thread.start()
    return answers, threads


def _wait_until_queued(batcher: Batcher, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(batcher._waiting) < n:  # white box: the queue is the thing under test
        assert time.monotonic() < deadline, "callers never queued"
        time.sleep(0.001)


def test_one_caller_at_a_time_runs_batches_of_one():
    gate = _Gate()
    gate.release.set()
    batcher = Batcher(gate, max_size=10)
    assert [batcher.submit(i) for i in (0, 2, 4)] == [0, 20, 40]
    assert gate.batches == [[0], [2], [4]] and (batcher.batches, batcher.items) == (3, 3)


def _queue_behind_a_running_batch(gate: _Gate, batcher: Batcher, items: list[int]) -> tuple[dict, dict]:
    """Item 0 starts a batch that the gate holds; ``items`` queue behind it; then the gate opens."""
    first, first_threads = _submit_all(batcher, [0])
    assert gate.first_started.wait(10)
    rest, threads = _submit_all(batcher, items)
    _wait_until_queued(batcher, len(items))
    gate.release.set()
    for thread in first_threads + threads:
        thread.join(10)
    return first, rest


def test_items_queued_during_a_batch_are_answered_together_each_with_its_own_answer():
    gate = _Gate()
    batcher = Batcher(gate, max_size=10)
    first, rest = _queue_behind_a_running_batch(gate, batcher, [1, 2, 3, 4, 6])
    assert gate.batches[0] == [0] and sorted(gate.batches[1]) == [1, 2, 3, 4, 6] and len(gate.batches) == 2
    assert first == {0: 0}
    assert {k: v for k, v in rest.items() if not isinstance(v, Exception)} == {2: 20, 4: 40, 6: 60}
    # A failed item fails only its own caller.
    assert {k: str(v) for k, v in rest.items() if isinstance(v, Exception)} == {1: "odd 1", 3: "odd 3"}


def test_a_batch_holds_at_most_max_size_items_and_every_caller_is_answered():
    gate = _Gate()
    batcher = Batcher(gate, max_size=2)
    _, answers = _queue_behind_a_running_batch(gate, batcher, [10, 12, 14, 16, 18])
    assert answers == {10: 100, 12: 120, 14: 140, 16: 160, 18: 180}
    assert all(len(b) <= 2 for b in gate.batches) and sorted(x for b in gate.batches[1:] for x in b) == [10, 12, 14, 16, 18]


def test_when_the_run_itself_fails_every_caller_of_that_batch_gets_the_error_and_the_next_batch_runs():
    calls = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("store down")
        return items

    batcher = Batcher(run, max_size=5)
    with pytest.raises(RuntimeError, match="store down"):
        batcher.submit(1)
    assert batcher.submit(2) == 2  # not stuck: the failed batch released the lead


def test_a_run_that_answers_the_wrong_number_of_items_is_an_error_for_each_caller():
    batcher = Batcher(lambda items: [], max_size=5)
    with pytest.raises(RuntimeError, match="batch of 1 items got 0 answers"):
        batcher.submit(1)
