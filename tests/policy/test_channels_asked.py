"""Next best messages on some channels only, and channel names in any case."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.policy.online import DecisionEngine, UnknownChannelError
from tests.policy.online_world import CUSTOMERS, CUTOFF, HOUR

AS_OF = CUTOFF + 5 * HOUR


def test_the_channels_asked_for_are_coordinated_among_themselves_only(online_world):
    engine = DecisionEngine(online_world.bundle, Settings())
    two = [c for c in engine.channels][:2]
    changed = 0
    for customer in CUSTOMERS["customer_id"]:
        every = {d.channel: d for d in engine.decide_all_channels(customer, as_of=AS_OF, live_events=online_world.live([]))}
        some = engine.decide_all_channels(customer, as_of=AS_OF, live_events=online_world.live([]), channels=[two[1].upper(), two[0]])
        assert [d.channel for d in some] == two  # in the engine's channel order, names as the catalog spells them
        alone = {d.channel: d for d in engine.decide_all_channels(customer, as_of=AS_OF, live_events=online_world.live([]),
                                                                  channels=[two[0]])}
        # One channel alone loses nothing to the others: it serves its best message.
        d = alone[two[0]]
        if len(d.candidates.message_id):
            best = d.candidates.message_id[int(d.candidates.score.argmax())]
            assert d.messages[0].message_id == best and d.displaced is None
            changed += every[two[0]].messages[0].message_id != best if every[two[0]].messages else 1
    assert changed >= 1  # asked alone, a channel served what the full answer gave to another channel


def test_an_unknown_channel_is_refused_naming_the_known_ones(online_world):
    engine = DecisionEngine(online_world.bundle, Settings())
    with pytest.raises(UnknownChannelError, match="channel 'fax' has no message in the model's catalog; channels: "):
        engine.decide_all_channels("c1", as_of=AS_OF, live_events=None, channels=["email", "fax"])
    decision = engine.decide("c1", "EMAIL", as_of=AS_OF, live_events=None)
    assert decision.channel == "email"
