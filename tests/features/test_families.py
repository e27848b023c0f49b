"""Every feature family on one tiny hand-made history; expected values computed by hand.

as_of = 2026-03-31T00:00Z. Customer c1's history (days before as_of in brackets):
visit travel 03-30 [1], visit travel 03-17 [14], visit food 02-20 [39], visit food 2025-12-15 [106],
impression m1 (email, travel) 03-30T12:00 [0.5], open m1 03-30T13:00, click m1 03-30T14:00 [10 h],
impression m2 (sms, food) 03-25 [6], purchase travel 120 03-20 [11], purchase food 30 01-10 [80],
survey 5 03-01 [30: exactly on the 30-day window's start], support 03-28 [3], complaint 03-29 [2],
and a visit on 04-02, after as_of, that nothing may see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.build import CatalogTable, ProfileTable, build_features, make_history
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from tests.builders import events_frame, messages_frame

AS_OF = "2026-03-31T00:00:00Z"
SETTINGS = FeatureSettings()  # windows 7/30/90, half-life 14 d, prior strength 10
MESSAGES = messages_frame(
    [
        {"message_id": "m1", "channel": "email", "topic": "travel", "journey_stage": "consideration", "value": 5.0,
         "valid_from": "2026-03-01T00:00:00Z", "offer_type": "discount"},
        {"message_id": "m2", "channel": "sms", "topic": "food", "journey_stage": "loyalty", "offer_type": "content"},
    ]
)
CUSTOMERS = pd.DataFrame({"customer_id": ["c1"], "segment": ["premium"], "signup_date": ["2026-01-30T00:00:00Z"]})


def _e(ts, kind, **kw):
    return {"ts": ts, "customer_id": "c1", "event_type": kind, **kw}


EVENTS = events_frame(
    [
        _e("2026-03-30T00:00:00Z", "visit", topic="travel"),
        _e("2026-03-17T00:00:00Z", "visit", topic="travel"),
        _e("2026-02-20T00:00:00Z", "visit", topic="food"),
        _e("2025-12-15T00:00:00Z", "visit", topic="food"),
        _e("2026-03-30T12:00:00Z", "impression", channel="email", topic="travel", message_id="m1"),
        _e("2026-03-30T13:00:00Z", "open", channel="email", topic="travel", message_id="m1"),
        _e("2026-03-30T14:00:00Z", "click", channel="email", topic="travel", message_id="m1"),
        _e("2026-03-25T00:00:00Z", "impression", channel="sms", topic="food", message_id="m2"),
        _e("2026-03-20T00:00:00Z", "purchase", topic="travel", value=120.0),
        _e("2026-01-10T00:00:00Z", "purchase", topic="food", value=30.0),
        _e("2026-03-01T00:00:00Z", "survey", value=5.0),
        _e("2026-03-28T00:00:00Z", "support"),
        _e("2026-03-29T00:00:00Z", "complaint"),
        _e("2026-04-02T00:00:00Z", "visit", topic="travel"),
    ]
)


def _rows(as_of: str = AS_OF) -> pd.DataFrame:
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    history = make_history(EventLog.from_events(EVENTS, spec.vocab), spec)
    requests = pd.DataFrame({"customer_id": ["c1", "c1"], "as_of": [pd.Timestamp(as_of)] * 2, "message_id": ["m1", "m2"]})
    matrix = build_features(requests, history, CatalogTable.from_messages(MESSAGES, spec), ProfileTable.from_customers(CUSTOMERS), spec, dtype=np.float64)
    return matrix.to_frame()


@pytest.fixture(scope="module")
def row() -> pd.Series:
    return _rows().iloc[0]


def test_candidate_topic_standing_among_the_customers_topics():
    # travel: visit share 2/3, food 1/3; travel's decayed affinity is the larger one too.
    m1, m2 = _rows().iloc[0], _rows().iloc[1]
    _check(m1, {"msg_topic_share_gap": 0.0, "msg_topic_share_rank": 1, "msg_topic_affinity_gap": 0.0, "msg_topic_affinity_rank": 1,
                "msg_topic_click_rate_90d": 1.3 / 11, "msg_stage_click_rate_30d": 1.3 / 11,
                "msg_stage_click_rate_gap": 0.0, "msg_stage_click_rate_rank": 1})
    # m2's stage (loyalty) has the lowest smoothed click rate of the four stages: 0.3/11 < 0.03 < 1.3/11.
    _check(m2, {"msg_topic_click_rate_90d": 0.3 / 11, "msg_stage_click_rate_30d": 0.3 / 11,
                "msg_stage_click_rate_gap": 0.3 / 11 - 1.3 / 11, "msg_stage_click_rate_rank": 4})
    _check(m2, {"msg_topic_share_gap": 1 / 3 - 2 / 3, "msg_topic_share_rank": 2,
                "msg_topic_affinity_gap": m2["topic_food_affinity"] - m2["topic_travel_affinity"], "msg_topic_affinity_rank": 2})


def _check(row: pd.Series, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        if np.isnan(value):
            assert np.isnan(row[name]), name
        else:
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_recency_frequency_monetary(row):
    _check(row, {
        "days_since_last_visit": 1.0, "visit_count_7d": 1, "visit_count_30d": 2, "visit_count_90d": 3,
        "days_since_last_click": 10 / 24, "click_count_7d": 1, "click_count_90d": 1,
        "days_since_last_purchase": 11.0, "purchase_count_7d": 0, "purchase_count_30d": 1, "purchase_count_90d": 2,
        "days_since_last_impression": 0.5, "impression_count_7d": 2, "impression_count_90d": 2,
        "purchase_amount_sum_7d": 0.0, "purchase_amount_sum_30d": 120.0, "purchase_amount_sum_90d": 150.0,
        "purchase_amount_avg_90d": 75.0,
    })


def test_channel_engagement_with_smoothed_rates(row):
    _check(row, {
        "email_impressions_90d": 1,
        "email_open_rate_90d": (1 + 10 * 0.2) / (1 + 10), "email_click_rate_90d": (1 + 10 * 0.03) / 11,
        "email_conversion_rate_90d": (0 + 10 * 0.005) / 11,
        "sms_impressions_90d": 1, "sms_open_rate_90d": 2 / 11, "sms_click_rate_90d": 0.3 / 11,
    })


def test_topic_affinity_counts_shares_and_decay(row):
    _check(row, {
        "topic_travel_visits_90d": 2, "topic_travel_impressions_90d": 1, "topic_travel_click_rate_90d": 1.3 / 11, "topic_travel_purchases_90d": 1,
        "topic_travel_clicks_90d": 1, "topic_travel_visit_share_90d": 2 / 3,
        "topic_travel_affinity": 2 ** (-1 / 14) + 2 ** (-14 / 14) + 2 ** (-11 / 14) + 2 ** (-(10 / 24) / 14),
        "topic_food_visits_90d": 1, "topic_food_impressions_90d": 1, "topic_food_click_rate_90d": 0.3 / 11, "topic_food_purchases_90d": 1,
        "topic_food_clicks_90d": 0, "topic_food_visit_share_90d": 1 / 3,
        "topic_food_affinity": 2 ** (-39 / 14) + 2 ** (-80 / 14),
    })


def test_journey_stage_and_signals(row):
    # Two purchases ever, both in 90 days: loyalty.
    _check(row, {"purchase_count_lifetime": 2, "purchase_count_before_90d": 0, "conversion_count_30d": 0, "journey_stage": 3})
    # Fifteen days later the 01-10 purchase is 95 days old: one purchase before the window, one in it.
    later = _rows("2026-04-15T00:00:00Z").iloc[0]
    _check(later, {"purchase_count_lifetime": 2, "purchase_count_90d": 1, "purchase_count_before_90d": 1, "journey_stage": 3})
    # By the stage of the messages shown in 30 days: m1 (consideration) clicked, m2 (loyalty) not.
    _check(row, {
        "stage_consideration_impressions_30d": 1, "stage_loyalty_impressions_30d": 1, "stage_awareness_impressions_30d": 0,
        "stage_consideration_click_rate_30d": 1.3 / 11, "stage_loyalty_click_rate_30d": 0.3 / 11,
        "stage_awareness_click_rate_30d": 0.03, "stage_purchase_click_rate_30d": 0.03,
    })


def test_voice_of_the_customer(row):
    _check(row, {
        "last_survey_score": 5, "days_since_last_survey": 30, "is_detractor": 1, "is_promoter": 0,
        "days_since_last_complaint": 2, "support_count_30d": 1, "complaint_count_30d": 1,
        "support_count_90d": 1, "complaint_count_90d": 1,
    })


def test_contact_pressure(row):
    _check(row, {
        "impressions_1d": 1, "impressions_7d": 2, "email_impressions_1d": 1, "sms_impressions_1d": 0,
        "email_impressions_7d": 1, "sms_impressions_7d": 1, "topic_travel_impressions_7d": 1, "topic_food_impressions_7d": 1,
    })


def test_candidate_message_and_cross_features(row):
    _check(row, {
        "msg_channel": 0, "msg_topic": 1, "msg_stage": 1, "msg_value": 5.0, "msg_days_since_valid_from": 30,
        "msg_seen_count": 1, "msg_days_since_shown": 0.5, "msg_topic_days_since_shown": 0.5,
        "msg_topic_impressions_7d": 1, "msg_channel_impressions_1d": 1,
        "msg_topic_affinity": row["topic_travel_affinity"], "msg_topic_visit_share_90d": 2 / 3,
        "msg_channel_click_rate_90d": 1.3 / 11, "msg_stage_match": 0, "msg_stage_gap": 1 - 3,
    })


def test_profile_and_message_attributes(row):
    # segment 'premium' is category 0 of ['premium']; signup 60 days before as_of; offer_type 'discount' is 1
    # of ['content', 'discount'].
    _check(row, {"profile_segment": 0, "profile_signup_date": 60, "msg_attr_offer_type": 1})


def test_days_since_last_open_reads_the_last_open_on_any_channel():
    # c1 opened m1 on 03-30T13:00, 11 hours before as_of; seen from 03-30T12:30 the open has not happened.
    assert _rows().iloc[0]["days_since_last_open"] == pytest.approx(11 / 24, rel=1e-12)
    assert np.isnan(_rows("2026-03-30T12:30:00Z").iloc[0]["days_since_last_open"])
