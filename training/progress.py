"""Progress lines for long steps: what ran, how much, how long. To stderr, so stdout stays for results."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    def __init__(self, stream=None) -> None:
        self._stream = stream or sys.stderr
        self.durations: dict[str, float] = {}
        self.peaks_gb: dict[str, float] = {}

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
        self.peaks_gb[name] = _peak_rss_gb()
        # The process's peak so far: the step where it jumps is the one that needed the memory.
        detail = f"{info['detail']}; " if info.get("detail") else ""
        self.say(f"[{name}] done in {seconds:.1f} s: {detail}peak RSS so far {self.peaks_gb[name]:.2f} GB")


def _peak_rss_gb() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / (1024**3 if sys.platform == "darwin" else 1024**2)
