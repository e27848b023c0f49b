"""A next-best-messages answer says when a channel's best message lost to another channel (its topic or
its offer served there), and says nothing when it did not."""

from __future__ import annotations

import numpy as np

from engine.config import CoordinationSettings, PolicySettings, Settings
from engine.policy.online import DecisionEngine
from tests.policy.online_world import CUSTOMERS, CUTOFF, HOUR

AS_OF = CUTOFF + 5 * HOUR


def _answers(world, policy: PolicySettings):
    engine = DecisionEngine(world.bundle, Settings(policy=policy))
    topic = dict(zip(world.bundle.messages["message_id"], world.bundle.messages["topic"]))
    return [engine.decide_all_channels(c, as_of=AS_OF, live_events=world.live([])) for c in CUSTOMERS["customer_id"]], topic


def test_a_channel_whose_best_message_lost_its_topic_says_to_which_channel_and_message(online_world):
    answers, topic = _answers(online_world, PolicySettings())
    reported = 0
    for decisions in answers:
        served = {d.channel: d.messages[0].message_id for d in decisions if d.messages}
        for d in decisions:
            if not len(d.candidates.message_id):
                assert d.displaced is None
                continue
            # Without levers or values the priority is the score: the channel's best is its top score.
            best = str(d.candidates.message_id[int(np.argmax(d.candidates.score))])
            takers = [c for c, m in served.items() if c != d.channel and topic[m] == topic[best]]
            if served.get(d.channel) == best or not takers:
                assert d.displaced is None, (d.channel, d.displaced)
                continue
            reported += 1
            assert d.displaced is not None and d.displaced.message_id == best and d.displaced.reason == "topic_taken"
            assert d.displaced.by_channel in takers and d.displaced.by_message_id == served[d.displaced.by_channel]
    assert reported >= 3  # the world has such answers: the checks above checked something


def test_nothing_is_displaced_when_topics_may_repeat_across_channels(online_world):
    answers, _ = _answers(online_world, PolicySettings(coordination=CoordinationSettings(allow_same_topic_across_channels=True)))
    assert all(d.displaced is None for decisions in answers for d in decisions)
