"""The batcher: items that queue while a batch runs form the next batch, a burst of items is gathered into
one batch, and each caller gets its own answer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.batcher import Batcher


class _Gate:
    """A run function that records its batches and holds the first one until released."""

    def __init__(self, *, hold_first: bool = True) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.first_started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def _answer_of(batcher: Batcher, item: int) -> object:
    try:
        return await batcher.submit(item)
    except Exception as exc:  # noqa: BLE001 - the test reads which exception each caller got
        return exc


async def _wait_until_queued(batcher: Batcher, n: int, *, bulk: int = 0) -> None:
    deadline = time.monotonic() + 10
    while len(batcher._waiting) < n or len(batcher._bulk) < bulk:  # white box: the queues are the thing under test
        assert time.monotonic() < deadline, "callers never queued"
        await asyncio.sleep(0.001)


async def _start_held_batch(batcher: Batcher, gate: _Gate) -> asyncio.Future:
    """Item 0 starts a batch that the gate holds: what comes next queues behind it."""
    first = asyncio.ensure_future(batcher.submit(0))
    assert await asyncio.to_thread(gate.first_started.wait, 10)
    return first


async def _queue_behind_a_running_batch(gate: _Gate, batcher: Batcher, items: list[int]) -> tuple[object, dict[int, object]]:
    """Item 0 starts a batch that the gate holds; ``items`` queue behind it; then the gate opens."""
    first = await _start_held_batch(batcher, gate)
    rest = {i: asyncio.ensure_future(_answer_of(batcher, i)) for i in items}
    await _wait_until_queued(batcher, len(items))
    gate.release.set()
    return await first, {i: await answer for i, answer in rest.items()}


def test_one_caller_at_a_time_runs_batches_of_one_in_the_batchers_own_thread():
    gate = _Gate(hold_first=False)
    batcher = Batcher(gate, max_size=10, name="the-batcher")

    async def main() -> list[object]:
        return [await batcher.submit(i) for i in (0, 2, 4)]

    assert asyncio.run(main()) == [0, 20, 40]
    assert gate.batches == [[0], [2], [4]] and (batcher.batches, batcher.items) == (3, 3)
    assert gate.threads == {"the-batcher"}  # never the event loop's thread
    batcher.close()


def test_items_queued_during_a_batch_are_answered_together_each_with_its_own_answer():
    gate = _Gate()
    batcher = Batcher(gate, max_size=10)
    first, rest = asyncio.run(_queue_behind_a_running_batch(gate, batcher, [1, 2, 3, 4, 6]))
    assert gate.batches == [[0], [1, 2, 3, 4, 6]]
    assert first == 0
    assert {k: v for k, v in rest.items() if not isinstance(v, Exception)} == {2: 20, 4: 40, 6: 60}
    # A failed item fails only its own caller.
    assert {k: str(v) for k, v in rest.items() if isinstance(v, Exception)} == {1: "odd 1", 3: "odd 3"}
    batcher.close()


def test_a_batch_holds_at_most_max_size_items_and_every_caller_is_answered():
    gate = _Gate()
    batcher = Batcher(gate, max_size=2)
    _, answers = asyncio.run(_queue_behind_a_running_batch(gate, batcher, [10, 12, 14, 16, 18]))
    assert answers == {10: 100, 12: 120, 14: 140, 16: 160, 18: 180}
    assert gate.batches == [[0], [10, 12], [14, 16], [18]]
    batcher.close()


def test_a_burst_is_gathered_into_one_batch_while_items_keep_coming_within_the_gap():
    gate = _Gate(hold_first=False)
    # A gap far longer than the pauses between the burst's items, so a slow machine still gathers them all.
    batcher = Batcher(gate, max_size=10, gather_gap_seconds=2.0, gather_max_seconds=20.0)

    async def burst() -> list[object]:
        answers = [asyncio.ensure_future(batcher.submit(0))]
        for item in (2, 4):
            await asyncio.sleep(0.05)
            answers.append(asyncio.ensure_future(batcher.submit(item)))
        return [await a for a in answers]

    assert asyncio.run(burst()) == [0, 20, 40]
    assert gate.batches == [[0, 2, 4]]
    batcher.close()


def test_gathering_stops_at_max_size_and_at_gather_max():
    # The gap is an hour: a batcher that waited it out would hit the hang guard (wait_for) and fail.
    gate = _Gate(hold_first=False)
    full = Batcher(gate, max_size=2, gather_gap_seconds=3600.0, gather_max_seconds=3600.0)

    async def two() -> list[object]:
        return list(await asyncio.wait_for(asyncio.gather(full.submit(0), full.submit(2)), timeout=60))

    assert asyncio.run(two()) == [0, 20]  # a full batch does not wait out the gap
    full.close()

    alone = _Gate(hold_first=False)
    capped = Batcher(alone, max_size=10, gather_gap_seconds=3600.0, gather_max_seconds=0.05)
    assert asyncio.run(asyncio.wait_for(capped.submit(4), timeout=60)) == 40  # a lone item waits gather_max, not the gap
    assert alone.batches == [[4]]
    capped.close()


def test_when_the_run_itself_fails_every_caller_of_that_batch_gets_the_error_and_the_next_batch_runs():
    calls = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("store down")
        return items

    batcher = Batcher(run, max_size=5)
    with pytest.raises(RuntimeError, match="store down"):
        asyncio.run(batcher.submit(1))
    assert asyncio.run(batcher.submit(2)) == 2  # not stuck: the thread goes on after a failed batch
    batcher.close()


def test_a_run_that_answers_the_wrong_number_of_items_is_an_error_for_each_caller():
    batcher = Batcher(lambda items: [], max_size=5)
    with pytest.raises(RuntimeError, match="batch of 1 items got 0 answers"):
        asyncio.run(batcher.submit(1))
    batcher.close()


def test_a_cancelled_caller_does_not_disturb_the_others_of_its_batch():
    gate = _Gate()
    batcher = Batcher(gate, max_size=10)

    async def main() -> tuple[object, object]:
        first = await _start_held_batch(batcher, gate)
        gone, stays = asyncio.ensure_future(batcher.submit(2)), asyncio.ensure_future(batcher.submit(4))
        await _wait_until_queued(batcher, 2)
        gone.cancel()  # the client went away while its item waited
        gate.release.set()
        return await first, await stays

    assert asyncio.run(main()) == (0, 40)
    assert gate.batches == [[0], [2, 4]]
    batcher.close()


def test_close_answers_what_is_queued_then_refuses_new_items():
    gate = _Gate()
    batcher = Batcher(gate, max_size=10)

    async def main() -> tuple[object, object]:
        first = await _start_held_batch(batcher, gate)
        queued = asyncio.ensure_future(batcher.submit(2))
        await _wait_until_queued(batcher, 1)
        closing = asyncio.ensure_future(asyncio.to_thread(batcher.close))
        gate.release.set()
        await closing
        return await first, await queued

    assert asyncio.run(main()) == (0, 20)
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(batcher.submit(4))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_size"):
        Batcher(lambda items: items, max_size=0)
    with pytest.raises(ValueError, match="negative"):
        Batcher(lambda items: items, max_size=1, gather_gap_seconds=-1)


def test_items_submitted_together_wait_side_by_side_and_each_gets_its_own_answer():
    gate = _Gate()
    batcher = Batcher(gate, max_size=3)

    async def main() -> tuple[object, list[object]]:
        first = await _start_held_batch(batcher, gate)
        many = asyncio.ensure_future(batcher.submit_many([2, 3, 4, 6, 8]))
        await _wait_until_queued(batcher, 0, bulk=5)
        gate.release.set()
        return await first, await many

    first, many = asyncio.run(main())
    assert first == 0
    assert [str(a) if isinstance(a, Exception) else a for a in many] == [20, "odd 3", 40, 60, 80]
    assert gate.batches == [[0], [2, 3, 4], [6, 8]]  # split only by max_size
    batcher.close()


def test_bulk_items_are_never_batched_with_single_items_and_the_two_lanes_take_turns():
    gate = _Gate()
    batcher = Batcher(gate, max_size=2)

    async def main() -> tuple[list[object], list[object]]:
        first = await _start_held_batch(batcher, gate)
        bulk = asyncio.ensure_future(batcher.submit_many([10, 12, 14, 16]))
        singles = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 4, 6)]
        await _wait_until_queued(batcher, 3, bulk=4)
        gate.release.set()
        return [await first] + [await s for s in singles], await bulk

    singles, bulk = asyncio.run(main())
    assert singles == [0, 20, 40, 60] and bulk == [100, 120, 140, 160]
    # Neither lane waits for more than one batch of the other.
    assert gate.batches == [[0], [10, 12], [2, 4], [14, 16], [6]]
    batcher.close()


def test_the_gather_settings_reach_the_decision_batcher_and_bad_values_are_refused(make_client, tmp_path):
    from engine.config import load_settings
    from engine.errors import ConfigError

    client = make_client("[serving]\nbatch_gather_gap_ms = 0.5\nbatch_gather_max_ms = 3\n")
    batcher = client.app.state.nbm.batcher
    assert (batcher._gather_gap, batcher._gather_max) == (0.0005, 0.003)
    path = tmp_path / "bad.toml"
    path.write_text("[serving]\nbatch_gather_gap_ms = -1\n")
    with pytest.raises(ConfigError, match="serving.batch_gather_gap_ms: Input should be greater than or equal to 0"):
        load_settings(path, environ=False)


def test_a_gathering_batch_starts_once_every_caller_of_the_last_batch_is_back_not_after_the_gap():
    # The gap and gather_max are an hour: a batcher that waited either out would hit the hang guard.
    gate = _Gate(hold_first=False)
    batcher = Batcher(gate, max_size=2, gather_gap_seconds=3600.0, gather_max_seconds=3600.0)

    async def first_round() -> list[object]:
        # No caller is known yet: only a full batch (max_size 2) ends this gather.
        return list(await asyncio.wait_for(asyncio.gather(batcher.submit(0, caller="a"), batcher.submit(2, caller="b")), 60))

    assert asyncio.run(first_round()) == [0, 20]
    batcher._max_size = 10  # white box: room for more, so that only the callers' return can end the next gather

    async def back_again() -> list[object]:
        return list(await asyncio.wait_for(asyncio.gather(batcher.submit(4, caller="b"), batcher.submit(6, caller="a")), 60))

    assert asyncio.run(back_again()) == [40, 60]
    assert gate.batches == [[0, 2], [4, 6]]
    batcher.close()


def test_a_batch_waits_for_a_missing_caller_and_not_for_callers_it_never_answered():
    gate = _Gate(hold_first=False)
    batcher = Batcher(gate, max_size=10, gather_gap_seconds=3600.0, gather_max_seconds=3600.0)
    batcher._missing = {"a", "b"}  # white box: "a" and "b" were answered last

    async def arrivals() -> list[object]:
        # "a" and a stranger "x" are not enough to start; "b" is, long before the hour's gap ends.
        answers = [asyncio.ensure_future(batcher.submit(0, caller="a")), asyncio.ensure_future(batcher.submit(2, caller="x"))]
        await asyncio.sleep(0.3)
        answers.append(asyncio.ensure_future(batcher.submit(4, caller="b")))
        return [await asyncio.wait_for(a, 60) for a in answers]

    assert asyncio.run(arrivals()) == [0, 20, 40]
    assert gate.batches == [[0, 2, 4]]
    assert batcher._missing == {"a", "b", "x"}  # the callers of this batch are the next ones awaited
    batcher.close()


def test_only_what_the_gathering_thread_waits_for_wakes_it():
    # A wake-up per item cost the event loop the GIL at every request; the others are counted when the
    # gap ends. Here the gap is an hour: only the last missing caller can end the gather.
    gate = _Gate(hold_first=False)
    batcher = Batcher(gate, max_size=10, gather_gap_seconds=3600.0, gather_max_seconds=3600.0)
    batcher._missing = {"a", "b", "c"}  # white box: "a", "b" and "c" were answered last
    wakes: list[int] = []  # the queue's length at each wake-up
    notify = batcher._changed.notify
    batcher._changed.notify = lambda n=1: (wakes.append(len(batcher._waiting)), notify(n))[-1]

    async def arrivals() -> list[object]:
        answers = [asyncio.ensure_future(batcher.submit(i, caller=c)) for i, c in ((0, "a"), (2, "x"), (4, "b"))]
        await _wait_until_queued(batcher, 3)
        answers.append(asyncio.ensure_future(batcher.submit(6, caller="c")))
        return [await asyncio.wait_for(a, 60) for a in answers]

    assert asyncio.run(arrivals()) == [0, 20, 40, 60]
    assert wakes == [1, 4]  # the first item and the last caller back; not the stranger "x", not "b"
    assert gate.batches == [[0, 2, 4, 6]]
    batcher.close()


def test_answer_now_answers_the_callers_while_run_goes_on_and_idle_waits_for_the_rest():
    after_answers = threading.Event()
    done: list[list[int]] = []
    batcher: Batcher

    def run(items: list[int]) -> list[int]:
        answers = [i * 10 for i in items]
        batcher.answer_now(answers)
        assert after_answers.wait(30)  # the work after the answers (the decision log's write)
        done.append(items)
        return [-1] * len(items)  # not given again: the callers already have theirs

    batcher = Batcher(run, max_size=10)

    async def ask() -> list[object]:  # queued together (submit_many): one batch
        return await asyncio.wait_for(batcher.submit_many([1, 2]), 30)

    assert asyncio.run(ask()) == [10, 20]  # answered while run still waits
    assert done == [] and not batcher.idle(timeout=0.1)
    after_answers.set()
    assert batcher.idle(timeout=30) and done == [[1, 2]]
    batcher.close()


def test_a_failure_after_answer_now_is_logged_and_the_callers_keep_their_answers(caplog):
    batcher: Batcher

    def run(items: list[int]) -> list[int]:
        batcher.answer_now([i * 10 for i in items])
        batcher.answer_now([0] * len(items))  # a second time is a bug of run's

    batcher = Batcher(run, max_size=10)
    with caplog.at_level("ERROR"):
        assert asyncio.run(asyncio.wait_for(batcher.submit(3), 30)) == 30
        assert batcher.idle(timeout=30)
    failures = [r for r in caplog.records if "failed after its 1 items were answered" in r.getMessage()]
    assert len(failures) == 1 and "twice in one" in str(failures[0].exc_info[1])
    with pytest.raises(RuntimeError, match="outside a batch's run"):
        batcher.answer_now([1])
    batcher.close()
