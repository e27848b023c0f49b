"""Time codes: an event counts before as_of exactly when its code is below before(as_of)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.features.sorting import unique_sorted
from engine.features.timecode import GranularTimeCode, RankTimeCode, time_code_for

SECOND = 1_000_000_000
T0 = 1_780_000_000 * SECOND  # 2026-05-28, whole seconds


def test_the_coarsest_unit_dividing_every_time_is_used():
    ts = np.array([T0, T0 + 1_500_000, T0 + 3 * SECOND])  # 0, 1.5 ms and 3 s after T0
    code = time_code_for(ts, n_keys=10)
    # 1.5 ms is not a whole millisecond: the coarsest unit dividing all three is the microsecond.
    assert isinstance(code, GranularTimeCode) and code.unit_ns == 1_000
    assert code.of_events(ts).tolist() == [0, 1_500, 3_000_000]
    # 3 s span in us: codes 0..3,000,000, plus one slot for "after everything".
    assert code.stride == 3_000_002


def test_before_rounds_up_so_that_ties_and_fractions_stay_exact():
    code = GranularTimeCode(origin_ns=T0, unit_ns=SECOND, stride=12)  # events at T0 + 0..10 s
    as_of = np.array([T0, T0 + 1, T0 + SECOND, T0 + SECOND + 1, T0 - 5 * SECOND, T0 + 99 * SECOND])
    # T0: nothing before it (0). T0+1ns: the event at T0 is before it (1). T0+1s: only T0 (1).
    # T0+1s+1ns: T0 and T0+1s (2). Long before: 0. Long after: every code (stride - 1).
    assert code.before(as_of).tolist() == [0, 1, 1, 2, 0, 11]


def test_too_many_keys_fall_back_to_ranks():
    ts = np.array([T0, T0 + 7, T0 + 86_400 * SECOND])  # nanosecond times over a day
    assert isinstance(time_code_for(ts, n_keys=10), GranularTimeCode)
    # 86,400e9 ns x 1e8 keys is past 2**62: the rank code is used, with one code per distinct time.
    code = time_code_for(ts, n_keys=100_000_000)
    assert isinstance(code, RankTimeCode) and code.stride == 4
    assert code.of_events(ts).tolist() == [0, 1, 2]


@settings(max_examples=200, deadline=None)
@given(
    unit=st.sampled_from([SECOND, 1_000_000, 1_000, 1]),
    steps=st.lists(st.integers(0, 5_000), min_size=1, max_size=40),
    probes=st.lists(st.integers(-10**13, 10**13), min_size=1, max_size=40),
)
def test_code_order_is_time_order(unit, steps, probes):
    ts = T0 + np.asarray(steps, dtype=np.int64) * unit
    as_of = np.concatenate([ts, ts + 1, ts - 1, T0 + np.asarray(probes, dtype=np.int64)])
    truth = ts[:, None] < as_of[None, :]
    for code in (time_code_for(ts, n_keys=1000), RankTimeCode(unique_sorted(ts))):
        events, before = code.of_events(ts), code.before(as_of)
        np.testing.assert_array_equal(events[:, None] < before[None, :], truth)
        assert events.min() >= 0 and before.max() < code.stride
