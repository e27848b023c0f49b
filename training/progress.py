"""Progress lines for long steps: what ran, how much, how long. To stderr, so stdout stays for results."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    def __init__(self, stream=None) -> None:
        self._stream = stream or sys.stderr
        self.durations: dict[str, float] = {}

    def say(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[dict]:
        """Time a step; the caller may put a ``detail`` string in the yielded dict to be printed."""
        info: dict = {}
        self.say(f"[{name}] ...")
        started = time.perf_counter()
        yield info
        seconds = time.perf_counter() - started
        self.durations[name] = seconds
        detail = f": {info['detail']}" if info.get("detail") else ""
        self.say(f"[{name}] done in {seconds:.1f} s{detail}")
