"""LoopCall: a call handed to the event loop's thread runs there exactly once, and a loop that cannot run
it (closed, blocked by a shutdown, or the caller's own) never leaves the caller waiting."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from serving.loop_call import LoopCall


@contextmanager
def _loop_in_a_thread() -> Iterator[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="the-loop", daemon=True)
    thread.start()
    try:
        yield loop, thread
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _recording(calls: list[str], result: object = 42):
    def fn() -> object:
        calls.append(threading.current_thread().name)
        return result

    return fn


def test_the_call_runs_in_the_loops_thread_and_its_result_comes_back():
    calls: list[str] = []
    with _loop_in_a_thread() as (loop, _):
        assert LoopCall(_recording(calls)).run(loop, given_up=lambda: False) == 42
    assert calls == ["the-loop"]


def test_an_exception_in_the_loop_reaches_the_caller():
    def fails() -> None:
        raise ValueError("no decision")

    with _loop_in_a_thread() as (loop, _), pytest.raises(ValueError, match="no decision"):
        LoopCall(fails).run(loop, given_up=lambda: False)


def test_a_closed_loop_leaves_the_call_to_the_caller():
    loop = asyncio.new_event_loop()
    loop.close()
    calls: list[str] = []
    assert LoopCall(_recording(calls)).run(loop, given_up=lambda: False) == 42
    assert calls == [threading.current_thread().name]


def test_called_from_the_loops_own_thread_it_runs_at_once():
    calls: list[str] = []

    async def inside() -> object:
        return LoopCall(_recording(calls)).run(asyncio.get_running_loop(), given_up=lambda: False)

    assert asyncio.run(asyncio.wait_for(inside(), timeout=10)) == 42
    assert calls == [threading.current_thread().name]


def test_a_blocked_loop_that_gives_the_call_up_has_it_run_by_the_caller_once():
    # The loop's thread is busy (as when a shutdown joins the batcher's thread from it): once given_up()
    # is true, the caller runs the call itself, and the loop, when it gets to it, does not run it again.
    calls: list[str] = []
    release, blocked, giving_up = threading.Event(), threading.Event(), threading.Event()
    with _loop_in_a_thread() as (loop, _):
        loop.call_soon_threadsafe(lambda: (blocked.set(), release.wait(10)))
        assert blocked.wait(10)
        timer = threading.Timer(0.2, giving_up.set)
        timer.start()
        started = time.monotonic()
        assert LoopCall(_recording(calls)).run(loop, given_up=giving_up.is_set, poll_seconds=0.01) == 42
        assert time.monotonic() - started < 5
        release.set()
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)  # the loop has passed the handed-over call
    assert calls == [threading.current_thread().name]


def test_a_call_the_loop_already_runs_is_waited_for_even_when_given_up():
    calls: list[str] = []
    started, finish = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert finish.wait(10)
        calls.append(threading.current_thread().name)
        return "done"

    with _loop_in_a_thread() as (loop, _):
        threading.Timer(0.1, finish.set).start()
        # given up from the start: the loop has begun the call by the first check, so it is not run twice
        result = LoopCall(slow).run(loop, given_up=started.is_set, poll_seconds=0.01)
    assert result == "done" and calls == ["the-loop"]
