"""Progress lines: what the operator reads and what bench/training.py parses."""

from __future__ import annotations

import io
import re

from training.progress import Progress

# The pattern bench/training.py reads phase times with.
PHASE_LINE = re.compile(r"^\[(?P<phase>\w+)\] done in (?P<seconds>[\d.]+) s(?:: (?P<detail>.*))?$")


def test_a_step_says_start_and_end_with_detail_time_and_peak_memory():
    out = io.StringIO()
    progress = Progress(out)
    with progress.step("fit") as info:
        buffer = bytearray(64 * 1024 * 1024)  # touch 64 MiB so the peak is at least that
        info["detail"] = "binary, 12 rounds"
    del buffer
    start, end = out.getvalue().splitlines()
    assert start == "[fit] ..."
    match = PHASE_LINE.match(end)
    assert match and match["phase"] == "fit"
    assert match["detail"].startswith("binary, 12 rounds; peak RSS so far ")
    assert progress.peaks_gb["fit"] >= 64 / 1024
    assert float(match["seconds"]) == round(progress.durations["fit"], 1)


def test_bars_are_quiet_off_a_terminal():
    out = io.StringIO()  # not a terminal, as in cron, CI or a log file
    progress = Progress(out)
    assert not progress.bars
    with progress.step("examples"), progress.bar("feature rows") as advance:
        advance(50, 100)
        advance(100, 100)
    assert [line.split(" ", 1)[0] for line in out.getvalue().splitlines()] == ["[examples]", "[examples]"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_show_on_a_terminal_with_what_they_count():
    out = _Terminal()
    progress = Progress(out)
    assert progress.bars
    with progress.bar("feature rows") as advance:
        advance(40, 100)
        advance(100, 100)
    assert "feature rows" in out.getvalue() and "100/100" in out.getvalue()


def test_the_peak_counts_this_process_memory_and_never_drops():
    import numpy as np

    from training.progress import peak_rss_gb

    before = peak_rss_gb()
    block = np.ones(int((before + 0.1) * 2**30) // 8)  # more than the peak so far, written: resident
    during = peak_rss_gb()
    del block
    # Freed memory leaves the high-water mark where it was (the kernel's accounting of it may settle by a
    # few pages, far below the block's size).
    assert during >= before + 0.1 and peak_rss_gb() >= during - 0.01
