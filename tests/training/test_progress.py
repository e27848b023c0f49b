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
