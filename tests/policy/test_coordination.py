"""Cross-channel coordination for one customer: greedy by priority, one topic per customer, a cap."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import CoordinationSettings, load_settings
from engine.errors import ConfigError
from tests.policy.coordination_oracle import ChannelChoice, coordinate

# email: e1 travel 0.9, e2 food 0.4; sms: s1 travel 0.8, s2 news 0.3; push: p1 travel 0.7.
CHANNEL = np.array(["email", "email", "sms", "sms", "push"])
MESSAGE = np.array(["e1", "e2", "s1", "s2", "p1"])
TOPIC = np.array(["travel", "food", "travel", "news", "travel"])
PRIORITY = np.array([0.9, 0.4, 0.8, 0.3, 0.7])


def _run(settings: CoordinationSettings, **kw) -> list[tuple[str, str | None, str]]:
    return [(c.channel, c.message_id, c.reason) for c in coordinate(CHANNEL, MESSAGE, TOPIC, PRIORITY, settings, **kw)]


def test_the_strongest_channel_keeps_the_topic_and_the_others_fall_back():
    # e1 travel 0.9 first; s1 travel taken -> sms falls back to s2 news; p1 travel taken, push has nothing else.
    assert _run(CoordinationSettings()) == [("email", "e1", ""), ("sms", "s2", ""), ("push", None, "topic_taken")]


def test_the_same_topic_may_go_to_several_channels_when_allowed():
    settings = CoordinationSettings(allow_same_topic_across_channels=True)
    assert _run(settings) == [("email", "e1", ""), ("sms", "s1", ""), ("push", "p1", "")]


def test_customer_cap_keeps_the_highest_priorities():
    # Cap 1: e1 (0.9) wins; sms still had a free topic (news) -> customer_cap; push only travel -> topic_taken.
    assert _run(CoordinationSettings(max_messages_per_customer=1)) == [
        ("email", "e1", ""), ("sms", None, "customer_cap"), ("push", None, "topic_taken")]
    # Same topic allowed, cap 2: e1 0.9 and s1 0.8 beat p1 0.7.
    settings = CoordinationSettings(allow_same_topic_across_channels=True, max_messages_per_customer=2)
    assert _run(settings) == [("email", "e1", ""), ("sms", "s1", ""), ("push", None, "customer_cap")]


def test_channels_without_candidates_and_ties():
    out = coordinate(np.array(["sms", "email"]), np.array(["s", "e"]), np.array(["a", "b"]), np.array([0.5, 0.5]),
                     CoordinationSettings(max_messages_per_customer=1), channels=["email", "sms", "web"])
    # Equal priorities: the earlier candidate (sms) goes first; web had no candidate at all.
    assert out == (ChannelChoice("email", -1, None, "customer_cap"), ChannelChoice("sms", 0, "s", ""),
                   ChannelChoice("web", -1, None, "no_candidates"))
    assert coordinate(np.array([]), np.array([]), np.array([]), np.array([]), CoordinationSettings()) == ()


def test_index_points_into_the_input_arrays():
    choices = coordinate(CHANNEL, MESSAGE, TOPIC, PRIORITY, CoordinationSettings())
    assert [c.index for c in choices] == [0, 3, -1]
    with pytest.raises(ValueError, match="one length"):
        coordinate(CHANNEL, MESSAGE, TOPIC, PRIORITY[:2], CoordinationSettings())


def test_coordination_settings_load(tmp_path):
    path = tmp_path / "nbm.toml"
    path.write_text("[policy.coordination]\nallow_same_topic_across_channels = true\nmax_messages_per_customer = 2\n")
    assert load_settings(path, environ=False).policy.coordination == CoordinationSettings(
        allow_same_topic_across_channels=True, max_messages_per_customer=2)
    path.write_text("[policy.coordination]\nmax_messages_per_customer = 0\n")
    with pytest.raises(ConfigError, match="max_messages_per_customer: Input should be greater than or equal to 1"):
        load_settings(path, environ=False)
