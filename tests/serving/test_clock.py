"""The server clock as the routes see it."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.context import read_clock


def _now_from(clock_value) -> pd.Timestamp:
    return read_clock(lambda: clock_value)


def test_now_is_the_clock_in_utc_floored_to_the_microsecond():
    now = _now_from(pd.Timestamp("2026-01-01T00:00:00.123456789+02:00"))
    assert now == pd.Timestamp("2025-12-31T22:00:00.123456Z") and str(now.tz) == "UTC"
    # Before the epoch, flooring still goes down, not toward zero.
    assert _now_from(pd.Timestamp("1969-12-31T23:59:59.9999995Z")) == pd.Timestamp("1969-12-31T23:59:59.999999Z")


def test_a_clock_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        _now_from(pd.Timestamp("2026-01-01T00:00:00"))
