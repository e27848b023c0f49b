"""What the online engine serves: priority, exploration propensities, coordination across channels and
explanations, on the tiny bundle of ``online_world``."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import CoordinationSettings, PolicySettings, Settings
from engine.policy.arbitration import lever_of
from engine.policy.exploration import slot_distribution
from engine.policy.online import CustomerInput, DecisionEngine
from engine.policy.online_coordination import coordinate_each, coordinate_with_exploration
from tests.policy.coordination_oracle import coordinate
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


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("policy", [PolicySettings(coordination=CoordinationSettings(max_messages_per_customer=2)),
                                    PolicySettings(exploration="epsilon_greedy", exploration_rate=0.5),
                                    PolicySettings(exploration="softmax", exploration_rate=1.0, softmax_temperature=0.2,
                                                   coordination=CoordinationSettings(allow_same_topic_across_channels=True))])
def test_customers_coordinated_together_get_what_each_gets_alone(seed, policy):
    # Several customers (some without candidates), shared offers, per-customer room; each channel's draw from
    # its own generator: together, one coordination; alone, one each: the same turns, reasons and draws.
    rng = np.random.default_rng(seed)
    channels, customers = 3, int(rng.integers(1, 6))
    sizes = rng.integers(0, 9, customers)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    n = int(bounds[-1])
    channel, topic = rng.integers(0, channels, n), rng.choice(["a", "b", "c", "d"], n)
    offer, priority = rng.choice(["o1", "o2", "o3", "o4", "o5"], n), rng.choice([0.1, 0.2, 0.5, 0.9], n)
    room = rng.choice([np.inf, 1.0, 2.0], customers)

    def generators():
        return [[np.random.default_rng([seed, g, c]) for c in range(channels)] for g in range(customers)]

    together = coordinate_each(bounds, channel, topic, priority, channels, policy, generators(), room, offer)
    alone = generators()
    for g in range(customers):
        own = slice(int(bounds[g]), int(bounds[g + 1]))
        turns = coordinate_with_exploration(channel[own], topic[own], priority[own], channels, policy, alone[g], room[g], offer[own])
        assert [int(i) - own.start if i >= 0 else -1 for i in together.index[g]] == [t.index for t in turns]
        assert together.propensity[g].tolist() == [t.propensity for t in turns]
        assert together.reason[g].tolist() == [t.reason for t in turns]
        assert together.first[own].tolist() == np.sum([t.first for t in turns], axis=0).tolist() if sizes[g] else True


@pytest.mark.parametrize("seed", range(20))
def test_exploring_channels_draw_only_topics_and_offers_still_open(seed):
    # Uniform exploration draws from a channel's open candidates only: the picks never repeat a topic or an
    # offer (with a candidate of every topic on every channel, a draw among all would soon repeat one).
    rng = np.random.default_rng(seed)
    n, channels = 12, 3
    channel, topic = rng.integers(0, channels, n), rng.choice(["a", "b", "c"], n)
    offer, priority = rng.choice(["o1", "o2", "o3", "o4"], n), rng.random(n)
    policy = PolicySettings(exploration="epsilon_greedy", exploration_rate=1.0)
    turns = coordinate_with_exploration(channel, topic, priority, channels, policy,
                                        [np.random.default_rng([seed, c]) for c in range(channels)], offer=offer)
    picks = [t.index for t in turns if t.index >= 0]
    assert picks and len({topic[i] for i in picks}) == len(picks) and len({offer[i] for i in picks}) == len(picks)


def test_customers_decided_together_on_all_channels_get_their_own_decisions(online_world):
    # decide_all_channels_each is one feature build, one model call and one coordination for all customers:
    # each answer must be the one-customer call's, live events included (c3's unsubscribe from email).
    live = online_world.live([{"customer_id": "c3", "event_type": "unsubscribe", "channel": "email", "ts": AS_OF - HOUR}])
    engine = _engine(online_world, exploration="epsilon_greedy", exploration_rate=0.3,
                     coordination=CoordinationSettings(max_messages_per_customer=2))
    customers = [*CUSTOMERS, "nobody"]
    inputs = [CustomerInput(c, AS_OF, live, decision_ids=[f"{c}-{n}" for n in engine.channels]) for c in customers]
    together = engine.decide_all_channels_each(inputs)
    for customer, decisions in zip(customers, together):
        alone = engine.decide_all_channels(customer, as_of=AS_OF, live_events=live, decision_ids=[f"{customer}-{n}" for n in engine.channels])
        assert [(d.channel, d.messages, d.suppressed, tuple(d.candidates)) for d in decisions] == \
               [(d.channel, d.messages, d.suppressed, tuple(d.candidates)) for d in alone]
    assert together[3][0].suppressed.get("consent")  # c3, email: the live unsubscribe counted
    assert sum(bool(d.messages) for d in together[0]) <= 2


def test_a_bad_input_among_customers_gets_its_error_in_place(online_world):
    engine = _engine(online_world)
    answers = engine.decide_all_channels_each([CustomerInput("c1", AS_OF), CustomerInput("c2", AS_OF, decision_ids=["only-one"]),
                                               CustomerInput("c3", AS_OF.tz_localize(None))])
    assert len(answers[0]) == len(engine.channels)
    assert str(answers[1]) == f"1 decision ids for {len(engine.channels)} channels"
    assert isinstance(answers[2], ValueError) and "time zone" in str(answers[2])


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
