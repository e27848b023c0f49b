"""Opt-outs and complaints that reach the event store after the bundle's feature cutoff passed their time.

They apply from their own time on, merged into the state's slice in time order, and once only: one that
the state already holds (trained on after an export) is not counted again. Other live events before the
cutoff stay out (tests/policy/test_online.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.config import ContactSettings, PolicySettings, Settings
from engine.store.interface import contract_rows
from engine.policy.online import DecisionEngine, DecisionInput
from engine.policy.online_state import CustomerStates
from tests.policy.online_world import CUTOFF, HOUR, at

DAY = pd.Timedelta(days=1)


def _rows(world, events: list[dict]) -> list[tuple]:
    """Live events as the event store hands them: contract rows sorted by time."""
    live = world.live(events).sort_values("ts", kind="stable", ignore_index=True)
    return contract_rows(live.assign(event_id=[f"live-{i}" for i in range(len(live))]))


def _state_complaint(world, customer: str) -> dict:
    """The customer's newest complaint in the bundle's training data, as an event dict."""
    events = world.events
    row = events[(events["customer_id"] == customer) & (events["event_type"] == "complaint")].iloc[-1]
    assert row["ts"] > CUTOFF - 7 * DAY  # inside the raw (uncompacted) window and the 7-day count
    return {"ts": row["ts"].isoformat(), "customer_id": customer, "event_type": "complaint", "topic": row["topic"]}


def test_a_late_unsubscribe_blocks_its_channel_in_single_and_batched_decisions(online_world):
    engine = DecisionEngine(online_world.bundle, Settings())
    live = _rows(online_world, [at(-10 * DAY, "c3", "unsubscribe", channel="sms")])
    assert engine.decide("c3", "sms", as_of=CUTOFF + HOUR, live_events=[]).messages
    blocked = engine.decide("c3", "sms", as_of=CUTOFF + HOUR, live_events=live)
    assert blocked.messages == () and set(blocked.suppressed) == {"consent"}
    sms, email = engine.decide_each([DecisionInput("c3", "sms", CUTOFF + HOUR, live), DecisionInput("c3", "email", CUTOFF + HOUR, live)])
    assert sms.messages == () and email.messages
    by_channel = {d.channel: d for d in engine.decide_all_channels("c3", as_of=CUTOFF + HOUR, live_events=live)}
    assert by_channel["sms"].messages == () and by_channel["email"].messages


def test_a_late_complaint_suppresses_for_the_configured_days_from_its_own_time(online_world):
    engine = DecisionEngine(online_world.bundle, Settings(policy=PolicySettings(contact=ContactSettings(complaint_suppression_days=5))))
    live = _rows(online_world, [at(-2 * DAY, "c6", "complaint")])
    assert set(engine.decide("c6", "email", as_of=CUTOFF + HOUR, live_events=live).suppressed) == {"complaint_suppression"}
    # Five days after the complaint, not after the cutoff: over at CUTOFF + 3 days.
    assert engine.decide("c6", "email", as_of=CUTOFF + 3 * DAY + HOUR, live_events=live).suppressed == {}
    expired = _rows(online_world, [at(-6 * DAY, "c6", "complaint")])
    assert engine.decide("c6", "email", as_of=CUTOFF + HOUR, live_events=expired).suppressed == {}


def test_late_complaints_count_once_in_features_as_in_the_full_history(online_world):
    world = online_world
    engine = DecisionEngine(world.bundle, Settings())
    as_of = CUTOFF + HOUR
    known = _state_complaint(world, "c20")  # in the state already: sent again by the store, it must not count twice
    new = at(-3 * DAY, "c20", "complaint", topic="news")  # the state never saw this one
    live = [at(HOUR / 2, "c20", "visit", topic="travel")]
    _, alone = engine.features("c20", "email", as_of=as_of, live_events=_rows(world, live))
    ids, online = engine.features("c20", "email", as_of=as_of, live_events=_rows(world, [known, new, *live]))
    column = online.names.index("complaint_count_7d")
    assert online.values[0, column] == alone.values[0, column] + 1
    everything = pd.concat([world.events, world.live([new, *live])], ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)
    np.testing.assert_allclose(online.values, world.batch_features(everything, "c20", as_of, ids).to_numpy(), rtol=1e-9, atol=1e-9)


def test_the_log_with_late_events_stays_sorted_by_time_for_each_customer_of_a_batch(online_world):
    world = online_world
    bundle = world.bundle
    states = CustomerStates(bundle.state, bundle.spec.vocab, bundle.customers)
    known = _state_complaint(world, "c21")
    late = {"c21": _rows(world, [known, at(-DAY, "c21", "complaint"), at(-40 * DAY, "c21", "unsubscribe", channel="email"),
                                 at(-HOUR, "c21", "visit", topic="deals"), at(HOUR, "c21", "visit", topic="deals")]),
            "c3": _rows(world, [at(2 * HOUR, "c3", "visit", topic="news")]),
            "stranger": _rows(world, [at(-5 * DAY, "stranger", "complaint")])}
    customers = ["c3", "c21", "stranger", "c21"]
    batch = states.events_of_each(customers, [late[c] for c in customers])
    for i, customer in enumerate(customers):
        one = batch.one(i).log
        state = bundle.state.log
        held = int(np.sum(state.customer == state.customers.index(customer))) if customer in state.customers.values else 0
        added = {"c3": 1, "c21": 3, "stranger": 1}[customer]  # c21: the new complaint, the unsubscribe, the visit after the cutoff
        assert len(one) == held + added
        assert np.all(np.diff(one.ts) >= 0), customer
        alone = states.events_of(customer, late[customer]).log
        for name in ("ts", "event_type", "channel", "topic", "message", "weight"):
            np.testing.assert_array_equal(getattr(one, name), getattr(alone, name))
