"""Journey-stage targeting and per-message rules on hand-made candidates; expected values by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import PolicySettings, StageTargetingSettings, load_settings
from engine.errors import ConfigError
from engine.policy.rules import Verdict, required_attributes, rules_verdict, stage_allowed, stage_codes, stage_matrix

STAGES = ["awareness", "consideration", "purchase", "loyalty"]


def test_stage_codes_accept_names_codes_and_missing():
    assert list(stage_codes(["purchase", None, 3.0, np.nan, "vip", 1])) == [2, -1, 3, -1, -1, 1]


def test_stage_targeting_is_off_by_default():
    off = StageTargetingSettings()
    assert stage_allowed(np.array(["loyalty"]), np.array(["awareness"]), off).tolist() == [True]


def test_default_targeting_reaches_the_same_and_adjacent_stages():
    on = StageTargetingSettings(enabled=True)
    # Every message stage against every customer stage: |message - customer| <= 1 is allowed.
    message = np.repeat(STAGES, 4)
    customer = np.tile(STAGES, 4)
    expected = [abs(m - c) <= 1 for m in range(4) for c in range(4)]
    assert stage_allowed(message, customer, on).tolist() == expected
    # A message without a stage goes to anyone; an unknown customer stage fails closed for a staged message.
    assert stage_allowed(np.array([None, None, "purchase"]), np.array(["loyalty", None, None]), on).tolist() == [True, True, False]


def test_a_listed_stage_replaces_its_default_and_the_others_keep_it():
    settings = StageTargetingSettings(enabled=True, allowed={"awareness": ("awareness", "consideration", "purchase"),
                                                             "loyalty": ("loyalty",)})
    matrix = stage_matrix(settings)
    assert matrix[0].tolist() == [True, True, True, False]  # as configured
    assert matrix[3].tolist() == [False, False, False, True]  # as configured: loyalty only
    assert matrix[1].tolist() == [True, True, True, False]  # consideration not listed: itself and neighbours


def _rules(*rules: dict, **policy) -> PolicySettings:
    return PolicySettings(rules=tuple(rules), **policy)


def test_attribute_in_applies_to_its_message_only():
    settings = _rules({"message_id": "m1", "attribute_in": {"segment": ["premium", "gold"]}})
    verdict = rules_verdict(
        message_id=np.array(["m1", "m1", "m1", "m2"]), topic=np.array(["t"] * 4),
        message_stage=np.array([None] * 4), customer_stage=np.array([0] * 4),
        attributes={"segment": np.array(["gold", "basic", None, "basic"], dtype=object)},
        settings=settings,
    )
    # gold is listed; basic is not; a missing segment is in no list; m2 has no rule.
    assert verdict.allowed.tolist() == [True, False, False, True]
    assert verdict.reason.tolist() == ["", "attribute_in", "attribute_in", ""]


def test_attribute_values_compare_as_text():
    settings = _rules({"topic": "t", "attribute_in": {"tier": ["1"]}})
    verdict = rules_verdict(np.array(["m", "m"]), np.array(["t", "t"]), np.array([None, None]), np.array([0, 0]),
                            {"tier": np.array([1, 2], dtype=object)}, settings)
    assert verdict.allowed.tolist() == [True, False]


def test_min_days_since_purchase_by_topic_with_its_edge():
    settings = _rules({"topic": "travel", "min_days_since_purchase": 30})
    verdict = rules_verdict(
        message_id=np.array(["a", "b", "c", "d"]), topic=np.array(["travel", "travel", "travel", "food"]),
        message_stage=np.array([None] * 4), customer_stage=np.array([0] * 4),
        attributes={"days_since_last_purchase": np.array([10.0, 30.0, np.nan, 1.0])},
        settings=settings,
    )
    # 10 < 30 blocked; exactly 30 is enough; never bought (NaN) is long enough; food has no rule.
    assert verdict.reason.tolist() == ["min_days_since_purchase", "", "", ""]


def test_the_first_failing_check_is_the_reason():
    settings = _rules(
        {"topic": "t", "attribute_in": {"segment": ["premium"]}, "min_days_since_purchase": 30},
        stage_targeting={"enabled": True},
    )
    verdict = rules_verdict(
        message_id=np.array(["a", "b", "c"]), topic=np.array(["t", "t", "t"]),
        message_stage=np.array(["loyalty", "awareness", "awareness"]), customer_stage=np.array(["awareness"] * 3),
        attributes={"segment": np.array(["basic", "basic", "premium"], dtype=object),
                    "days_since_last_purchase": np.array([1.0, 1.0, 1.0])},
        settings=settings,
    )
    # a fails all three -> stage first; b fails segment and recency -> segment; c fails recency only.
    assert verdict.reason.tolist() == ["journey_stage", "attribute_in", "min_days_since_purchase"]
    assert verdict.counts() == {"attribute_in": 1, "journey_stage": 1, "min_days_since_purchase": 1}


def test_a_rule_reading_an_attribute_that_is_not_given_fails_loudly():
    settings = _rules({"message_id": "m1", "attribute_in": {"region": ["north"]}}, {"topic": "t", "min_days_since_purchase": 7})
    assert required_attributes(settings) == ("region", "days_since_last_purchase")
    with pytest.raises(ConfigError, match=r"customer attribute\(s\) \['region'\] that were not given"):
        rules_verdict(np.array(["m1"]), np.array(["t"]), np.array([None]), np.array([0]),
                      {"days_since_last_purchase": np.array([1.0])}, settings)


def test_verdicts_chain_keeping_the_earlier_reason():
    first = Verdict.first_failure(3, [("journey_stage", np.array([True, False, True]))])
    second = Verdict.first_failure(3, [("cooldown", np.array([False, False, True]))])
    both = first.then(second)
    assert both.allowed.tolist() == [False, False, True]
    assert both.reason.tolist() == ["cooldown", "journey_stage", ""]


def test_rules_load_from_toml(tmp_path):
    path = tmp_path / "nbm.toml"
    path.write_text(
        '[policy.stage_targeting]\nenabled = true\nallowed = { loyalty = ["loyalty"] }\n\n'
        '[[policy.rules]]\nmessage_id = "m1"\nattribute_in = { segment = ["premium"] }\n\n'
        '[[policy.rules]]\ntopic = "travel"\nmin_days_since_purchase = 14\n'
    )
    policy = load_settings(path, environ=False).policy
    assert policy.stage_targeting.allowed == {"loyalty": ("loyalty",)}
    assert stage_matrix(policy.stage_targeting)[3].tolist() == [False, False, False, True]
    assert [r.message_id or r.topic for r in policy.rules] == ["m1", "travel"]
    assert policy.rules[1].min_days_since_purchase == 14


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[policy.rules]]\nmessage_id = "m1"\ntopic = "t"\nmin_days_since_purchase = 1\n', "exactly one of message_id or topic"),
        ('[[policy.rules]]\nmessage_id = "m1"\n', "a rule needs attribute_in or min_days_since_purchase"),
        ('[[policy.rules]]\ntopic = "t"\nattribute_in = { segment = [] }\n', "attribute_in lists no accepted value for ['segment']"),
        ('[[policy.rules]]\ntopic = "t"\nsegment_in = ["a"]\n', "policy.rules.0.segment_in: Extra inputs are not permitted"),
        ('[policy.stage_targeting]\nallowed = { vip = ["loyalty"] }\n', "unknown journey stage(s) ['vip']"),
    ],
)
def test_broken_rules_are_rejected_at_load(tmp_path, text, message):
    path = tmp_path / "nbm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=False)
    assert message in str(info.value)
