"""The micro-batcher: items submitted together are run together with one hand-off to the executor, items
that queue while a batch runs form the next batch, each caller gets its own answer, and close() leaves
nobody waiting."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.batcher import MicroBatcher
from serving.errors import ShuttingDownError


class _CountingExecutor(ThreadPoolExecutor):
    """One worker thread; counts every callable handed to it (a hand-off from the event loop)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="test-decisions")
        self.handoffs = 0

    def submit(self, fn, /, *args, **kwargs):
        self.handoffs += 1
        return super().submit(fn, *args, **kwargs)


class _Run:
    """A run function that records its batches (and threads) and can hold a batch until released:
    even items answer ten times themselves, odd items fail."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        self.started.set()
        assert self.release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def _answer_of(batcher: MicroBatcher, item: int) -> object:
    try:
        return await batcher.submit(item)
    except Exception as exc:  # noqa: BLE001 - the test reads which exception each caller got
        return exc


def _answers(answers: list[object]) -> list[object]:
    """Comparable answers: an exception as (its class name, its message)."""
    return [(type(a).__name__, str(a)) if isinstance(a, Exception) else a for a in answers]


def test_items_submitted_together_are_run_in_one_batch_with_one_handoff_and_each_gets_its_answer():
    run, executor = _Run(), _CountingExecutor()
    batcher = MicroBatcher(run, executor, max_size=10)

    async def main():
        return await asyncio.gather(*(_answer_of(batcher, i) for i in (2, 3, 4, 6, 7)))

    answers = asyncio.run(main())
    assert run.batches == [[2, 3, 4, 6, 7]] and batcher.runs == 1 and executor.handoffs == 1
    assert _answers(answers) == [20, ("ValueError", "odd 3"), 40, 60, ("ValueError", "odd 7")]
    assert run.threads == {"test-decisions_0"}  # the executor's thread, not the event loop's
    executor.shutdown()


def test_items_that_queue_while_a_batch_runs_form_the_next_batch_of_at_most_max_size():
    run, executor = _Run(hold=True), _CountingExecutor()
    batcher = MicroBatcher(run, executor, max_size=3)

    async def main():
        first = asyncio.ensure_future(_answer_of(batcher, 0))
        assert await asyncio.to_thread(run.started.wait, 10)  # batch [0] runs, held
        rest = [asyncio.ensure_future(_answer_of(batcher, i)) for i in (2, 4, 6, 8, 10)]
        await asyncio.sleep(0.05)
        assert run.batches == [[0]]  # the others wait for the running batch
        run.release.set()
        return await asyncio.gather(first, *rest)

    answers = asyncio.run(main())
    assert run.batches == [[0], [2, 4, 6], [8, 10]]
    assert batcher.runs == executor.handoffs == 3 and batcher.items == 6
    assert answers == [0, 20, 40, 60, 80, 100]
    executor.shutdown()


def test_a_run_that_raises_fails_every_item_of_its_batch_and_the_next_batch_is_run():
    calls = []

    def run(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("broken batch")
        return [i for i in items]

    executor = _CountingExecutor()
    batcher = MicroBatcher(run, executor, max_size=10)

    async def main():
        failed = await asyncio.gather(*(_answer_of(batcher, i) for i in (1, 2)))
        later = await batcher.submit(5)
        return failed, later

    failed, later = asyncio.run(main())
    assert _answers(failed) == [("RuntimeError", "broken batch")] * 2 and later == 5
    executor.shutdown()


def test_a_run_with_the_wrong_number_of_answers_fails_its_items():
    executor = _CountingExecutor()
    batcher = MicroBatcher(lambda items: [], executor, max_size=5)
    answers = asyncio.run(_answer_of(batcher, 2))
    assert _answers([answers]) == [("RuntimeError", "batch of 1 items got 0 answers")]
    executor.shutdown()


def test_close_answers_the_items_already_queued_and_refuses_new_ones():
    run, executor = _Run(hold=True), _CountingExecutor()
    batcher = MicroBatcher(run, executor, max_size=10)

    async def main():
        first = asyncio.ensure_future(_answer_of(batcher, 0))
        assert await asyncio.to_thread(run.started.wait, 10)
        queued = [asyncio.ensure_future(_answer_of(batcher, i)) for i in (2, 3)]
        await asyncio.sleep(0)  # they are queued behind the running batch
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        assert not closing.done()  # waits for the running batch and the queued one
        refused = await _answer_of(batcher, 4)
        run.release.set()
        await asyncio.wait_for(closing, 10)
        return [first.result(), *(q.result() for q in queued)], refused

    answers, refused = asyncio.run(main())
    assert _answers(answers) == [0, 20, ("ValueError", "odd 3")]
    assert _answers([refused]) == [("ShuttingDownError", "the server is shutting down: no new decisions are taken")]
    assert run.batches == [[0], [2, 3]]
    executor.shutdown()


def test_close_before_any_item_returns_at_once_and_the_batcher_refuses_items():
    executor = _CountingExecutor()
    batcher = MicroBatcher(_Run(), executor, max_size=10)

    async def main():
        await batcher.close()
        with pytest.raises(ShuttingDownError):
            await batcher.submit(2)

    asyncio.run(main())
    assert executor.handoffs == 0
    executor.shutdown()


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="max_size must be at least 1, got 0"):
        MicroBatcher(lambda items: items, None, max_size=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gather_yields must not be negative, got -1"):
        MicroBatcher(lambda items: items, None, max_size=1, gather_yields=-1)  # type: ignore[arg-type]
