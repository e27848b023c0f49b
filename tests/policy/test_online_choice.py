"""What the online engine serves: priority, exploration propensities, coordination across channels and
explanations, on the tiny bundle of ``online_world``."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import CoordinationSettings, PolicySettings, Settings
from engine.policy.arbitration import lever_of
from engine.policy.coordination import coordinate
from engine.policy.exploration import slot_distribution
from engine.policy.online import DecisionEngine
from engine.policy.online_coordination import coordinate_with_exploration
from tests.policy.online_world import CUTOFF, HOUR

AS_OF = CUTOFF + 5 * HOUR
CUSTOMERS = [f"c{i}" for i in range(12)]


def _engine(world, **policy) -> DecisionEngine:
    return DecisionEngine(world.bundle, Settings(policy=PolicySettings(**policy)))


@pytest.mark.parametrize("exploration", [{}, {"exploration": "epsilon_greedy", "exploration_rate": 0.0}])
def test_without_exploration_the_best_priority_is_served_with_propensity_one(online_world, exploration):
    levers = {"news": 1.7, "food": 0.6}
    engine = _engine(online_world, topic_levers=levers, **exploration)
    for customer in CUSTOMERS:
        decision = engine.decide(customer, "email", k=2, as_of=AS_OF, live_events=online_world.live([]))
        ids, scores, first = (np.array(x) for x in zip(*decision.candidates))
        topic = online_world.bundle.messages.set_index("message_id").loc[ids, "topic"].to_numpy()
        priority = scores.astype(float) * lever_of(topic, levers)
        order = np.lexsort((np.arange(len(priority)), -priority))
        assert [m.message_id for m in decision.messages] == ids[order[:2]].tolist()
        assert [m.propensity for m in decision.messages] == [1.0, 1.0]
        assert first.astype(float).tolist() == [1.0 if i == order[0] else 0.0 for i in range(len(ids))]


def test_scores_are_the_models_probabilities_of_the_candidates_features(online_world):
    engine = _engine(online_world)
    decision = engine.decide("c2", "email", as_of=AS_OF, live_events=online_world.live([]))
    ids, features = engine.features("c2", "email", as_of=AS_OF, live_events=online_world.live([]))
    expected = online_world.bundle.booster.predict(features.values.astype(np.float32))
    np.testing.assert_allclose([s for _, s, _ in decision.candidates], expected, rtol=1e-12)
    assert [c[0] for c in decision.candidates] == list(ids)


def test_epsilon_greedy_logs_the_propensities_of_exploration(online_world):
    engine = _engine(online_world, exploration="epsilon_greedy", exploration_rate=0.4)
    served = []
    for i in range(60):
        decision = engine.decide("c4", "email", as_of=AS_OF, live_events=online_world.live([]), decision_id=f"d{i}")
        ids, scores, first = (np.array(x) for x in zip(*decision.candidates))
        np.testing.assert_allclose(first.astype(float), slot_distribution(scores.astype(float), "epsilon_greedy", 0.4, 1.0))
        (message,) = decision.messages
        assert message.propensity == pytest.approx(float(first[list(ids).index(message.message_id)]))
        served.append(message.message_id)
    assert len(set(served)) > 1  # it does explore
    # A decision replays from its id; another seed draws differently somewhere.
    again = [engine.decide("c4", "email", as_of=AS_OF, live_events=online_world.live([]), decision_id=f"d{i}").messages[0].message_id
             for i in range(60)]
    assert again == served
    other = DecisionEngine(online_world.bundle, engine.settings, seed=1)
    assert [other.decide("c4", "email", as_of=AS_OF, live_events=online_world.live([]), decision_id=f"d{i}").messages[0].message_id
            for i in range(60)] != served


def test_all_channels_never_share_a_topic_by_default(online_world):
    # "deals" made irresistible: every channel wants it, one gets it; push has nothing else: topic_taken.
    engine = _engine(online_world, topic_levers={"deals": 100.0})
    for customer in CUSTOMERS:
        decisions = engine.decide_all_channels(customer, as_of=AS_OF, live_events=online_world.live([]))
        assert [d.channel for d in decisions] == ["email", "push", "sms"]
        assert len({d.decision_id for d in decisions}) == 3
        topics = [m.topic for d in decisions for m in d.messages]
        assert len(topics) == len(set(topics)) and "deals" in topics
        for d in decisions:
            if not d.messages:
                assert d.suppressed == {"topic_taken": len(d.candidates)}
            assert all(m.propensity == 1.0 for m in d.messages)


def test_all_channels_respects_the_customer_cap_and_allowed_shared_topics(online_world):
    capped = _engine(online_world, coordination=CoordinationSettings(max_messages_per_customer=1))
    decisions = capped.decide_all_channels("c8", as_of=AS_OF, live_events=online_world.live([]))
    assert sum(len(d.messages) for d in decisions) == 1
    shared = _engine(online_world, topic_levers={"deals": 100.0}, coordination=CoordinationSettings(allow_same_topic_across_channels=True))
    decisions = shared.decide_all_channels("c8", as_of=AS_OF, live_events=online_world.live([]))
    assert [m.topic for d in decisions for m in d.messages] == ["deals"] * 3


def test_all_channels_shows_consent_per_channel(online_world):
    live = online_world.live([{"ts": (CUTOFF + HOUR).isoformat(), "customer_id": "c9", "event_type": "unsubscribe", "channel": "push"}])
    decisions = _engine(online_world).decide_all_channels("c9", as_of=AS_OF, live_events=live)
    push = next(d for d in decisions if d.channel == "push")
    assert push.messages == () and push.suppressed == {"consent": 1}


@pytest.mark.parametrize("seed", range(40))
def test_turns_without_exploration_equal_greedy_coordination(seed):
    rng = np.random.default_rng(seed)
    n, channels = int(rng.integers(0, 14)), int(rng.integers(1, 5))
    channel = rng.integers(0, channels, n)
    topic = rng.choice(["a", "b", "c", "d"], n)
    priority = rng.choice([0.1, 0.2, 0.5, 0.9], n)  # ties on purpose
    for settings in (CoordinationSettings(), CoordinationSettings(max_messages_per_customer=2),
                     CoordinationSettings(allow_same_topic_across_channels=True, max_messages_per_customer=1)):
        turns = coordinate_with_exploration(channel, topic, priority, channels, PolicySettings(coordination=settings),
                                            [np.random.default_rng(0)] * channels)
        greedy = coordinate(channel.astype(str), np.arange(n).astype(str), topic, priority, settings,
                            channels=[str(c) for c in range(channels)])
        assert [(t.index, t.reason) for t in turns] == [(g.index, g.reason) for g in greedy]


def test_explanations_are_the_largest_contributions_which_sum_to_the_raw_score(online_world):
    engine = _engine(online_world)
    decision = engine.decide("c10", "email", k=2, as_of=AS_OF, live_events=online_world.live([]), explain=True)
    ids, features = engine.features("c10", "email", as_of=AS_OF, live_events=online_world.live([]))
    booster = online_world.bundle.booster
    for message in decision.messages:
        row = features.values[[list(ids).index(message.message_id)]].astype(np.float32)
        contrib = booster.predict(row, pred_contrib=True)[0]
        assert contrib.sum() == pytest.approx(booster.predict(row, raw_score=True)[0], abs=1e-9)
        sizes = [abs(r.contribution) for r in message.reasons]
        assert 1 <= len(message.reasons) <= 3 and sizes == sorted(sizes, reverse=True)
        strongest = np.sort(np.abs(contrib[:-1]))[::-1][: len(sizes)]
        np.testing.assert_allclose(sizes, strongest)
        for reason in message.reasons:
            assert reason.contribution == pytest.approx(contrib[features.names.index(reason.feature)])
            assert reason.label and reason.label != reason.feature
    plain = engine.decide("c10", "email", k=2, as_of=AS_OF, live_events=online_world.live([]))
    assert all(m.reasons == () for m in plain.messages)



def test_room_left_by_the_global_caps_limits_the_channels_served():
    # Three channels with a candidate each, distinct topics: unlimited, all three get one; with room for 2
    # (the global caps' remaining_sends), the two highest priorities do and the third is a customer_cap.
    channel, topic, priority = np.array([0, 1, 2]), np.array(["a", "b", "c"]), np.array([0.3, 0.9, 0.5])
    rngs = [np.random.default_rng(0)] * 3
    free = coordinate_with_exploration(channel, topic, priority, 3, PolicySettings(), rngs)
    assert [t.index for t in free] == [0, 1, 2]
    capped = coordinate_with_exploration(channel, topic, priority, 3, PolicySettings(), rngs, max_messages=2.0)
    assert [(t.index, t.reason) for t in capped] == [(-1, "customer_cap"), (1, ""), (2, "")]


def test_all_channels_takes_the_decision_ids_it_is_given_in_channel_order(online_world):
    engine = _engine(online_world)
    decisions = engine.decide_all_channels("c8", as_of=AS_OF, live_events=online_world.live([]), decision_ids=["e1", "p1", "s1"])
    assert [(d.channel, d.decision_id) for d in decisions] == [("email", "e1"), ("push", "p1"), ("sms", "s1")]
    with pytest.raises(ValueError, match="2 decision ids for 3 channels"):
        engine.decide_all_channels("c8", as_of=AS_OF, live_events=online_world.live([]), decision_ids=["e1", "p1"])
