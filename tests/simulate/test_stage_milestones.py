"""A journey stage entered during the simulated days leaves its marking event at the instant of entry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.simulate import SimulatedWorld, SimulationParams, simulate
from engine.simulate.timeline import to_ns
from engine.simulate.world import start_ns

# Entering consideration is marked by a visit, purchase and loyalty by a purchase.
MARKING_EVENT = ("visit", "purchase", "purchase")


def _events_at(events: pd.DataFrame) -> set[tuple[str, int, str]]:
    ts = events["ts"].array.asi8
    return set(zip(events["customer_id"].astype(str), ts.tolist(), events["event_type"].astype(str)))


def test_every_stage_entry_in_the_period_has_its_event_at_that_instant(small_world: SimulatedWorld,
                                                                         small_params: SimulationParams) -> None:
    truth = small_world.truth
    entries = truth.latents.stage_entry_ns
    logged = _events_at(small_world.events)
    in_period = (entries >= start_ns(small_params)) & (entries < to_ns(small_params.end))
    checked = 0
    for stage, kind in enumerate(MARKING_EVENT):
        for code in np.flatnonzero(in_period[:, stage]):
            assert (str(truth.customer_ids[code]), int(entries[code, stage]), kind) in logged
            checked += 1
    assert checked == int(in_period.sum()) > 50


def test_stages_entered_before_the_start_are_dated_after_signup_and_marked(small_world: SimulatedWorld,
                                                                          small_params: SimulationParams) -> None:
    truth = small_world.truth
    entries = truth.latents.stage_entry_ns
    start = start_ns(small_params)
    signup = small_world.customers["signup_date"].array.asi8
    stage_now = (entries <= start).sum(axis=1)
    # Every stage up to the one a customer is in at the start has a real date: after signup, before start,
    # in journey order; later stages are not entered before the start.
    for stage in range(3):
        before = stage_now > stage
        assert (entries[before, stage] >= signup[before]).all() and (entries[before, stage] <= start).all()
        assert (entries[~before, stage] > start).all()
    assert (np.diff(entries, axis=1) >= 0).all()
    logged = _events_at(small_world.events)
    rows, stages = np.nonzero(entries < start)
    assert len(rows) > 100
    assert all((str(truth.customer_ids[r]), int(entries[r, s]), MARKING_EVENT[s]) in logged for r, s in zip(rows, stages))


def test_milestones_can_be_turned_off_and_then_leave_no_event_at_the_entries() -> None:
    params = SimulationParams(customers=400, days=20, seed=11, stage_milestones=False)
    world = simulate(params)
    entries = world.truth.latents.stage_entry_ns
    logged = _events_at(world.events)
    in_period = (entries >= start_ns(params)) & (entries < to_ns(params.end))
    rows, stages = np.nonzero(in_period)
    assert len(rows) > 10
    # Organic times are drawn per millisecond of the day: hitting an entry instant by chance is negligible.
    marked = sum((str(world.truth.customer_ids[r]), int(entries[r, s]), MARKING_EVENT[s]) in logged for r, s in zip(rows, stages))
    assert marked == 0
