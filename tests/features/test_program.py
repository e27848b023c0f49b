"""The feature families as programs run compiled (engine/features/program.py, candidate_program.py,
kernel.py) against the families themselves on snapshot histories: the same column names in the same
order, and every value identical to the last bit (NaN where they give NaN)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.build import family_columns, make_snapshot
from engine.features.context import FamilyContext
from engine.features.history import NS_PER_DAY, Requests
from engine.features.kernel import run_program
from engine.features.log import EventLog
from engine.features.program import UnsupportedProgram, customer_program
from engine.features.spec import FeatureSpec
from tests.builders import events_frame
from tests.features.test_families import AS_OF, CUSTOMERS, EVENTS, MESSAGES, SETTINGS
from tests.features.test_snapshot import _world


class _Compiled:
    """The customer program run compiled, its output columns by name."""

    def __init__(self, spec: FeatureSpec, program=None) -> None:
        self.program = program or customer_program(spec.vocab, spec.settings, spec.message_stages)

    def __call__(self, ctx: FamilyContext) -> dict[str, np.ndarray]:
        block = run_program(self.program, ctx.history.log, ctx.requests.customer, ctx.requests.as_of)
        return dict(zip(self.program.names, block))


def _compiled(spec: FeatureSpec) -> _Compiled:
    return _Compiled(spec)


def _context(spec: FeatureSpec, log: EventLog, as_of: np.ndarray) -> FamilyContext:
    customer = np.arange(len(as_of), dtype=np.int64)
    return FamilyContext(make_snapshot(log, spec, as_of), Requests(customer, as_of), spec.vocab, spec.settings)


def _assert_same(compiled: _Compiled, ctx: FamilyContext) -> None:
    expected, got = family_columns(ctx), compiled(ctx)
    assert tuple(got) == tuple(expected)
    for name, column in expected.items():
        np.testing.assert_array_equal(got[name], column, err_msg=name)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_column_is_the_families_to_the_bit(seed):
    # Events on window edges and at the decay epoch's start, compacted records weighing 2-4 events, as_of
    # at one of the customer's own event times (_world, shared with the snapshot's tests).
    spec, log, as_of = _world(seed, customers=8, n=600)
    _assert_same(_compiled(spec), _context(spec, log, as_of))


@pytest.mark.parametrize("windows", [(7,), (1, 7), (14, 60), (7, 30, 90, 180)])
def test_other_windows_name_and_compute_the_same_columns(windows):
    # One window (short = long: the voice family writes its columns twice), and windows whose columns the
    # pressure family writes again (7 d): a column written again keeps its first place, as in a dict.
    settings = FeatureSettings(windows_days=windows, affinity_half_life_days=10.0, prior_strength=3.0)
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, settings)
    _, log, as_of = _world(7, customers=6, n=500)
    log = EventLog.from_events(_events_of(log, spec), spec.vocab)
    as_of = as_of[: len(log.customers)]
    _assert_same(_compiled(spec), _context(spec, log, as_of))


def _events_of(log: EventLog, spec: FeatureSpec) -> pd.DataFrame:
    """A log's events as a contract frame again, coded with ``spec``'s vocabularies."""
    from engine.contract.schema import EVENT_TYPES

    topics, channels, messages = spec.vocab.topics.values, spec.vocab.channels.values, spec.vocab.messages.values
    rows = [{"ts": pd.Timestamp(int(ts), tz="UTC").isoformat(), "customer_id": f"c{customer:03d}", "event_type": EVENT_TYPES[kind],
             "channel": channels[c] if c >= 0 else None, "topic": topics[t] if t >= 0 else None,
             "message_id": messages[m] if m >= 0 else None, "value": None if np.isnan(v) else float(v)}
            for customer, ts, kind, c, t, m, v in zip(log.customer, log.ts, log.event_type, log.channel, log.topic, log.message, log.value)]
    return events_frame(rows)


def test_the_hand_made_history_of_the_family_tests():
    # The families' values there are computed by hand (tests/features/test_families.py).
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    log = EventLog.from_events(EVENTS, spec.vocab)
    _assert_same(_compiled(spec), _context(spec, log, np.array([pd.Timestamp(AS_OF).value], dtype=np.int64)))


def test_window_edges_and_values_by_hand():
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    as_of = pd.Timestamp(AS_OF)
    events = events_frame([
        {"ts": (as_of - pd.Timedelta(days=7)).isoformat(), "customer_id": "c1", "event_type": "visit"},  # the 7-day window's first instant
        {"ts": (as_of - pd.Timedelta(days=7, microseconds=1)).isoformat(), "customer_id": "c1", "event_type": "visit"},  # just before it
        {"ts": as_of.isoformat(), "customer_id": "c1", "event_type": "visit"},  # at as_of: counts nowhere
        {"ts": (as_of - pd.Timedelta(days=2)).isoformat(), "customer_id": "c1", "event_type": "purchase", "value": 12.34567},
        {"ts": (as_of - pd.Timedelta(days=40)).isoformat(), "customer_id": "c1", "event_type": "purchase", "value": 0.00004},
        {"ts": (as_of - pd.Timedelta(days=3)).isoformat(), "customer_id": "c1", "event_type": "survey", "value": 6.0},
    ])
    log = EventLog.from_events(events, spec.vocab)
    got = _compiled(spec)(_context(spec, log, np.array([as_of.value], dtype=np.int64)))
    assert got["visit_count_7d"][0] == 1.0 and got["visit_count_30d"][0] == 2.0
    assert got["days_since_last_visit"][0] == 7.0  # the event at as_of is not before it
    assert got["purchase_count_7d"][0] == 1.0 and got["purchase_count_90d"][0] == 2.0 and got["purchase_count_lifetime"][0] == 2.0
    # Amounts in 1/10,000 of a unit: 12.34567 -> 12.3457, 0.00004 -> 0.
    assert got["purchase_amount_sum_7d"][0] == 12.3457 and got["purchase_amount_sum_90d"][0] == 12.3457
    assert got["purchase_amount_avg_90d"][0] == 12.3457 / 2
    assert got["last_survey_score"][0] == 6.0 and got["is_detractor"][0] == 1.0 and got["is_promoter"][0] == 0.0
    assert got["journey_stage"][0] == 3.0  # loyalty: two purchases, one within 90 days
    assert np.isnan(got["days_since_last_click"][0])


def test_an_unknown_customer_gets_what_the_families_give_it():
    spec, log, as_of = _world(8, customers=3, n=60)
    ctx = _context(spec, log, as_of)
    unknown = FamilyContext(ctx.history, Requests(np.array([-1, 0], dtype=np.int64), np.array([as_of[0], as_of[0]])), spec.vocab, spec.settings)
    _assert_same(_compiled(spec), unknown)
    got = _compiled(spec)(unknown)
    assert got["visit_count_90d"][0] == 0.0 and np.isnan(got["days_since_last_visit"][0])


def test_settings_the_program_cannot_state_are_refused():
    # A pressure window longer than the longest configured one: the families refuse it as well.
    settings = FeatureSettings(windows_days=(3,))
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, settings)
    with pytest.raises(UnsupportedProgram, match="longer than the longest"):
        customer_program(spec.vocab, spec.settings, spec.message_stages)


def test_the_decay_splits_at_the_epoch_as_the_families_do():
    # as_of one nanosecond after, at, and one day after the start of a decay epoch.
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    epoch = SETTINGS.max_window_days * NS_PER_DAY
    _, log, _ = _world(10, customers=3, n=300)
    start = int(pd.Timestamp("2000-01-01", tz="UTC").value) + (int(pd.Timestamp(AS_OF).value) - int(pd.Timestamp("2000-01-01", tz="UTC").value)) // epoch * epoch
    for as_of in (start + 1, start, start + NS_PER_DAY):
        _assert_same(_compiled(spec), _context(spec, log, np.full(len(log.customers), as_of, dtype=np.int64)))
