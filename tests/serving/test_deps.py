"""The per-request dependencies: the server clock as the routes see it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pandas as pd
import pytest

from serving.deps import get_now


def _now_from(clock_value) -> pd.Timestamp:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(nbm=SimpleNamespace(clock=lambda: clock_value))))
    return asyncio.run(get_now(request))


def test_now_is_the_clock_in_utc_floored_to_the_microsecond():
    now = _now_from(pd.Timestamp("2026-01-01T00:00:00.123456789+02:00"))
    assert now == pd.Timestamp("2025-12-31T22:00:00.123456Z") and str(now.tz) == "UTC"
    # Before the epoch, flooring still goes down, not toward zero.
    assert _now_from(pd.Timestamp("1969-12-31T23:59:59.9999995Z")) == pd.Timestamp("1969-12-31T23:59:59.999999Z")


def test_a_clock_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        _now_from(pd.Timestamp("2026-01-01T00:00:00"))
