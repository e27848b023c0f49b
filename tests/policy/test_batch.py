"""Batch decisions (``nbm score``'s engine): the API's decisions on a state built from the data before as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import ContactSettings, PolicySettings, Settings
from engine.errors import ConfigError
from engine.policy.batch import ROW_COLUMNS, batch_settings, decide_in_chunks, decision_id, decision_rows, engine_at
from engine.policy.online import Decision, DecisionEngine, ServedMessage
from engine.policy.scored import ScoredCandidates
from tests.policy.online_world import CUSTOMERS, CUTOFF, HOUR, MESSAGES

AS_OF = CUTOFF + 5 * HOUR
SETTINGS = Settings(policy=PolicySettings(contact=ContactSettings(cooldown_days=2.0, channel_daily_cap=1)))


def test_batch_decisions_are_the_apis_with_the_data_before_as_of_as_history(online_world):
    # The API: the bundle's state (cutoff) plus live events since. Batch: a state built from all the data
    # before as_of. Same answers, and the event after as_of (c2's unsubscribe from email) counts nowhere.
    before = [{"customer_id": "c1", "event_type": "impression", "channel": "email", "message_id": "e2", "topic": "news",
               "ts": (CUTOFF + HOUR).isoformat()},
              {"customer_id": "c4", "event_type": "impression", "channel": "sms", "message_id": "s1", "topic": "deals",
               "ts": (CUTOFF + 2 * HOUR).isoformat()}]
    after = [{"customer_id": "c2", "event_type": "unsubscribe", "channel": "email", "ts": (AS_OF + HOUR).isoformat()}]
    live = online_world.live(before)
    data = pd.concat([online_world.events, online_world.live(before + after)], ignore_index=True)
    batch = engine_at(online_world.bundle, batch_settings(SETTINGS, explore=False), events=data, customers=CUSTOMERS,
                      messages=MESSAGES, as_of=AS_OF, seed=0)
    api = DecisionEngine(online_world.bundle, SETTINGS)
    customers = [f"c{i}" for i in range(12)] + ["stranger"]
    decided = [d for chunk in decide_in_chunks(batch, customers, as_of=AS_OF, channel=None, k=1, chunk=5) for d in chunk]
    assert len(decided) == len(customers) * len(api.channels)
    for at, customer in enumerate(customers):
        expected = api.decide_all_channels(customer, as_of=AS_OF, live_events=live)
        mine = decided[at * len(api.channels):(at + 1) * len(api.channels)]
        assert [(d.customer_id, d.channel, d.messages, d.suppressed) for d in mine] == \
               [(d.customer_id, d.channel, d.messages, d.suppressed) for d in expected]
    by = {(d.customer_id, d.channel): d for d in decided}
    assert by[("c1", "email")].suppressed.get("channel_daily_cap") or by[("c1", "email")].suppressed.get("cooldown")
    assert "consent" not in by[("c2", "email")].suppressed

    single = [d for chunk in decide_in_chunks(batch, customers, as_of=AS_OF, channel="email", k=2, chunk=4) for d in chunk]
    for d in single:
        expected = api.decide(d.customer_id, "email", k=2, as_of=AS_OF, live_events=live)
        assert (d.messages, d.suppressed) == (expected.messages, expected.suppressed)


def test_exploring_needs_an_exploring_policy(online_world):
    with pytest.raises(ConfigError, match=r"--explore needs an exploring policy"):
        batch_settings(Settings(), explore=True)
    with pytest.raises(ConfigError, match=r"--explore needs an exploring policy"):
        batch_settings(Settings(policy=PolicySettings(exploration="softmax", exploration_rate=0.0)), explore=True)


def test_without_explore_the_policy_does_not_explore_and_with_it_decisions_replay(online_world):
    exploring = Settings(policy=PolicySettings(exploration="epsilon_greedy", exploration_rate=1.0))
    args = dict(events=online_world.events, customers=CUSTOMERS, messages=MESSAGES, as_of=AS_OF, seed=0)
    customers = [f"c{i}" for i in range(12)]

    def served(engine):
        return [(d.customer_id, d.channel, tuple(m.message_id for m in d.messages), tuple(m.propensity for m in d.messages))
                for chunk in decide_in_chunks(engine, customers, as_of=AS_OF, channel="email", k=1, chunk=5) for d in chunk]

    greedy = served(engine_at(online_world.bundle, batch_settings(exploring, explore=False), **args))
    assert all(p == (1.0,) for *_, p in greedy if p)
    explored = served(engine_at(online_world.bundle, batch_settings(exploring, explore=True), **args))
    assert explored != greedy and any(p and p[0] < 1.0 for *_, p in explored)
    assert served(engine_at(online_world.bundle, batch_settings(exploring, explore=True), **args)) == explored  # ids derived: replays


def test_rows_are_one_per_served_message_and_one_per_empty_decision():
    stamp = pd.Timestamp("2026-05-01T00:00:00Z")
    none = ScoredCandidates(np.array([], dtype=object), np.zeros(0), np.zeros(0))
    served = Decision("d1", "c1", "email", stamp, "3", False,
                      (ServedMessage("e1", "deals", 0.4, 0.8, 1.0, ()), ServedMessage("e2", "news", 0.3, 0.3, 1.0, ())),
                      {"cooldown": 2, "consent": 0}, none)
    empty = Decision("d2", "c1", "sms", stamp, "3", False, (), {"topic_taken": 3, "channel_daily_cap": 1}, none)
    rows = decision_rows([served, empty])
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [
        ["c1", "email", 1, "e1", "deals", 0.4, 0.8, 1.0, "d1", "consent:0;cooldown:2"],
        ["c1", "email", 2, "e2", "news", 0.3, 0.3, 1.0, "d1", "consent:0;cooldown:2"],
        ["c1", "sms", None, None, None, None, None, None, "d2", "channel_daily_cap:1;topic_taken:3"],
    ]
    assert list(decision_rows([]).columns) == list(ROW_COLUMNS)


def test_decision_ids_are_the_same_for_the_same_decision_and_differ_otherwise():
    ids = {decision_id(v, c, ch, AS_OF) for v in ("1", "2") for c in ("c1", "c2") for ch in ("email", "sms")}
    assert len(ids) == 8 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert decision_id("1", "c1", "email", AS_OF) == decision_id("1", "c1", "email", AS_OF.tz_convert("Europe/Paris"))
