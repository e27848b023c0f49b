"""Progress lines for long steps: what ran, how much, how long; a live bar inside a step when a person is
watching. To stderr, so stdout stays for results."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bars

Advance = Callable[[int, int], None]  # (done, total)


class Progress:
    def __init__(self, stream=None, *, bars: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        # Bars only on a terminal (unless asked): in cron, CI or a log file they would be noise.
        self.bars = _is_terminal(self._stream) if bars is None else bars
        self.durations: dict[str, float] = {}
        self.peaks_gb: dict[str, float] = {}

    @contextmanager
    def bar(self, what: str) -> Iterator[Advance]:
        """A live bar for ``what``; the yielded ``advance(done, total)`` moves it. A no-op off a terminal.
        The bar is erased when done: the step's closing line says what it did."""
        if not self.bars:
            yield lambda done, total: None
            return
        console = Console(file=self._stream, force_terminal=True)
        with Bars(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"), console=console, transient=True) as bars:
            task = bars.add_task(what, total=None)

            def advance(done: int, total: int) -> None:
                bars.update(task, completed=done, total=total)

            yield advance

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
        self.peaks_gb[name] = peak_rss_gb()
        # The process's peak so far: the step where it jumps is the one that needed the memory.
        detail = f"{info['detail']}; " if info.get("detail") else ""
        self.say(f"[{name}] done in {seconds:.1f} s: {detail}peak RSS so far {self.peaks_gb[name]:.2f} GB")


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def peak_rss_gb() -> float:
    """This process's peak resident memory. On Linux the high-water mark of its own memory (``VmHWM``):
    ``ru_maxrss`` also keeps the RSS of the process it was forked from, e.g. a worker spawned by a big
    parent, a bench's child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / (1024**3 if sys.platform == "darwin" else 1024**2)
