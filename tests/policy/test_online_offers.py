"""One offer on several channels (``messages.offer_id``): coordination never serves it on two channels at
once, with exploration and exact propensities too, and a decision on one channel waits
``offer_spacing_hours`` after the offer was shown on another."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import ContactSettings, CoordinationSettings, PolicySettings, Settings
from tests.policy.coordination_oracle import coordinate
from engine.policy.online import DecisionEngine
from engine.policy.online_coordination import coordinate_with_exploration
from tests.policy.online_world import CUTOFF, HOUR, MESSAGES, OnlineWorld, build_world

AS_OF = CUTOFF + 5 * HOUR
CUSTOMERS = [f"c{i}" for i in range(12)]
# Offer "trip": e3 by email (travel), s2 by sms (travel), p1 by push (deals, push's only message).
OFFER_MESSAGES = MESSAGES.assign(offer_id=[None, None, "trip", None, None, None, "trip", None, "trip"])
TRIP = {"e3", "s2", "p1"}


@pytest.fixture(scope="module")
def offer_world(tmp_path_factory: pytest.TempPathFactory) -> OnlineWorld:
    return build_world(tmp_path_factory.mktemp("offer-bundle"), messages=OFFER_MESSAGES)


def _engine(world: OnlineWorld, **policy) -> DecisionEngine:
    return DecisionEngine(world.bundle, Settings(policy=PolicySettings(**policy)))


# Travel made irresistible and topics allowed on several channels: only the offer keeps e3 and s2 apart.
WANTS_TRIP = {"topic_levers": {"travel": 100.0},
              "coordination": CoordinationSettings(allow_same_topic_across_channels=True)}


def test_an_offer_goes_to_one_channel_of_a_next_best_messages_answer(offer_world, online_world):
    engine = _engine(offer_world, **WANTS_TRIP)
    assert engine.interpreter == "numba"  # the offer columns are computed by numba too
    for customer in CUSTOMERS:
        decisions = engine.decide_all_channels(customer, as_of=AS_OF, live_events=offer_world.live([]))
        served = {d.channel: d.messages[0].message_id for d in decisions if d.messages}
        assert len(set(served.values()) & TRIP) == 1, served  # the offer went out once
        for d in decisions:
            if not d.messages:  # push: p1 only, its offer taken by email or sms
                assert (d.channel, d.suppressed) == ("push", {"offer_taken": 1})
            elif d.messages[0].message_id not in TRIP:  # the other channel fell back to another message
                assert d.channel in ("email", "sms")
    # The same catalog without offer ids serves travel on email and sms and deals on push: the trip thrice.
    plain = _engine(online_world, **WANTS_TRIP).decide_all_channels("c3", as_of=AS_OF, live_events=online_world.live([]))
    assert {d.messages[0].message_id for d in plain} == TRIP


def test_with_exploration_the_offer_is_still_served_once_and_propensities_are_exact(offer_world):
    engine = _engine(offer_world, exploration="epsilon_greedy", exploration_rate=0.6, **WANTS_TRIP)
    seen = set()
    for i in range(40):
        ids = [f"d{i}-{c}" for c in engine.channels]
        decisions = engine.decide_all_channels(f"c{i % 12}", as_of=AS_OF, live_events=offer_world.live([]), decision_ids=ids)
        served = [d.messages[0].message_id for d in decisions if d.messages]
        assert len(set(served) & TRIP) <= 1, served
        seen.add(tuple(served))
        for d in decisions:
            ids_, _, first = (np.array(x) for x in zip(*d.candidates)) if d.candidates else ([], [], np.zeros(0))
            first = np.asarray(first, dtype=float)
            if d.messages:  # its draw: a distribution over the candidates still open at its turn
                assert first.sum() == pytest.approx(1.0)
                assert d.messages[0].propensity == pytest.approx(first[list(ids_).index(d.messages[0].message_id)])
            else:
                assert first.sum() == 0.0
    assert len(seen) > 3  # it explores


@pytest.mark.parametrize("seed", range(30))
def test_turns_with_offers_equal_greedy_coordination_and_never_repeat_an_offer(seed):
    rng = np.random.default_rng(seed)
    n, channels = int(rng.integers(0, 14)), int(rng.integers(1, 5))
    channel = rng.integers(0, channels, n)
    topic = rng.choice(["a", "b", "c", "d"], n)
    offer = rng.choice(["x", "y", "z", "q", "r"], n)
    priority = rng.choice([0.1, 0.2, 0.5, 0.9], n)  # ties on purpose
    for settings in (CoordinationSettings(), CoordinationSettings(allow_same_topic_across_channels=True),
                     CoordinationSettings(allow_same_topic_across_channels=True, max_messages_per_customer=2)):
        turns = coordinate_with_exploration(channel, topic, priority, channels, PolicySettings(coordination=settings),
                                            [np.random.default_rng(0)] * channels, offer=offer)
        greedy = coordinate(channel.astype(str), np.arange(n).astype(str), topic, priority, settings,
                            channels=[str(c) for c in range(channels)], offer=offer)
        assert [(t.index, t.reason) for t in turns] == [(g.index, g.reason) for g in greedy]
        picked = [offer[t.index] for t in turns if t.index >= 0]
        assert len(picked) == len(set(picked))
        explored = coordinate_with_exploration(channel, topic, priority, channels,
                                               PolicySettings(coordination=settings, exploration="softmax", exploration_rate=1.0),
                                               [np.random.default_rng(seed + c) for c in range(channels)], offer=offer)
        picked = [offer[t.index] for t in explored if t.index >= 0]
        assert len(picked) == len(set(picked))
        for t in explored:
            assert t.first.sum() == pytest.approx(1.0 if t.index >= 0 else 0.0)
            if t.index >= 0:
                assert t.propensity == pytest.approx(t.first[t.index])
        # Of two channels served, the later one's draw gave no chance to the earlier one's offer.
        served = [t for t in explored if t.index >= 0]
        for a in served:
            for b in served:
                if a is not b:
                    assert b.first[offer == offer[a.index]].sum() == 0.0 or a.first[offer == offer[b.index]].sum() == 0.0


def test_a_decision_waits_after_its_offer_was_shown_on_another_channel(offer_world, online_world):
    # The trip shown by sms (s2) 3 h before as_of: email may not send e3 nor push p1 for 24 h (default).
    shown = offer_world.live([{"ts": (AS_OF - 3 * HOUR).isoformat(), "customer_id": "c5", "event_type": "impression",
                               "channel": "sms", "message_id": "s2", "topic": "travel"}])
    engine = _engine(offer_world)
    email = engine.decide("c5", "email", k=4, as_of=AS_OF, live_events=shown)
    assert email.suppressed == {"offer_on_other_channel": 1} and "e3" not in [m.message_id for m in email.messages]
    push = engine.decide("c5", "push", as_of=AS_OF, live_events=shown)
    assert (push.messages, push.suppressed) == ((), {"offer_on_other_channel": 1})
    sms = engine.decide("c5", "sms", k=3, as_of=AS_OF, live_events=shown)
    assert "offer_on_other_channel" not in sms.suppressed  # the channel that showed it: cooldown's business
    # The setting decides: 2 h of spacing has passed; 0 turns the rule off.
    for hours in (2, 0):
        relaxed = DecisionEngine(offer_world.bundle, Settings(policy=PolicySettings(contact=ContactSettings(offer_spacing_hours=hours))))
        assert relaxed.decide("c5", "push", as_of=AS_OF, live_events=shown).messages[0].message_id == "p1"
    # So do the offer ids: without them (the same catalog) the email impression holds nothing back on push.
    plain = _engine(online_world).decide("c5", "push", as_of=AS_OF, live_events=shown)
    assert [m.message_id for m in plain.messages] == ["p1"] and plain.suppressed == {}
    # Several single decisions decided together (the API's batches) apply it as one decision does.
    from engine.policy.online import DecisionInput

    (batched, other) = engine.decide_each([DecisionInput("c5", "push", AS_OF, shown, 1, False, None),
                                           DecisionInput("c6", "push", AS_OF, offer_world.live([]), 1, False, None)])
    assert batched.suppressed == {"offer_on_other_channel": 1} and other.messages[0].message_id == "p1"

