"""[policy] settings that name a channel, topic or message the model's catalog does not have are refused,
with the names it has; the engine refuses them when it is built."""

from __future__ import annotations

import pytest

from engine.config import ChannelCaps, ContactSettings, MessageRule, PolicySettings, Settings
from engine.errors import ConfigError
from engine.policy.names import unknown_names
from engine.policy.online import DecisionEngine

CHANNELS, TOPICS, MESSAGES = ("email", "sms"), ("food", "travel"), ("m1", "m2")


def test_names_the_catalog_has_pass():
    policy = PolicySettings(channel_levers={"email": 2.0}, topic_levers={"food": 1.5},
                            contact=ContactSettings(channels={"sms": ChannelCaps(daily_cap=1)}, promotional_topics=("travel",)),
                            rules=(MessageRule(topic="food", min_days_since_purchase=3), MessageRule(message_id="m2", min_days_since_purchase=3)))
    assert unknown_names(policy, CHANNELS, TOPICS, MESSAGES) == []


def test_each_unknown_name_is_listed_with_where_it_is_and_the_known_names():
    policy = PolicySettings(channel_levers={"mail": 2.0}, topic_levers={"food": 1.5, "trips": 2.0},
                            contact=ContactSettings(channels={"whatsapp": ChannelCaps(daily_cap=1)}, promotional_topics=("deals",)),
                            rules=(MessageRule(topic="food", min_days_since_purchase=3), MessageRule(message_id="m9", min_days_since_purchase=3)))
    assert unknown_names(policy, CHANNELS, TOPICS, MESSAGES) == [
        "[policy.contact.channels.whatsapp]: no channel 'whatsapp' in the model's catalog (channels: email, sms)",
        "[policy.contact] promotional_topics: no topic 'deals' in the model's catalog (topics: food, travel)",
        "[policy] channel_levers.mail: no channel 'mail' in the model's catalog (channels: email, sms)",
        "[policy] topic_levers.trips: no topic 'trips' in the model's catalog (topics: food, travel)",
        "[[policy.rules]] #2 message_id: no message 'm9' in the model's catalog (messages: m1, m2)",
    ]


def test_the_engine_refuses_a_policy_naming_a_channel_its_model_does_not_know(online_world):
    with pytest.raises(ConfigError, match=r"\[policy\] channel_levers\.mail: no channel 'mail' in the model's catalog \(channels: "):
        DecisionEngine(online_world.bundle, Settings(policy=PolicySettings(channel_levers={"mail": 2.0})))
