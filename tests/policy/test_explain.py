"""Top feature contributions from pred_contrib rows, and the feature definitions' labels."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import FeatureSettings
from engine.features.definitions import Catalog, resolve
from engine.policy.explain import Contribution, top_contributions

NAMES = ["click_count_30d", "email_open_rate_90d", "topic_travel_affinity", "msg_seen_count"]
LABELS = resolve(FeatureSettings(), Catalog(channels=("email", "sms"), topics=("food", "home_decor", "travel"), shared_offers=True,
                                            profile_attributes=(("signup_date", True),), message_attributes=(("offer_type", False),))
                 ).label_of


def test_top_contributions_by_absolute_value_without_the_bias():
    contrib = np.array([
        [0.10, -0.50, 0.30, 0.00, 9.0],  # |-0.5| > 0.3 > 0.1; the bias 9.0 is never a reason
        [0.20, 0.20, 0.00, 0.00, -1.0],  # tie: feature order; exact zeros are no reason
    ])
    rows = top_contributions(contrib, NAMES, LABELS, n=3)
    assert [[(c.feature, c.value) for c in row] for row in rows] == [
        [("email_open_rate_90d", -0.5), ("topic_travel_affinity", 0.3), ("click_count_30d", 0.1)],
        [("click_count_30d", 0.2), ("email_open_rate_90d", 0.2)],
    ]
    assert rows[0][0] == Contribution("email_open_rate_90d", "open rate on email over the last 90 days", -0.5)


def test_a_name_without_a_label_reads_as_its_words_and_the_shape_is_checked():
    rows = top_contributions(np.array([[0.0, 0.0, 0.0, 1.0, 0.0]]), NAMES, {"msg_seen_count": "seen before"}, n=1)
    assert rows == [[Contribution("msg_seen_count", "seen before", 1.0)]]
    rows = top_contributions(np.array([[2.0, 0.0, 0.0, 0.0, 0.0]]), NAMES, {}, n=1)
    assert rows == [[Contribution("click_count_30d", "click count 30d", 2.0)]]
    with pytest.raises(ValueError, match=r"pred_contrib must be \(rows, 5\).*got shape \(1, 4\)"):
        top_contributions(np.zeros((1, 4)), NAMES, LABELS)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("click_count_30d", "clicks in the last 30 days"),
        ("impression_count_7d", "messages shown in the last 7 days"),
        ("days_since_last_purchase", "days since the last purchase"),
        ("purchase_amount_avg_90d", "average purchase amount over the last 90 days"),
        ("sms_click_rate_90d", "click rate on sms over the last 90 days"),
        ("email_impressions_1d", "messages shown on email in the last day"),
        ("topic_home_decor_visits_90d", "visits on home_decor in the last 90 days"),
        ("topic_food_impressions_7d", "messages about food shown in the last 7 days"),
        ("topic_food_visit_share_90d", "share of visits on food over the last 90 days"),
        ("stage_loyalty_click_rate_30d", "click rate on loyalty-stage messages over the last 30 days"),
        ("support_count_90d", "support contacts in the last 90 days"),
        ("msg_topic_affinity", "recent interest in the message's topic"),
        ("msg_channel_click_rate_90d", "click rate on the message's channel over the last 90 days"),
        ("msg_stage_click_rate_30d", "click rate on same-stage messages over the last 30 days"),
        ("msg_days_since_shown", "days since this message was last shown"),
        ("msg_offer_impressions_30d", "times this offer was shown on any channel in the last 30 days"),
        ("profile_signup_date", "customer signup date"),
        ("msg_attr_offer_type", "message offer type"),
    ],
)
def test_feature_labels(name, label):
    assert LABELS[name] == label


@pytest.mark.parametrize(("label", "value", "contribution", "text"), [
    ("click rate on email over the last 90 days", 0.0423, 0.2, "click rate on email over the last 90 days: 4.2% (raised the score)"),
    ("share of visits on food over the last 90 days", 1.0, -0.1, "share of visits on food over the last 90 days: 100.0% (lowered the score)"),
    ("clicks in the last 30 days", 3.0, 0.5, "clicks in the last 30 days: 3 (raised the score)"),
    ("days since the last purchase", 11.458333, -0.3, "days since the last purchase: 11.5 (lowered the score)"),
    ("recent interest in travel", 0.0123, 0.1, "recent interest in travel: 0.012 (raised the score)"),
    ("last survey score", None, 0.1, "last survey score: unknown (raised the score)"),
])
def test_a_reason_reads_as_a_sentence_with_the_features_value(label, value, contribution, text):
    from engine.policy.online_decision import Reason

    assert Reason("f", label, contribution, value).text == text
