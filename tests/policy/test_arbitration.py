"""Priority = propensity^a × value^b × channel lever × topic lever, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import PolicySettings, load_settings
from engine.errors import ConfigError
from engine.policy.arbitration import lever_of, priority

CHANNEL = np.array(["email", "sms", "email"])
TOPIC = np.array(["travel", "travel", "food"])


def test_defaults_rank_by_propensity_alone():
    # a = 1, b = 0, levers 1: priority is the propensity, whatever the value.
    got = priority(np.array([0.2, 0.5, 0.1]), np.array([10.0, 1.0, 3.0]), CHANNEL, TOPIC, PolicySettings())
    assert got.tolist() == pytest.approx([0.2, 0.5, 0.1])


def test_exponents_and_levers_multiply():
    settings = PolicySettings(propensity_exponent=2.0, value_exponent=1.0, channel_levers={"sms": 0.5},
                              topic_levers={"food": 3.0})
    got = priority(np.array([0.2, 0.5, 0.1]), np.array([10.0, 1.0, 3.0]), CHANNEL, TOPIC, settings)
    # 0.2² × 10 = 0.4; 0.5² × 1 × 0.5 (sms) = 0.125; 0.1² × 3 × 3 (food) = 0.09
    assert got.tolist() == pytest.approx([0.4, 0.125, 0.09])


def test_value_at_or_below_zero_gives_priority_zero_only_when_value_counts():
    value = np.array([0.0, -5.0, np.nan])
    propensity = np.array([0.3, 0.3, 0.3])
    with_value = priority(propensity, value, CHANNEL, TOPIC, PolicySettings(value_exponent=0.5))
    assert with_value.tolist() == [0.0, 0.0, 0.0]  # never NaN, never a complex power of a negative
    # b = 0: the value is ignored, so a zero or negative value does not hide the message.
    assert priority(propensity, value, CHANNEL, TOPIC, PolicySettings()).tolist() == pytest.approx([0.3] * 3)


def test_nan_or_negative_propensity_gives_zero():
    got = priority(np.array([np.nan, -0.1, 0.4]), np.ones(3), CHANNEL, TOPIC, PolicySettings(propensity_exponent=0.5))
    assert got.tolist() == pytest.approx([0.0, 0.0, np.sqrt(0.4)])


def test_levers_default_to_one():
    assert lever_of(np.array(["a", "b", "a"]), {"a": 2.5}).tolist() == [2.5, 1.0, 2.5]


def test_arbitration_settings_load_and_are_validated(tmp_path):
    path = tmp_path / "nbm.toml"
    path.write_text('[policy]\npropensity_exponent = 1.5\nvalue_exponent = 1\n\n[policy.channel_levers]\nsms = 0.8\n')
    policy = load_settings(path, environ=False).policy
    assert (policy.propensity_exponent, policy.value_exponent, policy.channel_levers) == (1.5, 1.0, {"sms": 0.8})
    for text, message in [("[policy]\npropensity_exponent = 0\n", "policy.propensity_exponent: Input should be greater than 0"),
                          ("[policy]\nvalue_exponent = -1\n", "policy.value_exponent: Input should be greater than or equal to 0"),
                          ("[policy.topic_levers]\nfood = 0\n", "policy.topic_levers.food: Input should be greater than 0")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(path, environ=False)
